"""Pricing of a cart or of product items (contract §7): current product prices, the coupon, tax,
shipping and the gift card, on the server. The money math itself is ``commerce.pricing``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from appengine_core.commerce.catalog import CatalogService
from appengine_core.commerce.data import StorefrontData
from appengine_core.commerce.giftcards import GiftCardService, active_with_code
from appengine_core.commerce.models import CartItem, PriceRequest, Quote
from appengine_core.commerce.pricing import (
    Coupon,
    Line,
    PriceBreakdown,
    PricingError,
    quote,
    to_minor,
)
from appengine_core.commerce.settings import SettingsService
from appengine_core.commerce.shoppers import Shoppers, probers
from appengine_core.identity.principal import Caller
from appengine_core.infra.envelope import Record
from appengine_core.infra.errors import Conflict, NotFound, invalid_field
from appengine_core.infra.limits import check_storable

# A shipping address is stored inside the order; these keep it far from DynamoDB's item limits.
MAX_ADDRESS_DEPTH = 8
MAX_ADDRESS_BYTES = 16 * 1024


def check_address(address: Mapping[str, Any] | None) -> None:
    """422 for a shipping address too deep or too large to store inside an order."""
    if address is not None:
        check_storable(address, "shippingAddress", max_depth=MAX_ADDRESS_DEPTH, max_bytes=MAX_ADDRESS_BYTES)


@dataclass
class PricedCart:
    """A quote and what it was priced from: the products by SKU, the coupon and gift card records, the
    coupon's terms, the gift card's balance and the org's pricing settings as stored (``settings``)."""

    breakdown: PriceBreakdown
    coupon: Record | None
    gift_card: Record | None
    products: dict[str, Record] = field(default_factory=dict)
    coupon_terms: Coupon | None = None
    gift_balance_minor: int = 0
    settings: dict[str, Any] = field(default_factory=dict)


class QuoteService:
    def __init__(self, data: StorefrontData | None = None) -> None:
        self._data = data or StorefrontData()
        self._catalog = CatalogService(self._data)
        self._settings = SettingsService(self._data)
        self._gift_cards = GiftCardService(self._data)
        self._shoppers = Shoppers(self._data)

    def calculate(self, caller: Caller, request: PriceRequest, source_ip: str = "unknown") -> Quote:
        """Prices of a cart (``cartId``) or of ``productItems``, with the coupon and gift card given."""
        check_address(request.shippingAddress)
        if request.cartId:
            customer = self._shoppers.customer_of(caller, request.customerId, need="read")
            cart = self._data.cart(caller.orgid, customer, request.cartId)
            if cart is None:
                raise NotFound("no such cart")
            items = cart.items
        elif request.productItems:
            items = [CartItem(sku=i.sku, quantity=i.quantity) for i in request.productItems]
        else:
            raise invalid_field("productItems", "give productItems or a cartId")
        priced = self.price(
            caller.orgid, items, request.couponCode, request.giftCardCode, probers(caller, source_ip)
        )
        return priced.breakdown.as_quote()

    def price(
        self,
        orgid: str,
        items: Sequence[CartItem],
        coupon_code: str | None,
        gift_code: str | None,
        subjects: Sequence[str],
        *,
        cached_settings: bool = False,
    ) -> PricedCart:
        """Every line must be on sale; ``subjects``: whose gift-card allowance a lookup of
        ``gift_code`` uses (contract §7). ``cached_settings``: the org's pricing settings as this
        container last read them, for a write that proves them unchanged (else ``reprice``)."""
        products: dict[str, Record] = {}
        lines = self.lines(orgid, items, strict=True, found=products)
        coupon, coupon_record = self._coupon(orgid, coupon_code)
        gift = self._gift_cards.lookup(orgid, gift_code, subjects) if gift_code else None
        if gift_code and gift is None:
            raise invalid_field("giftCardCode", "no such gift card")
        try:
            balance = to_minor(gift.data.get("balance", 0)) if gift else 0
        except PricingError as exc:
            raise Conflict("a coupon or gift card of the org is misconfigured") from exc
        breakdown, settings = self._quote(orgid, lines, coupon, balance, cached=cached_settings)
        return PricedCart(
            breakdown=breakdown,
            coupon=coupon_record,
            gift_card=gift,
            products=products,
            coupon_terms=coupon,
            gift_balance_minor=balance,
            settings=settings,
        )

    def reprice(self, orgid: str, priced: PricedCart) -> PricedCart:
        """``priced`` again with the org's pricing settings read now (consistently): the same
        products, coupon and gift card, not looked up again."""
        breakdown, settings = self._quote(
            orgid, priced.breakdown.lines, priced.coupon_terms, priced.gift_balance_minor, consistent=True
        )
        return replace(priced, breakdown=breakdown, settings=settings)

    def _quote(
        self,
        orgid: str,
        lines: list[Line],
        coupon: Coupon | None,
        balance: int,
        *,
        cached: bool = False,
        consistent: bool = False,
    ) -> tuple[PriceBreakdown, dict[str, Any]]:
        settings, fields = self._settings.pricing(orgid, cached=cached, consistent=consistent)
        try:
            return quote(lines, settings, coupon, balance), fields
        except PricingError as exc:
            raise Conflict("a coupon or gift card of the org is misconfigured") from exc

    def price_as_shown(
        self,
        orgid: str,
        items: Sequence[CartItem],
        known: dict[str, Record] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> PriceBreakdown:
        """A cart's lines as shown: products no longer on sale are left out, no coupon or gift card.
        ``known``: products this request has read already, by SKU (not read again); ``settings``: the
        pricing fields of the org's settings if this request has read them (else they are read)."""
        lines = self.lines(orgid, items, strict=False, known=known)
        return quote(
            lines,
            self._settings.price_settings(orgid)
            if settings is None
            else self._settings.from_fields(settings),
        )

    def lines(
        self,
        orgid: str,
        items: Sequence[CartItem],
        *,
        strict: bool,
        found: dict[str, Record] | None = None,
        known: dict[str, Record] | None = None,
    ) -> list[Line]:
        """Lines priced from the current products; ``found`` collects the products by SKU; ``known``
        are products this request has read already."""
        lines = []
        for item in items:
            try:
                product = (known or {}).get(item.sku) or self._catalog.on_sale(orgid, item.sku)
            except NotFound:
                if strict:
                    raise
                continue
            if found is not None:
                found[item.sku] = product
            try:
                unit = to_minor(product.data.get("price", 0))
            except PricingError as exc:
                raise Conflict(f"product {item.sku} has no valid price") from exc
            name = str(product.data.get("name") or item.sku)
            lines.append(Line(sku=item.sku, name=name, quantity=item.quantity, unit_minor=unit))
        return lines

    def _coupon(self, orgid: str, code: str | None) -> tuple[Coupon | None, Record | None]:
        if not code:
            return None, None
        # Inactive and expired coupons answer exactly as unknown ones do (contract §7).
        record = active_with_code(self._data, orgid, "coupon", code)
        if record is None:
            raise invalid_field("couponCode", "no such coupon")
        data = record.data
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
        return Coupon(code=code, kind=kind, value=data.get("value", 0)), record
