"""The org's storefront settings (contract §7): pricing settings, payment methods, shipping options.

Settings are the org's ``settings``: ``currency``, ``taxPercent``, ``shipping: {flatRate, freeOver}``
and ``paymentMethods`` (default: one ``manual`` method).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from appengine_core.commerce.data import StorefrontData
from appengine_core.commerce.models import PaymentMethod, ShippingOption, ShippingOptions
from appengine_core.commerce.pricing import PriceSettings, PricingError, price_settings, to_minor
from appengine_core.infra.errors import Conflict, NotFound, invalid_field
from appengine_core.infra.limits import check_number, check_storable
from appengine_core.infra.paging import Page

MAX_SHIPPING_BODY_BYTES = 256 * 1024
DEFAULT_PAYMENT_METHODS: list[dict[str, Any]] = [{"id": "manual", "name": "Manual payment", "enabled": True}]


class SettingsService:
    def __init__(self, data: StorefrontData | None = None) -> None:
        self._data = data or StorefrontData()

    def _settings(self, orgid: str) -> dict[str, Any]:
        settings = self._data.org_settings(orgid)
        if settings is None:
            raise NotFound("no such org")
        return settings

    def price_settings(self, orgid: str) -> PriceSettings:
        return self.pricing(orgid)[0]

    def pricing(
        self, orgid: str, *, cached: bool = False, consistent: bool = False
    ) -> tuple[PriceSettings, dict[str, Any]]:
        """The org's pricing settings, and the stored fields they come from (what a write proves
        unchanged with ``StorefrontData.settings_unchanged``). ``cached``: as this container last read
        them, if it did recently (only for a write that proves them)."""
        fields = self._data.pricing_settings(orgid, cached=cached, consistent=consistent)
        if fields is None:
            raise NotFound("no such org")
        return self.from_fields(fields), fields

    @staticmethod
    def from_fields(fields: dict[str, Any]) -> PriceSettings:
        """The pricing settings of the org's settings' pricing fields as read (409 if misconfigured)."""
        try:
            return price_settings(fields)
        except PricingError as exc:
            raise Conflict("the org's pricing settings are misconfigured") from exc

    def payment_gateways(self, orgid: str) -> Page[PaymentMethod]:
        """The org's enabled payment methods, each as its settings give it."""
        methods = self._settings(orgid).get("paymentMethods") or DEFAULT_PAYMENT_METHODS
        try:
            enabled = [PaymentMethod.model_validate(m) for m in methods if m.get("enabled", True)]
        except (ValidationError, AttributeError, TypeError) as exc:
            raise Conflict("the org's payment settings are misconfigured") from exc
        return Page[PaymentMethod](
            data=enabled, total=len(enabled), page=1, pageSize=max(1, len(enabled)), hasNext=False
        )

    def shipping_options(self, orgid: str, body: dict[str, Any]) -> ShippingOptions:
        """``{items, toAddress, orderTotal?, discountCode?}``: the flat rate, free over the threshold."""
        total = body.get("orderTotal")
        total_minor: int | None = None
        if total is not None:
            check_number(total, "orderTotal")
            try:
                total_minor = to_minor(total)
            except PricingError as exc:
                raise invalid_field("orderTotal", "must be an amount of 0 or more in whole cents") from exc
        check_storable(body, "body", max_bytes=MAX_SHIPPING_BODY_BYTES)
        settings = self.price_settings(orgid)
        free = (
            settings.free_shipping_over_minor is not None
            and total_minor is not None
            and total_minor >= settings.free_shipping_over_minor
        )
        amount = 0 if free else settings.shipping_flat_minor
        option = ShippingOption(
            id="standard", name="Standard shipping", amount=amount / 100, currency=settings.currency
        )
        return ShippingOptions(served=True, options=[option], currency=settings.currency)
