"""Server-side pricing in integer minor units (cents): no float ever touches money.

Prices are entered as decimal major units on products (``12.5``) and converted once, exactly, with
``Decimal``. Percentages (tax, percent coupons) round half up to the minor unit at the step where they
apply. Order of application: line totals -> subtotal -> discount (coupon, never below zero) -> tax on
the discounted subtotal -> shipping (free over a threshold) -> gift card -> total.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, Field

from appengine_core.commerce.models import MinorUnits, Quote, QuoteLine

MINOR_UNITS = 100
# Far above any real price or order, and small enough that converting it never builds a giant integer
# (``"1e999999999"`` is a valid Decimal) or leaves the Decimal context's precision.
MAX_AMOUNT = Decimal("1e15")
MAX_PERCENT = Decimal(1000)


class PricingError(ValueError):
    pass


def to_minor(amount: Any) -> int:
    """Major units (``12.5``, ``"12.50"``, ``7``) to minor units (``1250``), exactly or not at all."""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError) as exc:
        raise PricingError(f"not an amount: {amount!r}") from exc
    if not value.is_finite() or value < 0:
        raise PricingError(f"not an amount: {amount!r}")
    if value >= MAX_AMOUNT:
        raise PricingError(f"too large an amount: {amount!r}")
    minor = value * MINOR_UNITS
    if minor != minor.to_integral_value():
        raise PricingError(f"more precise than a cent: {amount!r}")
    return int(minor)


def percent_of(amount_minor: int, percent: Any) -> int:
    """``percent`` % of an amount, rounded half up to the minor unit."""
    try:
        rate = Decimal(str(percent))
    except (InvalidOperation, ValueError) as exc:
        raise PricingError(f"not a percentage: {percent!r}") from exc
    if not rate.is_finite() or not 0 <= rate <= MAX_PERCENT:
        raise PricingError(f"not a percentage: {percent!r}")
    try:
        return int((Decimal(amount_minor) * rate / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except InvalidOperation as exc:  # beyond the context's precision
        raise PricingError(f"cannot take {percent!r} % of {amount_minor}") from exc


def to_major(amount_minor: int) -> float:
    """For display in JSON bodies (AppEngine's clients read decimal amounts); exact for cents."""
    return float(Decimal(amount_minor) / MINOR_UNITS)


class Coupon(BaseModel):
    code: str
    kind: Literal["percent", "fixed"]
    value: Any
    active: bool = True


class PriceSettings(BaseModel):
    currency: str = "USD"
    tax_percent: Any = 0
    shipping_flat_minor: int = 0
    free_shipping_over_minor: int | None = None


class Line(BaseModel):
    sku: str
    name: str
    quantity: int = Field(ge=1)
    unit_minor: int = Field(ge=0)

    @property
    def total_minor(self) -> int:
        return self.unit_minor * self.quantity


class PriceBreakdown(BaseModel):
    """A priced cart in minor units, as ``quote`` computes it."""

    lines: list[Line]
    currency: str
    subtotal_minor: int
    discount_minor: int
    tax_minor: int
    shipping_minor: int
    gift_card_minor: int
    total_minor: int
    coupon_code: str | None = None

    def as_quote(self) -> Quote:
        """The breakdown as the contract shows it: decimal major units, and the minor units beside."""
        return Quote(
            items=[
                QuoteLine(
                    sku=line.sku,
                    name=line.name,
                    quantity=line.quantity,
                    unitPrice=to_major(line.unit_minor),
                    lineTotal=to_major(line.total_minor),
                )
                for line in self.lines
            ],
            currency=self.currency,
            subtotal=to_major(self.subtotal_minor),
            discount=to_major(self.discount_minor),
            tax=to_major(self.tax_minor),
            shipping=to_major(self.shipping_minor),
            giftCard=to_major(self.gift_card_minor),
            total=to_major(self.total_minor),
            couponCode=self.coupon_code,
            minorUnits=MinorUnits(
                subtotal=self.subtotal_minor,
                discount=self.discount_minor,
                tax=self.tax_minor,
                shipping=self.shipping_minor,
                giftCard=self.gift_card_minor,
                total=self.total_minor,
            ),
        )


def quote(
    lines: list[Line], settings: PriceSettings, coupon: Coupon | None = None, gift_card_balance_minor: int = 0
) -> PriceBreakdown:
    subtotal = sum(line.total_minor for line in lines)
    discount = 0
    if coupon is not None and coupon.active:
        discount = percent_of(subtotal, coupon.value) if coupon.kind == "percent" else to_minor(coupon.value)
        discount = min(discount, subtotal)
    taxable = subtotal - discount
    tax = percent_of(taxable, settings.tax_percent)
    shipping = settings.shipping_flat_minor if lines else 0
    if settings.free_shipping_over_minor is not None and taxable >= settings.free_shipping_over_minor:
        shipping = 0
    due = taxable + tax + shipping
    gift_card = min(max(gift_card_balance_minor, 0), due)
    return PriceBreakdown(
        lines=lines,
        currency=settings.currency,
        subtotal_minor=subtotal,
        discount_minor=discount,
        tax_minor=tax,
        shipping_minor=shipping,
        gift_card_minor=gift_card,
        total_minor=due - gift_card,
        coupon_code=coupon.code if coupon else None,
    )


def price_settings(org_settings: dict[str, Any]) -> PriceSettings:
    """The org's pricing settings: ``currency``, ``taxPercent``, ``shipping: {flatRate, freeOver}``."""
    shipping = org_settings.get("shipping") or {}
    if not isinstance(shipping, dict):
        raise PricingError(f"not shipping settings: {shipping!r}")
    free_over = shipping.get("freeOver")
    return PriceSettings(
        currency=str(org_settings.get("currency") or "USD"),
        tax_percent=org_settings.get("taxPercent", 0),
        shipping_flat_minor=to_minor(shipping.get("flatRate", 0)),
        free_shipping_over_minor=to_minor(free_over) if free_over is not None else None,
    )
