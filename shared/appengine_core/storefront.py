"""The storefront (contract §7): public browse, carts, server-side pricing, idempotent checkout, orders.

Products are ``product`` records managed through the repository; only ``published`` ones are visible
here. Checkout is one DynamoDB transaction: stock decrements (conditional, so the last unit is sold
once), the cart's switch to ``ordered`` (so a cart is checked out once), the order, its unique number,
the customer's order index, coupon and gift-card use, the idempotency record and the ``order.placed``
and ``record.created`` events. Any failed condition cancels all of it.
"""

from __future__ import annotations

import time
from typing import Any

from boto3.dynamodb.conditions import Attr
from pydantic import BaseModel, ConfigDict, Field

from appengine_core.directory import org_key
from appengine_core.errors import Conflict, Forbidden, NotFound, RateLimited, invalid_field
from appengine_core.pagination import PageRequest, fetch_page
from appengine_core.pricing import Coupon, Line, PricingError, Quote, price_settings, quote, to_minor
from appengine_core.principal import Principal
from appengine_core.records import Record, new_id, utc_now_iso
from appengine_core.repository import counter_change, counter_key, outbox_put, record_event
from appengine_core.store import ConditionFailed, Operation, Put, TenantStore, Update
from appengine_core.tenancy import TenantKey
from appengine_core.web import list_envelope

CATALOG_CAP = 1000  # products examined per storefront lookup (see README: storefront costs)
MAX_LINES = 40
MAX_QUANTITY = 999
GIFT_CARD_PROBES_PER_MINUTE = 10
IDEMPOTENCY_SECONDS = 24 * 3600


class CartAdd(BaseModel):
    model_config = ConfigDict(extra="ignore")
    cartId: str | None = Field(default=None, max_length=64)  # noqa: N815
    customerId: str | None = Field(default=None, max_length=100)  # noqa: N815 - staff acting for a customer
    sku: str = Field(min_length=1, max_length=100)
    quantity: int = Field(default=1, ge=1, le=MAX_QUANTITY)


class CartUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    cartId: str = Field(min_length=1, max_length=64)  # noqa: N815
    customerId: str | None = Field(default=None, max_length=100)  # noqa: N815
    sku: str = Field(min_length=1, max_length=100)
    quantity: int = Field(ge=0, le=MAX_QUANTITY)


class CartRemove(BaseModel):
    model_config = ConfigDict(extra="ignore")
    cartId: str = Field(min_length=1, max_length=64)  # noqa: N815
    customerId: str | None = Field(default=None, max_length=100)  # noqa: N815
    sku: str = Field(min_length=1, max_length=100)


class ItemRequest(BaseModel):
    sku: str = Field(min_length=1, max_length=100)
    quantity: int = Field(ge=1, le=MAX_QUANTITY)


class PriceRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    productItems: list[ItemRequest] | None = Field(default=None, max_length=MAX_LINES)  # noqa: N815
    cartId: str | None = Field(default=None, max_length=64)  # noqa: N815
    customerId: str | None = Field(default=None, max_length=100)  # noqa: N815
    couponCode: str | None = Field(default=None, max_length=64)  # noqa: N815
    giftCardCode: str | None = Field(default=None, max_length=64)  # noqa: N815
    shippingAddress: dict[str, Any] | None = None  # noqa: N815


class CheckoutRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    cartId: str = Field(min_length=1, max_length=64)  # noqa: N815
    customerId: str | None = Field(default=None, max_length=100)  # noqa: N815
    couponCode: str | None = Field(default=None, max_length=64)  # noqa: N815
    giftCardCode: str | None = Field(default=None, max_length=64)  # noqa: N815
    shippingAddress: dict[str, Any] | None = None  # noqa: N815


def cart_key(orgid: str, customer_id: str, cart_id: str) -> TenantKey:
    return TenantKey(orgid, "#cart", f"{customer_id}:{cart_id}")


class StorefrontService:
    def __init__(self, store: TenantStore | None = None) -> None:
        self._store = store or TenantStore()

    # -- catalog -------------------------------------------------------------------------------
    def _published(self, orgid: str, extra: Any = None) -> list[dict[str, Any]]:
        condition = Attr("state").eq("published")
        if extra is not None:
            condition = condition & extra
        page = self._store.query(orgid, "product", limit=CATALOG_CAP, filter_condition=condition)
        return page.items

    def _product(self, orgid: str, sku: str) -> dict[str, Any]:
        found = self._published(orgid, Attr("data.sku").eq(sku))
        if not found:
            raise NotFound(f"no product {sku}")
        return found[0]

    def products(self, orgid: str, params: dict[str, str]) -> dict[str, Any]:
        page = PageRequest.from_query(
            {k: v for k, v in params.items() if k in ("p", "ps", "page", "pageSize")}
        )
        extra: Any = None
        if params.get("brand"):
            extra = Attr("data.brand").eq(params["brand"])
        categories = [c for c in (params.get("categories") or "").split(",") if c]
        for category in categories:
            condition = Attr("data.categories").contains(category)
            extra = condition if extra is None else extra & condition
        items = [Record.from_item(i) for i in self._published(orgid, extra)]
        sort = params.get("sort") or ""
        descending = sort.startswith("-")
        field = sort.lstrip("-")
        if field in ("price", "name"):
            items.sort(
                key=lambda r: (r.data.get(field) is None, r.data.get(field) or 0, r.sk), reverse=descending
            )
        start = (page.page - 1) * page.page_size
        chunk = items[start : start + page.page_size]
        return list_envelope(
            [r.model_dump() for r in chunk],
            page=page.page,
            page_size=page.page_size,
            has_next=start + page.page_size < len(items),
            next_cursor=None,
            total=len(items),
        )

    def product(self, orgid: str, slug_or_sku: str) -> Record:
        found = self._published(orgid, Attr("data.slug").eq(slug_or_sku) | Attr("data.sku").eq(slug_or_sku))
        if not found:
            raise NotFound("no such product")
        return Record.from_item(found[0])

    def facets(self, orgid: str, facet: str) -> dict[str, Any]:
        values: set[str] = set()
        for item in self._published(orgid):
            value = (item.get("data") or {}).get(facet)
            values.update(str(v) for v in (value if isinstance(value, list) else [value]) if v)
        names = sorted(values)
        return list_envelope(
            names, page=1, page_size=max(1, len(names)), has_next=False, next_cursor=None, total=len(names)
        )

    def org_settings(self, orgid: str) -> dict[str, Any]:
        org = self._store.get(org_key(orgid))
        if org is None:
            raise NotFound("no such org")
        return dict(org.get("settings") or {})

    def payment_gateways(self, orgid: str) -> dict[str, Any]:
        methods = self.org_settings(orgid).get("paymentMethods") or [
            {"id": "manual", "name": "Manual payment", "enabled": True}
        ]
        enabled = [m for m in methods if m.get("enabled", True)]
        return list_envelope(
            enabled,
            page=1,
            page_size=max(1, len(enabled)),
            has_next=False,
            next_cursor=None,
            total=len(enabled),
        )

    def shipping_options(self, orgid: str, body: dict[str, Any]) -> dict[str, Any]:
        settings = price_settings(self.org_settings(orgid))
        total = body.get("orderTotal")
        free = (
            settings.free_shipping_over_minor is not None
            and total is not None
            and to_minor(total) >= settings.free_shipping_over_minor
        )
        amount = 0 if free else settings.shipping_flat_minor
        option = {
            "id": "standard",
            "name": "Standard shipping",
            "amount": amount / 100,
            "currency": settings.currency,
        }
        return {"served": True, "options": [option], "currency": settings.currency}

    # -- gift cards ----------------------------------------------------------------------------
    def _gift_card(self, orgid: str, code: str) -> dict[str, Any] | None:
        page = self._store.query(
            orgid, "giftcard", limit=CATALOG_CAP, filter_condition=Attr("data.code").eq(code)
        )
        return page.items[0] if page.items else None

    def gift_card_balance(self, orgid: str, code: str, source_ip: str) -> dict[str, Any]:
        window = int(time.time() // 60)
        try:
            self._store.update(
                Update(
                    TenantKey(orgid, "#giftcard-probe", f"{source_ip}:{window}"),
                    "ADD probes :one SET #ttl = :ttl",
                    values={":one": 1, ":ttl": (window + 2) * 60, ":limit": GIFT_CARD_PROBES_PER_MINUTE},
                    names={"#ttl": "ttl"},
                    condition="attribute_not_exists(probes) OR probes < :limit",
                ),
                return_new=False,
            )
        except ConditionFailed as exc:
            raise RateLimited(int((window + 1) * 60 - time.time()) + 1, "too many gift card checks") from exc
        card = self._gift_card(orgid, code)
        if card is None:
            raise NotFound("no such gift card")
        data = card.get("data") or {}
        return {"code": code, "balance": data.get("balance", 0), "currency": data.get("currency", "USD")}

    # -- carts ---------------------------------------------------------------------------------
    @staticmethod
    def _customer_of(actor: Principal, requested: str | None) -> str:
        """The customer a cart call is for: a customer itself; a staff operator names one."""
        if actor.kind == "customer":
            own = f"customer-{TenantKey.parse(actor.principal_id).item_id}"
            if requested and requested != own:
                raise NotFound("no such cart")
            return own
        if not requested or not requested.startswith("customer-"):
            raise invalid_field("customerId", "staff acting on a cart must name the customer (its pk)")
        return requested

    def _cart(self, orgid: str, customer_id: str, cart_id: str) -> dict[str, Any]:
        cart = self._store.get(cart_key(orgid, customer_id, cart_id), consistent=True)
        if cart is None:
            raise NotFound("no such cart")
        return cart

    def _cart_view(self, orgid: str, cart: dict[str, Any]) -> dict[str, Any]:
        priced = self._price_lines(orgid, cart.get("items") or [], strict=False)
        result = quote(priced, price_settings(self.org_settings(orgid)))
        body = result.as_body()
        view = {
            "cartId": cart["cartId"],
            "customerId": cart["customerId"],
            "items": body["items"],
            "subtotal": body["subtotal"],
            "currency": body["currency"],
            "status": cart.get("status", "open"),
        }
        if cart.get("orderNumber"):
            view["orderNumber"] = cart["orderNumber"]
        return view

    def _price_lines(
        self,
        orgid: str,
        items: list[dict[str, Any]],
        *,
        strict: bool = True,
        found: dict[str, Any] | None = None,
    ) -> list[Line]:
        """Lines priced from the current products; ``found`` collects the product items by SKU."""
        lines = []
        for item in items:
            try:
                product = self._product(orgid, str(item["sku"]))
                if found is not None:
                    found[str(item["sku"])] = product
            except NotFound:
                if strict:
                    raise
                continue
            data = product.get("data") or {}
            try:
                unit = to_minor(data.get("price", 0))
            except PricingError as exc:
                raise Conflict(f"product {item['sku']} has no valid price") from exc
            lines.append(
                Line(
                    sku=str(item["sku"]),
                    name=str(data.get("name") or item["sku"]),
                    quantity=int(item["quantity"]),
                    unit_minor=unit,
                )
            )
        return lines

    def _check_stock(self, orgid: str, sku: str, quantity: int) -> None:
        stock = (self._product(orgid, sku).get("data") or {}).get("stock")
        if stock is not None and int(stock) < quantity:
            raise Conflict(f"only {stock} of {sku} in stock")

    def _save_cart(self, orgid: str, cart: dict[str, Any], expected_version: int | None) -> None:
        cart["updatedAt"] = utc_now_iso()
        new_version = (expected_version or 0) + 1
        condition = "attribute_not_exists(PK)" if expected_version is None else "#v = :v AND #s = :open"
        try:
            self._store.put(
                Put(
                    cart_key(orgid, cart["customerId"], cart["cartId"]),
                    cart | {"version": new_version},
                    must_not_exist=False,
                    condition=condition,
                    values={":v": expected_version, ":open": "open"} if expected_version is not None else {},
                    names={"#v": "version", "#s": "status"} if expected_version is not None else {},
                )
            )
        except ConditionFailed as exc:
            raise Conflict("the cart changed or was checked out meanwhile") from exc
        cart["version"] = new_version

    def cart_get(self, actor: Principal, orgid: str, customer_id: str, cart_id: str) -> dict[str, Any]:
        customer = self._customer_of(actor, customer_id)
        return self._cart_view(orgid, self._cart(orgid, customer, cart_id))

    def cart_add(self, actor: Principal, orgid: str, request: CartAdd) -> dict[str, Any]:
        customer = self._customer_of(actor, request.customerId)
        if request.cartId:
            cart = self._cart(orgid, customer, request.cartId)
            expected: int | None = int(cart.get("version", 1))
        else:
            cart = {
                "cartId": new_id(),
                "customerId": customer,
                "items": [],
                "status": "open",
                "createdAt": utc_now_iso(),
            }
            expected = None
        if cart.get("status") != "open":
            raise Conflict("the cart was checked out")
        items = {i["sku"]: int(i["quantity"]) for i in cart["items"]}
        wanted = items.get(request.sku, 0) + request.quantity
        self._check_stock(orgid, request.sku, wanted)
        items[request.sku] = wanted
        if len(items) > MAX_LINES:
            raise invalid_field("sku", f"a cart holds at most {MAX_LINES} products")
        cart["items"] = [{"sku": s, "quantity": q} for s, q in items.items()]
        self._save_cart(orgid, cart, expected)
        return self._cart_view(orgid, cart)

    def cart_update(self, actor: Principal, orgid: str, request: CartUpdate | CartRemove) -> dict[str, Any]:
        customer = self._customer_of(actor, request.customerId)
        cart = self._cart(orgid, customer, request.cartId)
        if cart.get("status") != "open":
            raise Conflict("the cart was checked out")
        items = {i["sku"]: int(i["quantity"]) for i in cart.get("items") or []}
        if request.sku not in items:
            raise NotFound(f"{request.sku} is not in the cart")
        quantity = request.quantity if isinstance(request, CartUpdate) else 0
        if quantity:
            self._check_stock(orgid, request.sku, quantity)
            items[request.sku] = quantity
        else:
            del items[request.sku]
        cart["items"] = [{"sku": s, "quantity": q} for s, q in items.items()]
        self._save_cart(orgid, cart, int(cart.get("version", 1)))
        return self._cart_view(orgid, cart)

    # -- pricing -------------------------------------------------------------------------------
    def _coupon(self, orgid: str, code: str | None) -> tuple[Coupon | None, dict[str, Any] | None]:
        if not code:
            return None, None
        page = self._store.query(
            orgid, "coupon", limit=CATALOG_CAP, filter_condition=Attr("data.code").eq(code)
        )
        if not page.items:
            raise invalid_field("couponCode", "no such coupon")
        item = page.items[0]
        data = item.get("data") or {}
        expires = data.get("expiresAt")
        limit, used = data.get("usageLimit"), int(data.get("usedCount", 0))
        if (expires and str(expires) <= utc_now_iso()) or (limit is not None and used >= int(limit)):
            raise invalid_field("couponCode", "the coupon has expired or is used up")
        kind = data.get("type", "percent")
        if kind not in ("percent", "fixed"):
            raise Conflict("the coupon is misconfigured")
        return Coupon(code=code, kind=kind, value=data.get("value", 0)), item

    def _quote(
        self,
        orgid: str,
        items: list[dict[str, Any]],
        coupon_code: str | None,
        gift_code: str | None,
        found: dict[str, Any] | None = None,
    ) -> tuple[Quote, Any, Any]:
        lines = self._price_lines(orgid, items, found=found)
        coupon, coupon_item = self._coupon(orgid, coupon_code)
        gift = self._gift_card(orgid, gift_code) if gift_code else None
        if gift_code and gift is None:
            raise invalid_field("giftCardCode", "no such gift card")
        balance = to_minor((gift or {}).get("data", {}).get("balance", 0)) if gift else 0
        return quote(lines, price_settings(self.org_settings(orgid)), coupon, balance), coupon_item, gift

    def calculate(self, actor: Principal, orgid: str, request: PriceRequest) -> dict[str, Any]:
        if request.cartId:
            items = (
                self._cart(orgid, self._customer_of(actor, request.customerId), request.cartId).get("items")
                or []
            )
        elif request.productItems:
            items = [i.model_dump() for i in request.productItems]
        else:
            raise invalid_field("productItems", "give productItems or a cartId")
        result, _, _ = self._quote(orgid, items, request.couponCode, request.giftCardCode)
        return result.as_body()

    # -- checkout and orders -------------------------------------------------------------------
    def _order_record(self, orgid: str, order_sk: str) -> dict[str, Any]:
        item = self._store.get(TenantKey.parse(order_sk), consistent=True)
        if item is None:
            raise NotFound("no such order")
        return Record.from_item(item).model_dump()

    def checkout(
        self, actor: Principal, orgid: str, request: CheckoutRequest, idempotency_key: str | None
    ) -> tuple[int, dict[str, Any]]:
        customer = self._customer_of(actor, request.customerId)
        replay_key = (
            TenantKey(orgid, "#idempotency", f"{customer}:{idempotency_key}") if idempotency_key else None
        )
        if replay_key is not None:
            replay = self._store.get(replay_key, consistent=True)
            if replay is not None:
                if replay.get("cartId") != request.cartId:
                    raise invalid_field("Idempotency-Key", "already used for another cart")
                return int(replay["status"]), self._order_record(orgid, str(replay["order"]))
        cart = self._cart(orgid, customer, request.cartId)
        if cart.get("status") == "ordered":
            return 200, self._order_record(orgid, str(cart["orderSk"]))
        items = cart.get("items") or []
        if not items:
            raise invalid_field("cartId", "the cart is empty")
        products: dict[str, Any] = {}
        result, coupon_item, gift = self._quote(
            orgid, items, request.couponCode, request.giftCardCode, products
        )
        number = self._next_order_number(orgid)
        body = result.as_body()
        order = Record.new(
            orgid=orgid,
            datatype="order",
            name=number,
            state="placed",
            author=actor.principal_id,
            data={
                "orderNumber": number,
                "customerId": customer,
                "cartId": request.cartId,
                "items": body["items"],
                "currency": body["currency"],
                "subtotal": body["subtotal"],
                "discount": body["discount"],
                "tax": body["tax"],
                "shipping": body["shipping"],
                "giftCard": body["giftCard"],
                "total": body["total"],
                "couponCode": request.couponCode,
                "shippingAddress": request.shippingAddress,
                "minorUnits": body["minorUnits"],
            },
        )
        operations: list[Operation] = []
        for line in result.lines:
            product = products[line.sku]
            operations.append(
                Update(
                    TenantKey.parse(str(product["_sk"])),
                    "SET #d.#stock = #d.#stock - :q, #v = #v + :one",
                    values={":q": line.quantity, ":one": 1, ":published": "published"},
                    names={"#d": "data", "#stock": "stock", "#v": "version", "#state": "state"},
                    condition="#d.#stock >= :q AND #state = :published",
                )
            )
        stock_checks = len(operations)
        operations += [
            Update(
                cart_key(orgid, customer, request.cartId),
                "SET #s = :ordered, orderSk = :order, orderNumber = :n",
                values={":ordered": "ordered", ":open": "open", ":order": order.sk, ":n": number},
                names={"#s": "status"},
                condition="#s = :open",
            ),
            Put(order.key, order.to_item()),
            counter_change(orgid, "order", 1),
            Put(TenantKey(orgid, "#order-number", number), {"order": order.sk}),
            Put(TenantKey(orgid, "#customer-order", f"{customer}:{order.key.item_id}"), {"order": order.sk}),
            record_event(order, "created", actor.principal_id),
            outbox_put(
                orgid,
                "order.placed",
                {
                    "orderNumber": number,
                    "order": order.sk,
                    "customerId": customer,
                    "total": body["total"],
                    "currency": body["currency"],
                },
            ),
        ]
        if coupon_item is not None and (coupon_item.get("data") or {}).get("usageLimit") is not None:
            operations.append(
                Update(
                    TenantKey.parse(str(coupon_item["_sk"])),
                    "SET #d.usedCount = if_not_exists(#d.usedCount, :zero) + :one",
                    values={":zero": 0, ":one": 1, ":limit": int(coupon_item["data"]["usageLimit"])},
                    names={"#d": "data"},
                    condition="attribute_not_exists(#d.usedCount) OR #d.usedCount < :limit",
                )
            )
        if gift is not None and result.gift_card_minor:
            operations.append(
                Update(
                    TenantKey.parse(str(gift["_sk"])),
                    "SET #d.balance = #d.balance - :used",
                    values={":used": result.gift_card_minor / 100},
                    names={"#d": "data"},
                    condition="#d.balance >= :used",
                )
            )
        if replay_key is not None:
            operations.append(
                Put(
                    replay_key,
                    {
                        "cartId": request.cartId,
                        "order": order.sk,
                        "status": 201,
                        "ttl": int(time.time()) + IDEMPOTENCY_SECONDS,
                    },
                )
            )
        try:
            self._store.transact(operations)
        except ConditionFailed as exc:
            if exc.index is not None and exc.index < stock_checks:
                raise Conflict(f"not enough stock for {result.lines[exc.index].sku}") from exc
            # Lost a race with a duplicate of this checkout: answer what the winner created.
            if replay_key is not None and (replay := self._store.get(replay_key, consistent=True)):
                return int(replay["status"]), self._order_record(orgid, str(replay["order"]))
            cart = self._cart(orgid, customer, request.cartId)
            if cart.get("status") == "ordered":
                return 200, self._order_record(orgid, str(cart["orderSk"]))
            raise Conflict("the cart, a coupon or a gift card changed meanwhile; try again") from exc
        return 201, order.model_dump()

    def _next_order_number(self, orgid: str) -> str:
        # A counter hands out numbers; the conditional put of #order-number in the checkout transaction
        # is what guarantees uniqueness (a gap after a failed checkout is harmless).
        counter = (
            self._store.update(
                Update(
                    TenantKey(orgid, "#sequence", "order"),
                    "ADD #n :one",
                    values={":one": 1},
                    names={"#n": "next"},
                )
            )
            or {}
        )
        return f"{int(counter.get('next', 1)):08d}"

    def order_by_number(self, actor: Principal, orgid: str, number: str) -> dict[str, Any]:
        pointer = self._store.get(TenantKey(orgid, "#order-number", number)) if number else None
        if pointer is None:
            raise NotFound("no such order")
        order = self._order_record(orgid, str(pointer["order"]))
        if actor.kind == "customer" and order["data"].get("customerId") != self._customer_of(actor, None):
            raise NotFound("no such order")
        return order

    def orders(self, actor: Principal, orgid: str, page: PageRequest) -> dict[str, Any]:
        """Newest first, paged by cursor or page number: a customer's own orders (its order index),
        or for staff every order of the org."""
        if actor.kind == "customer":
            collection = "#customer-order"
            prefix: str | None = f"{orgid}:{collection}:{self._customer_of(actor, None)}:"
        else:
            if not actor.has_permission("read"):
                raise Forbidden("needs the read permission")
            collection, prefix = "order", None
        result = fetch_page(
            page,
            orgid,
            collection,
            lambda limit, after: self._store.query(
                orgid, collection, limit=limit, after_sort_key=after, sort_prefix=prefix, newest_first=True
            ),
        )
        keys = [TenantKey.parse(str(i.get("order") or i["sk"])) for i in result.items]
        found = self._store.batch_get(keys)
        orders = [Record.from_item(found[k.sort]).model_dump() for k in keys if k.sort in found]
        total = None if prefix else int((self._store.get(counter_key(orgid, "order")) or {}).get("total", 0))
        return list_envelope(
            orders,
            page=result.page,
            page_size=result.page_size,
            has_next=result.has_next,
            next_cursor=result.next_cursor,
            total=total,
        )
