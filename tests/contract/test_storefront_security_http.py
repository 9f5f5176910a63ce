"""Contract §7 and §1 over HTTP: the storefront's security rules (issue 13, items 6, 7, 8, 11 and 15).

- Every lookup of a gift-card code (balance, calculate-cart, checkout) counts against one limit per
  customer and per source IP: more than 10 unknown or inactive codes a minute -> 429.
- A product without ``data.stock`` is not stock-tracked: any quantity, at the cart and at checkout.
- Inactive or expired coupons and gift cards answer exactly as unknown codes (422).
- Staff acting as operators need ``read`` to look and ``update`` to act, for an existing, enabled
  customer of the org (else 404).
- No storefront input causes a 500: what DynamoDB would refuse, and values beyond the limits, are 422.

The whole session shares one stack, reached from 127.0.0.1; tests of the per-source limit speak from
an address of their own in 127.0.0.0/8 so they never spend another test's allowance.
"""

from __future__ import annotations

import http.client
import json
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
import pytest

from tests.contract.conftest import HttpResponse, LocalApi, local_stack, sign_in
from tests.contract.test_platform_http import assert_error


@pytest.fixture(scope="module")
def api() -> Iterator[LocalApi]:
    """A stack of this module's own. Catalog lookups are filtered Queries, and moto's Query sorts the
    whole table (its transactions copy it), so these tests keep their timing on a table that the other
    modules' thousands of items have not filled."""
    with local_stack("storefront-security") as local:
        yield local


# The org these tests shop in: not acme, whose catalog the README walk-through counts.
ORG = "globex"
SHOP = {"orgid": ORG}
PAST = "2000-01-01T00:00:00Z"
FUTURE = "2999-01-01T00:00:00Z"


# -- helpers ------------------------------------------------------------------------------------
def admin(api: LocalApi) -> dict[str, str]:
    return {
        "orgid": ORG,
        "authorization": sign_in(api, f"admin@{ORG}.test", f"{ORG}-admin-pass", ORG)["token"],
    }


def new_customer(api: LocalApi, orgid: str = ORG) -> tuple[dict[str, str], str]:
    """A fresh customer: its headers and its pk (the ``customerId`` of contract §7)."""
    response = api.post(
        "/profile/customer/signup",
        headers={"orgid": orgid},
        body={"email": f"shop-{uuid.uuid4().hex[:12]}@{orgid}.test", "password": "shop-customer-pass"},
    )
    assert response.status == 201, response.text
    body = response.json()
    return {"orgid": orgid, "authorization": body["token"]}, body["customer"]["pk"]


def new_staff(api: LocalApi, permissions: list[str]) -> dict[str, str]:
    email = f"operator-{uuid.uuid4().hex[:10]}@{ORG}.test"
    created = api.post(
        "/user/create",
        headers=admin(api),
        body={"email": email, "password": "operator-pass-1", "roles": ["User"], "permissions": permissions},
    )
    assert created.status == 201, created.text
    return {"orgid": ORG, "authorization": sign_in(api, email, "operator-pass-1", ORG)["token"]}


def create_record(api: LocalApi, datatype: str, data: dict[str, Any], state: str = "published") -> None:
    created = api.post(
        "/repository/create", headers=admin(api), body={"datatype": datatype, "state": state, "data": data}
    )
    assert created.status == 201, created.text


def new_product(api: LocalApi, **data: Any) -> str:
    sku = f"SEC-{uuid.uuid4().hex[:10]}"
    create_record(api, "product", {"name": sku, "sku": sku, "slug": sku.lower(), "price": 10} | data)
    return sku


def new_code(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def good_card(api: LocalApi) -> str:
    code = new_code("GOOD")
    create_record(api, "giftcard", {"code": code, "balance": 50, "currency": "USD"})
    return code


def cart_with(api: LocalApi, headers: dict[str, str], sku: str, quantity: int = 1) -> str:
    response = api.post("/storefront/cart/add", headers=headers, body={"sku": sku, "quantity": quantity})
    assert response.status == 200, response.text
    return str(response.json()["cartId"])


def own_address() -> str:
    """A loopback source address no other test uses (all of 127.0.0.0/8 reaches the stack)."""
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


def send_from(
    api: LocalApi, source: str, method: str, path: str, headers: dict[str, str], body: Any = None
) -> HttpResponse:
    target = urlsplit(api.base_url)
    connection = http.client.HTTPConnection(
        target.hostname or "127.0.0.1", target.port, timeout=30, source_address=(source, 0)
    )
    try:
        data = json.dumps(body).encode() if body is not None else None
        sent = headers | ({"content-type": "application/json"} if data is not None else {})
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        return HttpResponse(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
        )
    finally:
        connection.close()


def one_window() -> None:
    """The limit counts per minute: start far enough from a minute's end to stay in one window."""
    into = time.time() % 60
    if into > 45:
        time.sleep(60 - into + 0.5)


def table_of(api: LocalApi) -> Any:
    dynamodb = boto3.resource(
        "dynamodb",
        endpoint_url=api.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    names = [t.name for t in dynamodb.tables.all()]
    assert len(names) == 1, names
    return dynamodb.Table(names[0])


# -- item 6: gift-card codes cannot be enumerated --------------------------------------------------
def test_unknown_gift_card_codes_share_one_limit_across_balance_pricing_and_checkout(api: LocalApi) -> None:
    # Given a customer with a cart, speaking from an address of its own, an inactive and a good card
    shopper, _ = new_customer(api)
    good = good_card(api)
    sku = new_product(api, stock=50)
    carts = [cart_with(api, shopper, sku) for _ in range(3)]
    inactive = new_code("OFF")
    create_record(api, "giftcard", {"code": inactive, "balance": 20, "active": False})
    source = own_address()
    priced = {"productItems": [{"sku": sku, "quantity": 1}]}
    one_window()

    # When it tries ten unknown or inactive codes through all three doors
    answers = [
        send_from(api, source, "GET", f"/storefront/gift-card/balance/{new_code('X')}", SHOP)
        for _ in range(3)
    ]
    answers.append(send_from(api, source, "GET", f"/storefront/gift-card/balance/{inactive}", SHOP))
    answers += [
        send_from(
            api,
            source,
            "POST",
            "/storefront/pricing/calculate-cart",
            shopper,
            priced | {"giftCardCode": code},
        )
        for code in (new_code("X"), new_code("X"), inactive)
    ]
    answers += [
        send_from(
            api, source, "POST", "/storefront/checkout-cart", shopper, {"cartId": cart, "giftCardCode": code}
        )
        for cart, code in zip(carts, (new_code("X"), new_code("X"), inactive), strict=True)
    ]

    # Then those are answered as unknown codes, and the eleventh lookup through any door is 429
    assert [a.status for a in answers] == [404] * 4 + [422] * 6, [a.text for a in answers]
    refused = send_from(
        api,
        source,
        "POST",
        "/storefront/pricing/calculate-cart",
        shopper,
        priced | {"giftCardCode": new_code("X")},
    )
    assert_error(refused, 429, "rate_limited")
    assert int(refused.headers["retry-after"]) >= 1
    # ... even for a good code, so a guess that hits cannot be told from one that misses
    assert_error(
        send_from(api, source, "GET", "/storefront/gift-card/balance/GIFT-50", SHOP),
        429,
        "rate_limited",
    )
    assert_error(
        send_from(
            api,
            source,
            "POST",
            "/storefront/checkout-cart",
            shopper,
            {"cartId": carts[0], "giftCardCode": good},
        ),
        429,
        "rate_limited",
    )
    # And another customer from another address is not affected
    other, _ = new_customer(api)
    allowed = send_from(
        api,
        own_address(),
        "POST",
        "/storefront/pricing/calculate-cart",
        other,
        priced | {"giftCardCode": good},
    )
    assert allowed.status == 200 and allowed.json()["giftCard"] > 0, allowed.text


def test_a_customer_changing_address_keeps_its_own_limit(api: LocalApi) -> None:
    # Given a customer and a good gift card
    shopper, _ = new_customer(api)
    good = good_card(api)
    sku = new_product(api, stock=5)
    priced = {"productItems": [{"sku": sku, "quantity": 1}]}
    one_window()
    # When it tries ten unknown codes, each from another address
    statuses = [
        send_from(
            api,
            own_address(),
            "POST",
            "/storefront/pricing/calculate-cart",
            shopper,
            priced | {"giftCardCode": new_code("X")},
        ).status
        for _ in range(10)
    ]
    # Then the next lookup is refused from any address, even with a good code
    refused = send_from(
        api,
        own_address(),
        "POST",
        "/storefront/pricing/calculate-cart",
        shopper,
        priced | {"giftCardCode": good},
    )
    assert statuses == [422] * 10
    assert_error(refused, 429, "rate_limited")


def test_good_gift_card_codes_do_not_use_up_the_allowance(api: LocalApi) -> None:
    # Given an address of its own, a customer and a good gift card
    shopper, _ = new_customer(api)
    good = good_card(api)
    source = own_address()
    sku = new_product(api, stock=5)
    one_window()
    # When a good code is looked up more than ten times in a minute, by balance and by pricing
    balances = [
        send_from(api, source, "GET", f"/storefront/gift-card/balance/{good}", SHOP).status for _ in range(12)
    ]
    body = {"productItems": [{"sku": sku, "quantity": 1}], "giftCardCode": good}
    prices = [
        send_from(api, source, "POST", "/storefront/pricing/calculate-cart", shopper, body).status
        for _ in range(12)
    ]
    # Then every lookup answers: only unknown or inactive codes count
    assert balances == [200] * 12 and prices == [200] * 12


# -- item 7: products without stock are not stock-tracked ----------------------------------------
def test_a_product_without_stock_takes_any_quantity_and_checks_out(api: LocalApi) -> None:
    # Given a published product without data.stock
    sku = new_product(api)
    shopper, _ = new_customer(api)
    # When a customer carts 500, raises it to 999 and checks out
    cart = cart_with(api, shopper, sku, 500)
    updated = api.post(
        "/storefront/cart/update", headers=shopper, body={"cartId": cart, "sku": sku, "quantity": 999}
    )
    assert updated.status == 200, updated.text
    order = api.post("/storefront/checkout-cart", headers=shopper, body={"cartId": cart})
    # Then the order is placed and the product is still not stock-tracked
    assert order.status == 201, order.text
    assert order.json()["data"]["items"][0]["quantity"] == 999
    product = api.get(f"/storefront/product/{sku}", headers=SHOP).json()
    assert "stock" not in product["data"]


def test_a_tracked_product_still_refuses_more_than_its_stock(api: LocalApi) -> None:
    # Given a product with 2 in stock and a customer who carted both
    sku = new_product(api, stock=2)
    shopper, _ = new_customer(api)
    cart = cart_with(api, shopper, sku, 2)
    # When the customer asks for 3, then checks out the 2
    assert_error(
        api.post(
            "/storefront/cart/update", headers=shopper, body={"cartId": cart, "sku": sku, "quantity": 3}
        ),
        409,
        "conflict",
    )
    assert api.post("/storefront/checkout-cart", headers=shopper, body={"cartId": cart}).status == 201
    # Then the stock is spent
    assert api.get(f"/storefront/product/{sku}", headers=SHOP).json()["data"]["stock"] == 0


# -- item 8: inactive or expired codes do not apply ------------------------------------------------
INACTIVE = [
    pytest.param({"state": "draft"}, id="draft"),
    pytest.param({"state": "disabled"}, id="disabled"),
    pytest.param({"state": "archived"}, id="archived"),
    pytest.param({"active": False}, id="active-false"),
    pytest.param({"expiresAt": PAST}, id="expired"),
]


@pytest.mark.parametrize("switch", INACTIVE)
def test_an_inactive_coupon_answers_as_an_unknown_one(api: LocalApi, switch: dict[str, Any]) -> None:
    # Given an inactive coupon
    code = new_code("CPN")
    state = switch.get("state", "published")
    data = {"code": code, "type": "percent", "value": 50} | {k: v for k, v in switch.items() if k != "state"}
    create_record(api, "coupon", data, state=state)
    shopper, _ = new_customer(api)
    sku = new_product(api, stock=5)
    body = {"productItems": [{"sku": sku, "quantity": 1}]}
    # When it is used to price and to check out a cart
    unknown = api.post(
        "/storefront/pricing/calculate-cart", headers=shopper, body=body | {"couponCode": new_code("NONE")}
    )
    priced = api.post("/storefront/pricing/calculate-cart", headers=shopper, body=body | {"couponCode": code})
    cart = cart_with(api, shopper, sku)
    checkout = api.post(
        "/storefront/checkout-cart", headers=shopper, body={"cartId": cart, "couponCode": code}
    )
    # Then both are refused exactly as an unknown code is, and nothing was ordered
    assert_error(priced, 422, "validation_error")
    assert_error(checkout, 422, "validation_error")
    assert priced.json()["details"] == checkout.json()["details"] == unknown.json()["details"]
    assert api.get("/storefront/orders/get", headers=shopper).json()["data"] == []


@pytest.mark.parametrize("switch", INACTIVE)
def test_an_inactive_gift_card_answers_as_an_unknown_one(api: LocalApi, switch: dict[str, Any]) -> None:
    # Given an inactive gift card, and a customer speaking from an address of its own
    code = new_code("GC")
    state = switch.get("state", "published")
    create_record(
        api,
        "giftcard",
        {"code": code, "balance": 40} | {k: v for k, v in switch.items() if k != "state"},
        state,
    )
    shopper, _ = new_customer(api)
    sku = new_product(api, stock=5)
    source = own_address()
    body = {"productItems": [{"sku": sku, "quantity": 1}]}
    # When its balance is asked for and it is used to price and check out
    balance = send_from(api, source, "GET", f"/storefront/gift-card/balance/{code}", SHOP)
    unknown = send_from(
        api,
        source,
        "POST",
        "/storefront/pricing/calculate-cart",
        shopper,
        body | {"giftCardCode": new_code("X")},
    )
    priced = send_from(
        api, source, "POST", "/storefront/pricing/calculate-cart", shopper, body | {"giftCardCode": code}
    )
    cart = cart_with(api, shopper, sku)
    checkout = send_from(
        api, source, "POST", "/storefront/checkout-cart", shopper, {"cartId": cart, "giftCardCode": code}
    )
    # Then every door answers as for an unknown code
    assert_error(balance, 404, "not_found")
    assert_error(priced, 422, "validation_error")
    assert_error(checkout, 422, "validation_error")
    assert priced.json()["details"] == checkout.json()["details"] == unknown.json()["details"]


def test_an_active_code_with_a_future_expiry_still_applies(api: LocalApi) -> None:
    # Given a coupon and a gift card that expire in the future
    coupon, gift = new_code("CPN"), new_code("GC")
    create_record(
        api, "coupon", {"code": coupon, "type": "fixed", "value": 1, "expiresAt": FUTURE, "active": True}
    )
    create_record(api, "giftcard", {"code": gift, "balance": 2, "expiresAt": FUTURE})
    shopper, _ = new_customer(api)
    sku = new_product(api, stock=5)
    # When a cart is priced with both
    priced = send_from(
        api,
        own_address(),
        "POST",
        "/storefront/pricing/calculate-cart",
        shopper,
        {"productItems": [{"sku": sku, "quantity": 1}], "couponCode": coupon, "giftCardCode": gift},
    )
    # Then both apply
    assert priced.status == 200, priced.text
    assert (priced.json()["discount"], priced.json()["giftCard"]) == (1.0, 2.0)


# -- item 11: operators need rights, and the customer must exist -------------------------------------
@pytest.fixture(scope="module")
def placed(api: LocalApi) -> dict[str, Any]:
    """A customer with an open cart and a placed order."""
    shopper, pk = new_customer(api)
    sku = new_product(api, stock=20)
    ordered = cart_with(api, shopper, sku)
    order = api.post("/storefront/checkout-cart", headers=shopper, body={"cartId": ordered})
    assert order.status == 201, order.text
    return {
        "pk": pk,
        "sku": sku,
        "open": cart_with(api, shopper, sku),
        "number": order.json()["data"]["orderNumber"],
    }


def test_staff_without_read_cannot_read_a_customers_orders_or_carts(
    api: LocalApi, placed: dict[str, Any]
) -> None:
    # Given a staff User of the org holding no permission
    nobody = new_staff(api, [])
    # When it reads an order by number and a cart of the customer
    order = api.get(f"/storefront/order/get?orderNumber={placed['number']}", headers=nobody)
    cart = api.get(f"/storefront/cart/get/{placed['pk']}/{placed['open']}", headers=nobody)
    # Then both are forbidden
    assert_error(order, 403, "forbidden")
    assert_error(cart, 403, "forbidden")


def test_staff_with_read_only_reads_but_cannot_act(api: LocalApi, placed: dict[str, Any]) -> None:
    # Given a staff User holding only read
    reader = new_staff(api, ["read"])
    # When it reads, then changes the cart and checks it out for the customer
    order = api.get(f"/storefront/order/get?orderNumber={placed['number']}", headers=reader)
    cart = api.get(f"/storefront/cart/get/{placed['pk']}/{placed['open']}", headers=reader)
    add = api.post(
        "/storefront/cart/add",
        headers=reader,
        body={"cartId": placed["open"], "customerId": placed["pk"], "sku": placed["sku"], "quantity": 1},
    )
    update = api.post(
        "/storefront/cart/update",
        headers=reader,
        body={"cartId": placed["open"], "customerId": placed["pk"], "sku": placed["sku"], "quantity": 2},
    )
    checkout = api.post(
        "/storefront/checkout-cart",
        headers=reader,
        body={"cartId": placed["open"], "customerId": placed["pk"]},
    )
    # Then reading works and acting is forbidden
    assert order.status == 200 and order.json()["data"]["orderNumber"] == placed["number"]
    assert cart.status == 200 and cart.json()["cartId"] == placed["open"]
    for refused in (add, update, checkout):
        assert_error(refused, 403, "forbidden")


def test_staff_with_update_operates_for_an_existing_customer(api: LocalApi) -> None:
    # Given a staff User holding read and update, and a customer
    operator = new_staff(api, ["read", "update"])
    _, pk = new_customer(api)
    sku = new_product(api, stock=5)
    # When it starts a cart for the customer and checks it out
    cart = api.post(
        "/storefront/cart/add", headers=operator, body={"customerId": pk, "sku": sku, "quantity": 2}
    )
    assert cart.status == 200, cart.text
    order = api.post(
        "/storefront/checkout-cart",
        headers=operator,
        body={"cartId": cart.json()["cartId"], "customerId": pk},
    )
    # Then the order is the customer's
    assert order.status == 201, order.text
    assert order.json()["data"]["customerId"] == pk


def test_operators_act_only_for_existing_enabled_customers_of_the_org(api: LocalApi) -> None:
    # Given the org's admin, a customer of another org, and a disabled customer of this org
    staff = admin(api)
    sku = new_product(api, stock=5)
    _, foreign = new_customer(api, "acme")
    _, disabled = new_customer(api)
    table_of(api).update_item(
        Key={"PK": f"{ORG}:customer", "SK": f"{ORG}:customer:{disabled.removeprefix('customer-')}"},
        UpdateExpression="SET #d.disabled = :yes",
        ExpressionAttributeNames={"#d": "data"},
        ExpressionAttributeValues={":yes": True},
        ConditionExpression="attribute_exists(PK)",
    )
    for customer in (f"customer-{uuid.uuid4().hex}", foreign, disabled):
        # When it starts a cart, checks one out, or reads one for that customer
        add = api.post(
            "/storefront/cart/add", headers=staff, body={"customerId": customer, "sku": sku, "quantity": 1}
        )
        checkout = api.post(
            "/storefront/checkout-cart", headers=staff, body={"cartId": "c1", "customerId": customer}
        )
        read = api.get(f"/storefront/cart/get/{customer}/c1", headers=staff)
        # Then the customer is not found
        for response in (add, checkout, read):
            assert_error(response, 404, "not_found")


# -- item 15: no storefront input causes a 500 ------------------------------------------------------
@pytest.mark.parametrize("total", ["abc", -1, 0.001, 1e300, "1e999999999", True, [1]])
def test_shipping_options_refuse_a_total_that_is_not_an_amount(api: LocalApi, total: Any) -> None:
    # When shipping options are asked for an order total that is no amount of money
    response = api.post(
        "/shipping/options", headers={"orgid": "acme"}, body={"items": [], "orderTotal": total}
    )
    # Then it is a 422 naming the field
    assert_error(response, 422, "validation_error")
    assert response.json()["details"][0]["field"] == "orderTotal"


@pytest.mark.parametrize("raw", [b'{"orderTotal": NaN}', b'{"orderTotal": Infinity}', b'{"items": [1e400]}'])
def test_shipping_options_refuse_numbers_json_cannot_carry(api: LocalApi, raw: bytes) -> None:
    response = api.post(
        "/shipping/options", headers={"orgid": "acme", "content-type": "application/json"}, raw=raw
    )
    assert_error(response, 422, "validation_error")


def test_shipping_options_still_price_a_good_total(api: LocalApi) -> None:
    # Given acme's settings (flat 4.99, free from 50)
    paid = api.post("/shipping/options", headers={"orgid": "acme"}, body={"items": [], "orderTotal": "20.00"})
    free = api.post("/shipping/options", headers={"orgid": "acme"}, body={"items": [], "orderTotal": 50})
    assert paid.status == 200 and paid.json()["options"][0]["amount"] == 4.99
    assert free.status == 200 and free.json()["options"][0]["amount"] == 0


def test_product_listing_bounds_the_categories(api: LocalApi) -> None:
    # When the listing is filtered by 150 categories, then by 20
    many = api.get(
        "/storefront/products?categories=" + ",".join(f"c{i}" for i in range(150)), headers={"orgid": "acme"}
    )
    twenty = api.get(
        "/storefront/products?categories=" + ",".join(f"c{i}" for i in range(20)), headers={"orgid": "acme"}
    )
    long_brand = api.get("/storefront/products?brand=" + "b" * 5000, headers={"orgid": "acme"})
    # Then 150 is a 422 (never a RecursionError), 20 is a normal (empty) listing
    assert_error(many, 422, "validation_error")
    assert many.json()["details"][0]["field"] == "categories"
    assert twenty.status == 200 and twenty.json()["data"] == []
    assert_error(long_brand, 422, "validation_error")


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"line1": "1 Main St"}
    for _ in range(levels):
        value = {"nested": value}
    return value


@pytest.mark.parametrize(
    "address",
    [
        pytest.param(deep(40), id="40-levels"),
        pytest.param({"line1": "x" * 450 * 1024}, id="450-KB"),
        pytest.param({"zip": int("1" * 41)}, id="41-digits"),
    ],
)
def test_a_shipping_address_dynamodb_would_refuse_is_422_and_orders_nothing(
    api: LocalApi, address: dict[str, Any]
) -> None:
    # Given a customer with a cart
    shopper, customer_pk = new_customer(api)
    sku = new_product(api, stock=5)
    cart = cart_with(api, shopper, sku)
    # When it prices and checks out with an address DynamoDB could not store
    priced = api.post(
        "/storefront/pricing/calculate-cart",
        headers=shopper,
        body={"cartId": cart, "shippingAddress": address},
    )
    checkout = api.post(
        "/storefront/checkout-cart", headers=shopper, body={"cartId": cart, "shippingAddress": address}
    )
    # Then both are 422, and the cart is still open with nothing ordered
    assert_error(priced, 422, "validation_error")
    assert_error(checkout, 422, "validation_error")
    still = api.get(f"/storefront/cart/get/{customer_pk}/{cart}", headers=shopper)
    assert still.status == 200 and still.json()["status"] == "open"
    assert api.get(f"/storefront/product/{sku}", headers=SHOP).json()["data"]["stock"] == 5


def test_a_nan_shipping_address_is_422(api: LocalApi) -> None:
    shopper, _ = new_customer(api)
    sku = new_product(api, stock=5)
    cart = cart_with(api, shopper, sku)
    raw = json.dumps({"cartId": cart}).replace("}", ', "shippingAddress": {"zip": NaN}}').encode()
    response = api.post(
        "/storefront/checkout-cart", headers=shopper | {"content-type": "application/json"}, raw=raw
    )
    assert_error(response, 422, "validation_error")


@pytest.mark.parametrize(
    "path",
    [
        "/storefront/order/get?orderNumber=" + "9" * 2000,
        "/storefront/cart/get/{pk}/" + "c" * 2000,
        "/storefront/cart/get/" + "customer-" + "x" * 2000 + "/c1",
    ],
)
def test_oversized_identifiers_in_storefront_paths_are_422(api: LocalApi, path: str) -> None:
    # Given the org's admin, and a customer (whose own cart path is used)
    staff = admin(api)
    _, pk = new_customer(api)
    # When it reads with an identifier far beyond any real one
    response = api.get(path.replace("{pk}", quote(pk)), headers=staff)
    # Then it is a 422, never a key DynamoDB refuses
    assert_error(response, 422, "validation_error")


def test_gift_card_balance_refuses_an_oversized_code(api: LocalApi) -> None:
    response = send_from(api, own_address(), "GET", "/storefront/gift-card/balance/" + "G" * 500, SHOP)
    assert_error(response, 422, "validation_error")
