"""Contract §7 over HTTP: races for the last units and duplicate checkouts, through the threaded gateway."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.contract.conftest import LocalApi, local_stack, sign_in


@pytest.fixture(scope="module")
def api() -> Iterator[LocalApi]:
    """A stack of this module's own. Catalog lookups are filtered Queries, and moto's Query sorts the
    whole table (its transactions copy it), so these tests keep their timing on a table that the other
    modules' thousands of items have not filled."""
    with local_stack("storefront") as local:
        yield local


def staff(api: LocalApi) -> dict[str, str]:
    return {
        "orgid": "acme",
        "authorization": sign_in(api, "admin@acme.test", "acme-admin-pass", "acme")["token"],
    }


def new_customer(api: LocalApi, tag: str) -> dict[str, str]:
    response = api.post(
        "/profile/customer/signup",
        headers={"orgid": "acme"},
        body={"email": f"{tag}-{time.time_ns()}@acme.test", "password": "race-customer-pass"},
    )
    assert response.status == 201, response.text
    return {"orgid": "acme", "authorization": response.json()["token"]}


def product(api: LocalApi, sku: str, stock: int) -> None:
    created = api.post(
        "/repository/create",
        headers=staff(api),
        body={
            "datatype": "product",
            "state": "published",
            "data": {"name": sku, "sku": sku, "slug": sku.lower(), "price": 10, "stock": stock},
        },
    )
    assert created.status == 201, created.text


def test_n_customers_race_for_the_last_k_units_and_exactly_k_win(api: LocalApi) -> None:
    sku, units, racers = f"LAST-{time.time_ns()}", 3, 8
    product(api, sku, units)
    shoppers = [new_customer(api, f"racer{i}") for i in range(racers)]
    carts = []
    for headers in shoppers:
        cart = api.post("/storefront/cart/add", headers=headers, body={"sku": sku, "quantity": 1})
        assert cart.status == 200, cart.text
        carts.append(cart.json()["cartId"])

    def checkout(index: int) -> Any:
        return api.post("/storefront/checkout-cart", headers=shoppers[index], body={"cartId": carts[index]})

    with ThreadPoolExecutor(max_workers=racers) as pool:
        results = list(pool.map(checkout, range(racers)))
    statuses = sorted(r.status for r in results)
    assert statuses == [201] * units + [409] * (racers - units), [r.text for r in results]
    numbers = {r.json()["data"]["orderNumber"] for r in results if r.status == 201}
    assert len(numbers) == units, "order numbers are unique"
    remaining = api.get(f"/storefront/product/{sku}", headers={"orgid": "acme"}).json()["data"]["stock"]
    assert remaining == 0


def test_concurrent_duplicate_checkouts_make_one_order(api: LocalApi) -> None:
    sku = f"DUP-{time.time_ns()}"
    product(api, sku, 10)
    shopper = new_customer(api, "dup")
    for key in ("same-key", None):
        cart = api.post("/storefront/cart/add", headers=shopper, body={"sku": sku, "quantity": 2}).json()[
            "cartId"
        ]
        headers = shopper | ({"Idempotency-Key": key} if key else {})

        def checkout(_: int, headers: dict[str, str] = headers, cart: str = cart) -> Any:
            return api.post("/storefront/checkout-cart", headers=headers, body={"cartId": cart})

        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(checkout, range(6)))
        assert {r.json()["sk"] for r in results} == {results[0].json()["sk"]}, (
            "one order, whatever the interleaving"
        )
        statuses = sorted(r.status for r in results)
        assert statuses == ([201] * 6 if key else [200] * 5 + [201])
    remaining = api.get(f"/storefront/product/{sku}", headers={"orgid": "acme"}).json()["data"]["stock"]
    assert remaining == 10 - 2 - 2
