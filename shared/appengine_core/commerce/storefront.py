"""The storefront (contract §7): public browse, carts, server-side pricing, idempotent checkout, orders.

Products are ``product`` records managed through the repository; only ``published`` ones are visible
here. Checkout is one DynamoDB transaction: stock decrements (conditional, so the last unit is sold
once), the cart's switch to ``ordered`` (so a cart is checked out once), the order, its unique number,
the customer's order index, coupon and gift-card use, the idempotency record and the ``order.placed``
and ``record.created`` events. Any failed condition cancels all of it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Attr
from pydantic import BaseModel, ConfigDict, Field

from appengine_core.commerce.pricing import (
    Coupon,
    Line,
    PriceSettings,
    PricingError,
    Quote,
    price_settings,
    quote,
    to_minor,
)
from appengine_core.identity.directory import org_key
from appengine_core.identity.principal import Principal
from appengine_core.infra.counters import counter_change, counter_key
from appengine_core.infra.envelope import Record, new_id, record_key_from_path_id, record_pk, utc_now_iso
from appengine_core.infra.errors import Conflict, Forbidden, NotFound, RateLimited, invalid_field
from appengine_core.infra.limits import check_number, check_storable
from appengine_core.infra.outbox import outbox_put, record_event
from appengine_core.infra.paging import PageRequest, fetch_page, list_envelope
from appengine_core.infra.store import Check, ConditionFailed, Operation, Put, TenantStore, Update
from appengine_core.infra.tenancy import TenantKey

CATALOG_CAP = 1000  # products examined per storefront lookup (see README: storefront costs)
MAX_LINES = 40
MAX_QUANTITY = 999
GIFT_CARD_PROBES_PER_MINUTE = 10  # unknown or inactive codes, per customer and per source IP
IDEMPOTENCY_SECONDS = 24 * 3600
MAX_CATEGORIES = 20
MAX_FILTER_TEXT = 100  # a brand, a category, a slug or SKU in a storefront lookup
MAX_CODE = 64
MAX_CUSTOMER_ID = 100
MAX_CART_ID = 64
MAX_ORDER_NUMBER = 32
# A shipping address is stored inside the order; these keep it far from DynamoDB's item limits.
MAX_ADDRESS_DEPTH = 8
MAX_ADDRESS_BYTES = 16 * 1024
MAX_SHIPPING_BODY_BYTES = 256 * 1024
INACTIVE_STATES = frozenset({"draft", "disabled", "archived"})


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


def _instant(value: Any) -> datetime | None:
    """An ``expiresAt`` as an aware datetime (ISO 8601 text or epoch seconds); None if unreadable."""
    try:
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return datetime.fromtimestamp(float(value), UTC)
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_active(item: dict[str, Any], now: datetime | None = None) -> bool:
    """Whether a coupon or gift card record applies (contract §7). An unreadable expiry fails closed:
    a code nobody can tell is still valid is not honoured."""
    if str(item.get("state") or "") in INACTIVE_STATES:
        return False
    data = item.get("data") or {}
    if data.get("active") is False or str(data.get("active")).lower() == "false":
        return False
    expires = data.get("expiresAt")
    if expires is None or expires == "":
        return True
    moment = _instant(expires)
    return moment is not None and moment > (now or datetime.now(UTC))


def _all_of(conditions: Sequence[Any]) -> Any:
    """The AND of filter conditions as a balanced tree: boto3 renders expressions recursively, so a
    left-deep chain would recurse once per term."""
    if not conditions:
        return None
    if len(conditions) == 1:
        return conditions[0]
    middle = len(conditions) // 2
    return _all_of(conditions[:middle]) & _all_of(conditions[middle:])


def _bounded(value: str, field: str, limit: int) -> str:
    if len(value) > limit:
        raise invalid_field(field, f"at most {limit} characters")
    return value


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
        brand = _bounded(params.get("brand") or "", "brand", MAX_FILTER_TEXT)
        categories = [c for c in (params.get("categories") or "").split(",") if c]
        if len(categories) > MAX_CATEGORIES:
            raise invalid_field("categories", f"at most {MAX_CATEGORIES} categories")
        conditions: list[Any] = [Attr("data.brand").eq(brand)] if brand else []
        conditions += [
            Attr("data.categories").contains(_bounded(c, "categories", MAX_FILTER_TEXT)) for c in categories
        ]
        items = [Record.from_item(i) for i in self._published(orgid, _all_of(conditions))]
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
        _bounded(slug_or_sku, "slugOrSku", MAX_FILTER_TEXT)
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

    def _price_settings(self, orgid: str) -> PriceSettings:
        try:
            return price_settings(self.org_settings(orgid))
        except PricingError as exc:
            raise Conflict("the org's pricing settings are misconfigured") from exc

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
        total = body.get("orderTotal")
        total_minor: int | None = None
        if total is not None:
            check_number(total, "orderTotal")
            try:
                total_minor = to_minor(total)
            except PricingError as exc:
                raise invalid_field("orderTotal", "must be an amount of 0 or more in whole cents") from exc
        check_storable(body, "body", max_bytes=MAX_SHIPPING_BODY_BYTES)
        settings = self._price_settings(orgid)
        free = (
            settings.free_shipping_over_minor is not None
            and total_minor is not None
            and total_minor >= settings.free_shipping_over_minor
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
    def _active_record(self, orgid: str, collection: str, code: str) -> dict[str, Any] | None:
        page = self._store.query(
            orgid, collection, limit=CATALOG_CAP, filter_condition=Attr("data.code").eq(code)
        )
        now = datetime.now(UTC)
        return next((item for item in page.items if is_active(item, now)), None)

    def _gift_card(self, orgid: str, code: str, subjects: Sequence[str]) -> dict[str, Any] | None:
        """The active gift card with this code, or None; a lookup that finds none uses up one of the
        minute's allowance of every subject (customer, source IP) (contract §7).

        The allowance is taken before the lookup and given back when the code is good: counting only
        after a miss would let a burst of parallel guesses all be looked up before the counter moved.
        """
        window = int(time.time() // 60)
        keys = [TenantKey(orgid, "#giftcard-probe", f"{subject}:{window}") for subject in subjects]
        taken: list[TenantKey] = []
        try:
            for key in keys:
                self._store.update(
                    Update(
                        key,
                        "ADD probes :one SET #ttl = :ttl",
                        values={":one": 1, ":ttl": (window + 2) * 60, ":limit": GIFT_CARD_PROBES_PER_MINUTE},
                        names={"#ttl": "ttl"},
                        condition="attribute_not_exists(probes) OR probes < :limit",
                    ),
                    return_new=False,
                )
                taken.append(key)
        except ConditionFailed as exc:
            self._give_back(taken)
            raise RateLimited(
                int((window + 1) * 60 - time.time()) + 1, "too many unknown gift card codes"
            ) from exc
        card = self._active_record(orgid, "giftcard", code)
        if card is not None:
            self._give_back(taken)
        return card

    def _give_back(self, keys: Sequence[TenantKey]) -> None:
        for key in keys:
            self._store.update(Update(key, "ADD probes :back", values={":back": -1}), return_new=False)

    def gift_card_balance(self, orgid: str, code: str, source_ip: str) -> dict[str, Any]:
        _bounded(code, "code", MAX_CODE)
        card = self._gift_card(orgid, code, [f"ip:{source_ip}"])
        if card is None:
            raise NotFound("no such gift card")
        data = card.get("data") or {}
        return {"code": code, "balance": data.get("balance", 0), "currency": data.get("currency", "USD")}

    # -- carts ---------------------------------------------------------------------------------
    @staticmethod
    def _own_customer(actor: Principal) -> str:
        return record_pk("customer", TenantKey.parse(actor.principal_id).item_id)

    def _customer_of(self, actor: Principal, orgid: str, requested: str | None, *, need: str) -> str:
        """The customer (its pk) a cart or order call is for: a customer itself; a staff operator
        names one, needs ``need`` (``read`` to look, ``update`` to act) in the org, and the customer
        must be an existing, enabled customer of the org (contract §7 operators)."""
        if actor.kind == "customer":
            own = self._own_customer(actor)
            if requested and requested != own:
                raise NotFound("no such cart")
            return own
        if not actor.has_permission(need):
            raise Forbidden(f"acting for a customer needs the {need} permission")
        if not requested:
            raise invalid_field("customerId", "staff acting on a cart must name the customer (its pk)")
        key = record_key_from_path_id(orgid, "customer", _bounded(requested, "customerId", MAX_CUSTOMER_ID))
        item = self._store.get(key) if key is not None else None
        if key is None or item is None or (item.get("data") or {}).get("disabled"):
            raise NotFound("no such customer")
        return record_pk("customer", key.item_id)

    def _cart(self, orgid: str, customer_id: str, cart_id: str) -> dict[str, Any]:
        cart = self._store.get(cart_key(orgid, customer_id, cart_id), consistent=True)
        if cart is None:
            raise NotFound("no such cart")
        return cart

    def _cart_view(self, orgid: str, cart: dict[str, Any]) -> dict[str, Any]:
        priced = self._price_lines(orgid, cart.get("items") or [], strict=False)
        result = quote(priced, self._price_settings(orgid))
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
        if stock is None:
            return  # not stock-tracked: any quantity (contract §7)
        try:
            available = int(stock)
        except (TypeError, ValueError) as exc:
            raise Conflict(f"product {sku} has no valid stock") from exc
        if available < quantity:
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
        _bounded(cart_id, "cartId", MAX_CART_ID)
        customer = self._customer_of(actor, orgid, customer_id, need="read")
        return self._cart_view(orgid, self._cart(orgid, customer, cart_id))

    def cart_add(self, actor: Principal, orgid: str, request: CartAdd) -> dict[str, Any]:
        customer = self._customer_of(actor, orgid, request.customerId, need="update")
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
        customer = self._customer_of(actor, orgid, request.customerId, need="update")
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
        # Inactive and expired coupons answer exactly as unknown ones do (contract §7).
        item = self._active_record(orgid, "coupon", code)
        if item is None:
            raise invalid_field("couponCode", "no such coupon")
        data = item.get("data") or {}
        try:
            limit, used = data.get("usageLimit"), int(data.get("usedCount", 0))
            used_up = limit is not None and used >= int(limit)
        except (TypeError, ValueError) as exc:
            raise Conflict("the coupon is misconfigured") from exc
        if used_up:
            raise invalid_field("couponCode", "the coupon is used up")
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
        probers: Sequence[str],
        found: dict[str, Any] | None = None,
    ) -> tuple[Quote, Any, Any]:
        """``probers``: whose gift-card allowance a lookup of ``gift_code`` uses (contract §7)."""
        lines = self._price_lines(orgid, items, found=found)
        coupon, coupon_item = self._coupon(orgid, coupon_code)
        gift = self._gift_card(orgid, gift_code, probers) if gift_code else None
        if gift_code and gift is None:
            raise invalid_field("giftCardCode", "no such gift card")
        try:
            balance = to_minor((gift.get("data") or {}).get("balance", 0)) if gift else 0
            priced = quote(lines, self._price_settings(orgid), coupon, balance)
        except PricingError as exc:
            raise Conflict("a coupon or gift card of the org is misconfigured") from exc
        return priced, coupon_item, gift

    @staticmethod
    def _probers(actor: Principal, source_ip: str) -> list[str]:
        return [f"principal:{actor.principal_id}", f"ip:{source_ip}"]

    def calculate(
        self, actor: Principal, orgid: str, request: PriceRequest, source_ip: str = "unknown"
    ) -> dict[str, Any]:
        if request.shippingAddress is not None:
            check_storable(
                request.shippingAddress,
                "shippingAddress",
                max_depth=MAX_ADDRESS_DEPTH,
                max_bytes=MAX_ADDRESS_BYTES,
            )
        if request.cartId:
            customer = self._customer_of(actor, orgid, request.customerId, need="read")
            items = self._cart(orgid, customer, request.cartId).get("items") or []
        elif request.productItems:
            items = [i.model_dump() for i in request.productItems]
        else:
            raise invalid_field("productItems", "give productItems or a cartId")
        result, _, _ = self._quote(
            orgid, items, request.couponCode, request.giftCardCode, self._probers(actor, source_ip)
        )
        return result.as_body()

    # -- checkout and orders -------------------------------------------------------------------
    def _order_record(self, orgid: str, order_sk: str) -> dict[str, Any]:
        item = self._store.get(TenantKey.parse(order_sk), consistent=True)
        if item is None:
            raise NotFound("no such order")
        return Record.from_item(item).model_dump()

    def checkout(
        self,
        actor: Principal,
        orgid: str,
        request: CheckoutRequest,
        idempotency_key: str | None,
        source_ip: str = "unknown",
    ) -> tuple[int, dict[str, Any]]:
        if request.shippingAddress is not None:
            check_storable(
                request.shippingAddress,
                "shippingAddress",
                max_depth=MAX_ADDRESS_DEPTH,
                max_bytes=MAX_ADDRESS_BYTES,
            )
        customer = self._customer_of(actor, orgid, request.customerId, need="update")
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
            orgid,
            items,
            request.couponCode,
            request.giftCardCode,
            self._probers(actor, source_ip),
            products,
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
            product_key = TenantKey.parse(str(product["_sk"]))
            if (product.get("data") or {}).get("stock") is None:
                # Not stock-tracked: nothing to decrement, but it must still be on sale and must not
                # have become stock-tracked since it was priced.
                operations.append(
                    Check(
                        product_key,
                        "#state = :published AND "
                        "(attribute_not_exists(#d.#stock) OR attribute_type(#d.#stock, :null))",
                        values={":published": "published", ":null": "NULL"},
                        names={"#d": "data", "#stock": "stock", "#state": "state"},
                    )
                )
                continue
            operations.append(
                Update(
                    product_key,
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
                if isinstance(operations[exc.index], Check):
                    raise Conflict(f"{result.lines[exc.index].sku} changed meanwhile; try again") from exc
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
        if actor.kind != "customer" and not actor.has_permission("read"):
            raise Forbidden("reading a customer's order needs the read permission")
        _bounded(number, "orderNumber", MAX_ORDER_NUMBER)
        pointer = self._store.get(TenantKey(orgid, "#order-number", number)) if number else None
        if pointer is None:
            raise NotFound("no such order")
        order = self._order_record(orgid, str(pointer["order"]))
        if actor.kind == "customer" and order["data"].get("customerId") != self._own_customer(actor):
            raise NotFound("no such order")
        return order

    def orders(self, actor: Principal, orgid: str, page: PageRequest) -> dict[str, Any]:
        """Newest first, paged by cursor or page number: a customer's own orders (its order index),
        or for staff every order of the org."""
        if actor.kind == "customer":
            collection = "#customer-order"
            prefix: str | None = f"{orgid}:{collection}:{self._own_customer(actor)}:"
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
