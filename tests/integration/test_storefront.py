"""Storefront through the in-process gateway: browse, carts, pricing, checkout, orders (contract §7)."""

from __future__ import annotations

from typing import Any

import pytest

from appengine_core.identity.directory import DirectoryService, NewCustomer, org_key
from appengine_core.infra.envelope import Record
from appengine_core.infra.store import TenantStore, Update
from appengine_core.records.writer import RecordWriter
from tests.integration.conftest import bearer_for


@pytest.fixture
def shop(gateway: Any, tenants: dict[str, Record]) -> dict[str, Any]:
    writer = RecordWriter()
    TenantStore().update(
        Update(
            org_key("acme"),
            "SET settings = :s",
            values={
                ":s": {"currency": "USD", "taxPercent": "10", "shipping": {"flatRate": 5, "freeOver": 100}}
            },
        )
    )
    mug = writer.create(
        "acme",
        "product",
        {
            "name": "Mug",
            "sku": "MUG-1",
            "slug": "mug",
            "price": 12.5,
            "stock": 3,
            "categories": ["kitchen"],
            "brand": "Acme",
        },
        state="published",
    )
    writer.create(
        "acme",
        "product",
        {
            "name": "Lamp",
            "sku": "LAMP-1",
            "slug": "lamp",
            "price": 40,
            "stock": 1,
            "categories": ["home"],
            "brand": "Lumo",
        },
        state="published",
    )
    writer.create(
        "acme",
        "product",
        {"name": "Secret", "sku": "SECRET-1", "slug": "secret", "price": 1, "stock": 9},
        state="draft",
    )
    writer.create(
        "globex",
        "product",
        {"name": "Globe", "sku": "GLOBE-1", "slug": "globe", "price": 30, "stock": 5},
        state="published",
    )
    writer.create("acme", "coupon", {"code": "TEN", "type": "percent", "value": 10, "usageLimit": 1})
    writer.create("acme", "giftcard", {"code": "GIFT-25", "balance": 25, "currency": "USD"})
    other = DirectoryService().create_customer(
        "acme", NewCustomer(email="other@acme.test", password="other-buyer-pass")
    )
    return {
        "mug": mug,
        "buyer": bearer_for(tenants["acme_customer"]),
        "other": bearer_for(other),
        "buyer_pk": tenants["acme_customer"].pk,
        "staff": bearer_for(tenants["acme_admin"]),
    }


def add(
    gateway: Any, headers: dict[str, str], sku: str, quantity: int, cart: str | None = None, **extra: Any
) -> Any:
    return gateway.post(
        "/storefront/cart/add",
        headers=headers,
        json={"sku": sku, "quantity": quantity, **({"cartId": cart} if cart else {}), **extra},
    )


def test_public_browse_shows_only_this_orgs_published_products(gateway: Any, shop: dict[str, Any]) -> None:
    listing = gateway.get("/storefront/products?ps=10&sort=-price", headers={"orgid": "acme"}).json
    assert [p["data"]["sku"] for p in listing["data"]] == ["LAMP-1", "MUG-1"] and listing["total"] == 2
    assert gateway.get("/storefront/products?brand=Lumo", headers={"orgid": "acme"}).json["total"] == 1
    assert (
        gateway.get("/storefront/products?categories=kitchen", headers={"orgid": "acme"}).json["total"] == 1
    )
    assert gateway.get("/storefront/product/mug", headers={"orgid": "acme"}).json["data"]["sku"] == "MUG-1"
    assert gateway.get("/storefront/product/LAMP-1", headers={"orgid": "acme"}).status_code == 200
    assert gateway.get("/storefront/product/secret", headers={"orgid": "acme"}).status_code == 404
    assert gateway.get("/storefront/product/globe", headers={"orgid": "acme"}).status_code == 404
    assert gateway.get("/storefront/categories", headers={"orgid": "acme"}).json["data"] == [
        "home",
        "kitchen",
    ]
    assert gateway.get("/storefront/brands", headers={"orgid": "acme"}).json["data"] == ["Acme", "Lumo"]
    assert gateway.get("/storefront/products").status_code == 400


def test_carts_belong_to_their_customer_and_staff_may_operate(gateway: Any, shop: dict[str, Any]) -> None:
    cart = add(gateway, shop["buyer"], "MUG-1", 2).json
    assert cart["items"] == [
        {"sku": "MUG-1", "name": "Mug", "quantity": 2, "unitPrice": 12.5, "lineTotal": 25.0}
    ]
    assert cart["subtotal"] == 25.0 and cart["customerId"] == shop["buyer_pk"]
    path = f"/storefront/cart/get/{shop['buyer_pk']}/{cart['cartId']}"
    assert gateway.get(path, headers=shop["buyer"]).status_code == 200
    assert gateway.get(path, headers=shop["other"]).status_code == 404, "another customer must not see it"
    staff = gateway.get(path, headers=shop["staff"])
    assert staff.status_code == 200 and staff.json["cartId"] == cart["cartId"]
    updated = gateway.post(
        "/storefront/cart/update",
        headers=shop["staff"],
        json={"cartId": cart["cartId"], "customerId": shop["buyer_pk"], "sku": "MUG-1", "quantity": 1},
    ).json
    assert updated["items"][0]["quantity"] == 1
    assert add(gateway, shop["buyer"], "MUG-1", 5, cart["cartId"]).status_code == 409  # beyond stock
    removed = gateway.post(
        "/storefront/cart/remove", headers=shop["buyer"], json={"cartId": cart["cartId"], "sku": "MUG-1"}
    ).json
    assert removed["items"] == [] and removed["subtotal"] == 0
    assert add(gateway, shop["buyer"], "SECRET-1", 1).status_code == 404


def test_pricing_is_decided_on_the_server(gateway: Any, shop: dict[str, Any]) -> None:
    body = {"productItems": [{"sku": "MUG-1", "quantity": 2}], "couponCode": "TEN", "giftCardCode": "GIFT-25"}
    priced = gateway.post("/storefront/pricing/calculate-cart", headers=shop["buyer"], json=body).json
    # 25.00 - 2.50 coupon = 22.50; tax 10 % = 2.25; shipping 5 (under 100); a 25 gift card leaves 4.75
    assert (priced["subtotal"], priced["discount"], priced["tax"], priced["shipping"]) == (
        25.0,
        2.5,
        2.25,
        5.0,
    )
    assert (priced["giftCard"], priced["total"]) == (25.0, 4.75)
    assert priced["minorUnits"]["total"] == 475
    bad = gateway.post(
        "/storefront/pricing/calculate-cart",
        headers=shop["buyer"],
        json={"productItems": [{"sku": "MUG-1", "quantity": 1}], "couponCode": "NOPE"},
    )
    assert bad.status_code == 422


def test_checkout_places_one_order_and_repeats_return_it(
    gateway: Any, shop: dict[str, Any], bus_messages: Any, functions: Any
) -> None:
    from appengine_local.streams import StreamMapping
    from appengine_local.template import load_template

    cart = add(gateway, shop["buyer"], "MUG-1", 2).json
    first = gateway.post(
        "/storefront/checkout-cart",
        headers=shop["buyer"] | {"Idempotency-Key": "k-1"},
        json={"cartId": cart["cartId"], "couponCode": "TEN"},
    )
    assert first.status_code == 201
    order = first.json
    assert order["datatype"] == "order" and order["data"]["orderNumber"] and order["data"]["total"] == 29.75
    replay = gateway.post(
        "/storefront/checkout-cart",
        headers=shop["buyer"] | {"Idempotency-Key": "k-1"},
        json={"cartId": cart["cartId"]},
    )
    assert replay.status_code == 201 and replay.json == order
    again = gateway.post("/storefront/checkout-cart", headers=shop["buyer"], json={"cartId": cart["cartId"]})
    assert again.status_code == 200 and again.json["sk"] == order["sk"]
    misuse = gateway.post(
        "/storefront/checkout-cart",
        headers=shop["buyer"] | {"Idempotency-Key": "k-1"},
        json={"cartId": "other"},
    )
    assert misuse.status_code == 422
    # Stock went down once; the coupon (limit 1) is used up; the cart is closed.
    assert gateway.get("/storefront/product/mug", headers={"orgid": "acme"}).json["data"]["stock"] == 1
    second_cart = add(gateway, shop["buyer"], "MUG-1", 1).json
    assert (
        gateway.post(
            "/storefront/checkout-cart",
            headers=shop["buyer"],
            json={"cartId": second_cart["cartId"], "couponCode": "TEN"},
        ).status_code
        == 422
    )
    assert add(gateway, shop["buyer"], "MUG-1", 1, cart["cartId"]).status_code == 409
    # Orders: the customer's own, by number; another customer gets 404; staff may read it.
    number = order["data"]["orderNumber"]
    assert (
        gateway.get(f"/storefront/order/get?orderNumber={number}", headers=shop["buyer"]).json["sk"]
        == order["sk"]
    )
    assert (
        gateway.get(f"/storefront/order/get?orderNumber={number}", headers=shop["other"]).status_code == 404
    )
    assert (
        gateway.get(f"/storefront/order/get?orderNumber={number}", headers=shop["staff"]).status_code == 200
    )
    assert [o["sk"] for o in gateway.get("/storefront/orders/get", headers=shop["buyer"]).json["data"]] == [
        order["sk"]
    ]
    assert gateway.get("/storefront/orders/get", headers=shop["other"]).json["data"] == []
    StreamMapping(load_template(), functions, "PublisherFunction").poll_once()
    placed = [e for e in bus_messages() if e["detail-type"] == "order.placed"]
    assert len(placed) == 1 and placed[0]["detail"]["orderNumber"] == number


def test_a_failed_checkout_changes_nothing(gateway: Any, shop: dict[str, Any]) -> None:
    cart = add(gateway, shop["buyer"], "MUG-1", 2).json
    add(gateway, shop["buyer"], "LAMP-1", 1, cart["cartId"])
    # Injected failure: the lamp's last unit goes to someone else between cart and checkout.
    lamp = TenantStore().query("acme", "product", limit=10, sort_prefix=None).items
    lamp_key = next(i["_sk"] for i in lamp if i["data"]["sku"] == "LAMP-1")
    from appengine_core.infra.tenancy import TenantKey

    TenantStore().update(
        Update(TenantKey.parse(lamp_key), "SET #d.stock = :zero", values={":zero": 0}, names={"#d": "data"})
    )
    response = gateway.post(
        "/storefront/checkout-cart",
        headers=shop["buyer"] | {"Idempotency-Key": "k-2"},
        json={"cartId": cart["cartId"], "couponCode": "TEN", "giftCardCode": "GIFT-25"},
    )
    assert response.status_code == 409 and "LAMP-1" in response.json["message"]
    # Nothing moved: mug stock, the cart, the coupon, the gift card, orders, the idempotency key.
    assert gateway.get("/storefront/product/mug", headers={"orgid": "acme"}).json["data"]["stock"] == 3
    assert (
        gateway.get(f"/storefront/cart/get/{shop['buyer_pk']}/{cart['cartId']}", headers=shop["buyer"]).json[
            "status"
        ]
        == "open"
    )
    assert (
        gateway.get("/storefront/gift-card/balance/GIFT-25", headers={"orgid": "acme"}).json["balance"] == 25
    )
    assert gateway.get("/storefront/orders/get", headers=shop["buyer"]).json["data"] == []
    priced = gateway.post(
        "/storefront/pricing/calculate-cart",
        headers=shop["buyer"],
        json={"productItems": [{"sku": "MUG-1", "quantity": 1}], "couponCode": "TEN"},
    )
    assert priced.status_code == 200, "the coupon was not consumed"


def test_gift_card_balance_is_rate_limited_per_source(
    gateway: Any, shop: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    minute = (int(time.time()) // 60 + 1) * 60
    monkeypatch.setattr(time, "time", lambda: minute + 10.0)  # one window for the whole test
    statuses = [
        gateway.get("/storefront/gift-card/balance/NOPE", headers={"orgid": "acme"}).status_code
        for _ in range(12)
    ]
    assert statuses[:10] == [404] * 10 and statuses[10:] == [429, 429]
    assert (
        gateway.get("/storefront/gift-card/balance/GIFT-25", headers={"orgid": "globex"}).status_code == 404
    )


def test_payment_gateways_and_shipping_options(gateway: Any, shop: dict[str, Any]) -> None:
    assert (
        gateway.get("/storefront/payment-gateways", headers={"orgid": "acme"}).json["data"][0]["id"]
        == "manual"
    )
    options = gateway.post(
        "/shipping/options", headers={"orgid": "acme"}, json={"items": [], "toAddress": {}, "orderTotal": 150}
    ).json
    assert options["served"] is True and options["options"][0]["amount"] == 0 and options["currency"] == "USD"
    paid = gateway.post(
        "/shipping/options", headers={"orgid": "acme"}, json={"items": [], "orderTotal": 20}
    ).json
    assert paid["options"][0]["amount"] == 5


def test_the_storefront_sample_events_run(functions: Any, shop: dict[str, Any]) -> None:
    from tests.conftest import load_event
    from tests.integration.conftest import body_of

    products = functions.invoke("StorefrontFunction", load_event("storefront-products"))
    assert products["statusCode"] == 200 and body_of(products)["total"] == 2
    options = functions.invoke("StorefrontFunction", load_event("shipping-options"))
    assert body_of(options)["options"][0]["amount"] == 5


def test_orders_page_newest_first(gateway: Any, shop: dict[str, Any]) -> None:
    placed = []
    for _ in range(3):
        cart = add(gateway, shop["buyer"], "MUG-1", 1).json
        placed.append(
            gateway.post(
                "/storefront/checkout-cart", headers=shop["buyer"], json={"cartId": cart["cartId"]}
            ).json["sk"]
        )
    first = gateway.get("/storefront/orders/get?pageSize=2", headers=shop["buyer"]).json
    assert [o["sk"] for o in first["data"]] == placed[::-1][:2] and first["hasNext"] is True
    second = gateway.get(
        f"/storefront/orders/get?pageSize=2&next={first['next']}", headers=shop["buyer"]
    ).json
    assert [o["sk"] for o in second["data"]] == [placed[0]] and second["hasNext"] is False
    staff = gateway.get("/storefront/orders/get?ps=10", headers=shop["staff"]).json
    assert staff["total"] == 3 and {o["sk"] for o in staff["data"]} == set(placed)
    assert gateway.get("/storefront/orders/get", headers=shop["other"]).json["data"] == []


# -- the org's pricing settings: cached per container, proved current by the checkout's transaction ----
def set_pricing(tax: str, flat_rate: float = 5) -> None:
    """An operator's change of the org's tax rate and flat shipping, straight in the table (no route
    writes settings, so nothing bumps a version: the checkout's proof compares the values)."""
    TenantStore().update(
        Update(
            org_key("acme"),
            "SET #s.taxPercent = :tax, #s.shipping.flatRate = :flat",
            values={":tax": tax, ":flat": flat_rate},
            names={"#s": "settings"},
        )
    )


def add_pen() -> None:
    """A product that is not stock-tracked, priced 10: tax in cents is ten times the rate."""
    RecordWriter().create(
        "acme", "product", {"name": "Pen", "sku": "PEN-1", "slug": "pen", "price": 10}, state="published"
    )


def check_out(
    gateway: Any, headers: dict[str, str], cart_id: str, key: str | None = None, **extra: Any
) -> Any:
    return gateway.post(
        "/storefront/checkout-cart",
        headers=headers | ({"Idempotency-Key": key} if key else {}),
        json={"cartId": cart_id, **extra},
    )


def money(order: dict[str, Any]) -> tuple[float, float, float]:
    return order["data"]["tax"], order["data"]["shipping"], order["data"]["total"]


def test_a_settings_change_is_priced_by_the_very_next_checkout(gateway: Any, shop: dict[str, Any]) -> None:
    # Given two carts of one pen, and a first checkout that leaves the settings in the container's cache
    add_pen()
    first, second = (add(gateway, shop["buyer"], "PEN-1", 1).json["cartId"] for _ in range(2))
    before = check_out(gateway, shop["buyer"], first)
    assert before.status_code == 201 and money(before.json) == (1.0, 5.0, 16.0)

    # When the org's tax rate and flat shipping change, and no request reads the settings before the
    # next checkout in the same container
    set_pricing(tax="20", flat_rate=7)
    after = check_out(gateway, shop["buyer"], second)

    # Then that checkout is priced with the new settings, and so is the order as stored
    assert after.status_code == 201 and money(after.json) == (2.0, 7.0, 19.0)
    number = after.json["data"]["orderNumber"]
    stored = gateway.get(f"/storefront/order/get?orderNumber={number}", headers=shop["buyer"]).json
    assert money(stored) == (2.0, 7.0, 19.0) and stored["data"]["minorUnits"]["total"] == 1900


def test_a_settings_change_is_shown_by_the_very_next_cart_request(gateway: Any, shop: dict[str, Any]) -> None:
    # Given a cart shown in USD (its add read the settings, and left them in the container's cache)
    cart = add(gateway, shop["buyer"], "MUG-1", 1).json
    assert cart["currency"] == "USD"

    # When the org's currency changes between two adds to that cart
    TenantStore().update(
        Update(org_key("acme"), "SET #s.currency = :eur", values={":eur": "EUR"}, names={"#s": "settings"})
    )
    again = add(gateway, shop["buyer"], "MUG-1", 1, cart["cartId"])

    # Then the next add (which reads the cart and the settings in one call) shows the new currency
    assert again.status_code == 200 and again.json["currency"] == "EUR" and again.json["subtotal"] == 25.0
    path = f"/storefront/cart/get/{shop['buyer_pk']}/{cart['cartId']}"
    assert gateway.get(path, headers=shop["buyer"]).json["currency"] == "EUR"


def test_a_settings_change_racing_a_checkout_is_priced_again_never_stored_stale(
    gateway: Any, shop: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a cart, and the settings changing after the checkout priced it and drew its order number,
    # before its transaction
    from appengine_core.commerce.data import StorefrontData
    from appengine_core.infra.tenancy import TenantKey

    add_pen()
    cart = add(gateway, shop["buyer"], "PEN-1", 1).json["cartId"]
    draw = StorefrontData.next_order_number

    def drawn_then_changed(self: StorefrontData, orgid: str) -> int:
        number = draw(self, orgid)
        set_pricing(tax="20", flat_rate=7)
        return number

    monkeypatch.setattr(StorefrontData, "next_order_number", drawn_then_changed)

    # When the customer checks out with an Idempotency-Key
    placed = check_out(gateway, shop["buyer"], cart, "race-1")

    # Then the order is priced with the settings stored when it was placed, with the one number drawn
    assert placed.status_code == 201 and money(placed.json) == (2.0, 7.0, 19.0)
    assert TenantStore().get(TenantKey("acme", "#sequence", "order")) == {"next": 1}
    # and a retry with the same key replays that answer exactly
    monkeypatch.undo()
    replayed = check_out(gateway, shop["buyer"], cart, "race-1")
    assert replayed.status_code == 201 and replayed.json == placed.json


def test_settings_changing_at_every_attempt_answer_409_and_write_nothing(
    gateway: Any, shop: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a cart of two mugs (stock-tracked), and the settings changing before every attempt of the
    # order's transaction
    from appengine_core.commerce.data import StorefrontData

    cart = add(gateway, shop["buyer"], "MUG-1", 2).json["cartId"]
    rates = iter(range(11, 99))
    place = StorefrontData.place_order

    def changed_then_placed(self: StorefrontData, placement: Any) -> None:
        set_pricing(tax=str(next(rates)))
        place(self, placement)

    monkeypatch.setattr(StorefrontData, "place_order", changed_then_placed)

    # When the customer checks out with a coupon, a gift card and an Idempotency-Key
    extra = {"couponCode": "TEN", "giftCardCode": "GIFT-25"}
    refused = check_out(gateway, shop["buyer"], cart, "race-2", **extra)

    # Then, after a bounded number of attempts, 409, and nothing was written: stock, cart, coupon, gift
    # card, orders, the idempotency record
    assert refused.status_code == 409 and "settings changed" in refused.json["message"]
    assert next(rates) == 14, "three attempts, each priced with the settings read anew"
    monkeypatch.undo()
    assert gateway.get("/storefront/product/mug", headers={"orgid": "acme"}).json["data"]["stock"] == 3
    path = f"/storefront/cart/get/{shop['buyer_pk']}/{cart}"
    assert gateway.get(path, headers=shop["buyer"]).json["status"] == "open"
    assert (
        gateway.get("/storefront/gift-card/balance/GIFT-25", headers={"orgid": "acme"}).json["balance"] == 25
    )
    assert gateway.get("/storefront/orders/get", headers=shop["buyer"]).json["data"] == []
    # and the same key, once the settings hold still, places the order with the coupon and the tax last
    # set (13 % of 22.50, rounded half up)
    placed = check_out(gateway, shop["buyer"], cart, "race-2", **extra)
    assert placed.status_code == 201 and placed.json["data"]["discount"] == 2.5
    assert placed.json["data"]["tax"] == 2.93


def test_checkouts_racing_settings_changes_never_store_a_replaced_rate(
    gateway: Any, shop: dict[str, Any], tenants: dict[str, Record], one_call_at_a_time: None
) -> None:
    # Given eight carts of one pen, checked out by four threads through one container's services (one
    # settings cache), while another thread changes the tax rate five times
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from appengine_core.commerce.checkout import CheckoutService
    from appengine_core.commerce.data import StorefrontData
    from appengine_core.commerce.models import CheckoutRequest
    from appengine_core.identity.principal import Caller, Principal
    from appengine_core.infra.errors import Conflict

    add_pen()
    carts = [add(gateway, shop["buyer"], "PEN-1", 1).json["cartId"] for _ in range(8)]
    service = CheckoutService(StorefrontData())
    buyer = tenants["acme_customer"]
    caller = Caller(principal=Principal(kind="customer", principal_id=buyer.sk, orgid="acme"), orgid="acme")
    service.checkout(caller, CheckoutRequest(cartId=carts.pop()), None)  # the cache holds 10 %
    changes: list[tuple[float, float, int]] = [(float("-inf"), float("-inf"), 10)]  # (from, to, rate)
    started = threading.Event()

    def change_rates() -> None:
        started.wait()
        for rate in range(21, 26):
            time.sleep(0.01)
            before = time.monotonic()
            set_pricing(tax=str(rate))
            changes.append((before, time.monotonic(), rate))

    def check_out_in_thread(cart_id: str) -> tuple[float, float, Record | None]:
        started.set()
        begun = time.monotonic()
        try:
            order = service.checkout(caller, CheckoutRequest(cartId=cart_id), None).order
        except Conflict:
            order = None
        return begun, time.monotonic(), order

    # When they race
    with ThreadPoolExecutor(max_workers=5) as pool:
        changer = pool.submit(change_rates)
        outcomes = list(pool.map(check_out_in_thread, carts))
        changer.result()

    # Then every order placed carries a rate that was still the stored one at some moment of its own
    # request (a rate replaced before the request began is never stored), and at least one was placed
    placed = [(begun, ended, order) for begun, ended, order in outcomes if order is not None]
    assert placed
    for begun, ended, order in placed:
        rate = order.data["minorUnits"]["tax"] / 10
        index = next(i for i, change in enumerate(changes) if change[2] == rate)
        set_from = changes[index][0]
        replaced_by = changes[index + 1][1] if index + 1 < len(changes) else float("inf")
        assert set_from <= ended and replaced_by >= begun, (rate, begun, ended, changes)
