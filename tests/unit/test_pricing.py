"""Pricing in integer minor units: exact conversion, half-up rounding, the order of application."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appengine_core.commerce.pricing import (
    Coupon,
    Line,
    PriceSettings,
    PricingError,
    percent_of,
    quote,
    to_minor,
)


@pytest.mark.parametrize(
    ("amount", "minor"), [(12.5, 1250), ("0.10", 10), (7, 700), ("19.99", 1999), (0.1 + 0.2, None)]
)
def test_amounts_convert_exactly_or_not_at_all(amount: object, minor: int | None) -> None:
    if minor is None:
        with pytest.raises(PricingError):
            to_minor(amount)  # 0.30000000000000004 is not an amount of money
    else:
        assert to_minor(amount) == minor


@pytest.mark.parametrize(
    "amount", [-1, "abc", float("nan"), float("inf"), "1.005", True, None, [1], "1e999999999", 10**15]
)
def test_invalid_amounts_are_refused(amount: object) -> None:
    # Huge exponents are refused before they become a giant integer
    with pytest.raises(PricingError):
        to_minor(amount)


@pytest.mark.parametrize("percent", [-1, "abc", float("nan"), 1001, "1e999999999"])
def test_invalid_percentages_are_refused(percent: object) -> None:
    with pytest.raises(PricingError):
        percent_of(1000, percent)


@pytest.mark.parametrize(
    ("amount", "percent", "expected"),
    [(1000, 8.25, 83), (1, 50, 1), (3, 50, 2), (999, "7.5", 75), (0, 20, 0)],
)
def test_percentages_round_half_up(amount: int, percent: object, expected: int) -> None:
    assert percent_of(amount, percent) == expected


def test_a_full_quote_applies_discount_then_tax_then_shipping_then_gift_card() -> None:
    lines = [
        Line(sku="MUG-1", name="Mug", quantity=3, unit_minor=1250),
        Line(sku="T-1", name="Towel", quantity=1, unit_minor=700),
    ]
    settings = PriceSettings(
        currency="USD", tax_percent="8.25", shipping_flat_minor=499, free_shipping_over_minor=10000
    )
    result = quote(
        lines, settings, Coupon(code="TEN", kind="percent", value=10), gift_card_balance_minor=1000
    )
    assert result.subtotal_minor == 4450
    assert result.discount_minor == 445
    assert result.tax_minor == 330  # 8.25 % of 40.05 = 3.304125 -> 3.30
    assert result.shipping_minor == 499
    assert result.gift_card_minor == 1000
    assert result.total_minor == 4450 - 445 + 330 + 499 - 1000
    assert result.as_quote().total == 38.34


def test_discounts_never_go_below_zero_and_free_shipping_applies() -> None:
    lines = [Line(sku="A", name="A", quantity=1, unit_minor=500)]
    settings = PriceSettings(shipping_flat_minor=300, free_shipping_over_minor=0)
    result = quote(lines, settings, Coupon(code="BIG", kind="fixed", value=20))
    assert (result.discount_minor, result.shipping_minor, result.total_minor) == (500, 0, 0)


@given(
    prices=st.lists(st.integers(min_value=0, max_value=10_000_000), min_size=1, max_size=10),
    quantity=st.integers(min_value=1, max_value=50),
    tax=st.decimals(min_value=0, max_value=30, places=3),
    coupon=st.integers(min_value=0, max_value=100),
    gift=st.integers(min_value=0, max_value=10**9),
)
def test_totals_add_up_exactly(prices: list[int], quantity: int, tax: object, coupon: int, gift: int) -> None:
    lines = [Line(sku=f"S{i}", name="x", quantity=quantity, unit_minor=p) for i, p in enumerate(prices)]
    result = quote(
        lines,
        PriceSettings(tax_percent=tax, shipping_flat_minor=250),
        Coupon(code="C", kind="percent", value=coupon),
        gift,
    )
    assert result.total_minor == (
        result.subtotal_minor
        - result.discount_minor
        + result.tax_minor
        + result.shipping_minor
        - result.gift_card_minor
    )
    assert 0 <= result.discount_minor <= result.subtotal_minor and result.total_minor >= 0
