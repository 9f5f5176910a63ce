"""The storefront's data layer: the per-container cache of org pricing settings, the check that proves
them current, and the size of the checkout's transaction."""

from __future__ import annotations

from typing import Any

import pytest

from appengine_core.commerce.data import Placement, SettingsCache, StorefrontData, pricing_fields
from appengine_core.commerce.models import MAX_LINES
from appengine_core.commerce.pricing import PricingError, price_settings
from appengine_core.infra.envelope import Record
from appengine_core.infra.store import Check, Operation, TenantStore


def test_only_the_fields_pricing_reads_are_kept() -> None:
    # Given an org's settings with pricing fields, payment methods and collection roles
    settings = {"currency": "EUR", "taxPercent": 7, "paymentMethods": [], "collections": {"note": {}}}

    # When their pricing fields are taken
    # Then only currency, tax and shipping (those present) remain
    assert pricing_fields(settings) == {"currency": "EUR", "taxPercent": 7}


def test_entries_expire_are_dropped_and_are_bounded() -> None:
    # Given a cache of two entries that keeps each for 10 seconds, on a clock the test moves
    now = [100.0]
    cache = SettingsCache(ttl=10, size=2, clock=lambda: now[0])
    cache.put("acme", {"taxPercent": 10})

    # When time passes, orgs are added and one is dropped
    now[0] = 109.0
    kept = cache.get("acme")
    now[0] = 110.0
    expired = cache.get("acme")
    for orgid in ("a1", "a2", "a3"):
        cache.put(orgid, {})
    cache.drop("a3")

    # Then an entry lives its ttl only, the oldest goes first past the bound, and a dropped one is gone
    assert kept == {"taxPercent": 10} and expired is None
    assert [cache.get(o) for o in ("a1", "a2", "a3")] == [None, {}, None]


def test_a_returned_entry_is_a_copy() -> None:
    # Given a cached entry handed out
    cache = SettingsCache()
    cache.put("acme", {"taxPercent": 10})
    handed = cache.get("acme")
    assert handed is not None

    # When the caller changes it
    handed["taxPercent"] = 99

    # Then the cache still holds what was read
    assert cache.get("acme") == {"taxPercent": 10}


@pytest.mark.parametrize(
    ("fields", "condition", "values"),
    [
        (
            {},
            "attribute_exists(PK) AND attribute_not_exists(#s.#f0) AND attribute_not_exists(#s.#f1) "
            "AND attribute_not_exists(#s.#f2)",
            {},
        ),
        (
            {"currency": "EUR", "taxPercent": None, "shipping": {"flatRate": 5}},
            "attribute_exists(PK) AND #s.#f0 = :v0 AND attribute_type(#s.#f1, :null) AND #s.#f2 = :v2",
            {":v0": "EUR", ":null": "NULL", ":v2": {"flatRate": 5}},
        ),
    ],
)
def test_the_proof_compares_every_pricing_field_or_its_absence(
    fields: dict[str, Any], condition: str, values: dict[str, Any]
) -> None:
    # Given the pricing fields a checkout priced with
    # When the check that they are still stored is built
    check = StorefrontData.settings_unchanged("acme", fields)

    # Then it requires the org and each field equal to what was read, or absent as it was
    assert check.key.sort == "acme:#org:acme"
    assert check.condition == condition and dict(check.values) == values
    assert dict(check.names) == {"#s": "settings", "#f0": "currency", "#f1": "taxPercent", "#f2": "shipping"}


def test_shipping_settings_that_are_not_a_map_are_misconfigured() -> None:
    # Given shipping settings written as text
    # When they are read for pricing
    # Then that is a pricing error (a 409 for the org's misconfiguration), not a crash
    with pytest.raises(PricingError):
        price_settings({"shipping": "free"})


class Recording(TenantStore):
    """A store that keeps the operations of each transaction instead of sending them."""

    def __init__(self) -> None:
        self.transactions: list[list[Operation]] = []

    def transact(self, operations: Any) -> None:
        self.transactions.append(list(operations))


def test_the_largest_checkout_fits_one_transaction_with_its_settings_check() -> None:
    # Given a cart of the most lines a cart holds, each product stock-tracked, with a coupon that has a
    # usage limit, a gift card and an Idempotency-Key
    def record(datatype: str, data: dict[str, Any]) -> Record:
        return Record.new(orgid="acme", datatype=datatype, data=data)

    products = [(record("product", {"stock": 5}), 1) for _ in range(MAX_LINES)]
    order = record("order", {"orderNumber": "00000001"})
    placement = Placement(
        order=order,
        customer="customer-1",
        cart_id="cart-1",
        actor="customer-1",
        products=products,
        coupon=record("coupon", {"usageLimit": 3}),
        gift_card=record("giftcard", {"balance": 10}),
        gift_card_used=1.0,
        idempotency_key="key-1",
        event={},
        settings={"taxPercent": 10},
    )
    store = Recording()

    # When its order is placed
    StorefrontData(store).place_order(placement)

    # Then one transaction holds it all, within DynamoDB's 100 items, the settings check last
    [operations] = store.transactions
    assert len(operations) == MAX_LINES + 11 <= 100
    last = operations[-1]
    assert isinstance(last, Check) and last.key.sort == "acme:#org:acme" and ":v1" in last.values
