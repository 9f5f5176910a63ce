"""AppEngine's own clients through the local gateway (issue 16): the requests they send, with their exact
headers (an app token in ``Authorization``, the person's token raw or ``Bearer`` in
``x-client-authorization``, ``shared-org-id``, ``Cache-Control``/``Pragma``), read as they read the answers.

A customer journey (browse, sign in, profile, cart, price, checkout without an idempotency key, orders)
and a staff journey (app token, sign-in, whoami, repository create with PUT and ``isNew``, get by ``sk``,
find by page number until ``hasNext`` is false, find-by-attribute, update, delete, API key create and
revoke), each with the person's token alone and beside an app token.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pyotp
import pytest

from tests.contract.conftest import HttpResponse, LocalApi, sign_in
from tests.contract.test_platform_http import assert_error

ORG = "acme"
# What both clients add to every request.
CLIENT_HEADERS = {"orgid": ORG, "shared-org-id": ORG, "Cache-Control": "no-cache", "Pragma": "no-cache"}


class Client:
    """An AppEngine client configured with a base URL, an org and (optionally) app credentials."""

    def __init__(self, api: LocalApi, app: dict[str, str] | None, bearer_person: bool) -> None:
        self.api = api
        self.app = app
        self.bearer_person = bearer_person
        self.app_token: str | None = None
        self.person: str | None = None

    def get_app_token(self) -> None:
        if self.app is None:
            return
        response = self.api.post("/profile/app/key", headers=dict(CLIENT_HEADERS), body=self.app)
        assert response.status == 200, response.text
        body = response.json()
        self.app_token = body.get("token") or body["data"]["token"]
        assert body["expiresIn"] == body["data"]["expiresIn"] == 900

    def headers(self) -> dict[str, str]:
        headers = dict(CLIENT_HEADERS)
        if self.app_token and self.person:
            headers["authorization"] = f"Bearer {self.app_token}"
            headers["x-client-authorization"] = f"Bearer {self.person}" if self.bearer_person else self.person
        elif self.person:
            headers["authorization"] = f"Bearer {self.person}"
        elif self.app_token:
            headers["authorization"] = f"Bearer {self.app_token}"
        return headers

    def call(self, method: str, path: str, body: Any = None) -> HttpResponse:
        return self.api.request(method, path, headers=self.headers(), body=body)

    def sign_in(self, path: str, email: str, password: str) -> dict[str, Any]:
        response = self.call("POST", path, {"email": email, "password": password})
        assert response.status == 200, response.text
        body = dict(response.json())
        # The clients read the token and the principal at the top level or under data.
        self.person = body.get("token") or body["data"]["token"]
        assert body["data"]["refresh_token"] == body["data"]["refreshToken"] == body["refreshToken"]
        return body


@pytest.fixture(scope="module")
def admin(api: LocalApi) -> dict[str, str]:
    return {"orgid": ORG, "authorization": sign_in(api, "admin@acme.test", "acme-admin-pass", ORG)["token"]}


def app_credentials(api: LocalApi, admin: dict[str, str], scopes: list[str]) -> dict[str, Any]:
    created = api.post(
        "/api-key/create", headers=admin, body={"name": f"client-{uuid.uuid4().hex[:6]}", "scopes": scopes}
    )
    assert created.status == 201, created.text
    key = created.json()
    return {"appId": key["id"], "key": key["prefix"], "secret": key["key"]}


def assert_list(body: dict[str, Any]) -> None:
    assert {"data", "page", "pageSize", "hasNext", "next"} <= set(body), body
    assert isinstance(body["data"], list)


MODES = ["person-only", "app+raw-person", "app+bearer-person"]


def client_for(api: LocalApi, admin: dict[str, str], mode: str, scopes: list[str]) -> Client:
    app = app_credentials(api, admin, scopes) if mode != "person-only" else None
    client = Client(api, app, bearer_person=mode == "app+bearer-person")
    client.get_app_token()
    return client


@pytest.mark.parametrize("mode", MODES)
def test_the_customer_journey(api: LocalApi, admin: dict[str, str], mode: str) -> None:
    # Given a product of acme, a new customer, and a client (with app credentials of a read key)
    sku = f"CLIENT-{time.time_ns()}"
    made = api.post(
        "/repository/create",
        headers=admin,
        body={
            "datatype": "product",
            "state": "published",
            "data": {"name": sku, "sku": sku, "slug": sku.lower(), "price": 12.5, "stock": 5},
        },
    )
    assert made.status == 201, made.text
    email, password = f"client-{uuid.uuid4().hex[:10]}@acme.test", "client-buyer-pass"
    client = client_for(api, admin, mode, ["read"])

    # Browse
    products = client.call("GET", "/storefront/products?p=1&ps=5")
    assert products.status == 200, products.text
    assert_list(products.json())
    shown = client.call("GET", f"/storefront/product/{sku}")
    assert shown.status == 200 and shown.json()["data"]["sku"] == sku, shown.text

    # Sign up, then sign in
    signed_up = client.call("POST", "/profile/customer/signup", {"email": email, "password": password})
    assert signed_up.status == 201, signed_up.text
    customer = client.sign_in("/profile/customer/signin", email, password)["customer"]
    assert customer["data"]["email"] == email

    # Profile
    profile = client.call("GET", "/profile/customer/profile")
    assert profile.status == 200 and profile.json()["data"]["email"] == email, profile.text
    changed = client.call("POST", "/profile/customer/update", {"firstName": "Ada"})
    assert changed.status == 200 and changed.json()["data"]["firstName"] == "Ada", changed.text
    me = client.call("GET", "/profile/whoami")
    assert me.status == 200 and me.json()["kind"] == "customer", me.text

    # Cart, price, checkout without an idempotency key
    cart = client.call("POST", "/storefront/cart/add", {"sku": sku, "quantity": 2})
    assert cart.status == 200, cart.text
    cart_id = cart.json()["cartId"]
    priced = client.call("POST", "/storefront/pricing/calculate-cart", {"cartId": cart_id})
    assert priced.status == 200, priced.text
    order = client.call("POST", "/storefront/checkout-cart", {"cartId": cart_id})
    assert order.status == 201, order.text
    number = order.json()["data"]["orderNumber"]

    # Orders
    orders = client.call("GET", "/storefront/orders/get")
    assert orders.status == 200, orders.text
    assert_list(orders.json())
    assert number in [o["data"]["orderNumber"] for o in orders.json()["data"]]
    one = client.call("GET", f"/storefront/order/get?orderNumber={number}")
    assert one.status == 200 and one.json()["data"]["orderNumber"] == number, one.text

    # And a customer's token never reaches staff routes, app token or not
    assert_error(client.call("POST", "/repository/find/product", {"query": {}}), 403, "forbidden")


@pytest.mark.parametrize("mode", MODES)
def test_the_staff_journey(api: LocalApi, admin: dict[str, str], mode: str) -> None:
    # Given a client with app credentials of a read key: the staff person's rights decide, not its scope
    client = client_for(api, admin, mode, ["read"])
    datatype = f"clientnote{uuid.uuid4().hex[:6]}"

    # Staff sign-in and whoami
    user = client.sign_in("/profile/signin", "admin@acme.test", "acme-admin-pass")["user"]
    assert "RootAdmin" in user["data"]["roles"]
    me = client.call("GET", "/profile/whoami")
    assert me.status == 200 and me.json()["kind"] == "user" and me.json()["orgid"] == ORG, me.text

    # Create with PUT and isNew, get by sk
    created = []
    for i in range(5):
        response = client.call(
            "PUT",
            "/repository/create",
            {"datatype": datatype, "data": {"i": i, "tag": f"t{i}"}, "isNew": True},
        )
        assert response.status == 201, response.text
        created.append(response.json())
    got = client.call("GET", f"/repository/get/{datatype}/{created[0]['sk']}")
    assert got.status == 200 and got.json()["pk"] == created[0]["pk"], got.text

    # Find with page numbers until hasNext is false
    seen, page = [], 1
    while True:
        found = client.call(
            "POST", f"/repository/find/{datatype}", {"query": {}, "options": {"page": page, "pageSize": 2}}
        )
        assert found.status == 200, found.text
        body = found.json()
        assert_list(body)
        seen += [r["data"]["i"] for r in body["data"]]
        if not body["hasNext"]:
            break
        page += 1
    assert sorted(seen) == [0, 1, 2, 3, 4]

    # Find by attribute, update, delete
    by_attribute = client.call("GET", f"/repository/find-by-attribute/{datatype}/tag/t3")
    assert by_attribute.status == 200, by_attribute.text
    assert [r["data"]["i"] for r in by_attribute.json()["data"]] == [3]
    updated = client.call("POST", f"/repository/update/{datatype}/{created[1]['sk']}", {"data": {"i": 10}})
    assert updated.status == 200 and updated.json()["data"]["i"] == 10, updated.text
    deleted = client.call("DELETE", f"/repository/delete/{datatype}/{created[2]['sk']}")
    assert deleted.status == 200 and deleted.json() == {"ok": True}, deleted.text

    # API key create and revoke (a person's token manages keys, whatever the application's key)
    key = client.call("POST", "/api-key/create", {"name": "from a client", "scopes": ["read"]})
    assert key.status == 201, key.text
    revoked = client.call("DELETE", f"/api-key/{key.json()['id']}")
    assert revoked.status == 200 and revoked.json() == {"ok": True}, revoked.text

    if client.app is None:
        return
    # And revoking the application's key ends its app token from the next request
    assert client.call("GET", "/profile/whoami").status == 200
    gone = api.request("DELETE", f"/api-key/{client.app['appId']}", headers=admin)
    assert gone.status == 200, gone.text
    assert_error(client.call("GET", "/profile/whoami"), 401, "unauthorized")


def test_the_application_alone_with_its_app_token(api: LocalApi, admin: dict[str, str]) -> None:
    # A client with app credentials and nobody signed in: the app token acts as its key
    client = client_for(api, admin, "app+bearer-person", ["read"])
    me = client.call("GET", "/profile/whoami")
    assert me.status == 200 and me.json()["principal"]["data"]["email"] == "admin@acme.test", me.text
    found = client.call("POST", "/repository/find/note", {"query": {}, "options": {"page": 1, "pageSize": 5}})
    assert found.status == 200, found.text
    assert_list(found.json())
    assert_error(client.call("PUT", "/repository/create", {"datatype": "note", "data": {}}), 403, "forbidden")


def mailbox_message(api: LocalApi, email: str) -> dict[str, Any]:
    response = api.get(f"/_local/mailbox?to={email}")
    assert response.status == 200, response.text
    messages = response.json()["data"]
    assert messages, f"no message to {email}"
    return dict(messages[0])


@pytest.mark.parametrize("mode", ["person-only", "app+raw-person"])
def test_passwordless_and_the_second_factor_as_the_clients_read_them(
    api: LocalApi, admin: dict[str, str], mode: str
) -> None:
    # Given a client (with app credentials of a read/write key) and a new customer signed up through it
    client = client_for(api, admin, mode, ["read", "write"])
    email, password = f"client-2fa-{uuid.uuid4().hex[:10]}@acme.test", "client-2fa-pass"
    signed_up = client.call("POST", "/profile/customer/signup", {"email": email, "password": password})
    assert signed_up.status == 201, signed_up.text

    # When it asks for a magic link the way the clients do (GET with ?email=) and follows the link
    asked = client.call("GET", f"/profile/magic-link?email={email}")
    assert asked.status == 200 and asked.json() == {"sent": True}, asked.text
    link = mailbox_message(api, email)["link"]
    assert link.startswith(api.base_url)
    followed = client.call("GET", link.removeprefix(api.base_url))

    # Then it reads the sign-in envelope where it always does
    assert followed.status == 200, followed.text
    client.person = followed.json()["data"]["token"]

    # Given 2FA turned on through the client
    setup = client.call("POST", "/profile/security/2fa/setup")
    assert setup.status == 200, setup.text
    authenticator = pyotp.TOTP(setup.json()["secret"])
    enabled = client.call("POST", "/profile/security/2fa/enable", {"code": authenticator.now()})
    assert enabled.status == 200 and len(enabled.json()["recoveryCodes"]) == 10, enabled.text

    # When it signs in again: AppEngine's 2FA fields, at the top level and under data, and no token
    client.person = None
    answer = client.call("POST", "/profile/customer/signin", {"email": email, "password": password})
    assert answer.status == 200, answer.text
    body = answer.json()
    for fields in (body, body["data"]):
        assert fields["requiresTwoFactor"] is True and fields["twoFactorMethod"] == "authenticator"
        assert fields["challengeToken"] == fields["partialToken"] and "token" not in fields

    # Then the challenge completes at the alias the clients call, with challengeToken, into a session
    verified = client.call(
        "POST",
        "/profile/security/challenge/verify",
        {"challengeToken": body["challengeToken"], "code": authenticator.at(time.time() + 30)},
    )
    assert verified.status == 200, verified.text
    client.person = verified.json()["data"]["token"]
    whoami = client.call("GET", "/profile/whoami")
    assert whoami.status == 200 and whoami.json()["principal"]["data"]["email"] == email
