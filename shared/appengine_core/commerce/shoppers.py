"""Whose cart or order a call is about (contract §7 operators): a customer's own, or for a staff
operator with the right permission, an existing, enabled customer of the org it names."""

from __future__ import annotations

from typing import Literal

from appengine_core.commerce.data import StorefrontData
from appengine_core.commerce.models import MAX_CUSTOMER_ID
from appengine_core.commerce.rules import bounded
from appengine_core.identity.principal import Caller, Principal
from appengine_core.infra.envelope import record_pk
from appengine_core.infra.errors import Forbidden, NotFound, invalid_field
from appengine_core.infra.tenancy import TenantKey


def own_customer(principal: Principal) -> str:
    """A customer principal's own customer id (its pk)."""
    return record_pk("customer", TenantKey.parse(principal.principal_id).item_id)


def probers(caller: Caller, source_ip: str) -> list[str]:
    """Whose gift-card allowance a lookup on behalf of ``caller`` uses (contract §7)."""
    return [f"principal:{caller.principal.principal_id}", f"ip:{source_ip}"]


class Shoppers:
    def __init__(self, data: StorefrontData | None = None) -> None:
        self._data = data or StorefrontData()

    def customer_of(self, caller: Caller, requested: str | None, *, need: Literal["read", "update"]) -> str:
        """The customer (its pk) a cart or order call is for: a customer itself; a staff operator
        names one, needs ``need`` (``read`` to look, ``update`` to act) in the org, and the customer
        must be an existing, enabled customer of the org (contract §7 operators)."""
        actor = caller.principal
        if actor.kind == "customer":
            own = own_customer(actor)
            if requested and requested != own:
                raise NotFound("no such cart")
            return own
        if not actor.has_permission(need):
            raise Forbidden(f"acting for a customer needs the {need} permission")
        if not requested:
            raise invalid_field("customerId", "staff acting on a cart must name the customer (its pk)")
        found = self._data.customer(caller.orgid, bounded(requested, "customerId", MAX_CUSTOMER_ID))
        if found is None or found[1].data.get("disabled"):
            raise NotFound("no such customer")
        return record_pk("customer", found[0])
