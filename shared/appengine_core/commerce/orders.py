"""Orders (contract §7): one by its number, and pages of them, newest first. An order is a ``order``
record envelope; a customer sees its own, staff with ``read`` every order of the org."""

from __future__ import annotations

from appengine_core.commerce.data import StorefrontData
from appengine_core.commerce.models import MAX_ORDER_NUMBER
from appengine_core.commerce.rules import bounded
from appengine_core.commerce.shoppers import own_customer
from appengine_core.identity.principal import Caller
from appengine_core.infra.envelope import Record
from appengine_core.infra.errors import Forbidden, NotFound
from appengine_core.infra.paging import Page, PageRequest


class OrderService:
    def __init__(self, data: StorefrontData | None = None) -> None:
        self._data = data or StorefrontData()

    def record(self, order_sk: str) -> Record:
        """An order by its sort key, read consistently."""
        order = self._data.order(order_sk)
        if order is None:
            raise NotFound("no such order")
        return order

    def next_number(self, orgid: str) -> str:
        return f"{self._data.next_order_number(orgid):08d}"

    def by_number(self, caller: Caller, number: str) -> Record:
        actor = caller.principal
        if actor.kind != "customer" and not actor.has_permission("read"):
            raise Forbidden("reading a customer's order needs the read permission")
        bounded(number, "orderNumber", MAX_ORDER_NUMBER)
        order_sk = self._data.order_sk_of_number(caller.orgid, number) if number else None
        if order_sk is None:
            raise NotFound("no such order")
        order = self.record(order_sk)
        if actor.kind == "customer" and order.data.get("customerId") != own_customer(actor):
            raise NotFound("no such order")
        return order

    def page(self, caller: Caller, page: PageRequest) -> Page[Record]:
        """Newest first, paged by cursor or page number: a customer's own orders (its order index),
        or for staff every order of the org (with its exact ``total``)."""
        actor = caller.principal
        if actor.kind == "customer":
            customer: str | None = own_customer(actor)
        else:
            if not actor.has_permission("read"):
                raise Forbidden("needs the read permission")
            customer = None
        orders, result = self._data.orders_page(caller.orgid, page, customer)
        total = None if customer is not None else self._data.order_count(caller.orgid)
        return Page[Record].of(orders, result, total)
