"""Issue 13, "How to prove it": the cross-tenant isolation matrix over every route the template declares.

The routes come from ``template.yaml`` (through ``appengine_local.template``), so a route added there
without a row here fails ``test_every_template_route_has_an_expected_row`` and its own matrix test.
Every route is called once per persona; the expected status follows the contract (§1 principals, key
scopes and "credentials that cannot administer", §4 user management, §5 keys, §6 repository, §7
storefront). Expectations are rules per route group (``Rule``), not hand-written cells.

Personas (all but the home ones send ``orgid: acme``):
- ``acme_admin``: acme's RootAdmin, the control row: proves each request is well formed, so that a
  refusal elsewhere is a refusal and not a bad request.
- ``customer``: acme's customer buyer@acme.test.
- ``other_user``: globex's RootAdmin calling with ``orgid: acme``.
- ``shared_user``: a User made by the platform root with the membership User+read in acme and
  RootAdmin in globex (contract §1: per-org memberships), calling acme.
- ``read_key`` / ``write_key``: keys of acme's admin with scopes ``read`` / ``read``+``write``.
- ``other_key``: a read+write key of globex's admin, sent with ``orgid: acme``.
- ``other_user_home`` / ``shared_user_home``: the same two outsiders acting in globex, where they are
  RootAdmin, but naming acme's records, keys, users, customers and carts: 404 (never reveal that it
  exists elsewhere, §1 step 7); on routes without an acme id they act on globex, and nothing of acme may
  appear in what they get. Public routes ignore credentials, so these two are not run there.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from appengine_local.template import load_template
from tests.contract.conftest import HttpResponse, LocalApi, sign_in

ALL_PERMISSIONS = ["create", "read", "update", "delete", "review", "approve"]
PASSWORD = "matrix-pass-1234"

ACME_PERSONAS = (
    "acme_admin",
    "customer",
    "other_user",
    "shared_user",
    "read_key",
    "write_key",
    "other_key",
)
HOME_PERSONAS = ("other_user_home", "shared_user_home")
TEMPLATE_ROUTES = {(route.method, route.path): route for route in load_template().routes}


# -- expectations ------------------------------------------------------------------------------------
STAFF_READ = frozenset({"acme_admin", "shared_user", "read_key", "write_key"})
STAFF_WRITE = frozenset({"acme_admin", "write_key"})
# A person's JWT only, an admin of acme: keys never manage users or keys (contract §1, §5).
PERSON_ADMIN = frozenset({"acme_admin"})
SIGNED_IN = frozenset({"acme_admin", "customer", "shared_user", "read_key", "write_key"})
# Keys never manage sessions: signing out takes a person's token.
PERSONS = frozenset({"acme_admin", "customer", "shared_user"})
CUSTOMER_ONLY = frozenset({"customer"})
# Storefront operators: `read` reads a customer's carts and orders, `update` acts (contract §7). The
# cart routes take a Customer or User JWT (§7), so keys are refused there: the stricter reading of §1,
# which lists calculate-cart among the routes a `read` key may call without saying that keys reach it.
SHOP_READ = frozenset({"customer", "acme_admin", "shared_user"})
SHOP_WRITE = frozenset({"customer", "acme_admin"})
USAGE = frozenset({"acme_admin", "read_key", "write_key"})


@dataclass(frozen=True)
class Rule:
    """Expected statuses of one route: ``ok`` for the acme personas in ``allowed``, 403 for the others.

    Home personas (RootAdmin in globex): ``foreign`` routes name acme's data → 404; other routes act on
    globex → ``ok`` when an org admin may call the route at all, else 403; ``home`` overrides.
    """

    ok: int = 200
    allowed: frozenset[str] = frozenset()
    public: bool = False
    foreign: bool = False
    home: frozenset[int] | None = None

    def expected(self, persona: str) -> frozenset[int]:
        if self.public:
            return frozenset({self.ok})
        if persona in HOME_PERSONAS:
            if self.home is not None:
                return self.home
            if "acme_admin" not in self.allowed:
                return frozenset({403})
            return frozenset({404 if self.foreign else self.ok})
        return frozenset({self.ok if persona in self.allowed else 403})


def public(status: int = 200) -> Rule:
    return Rule(ok=status, public=True)


# -- the world the matrix aims at --------------------------------------------------------------------
@dataclass
class World:
    api: LocalApi
    headers: dict[str, dict[str, str]]
    fresh_session: dict[str, Callable[[], dict[str, str]]]
    admin: dict[str, str]
    buyer: dict[str, str]
    buyer_pk: str
    marker: str
    sku: str
    slug: str
    note: dict[str, Any]
    cart_id: str
    order_number: str
    read_key_id: str
    target: dict[str, Any]
    target_headers: dict[str, str]
    shared_email: str
    # What belongs to acme only: none of it may appear in an answer to a home persona.
    secrets: list[str] = field(default_factory=list)

    def new_note(self) -> dict[str, Any]:
        response = self.api.post(
            "/repository/create",
            headers=self.admin,
            body={"datatype": "note", "data": {"marker": self.marker, "n": 1}},
        )
        assert response.status == 201, response.text
        note = dict(response.json())
        self.secrets += [note["pk"], note["sk"]]
        return note

    def new_cart(self) -> str:
        response = self.api.post(
            "/storefront/cart/add", headers=self.buyer, body={"sku": self.sku, "quantity": 1}
        )
        assert response.status == 200, response.text
        cart_id = str(response.json()["cartId"])
        self.secrets.append(cart_id)
        return cart_id

    def key_works(self, plaintext: str) -> bool:
        return (
            self.api.get("/profile/whoami", headers={"orgid": "acme", "x-api-key": plaintext}).status == 200
        )


def create_key(api: LocalApi, headers: dict[str, str], scopes: list[str]) -> dict[str, Any]:
    response = api.post(
        "/api-key/create",
        headers=headers,
        body={
            "name": f"matrix-{uuid.uuid4().hex[:8]}",
            "scopes": scopes,
            # The matrix sends one request per route with each key: far below this.
            "rateLimit": {"requestsPerMinute": 100_000},
        },
    )
    assert response.status == 201, response.text
    return dict(response.json())


def bearer(api: LocalApi, email: str, password: str, orgid: str, kind: str = "user") -> dict[str, str]:
    return {"orgid": orgid, "authorization": "Bearer " + sign_in(api, email, password, orgid, kind)["token"]}


@pytest.fixture(scope="module")
def world(api: LocalApi) -> World:
    tag = uuid.uuid4().hex[:10]
    admin = bearer(api, "admin@acme.test", "acme-admin-pass", "acme")
    globex_admin = bearer(api, "admin@globex.test", "globex-admin-pass", "globex")
    signed_in_buyer = sign_in(api, "buyer@acme.test", "acme-buyer-pass", "acme", kind="customer")
    buyer = {"orgid": "acme", "authorization": "Bearer " + signed_in_buyer["token"]}
    root = bearer(api, "root@platform.test", "platform-root-pass", "platform")

    # The shared user: User+read in acme, RootAdmin in globex, made by the platform root (§1, §4).
    shared_email = f"shared-{tag}@matrix.test"
    created = api.post(
        "/user/create",
        headers=root | {"orgid": "acme"},
        body={
            "email": shared_email,
            "password": PASSWORD,
            "roles": ["User"],
            "permissions": ["read"],
            "orgs": ["acme", "globex"],
        },
    )
    assert created.status == 201, created.text
    promoted = api.post(
        f"/user/update/{created.json()['pk']}",
        headers=root | {"orgid": "globex"},
        body={"roles": ["RootAdmin"], "permissions": ALL_PERMISSIONS},
    )
    assert promoted.status == 200, promoted.text

    # A plain acme user to aim user updates at.
    target_email = f"target-{tag}@matrix.test"
    target = api.post(
        "/user/create",
        headers=admin,
        body={"email": target_email, "password": PASSWORD, "roles": ["User"], "permissions": ["read"]},
    )
    assert target.status == 201, target.text

    read_key = create_key(api, admin, ["read"])
    write_key = create_key(api, admin, ["read", "write"])
    globex_key = create_key(api, globex_admin, ["read", "write"])

    # A product of acme's own (stock far above what the matrix buys), a cart and an order of the buyer.
    sku, slug = f"MX-{tag}".upper(), f"mx-{tag}"
    product = api.post(
        "/repository/create",
        headers=admin,
        body={
            "datatype": "product",
            "state": "published",
            "data": {"name": "Matrix mug", "sku": sku, "slug": slug, "price": 3, "stock": 100_000},
        },
    )
    assert product.status == 201, product.text

    def shared_session(orgid: str) -> Callable[[], dict[str, str]]:
        return lambda: bearer(api, shared_email, PASSWORD, "acme") | {"orgid": orgid}

    def person(email: str, password: str, orgid: str, kind: str = "user") -> Callable[[], dict[str, str]]:
        return lambda: bearer(api, email, password, orgid, kind)

    fresh_session = {
        "acme_admin": person("admin@acme.test", "acme-admin-pass", "acme"),
        "customer": person("buyer@acme.test", "acme-buyer-pass", "acme", "customer"),
        "other_user": lambda: (
            bearer(api, "admin@globex.test", "globex-admin-pass", "globex") | {"orgid": "acme"}
        ),
        "shared_user": shared_session("acme"),
        "other_user_home": person("admin@globex.test", "globex-admin-pass", "globex"),
        "shared_user_home": shared_session("globex"),
        "read_key": lambda: {"orgid": "acme", "x-api-key": read_key["key"]},
        "write_key": lambda: {"orgid": "acme", "x-api-key": write_key["key"]},
        "other_key": lambda: {"orgid": "acme", "x-api-key": globex_key["key"]},
    }
    shared = shared_session("acme")()
    headers = {
        "acme_admin": admin,
        "customer": buyer,
        "other_user": globex_admin | {"orgid": "acme"},
        "shared_user": shared,
        "other_user_home": globex_admin,
        "shared_user_home": shared | {"orgid": "globex"},
        "read_key": fresh_session["read_key"](),
        "write_key": fresh_session["write_key"](),
        "other_key": fresh_session["other_key"](),
    }
    world = World(
        api=api,
        headers=headers,
        fresh_session=fresh_session,
        admin=admin,
        buyer=buyer,
        buyer_pk=str(signed_in_buyer["customer"]["pk"]),
        marker=f"marker-{tag}",
        sku=sku,
        slug=slug,
        note={},
        cart_id="",
        order_number="",
        read_key_id=str(read_key["id"]),
        target=dict(target.json()),
        target_headers=bearer(api, target_email, PASSWORD, "acme"),
        shared_email=shared_email,
    )
    world.secrets += [world.marker, world.buyer_pk, sku, world.read_key_id, target_email]
    world.secrets += [str(target.json()["pk"]), str(read_key["prefix"])]
    world.note = world.new_note()
    world.cart_id = world.new_cart()
    ordered = api.post("/storefront/checkout-cart", headers=buyer, body={"cartId": world.new_cart()})
    assert ordered.status == 201, ordered.text
    world.order_number = str(ordered.json()["data"]["orderNumber"])
    world.cart_id = world.new_cart()
    return world


# -- one request per cell ------------------------------------------------------------------------------
@dataclass
class Outcome:
    response: HttpResponse
    problems: list[str] = field(default_factory=list)


Call = Callable[[World, str, dict[str, str], Any], Outcome]


@dataclass(frozen=True)
class Case:
    """How to call a route, and for routes that change an acme target: how to make one (``target``) and
    how to tell that it is as it was (``intact``).

    A persona expected to succeed gets a fresh target of its own; the personas expected to be refused
    share one, which must be intact once they all have been refused.
    """

    rule: Rule
    call: Call
    target: Callable[[World], Any] | None = None
    intact: Callable[[World, Any], bool] | None = None


def plain(method: str, path: str | Callable[[World], str], body: Any = None) -> Call:
    def call(w: World, _: str, headers: dict[str, str], __: Any) -> Outcome:
        target = path(w) if callable(path) else path
        payload = body(w) if callable(body) else body
        return Outcome(w.api.request(method, target, headers=headers, body=payload))

    return call


def signout(w: World, persona: str, _: dict[str, str], __: Any) -> Outcome:
    # A session of its own, so that signing out never ends the session the other cells use.
    return Outcome(w.api.post("/profile/signout", headers=w.fresh_session[persona]()))


def whoami(w: World, persona: str, headers: dict[str, str], _: Any) -> Outcome:
    outcome = Outcome(w.api.get("/profile/whoami", headers=headers))
    if persona == "shared_user" and outcome.response.status == 200:
        data = outcome.response.json()["principal"]["data"]
        # §1: the call runs with acme's membership only, and shows it where clients read it.
        if data.get("roles") != ["User"] or (data.get("permissions") or {}).get("content") != ["read"]:
            outcome.problems.append(
                f"shared user in acme shown with {data.get('roles')} {data.get('permissions')}"
            )
    return outcome


def list_acme_users(w: World, persona: str, headers: dict[str, str], _: Any) -> Outcome:
    outcome = Outcome(w.api.get("/user/org/acme?ps=100", headers=headers))
    if persona == "acme_admin" and outcome.response.status == 200:
        users = outcome.response.json()["data"]
        # §1: a user list of acme shows the shared user's acme membership only, never globex.
        for user in [u for u in users if u.get("data", {}).get("email") == w.shared_email]:
            if user["data"].get("roles") != ["User"] or "globex" in json.dumps(user):
                outcome.problems.append(f"acme's user list shows the shared user as {user['data']}")
    return outcome


def create_user(w: World, persona: str, headers: dict[str, str], _: Any) -> Outcome:
    body: dict[str, Any] = {
        "email": f"made-{uuid.uuid4().hex[:10]}@matrix.test",
        "password": PASSWORD,
        "roles": ["User"],
        "permissions": ["read"],
    }
    if persona in HOME_PERSONAS:
        body["orgs"] = ["globex", "acme"]  # a membership in acme, where the actor is no admin
    return Outcome(w.api.post("/user/create", headers=headers, body=body))


def update_user(w: World, persona: str, headers: dict[str, str], _: Any) -> Outcome:
    # The control changes nothing that matters; everyone else tries to make the target a RootAdmin.
    body = (
        {"permissions": ["read"]}
        if persona == "acme_admin"
        else {"roles": ["RootAdmin"], "permissions": ALL_PERMISSIONS, "disabled": False}
    )
    return Outcome(w.api.post(f"/user/update/{w.target['pk']}", headers=headers, body=body))


def target_still_plain_user(w: World, _: Any) -> bool:
    me = w.api.get("/profile/whoami", headers=w.target_headers)
    return me.status == 200 and me.json()["principal"]["data"].get("roles") == ["User"]


def new_customer(w: World) -> dict[str, Any]:
    """A fresh acme customer to disable: its pk and its own headers."""
    email = f"aim-{uuid.uuid4().hex[:10]}@matrix.test"
    signed_up = w.api.post(
        "/profile/customer/signup", headers={"orgid": "acme"}, body={"email": email, "password": PASSWORD}
    )
    assert signed_up.status == 201, signed_up.text
    pk = str(signed_up.json()["customer"]["pk"])
    w.secrets += [pk, email]
    return {"pk": pk, "headers": {"orgid": "acme", "authorization": "Bearer " + signed_up.json()["token"]}}


def disable_customer(w: World, _: str, headers: dict[str, str], customer: dict[str, Any]) -> Outcome:
    return Outcome(w.api.post(f"/customer/update/{customer['pk']}", headers=headers, body={"disabled": True}))


def customer_still_enabled(w: World, customer: dict[str, Any]) -> bool:
    return w.api.get("/profile/whoami", headers=customer["headers"]).status == 200


def list_acme_customers(w: World, persona: str, headers: dict[str, str], _: Any) -> Outcome:
    outcome = Outcome(w.api.get("/customer/list?email=buyer@acme.test", headers=headers))
    if persona == "acme_admin" and outcome.response.status == 200:
        found = [c["pk"] for c in outcome.response.json()["data"]]
        if found != [w.buyer_pk] or "passwordHash" in outcome.response.text:
            outcome.problems.append(f"acme's customer list by email shows {outcome.response.text[:300]}")
    return outcome


def own_session_id(w: World, headers: dict[str, str]) -> str:
    """The id of the session of ``headers`` (an unknown id where the persona may not list sessions)."""
    listed = w.api.get("/profile/security/sessions", headers=headers)
    if listed.status != 200:
        return "0" * 32
    return str(next(s["id"] for s in listed.json()["data"] if s["current"]))


def revoke_own_session(w: World, persona: str, headers: dict[str, str], _: Any) -> Outcome:
    # A fresh session of the persona's own is revoked, never the one the other cells use.
    session_id = own_session_id(w, w.fresh_session[persona]())
    return Outcome(w.api.request("DELETE", f"/profile/security/sessions/{session_id}", headers=headers))


def session_target(sign_in_headers: Callable[[World], dict[str, str]]) -> Callable[[World], dict[str, Any]]:
    def target(w: World) -> dict[str, Any]:
        headers = sign_in_headers(w)
        return {"headers": headers, "id": own_session_id(w, headers)}

    return target


def target_user_session(w: World) -> dict[str, str]:
    return bearer(w.api, str(w.target["data"]["email"]), PASSWORD, "acme")


def session_alive(w: World, target: dict[str, Any]) -> bool:
    return w.api.get("/profile/whoami", headers=target["headers"]).status == 200


def revoke_user_session(w: World, _: str, headers: dict[str, str], target: dict[str, Any]) -> Outcome:
    path = f"/user/{w.target['pk']}/sessions/{target['id']}"
    return Outcome(w.api.request("DELETE", path, headers=headers))


def new_customer_session(w: World) -> dict[str, Any]:
    customer = new_customer(w)
    return {
        "pk": customer["pk"],
        "headers": customer["headers"],
        "id": own_session_id(w, customer["headers"]),
    }


def revoke_customer_session(w: World, _: str, headers: dict[str, str], target: dict[str, Any]) -> Outcome:
    path = f"/customer/{target['pk']}/sessions/{target['id']}"
    return Outcome(w.api.request("DELETE", path, headers=headers))


def on_key(method: str, route: str) -> Call:
    def call(w: World, _: str, headers: dict[str, str], key: dict[str, Any]) -> Outcome:
        return Outcome(w.api.request(method, route.format(key_id=key["id"]), headers=headers))

    return call


def new_key(w: World) -> dict[str, Any]:
    key = create_key(w.api, w.admin, ["read", "write"])
    w.secrets.append(str(key["id"]))
    return key


def on_note(method: str, route: str, body: Callable[[dict[str, Any]], Any] | None = None) -> Call:
    def call(w: World, _: str, headers: dict[str, str], note: dict[str, Any]) -> Outcome:
        path = route.format(pk=note["pk"], sk=note["sk"])
        return Outcome(w.api.request(method, path, headers=headers, body=body(note) if body else None))

    return call


def note_unchanged(w: World, note: dict[str, Any]) -> bool:
    now = w.api.get(f"/repository/get/note/{note['sk']}", headers=w.admin)
    return now.status == 200 and now.json()["version"] == note["version"]


def on_cart(route: str, body: Callable[[World, str], dict[str, Any]]) -> Call:
    def call(w: World, _: str, headers: dict[str, str], cart_id: Any) -> Outcome:
        return Outcome(w.api.post(route, headers=headers, body=body(w, cart_id or w.cart_id)))

    return call


def cart_unchanged(w: World, cart_id: str) -> bool:
    cart = w.api.get(f"/storefront/cart/get/{w.buyer_pk}/{cart_id}", headers=w.buyer)
    return cart.status == 200 and [(i["sku"], i["quantity"]) for i in cart.json()["items"]] == [(w.sku, 1)]


def cart_not_checked_out(w: World, cart_id: str) -> bool:
    # Only the first checkout of a cart creates its order (201); a repeat answers that order with 200.
    return w.api.post("/storefront/checkout-cart", headers=w.buyer, body={"cartId": cart_id}).status == 201


def enable_with_a_wrong_code(w: World, _: str, headers: dict[str, str], __: Any) -> Outcome:
    """A fresh pending secret (where the persona may set one up), then a code that is none of its window's:
    the persona reaches the route (422, wrong code) without ever turning 2FA on, which would change what
    its sign-ins answer for the cells after it."""
    import time

    import pyotp

    setup = w.api.post("/profile/security/2fa/setup", headers=headers)
    window: set[str] = set()
    if setup.status == 200:
        totp = pyotp.TOTP(setup.json()["secret"])
        window = {totp.at(time.time() + offset) for offset in (-60, -30, 0, 30, 60)}
    wrong = next(f"{n:06d}" for n in range(100) if f"{n:06d}" not in window)
    return Outcome(w.api.post("/profile/security/2fa/enable", headers=headers, body={"code": wrong}))


def provider_settings(w: World, orgid: str) -> dict[str, Any]:
    """A provider's settings for ``orgid``; acme's client id is acme's own, never to reach another org."""
    client_id = f"{orgid}-client-{uuid.uuid4().hex[:12]}"
    if orgid == "acme":
        w.secrets.append(client_id)
    return {
        "clientId": client_id,
        "clientSecret": f"secret-{uuid.uuid4().hex}",
        "redirectUris": [f"https://{orgid}.matrix.test/auth/callback"],
    }


def put_provider(w: World, _: str, headers: dict[str, str], __: Any) -> Outcome:
    # google, set in the org of the call (the home personas set globex's own)
    body = provider_settings(w, headers["orgid"])
    return Outcome(w.api.request("PUT", "/profile/oauth/providers/google", headers=headers, body=body))


def on_acme_provider(method: str, provider: str) -> Call:
    """``method`` on acme's ``provider``, which acme's admin sets first; nobody sets it in globex, so a
    home persona meets 404 there."""

    def call(w: World, _: str, headers: dict[str, str], __: Any) -> Outcome:
        path = f"/profile/oauth/providers/{provider}"
        configured = w.api.request("PUT", path, headers=w.admin, body=provider_settings(w, "acme"))
        assert configured.status == 200, configured.text
        return Outcome(w.api.request(method, path, headers=headers))

    return call


ADDRESS = {"country": "US", "postalCode": "10001"}
SIGN_IN_AS_READER = {"email": "reader@acme.test", "password": "acme-reader-pass"}
CASES: dict[tuple[str, str], Case] = {
    # platform: no orgid, no credentials
    **{("GET", path): Case(public(), plain("GET", path)) for path in ("/monitoring/health", "/docs")},
    **{
        ("GET", path): Case(public(), plain("GET", path))
        for path in ("/.well-known/jwks.json", "/openapi.json")
    },
    # sign-in and sign-up: public; the caller's own credentials change nothing
    **{
        ("POST", path): Case(public(), plain("POST", path, SIGN_IN_AS_READER))
        for path in ("/profile/signin", "/profile/user/signin", "/user/signin")
    },
    ("POST", "/profile/customer/signin"): Case(
        public(),
        plain(
            "POST", "/profile/customer/signin", {"email": "buyer@acme.test", "password": "acme-buyer-pass"}
        ),
    ),
    ("POST", "/profile/customer/signup"): Case(
        public(201),
        plain(
            "POST",
            "/profile/customer/signup",
            lambda w: {"email": f"signup-{uuid.uuid4().hex[:10]}@matrix.test", "password": PASSWORD},
        ),
    ),
    ("POST", "/profile/user/signup"): Case(  # acme does not allow staff self sign-up
        public(403),
        plain(
            "POST",
            "/profile/user/signup",
            lambda w: {"email": f"self-{uuid.uuid4().hex[:10]}@matrix.test", "password": PASSWORD},
        ),
    ),
    # An app token from the read key's credentials (§5): public; the caller's own credentials change nothing
    ("POST", "/profile/app/key"): Case(
        public(),
        plain(
            "POST",
            "/profile/app/key",
            lambda w: {
                "appId": w.read_key_id,
                "key": w.headers["read_key"]["x-api-key"][:12],
                "secret": w.headers["read_key"]["x-api-key"],
            },
        ),
    ),
    # Passwordless sign-in (§4): public; the caller's own credentials change nothing. Requests name a fresh
    # email each (5 per email per window); redeems send a malformed token or code, which no guard counts
    # against 127.0.0.1 (a wrong one would be a failed sign-in from the address the other tests share).
    **{
        ("POST", path): Case(
            public(), plain("POST", path, lambda w: {"email": f"ml-{uuid.uuid4().hex[:10]}@matrix.test"})
        )
        for path in ("/profile/magic-link", "/profile/user/magic-link")
    },
    **{
        ("GET", path): Case(
            public(), plain("GET", lambda w, p=path: f"{p}?email=ml-{uuid.uuid4().hex[:10]}@matrix.test")
        )
        for path in ("/profile/magic-link", "/profile/user/magic-link")
    },
    ("POST", "/profile/code/{email}"): Case(
        public(), plain("POST", lambda w: f"/profile/code/code-{uuid.uuid4().hex[:10]}@matrix.test")
    ),
    ("POST", "/profile/code/{email}/verify"): Case(
        public(422), plain("POST", "/profile/code/buyer@acme.test/verify", {"code": "not-a-code"})
    ),
    **{
        ("GET", path): Case(public(401), plain("GET", f"{path}?token=not-a-token"))
        for path in ("/profile/magic-link/redirect", "/profile/user/magic-link/redirect")
    },
    **{
        ("POST", path): Case(public(401), plain("POST", path, {"token": "not-a-token"}))
        for path in ("/profile/magic-link/redirect", "/profile/user/magic-link/redirect")
    },
    **{
        ("POST", path): Case(public(401), plain("POST", path, {"refreshToken": "not-a-refresh-token"}))
        for path in (
            "/profile/user/refresh",
            "/user/refresh",
            "/profile/customer/refresh",
            "/customer/refresh",
        )
    },
    ("POST", "/profile/signout"): Case(Rule(allowed=PERSONS), signout),
    # profile and user management (§4)
    ("GET", "/profile/whoami"): Case(Rule(allowed=SIGNED_IN), whoami),
    ("GET", "/profile/customer/profile"): Case(
        Rule(allowed=CUSTOMER_ONLY), plain("GET", "/profile/customer/profile")
    ),
    ("POST", "/profile/customer/update"): Case(
        Rule(allowed=CUSTOMER_ONLY), plain("POST", "/profile/customer/update", {"firstName": "Bea"})
    ),
    ("POST", "/user/create"): Case(Rule(ok=201, allowed=PERSON_ADMIN, home=frozenset({403})), create_user),
    # The path names acme while a home persona calls globex: refused, whatever it may do in globex.
    ("GET", "/user/org/{orgid}"): Case(Rule(allowed=PERSON_ADMIN, home=frozenset({403})), list_acme_users),
    ("POST", "/user/update/{user_id}"): Case(
        Rule(allowed=PERSON_ADMIN, foreign=True), update_user, intact=target_still_plain_user
    ),
    ("GET", "/profile/usage"): Case(Rule(allowed=USAGE), plain("GET", "/profile/usage?days=1")),
    # The security audit log (issue 15): the org's RootAdmin with a person's token; the home personas
    # read globex's own log, where nothing of acme may appear.
    ("GET", "/profile/security/audit"): Case(
        Rule(allowed=PERSON_ADMIN), plain("GET", "/profile/security/audit?ps=100")
    ),
    # brute-force protection and customer administration (§4): unlocking and disabling take an admin's
    # own token; an unknown email unlocks as well as a known one.
    **{
        ("POST", path): Case(
            Rule(allowed=PERSON_ADMIN),
            plain("POST", path, lambda w: {"email": f"locked-{uuid.uuid4().hex[:8]}@matrix.test"}),
        )
        for path in ("/user/unlock", "/customer/unlock")
    },
    ("GET", "/customer/list"): Case(Rule(allowed=STAFF_READ), list_acme_customers),
    ("POST", "/customer/update/{customer_id}"): Case(
        Rule(allowed=PERSON_ADMIN, foreign=True),
        disable_customer,
        target=new_customer,
        intact=customer_still_enabled,
    ),
    # sessions and devices (§4): a person's own with its own token; an org admin's for its Users and
    # Customers. revoke-others keeps the calling session: the one the other cells use.
    ("GET", "/profile/security/sessions"): Case(
        Rule(allowed=PERSONS), plain("GET", "/profile/security/sessions")
    ),
    ("DELETE", "/profile/security/sessions/{session_id}"): Case(Rule(allowed=PERSONS), revoke_own_session),
    ("POST", "/profile/security/sessions/revoke-others"): Case(
        Rule(allowed=PERSONS), plain("POST", "/profile/security/sessions/revoke-others")
    ),
    ("GET", "/user/{user_id}/sessions"): Case(
        Rule(allowed=PERSON_ADMIN, foreign=True), plain("GET", lambda w: f"/user/{w.target['pk']}/sessions")
    ),
    ("DELETE", "/user/{user_id}/sessions/{session_id}"): Case(
        Rule(allowed=PERSON_ADMIN, foreign=True),
        revoke_user_session,
        target=session_target(target_user_session),
        intact=session_alive,
    ),
    ("GET", "/customer/{customer_id}/sessions"): Case(
        Rule(allowed=PERSON_ADMIN, foreign=True),
        plain("GET", lambda w: f"/customer/{w.buyer_pk}/sessions"),
    ),
    ("DELETE", "/customer/{customer_id}/sessions/{session_id}"): Case(
        Rule(allowed=PERSON_ADMIN, foreign=True),
        revoke_customer_session,
        target=new_customer_session,
        intact=session_alive,
    ),
    # second factor (§4): a person's own, with its own token, Users and Customers alike (keys never).
    # No persona turns 2FA on here (its sign-ins would then answer the partial token): enable gets a
    # wrong code (422); recovery codes and disable meet 2FA off (409). Verify and send are public and
    # take only a live partial token (401 for anything else).
    ("POST", "/profile/security/2fa/setup"): Case(
        Rule(allowed=PERSONS), plain("POST", "/profile/security/2fa/setup")
    ),
    ("POST", "/profile/security/2fa/enable"): Case(Rule(ok=422, allowed=PERSONS), enable_with_a_wrong_code),
    **{
        ("POST", path): Case(Rule(ok=409, allowed=PERSONS), plain("POST", path, {"code": "123456"}))
        for path in ("/profile/security/2fa/recovery-codes", "/profile/security/2fa/disable")
    },
    **{
        ("POST", path): Case(
            public(401), plain("POST", path, {"partialToken": "not-a-partial-token", "code": "123456"})
        )
        for path in ("/profile/security/2fa/verify", "/profile/security/challenge/verify")
    },
    ("POST", "/profile/security/challenge/send"): Case(
        public(401),
        plain(
            "POST",
            "/profile/security/challenge/send",
            {"challengeToken": "not-a-partial-token", "method": "email"},
        ),
    ),
    # social sign-in and SSO (§4): provider settings by the org's RootAdmin/ConfigAdmin with a person's
    # token (the home personas act on globex, where nobody sets microsoft or facebook: 404); linked
    # identities are a person's own (nobody here has one linked: unlinking is 404).
    ("GET", "/profile/oauth/providers"): Case(
        Rule(allowed=PERSON_ADMIN), plain("GET", "/profile/oauth/providers")
    ),
    ("PUT", "/profile/oauth/providers/{provider}"): Case(Rule(allowed=PERSON_ADMIN), put_provider),
    ("GET", "/profile/oauth/providers/{provider}"): Case(
        Rule(allowed=PERSON_ADMIN, home=frozenset({404})), on_acme_provider("GET", "microsoft")
    ),
    ("DELETE", "/profile/oauth/providers/{provider}"): Case(
        Rule(allowed=PERSON_ADMIN, home=frozenset({404})), on_acme_provider("DELETE", "facebook")
    ),
    ("GET", "/profile/security/identities"): Case(
        Rule(allowed=PERSONS), plain("GET", "/profile/security/identities")
    ),
    ("DELETE", "/profile/security/identities/{provider}"): Case(
        Rule(ok=404, allowed=PERSONS), plain("DELETE", "/profile/security/identities/google")
    ),
    # the sign-in flow (§4) is public: credentials are ignored, and what each call meets does not depend
    # on which providers the matrix or other tests set (a start without redirectUri: 422; a state or
    # code nobody issued: 401)
    ("GET", "/profile/{provider}"): Case(public(422), plain("GET", "/profile/google?kind=customer")),
    ("GET", "/profile/{provider}/redirect"): Case(
        public(401), plain("GET", f"/profile/google/redirect?code=c&state=acme.{'A' * 43}")
    ),
    ("POST", "/profile/oauth/exchange"): Case(
        public(401), plain("POST", "/profile/oauth/exchange", {"code": "A" * 43})
    ),
    # API keys (§5): a person's JWT only
    ("POST", "/api-key/create"): Case(
        Rule(ok=201, allowed=PERSON_ADMIN),
        plain("POST", "/api-key/create", lambda w: {"name": f"m-{uuid.uuid4().hex[:8]}", "scopes": ["read"]}),
    ),
    ("GET", "/api-key/list"): Case(Rule(allowed=PERSON_ADMIN), plain("GET", "/api-key/list?ps=100")),
    ("GET", "/api-key/{key_id}"): Case(
        Rule(allowed=PERSON_ADMIN, foreign=True), plain("GET", lambda w: f"/api-key/{w.read_key_id}")
    ),
    # Only the key's owner (here: acme's admin) regenerates it; a refused call leaves the old value working.
    ("POST", "/api-key/regenerate/{key_id}"): Case(
        Rule(allowed=PERSON_ADMIN, foreign=True),
        on_key("POST", "/api-key/regenerate/{key_id}"),
        target=new_key,
        intact=lambda w, key: w.key_works(key["key"]),
    ),
    ("DELETE", "/api-key/{key_id}"): Case(
        Rule(allowed=PERSON_ADMIN, foreign=True),
        on_key("DELETE", "/api-key/{key_id}"),
        target=new_key,
        intact=lambda w, key: w.key_works(key["key"]),
    ),
    # repository (§6)
    **{
        (method, "/repository/create"): Case(
            Rule(ok=201, allowed=STAFF_WRITE),
            plain(method, "/repository/create", {"datatype": "note", "data": {"n": 2}}),
        )
        for method in ("POST", "PUT")
    },
    **{
        (method, "/repository/create/{datatype}"): Case(
            Rule(ok=201, allowed=STAFF_WRITE),
            plain(method, "/repository/create/note", {"n": 3, "isNew": True}),
        )
        for method in ("POST", "PUT")
    },
    ("GET", "/repository/get/{datatype}/{record_id}"): Case(
        Rule(allowed=STAFF_READ, foreign=True), plain("GET", lambda w: f"/repository/get/note/{w.note['sk']}")
    ),
    ("POST", "/repository/find/{datatype}"): Case(
        Rule(allowed=STAFF_READ),
        plain("POST", "/repository/find/note", lambda w: {"query": {"marker": w.marker}}),
    ),
    ("GET", "/repository/find-by-attribute/{datatype}/{attribute}/{value}"): Case(
        Rule(allowed=STAFF_READ),
        plain("GET", lambda w: f"/repository/find-by-attribute/note/marker/{w.marker}"),
    ),
    ("POST", "/repository/update/{datatype}/{record_id}"): Case(
        Rule(allowed=STAFF_WRITE, foreign=True),
        on_note("POST", "/repository/update/note/{sk}", lambda note: {"data": {"n": 5}}),
        target=World.new_note,
        intact=note_unchanged,
    ),
    ("POST", "/repository/update-partial/{datatype}/{record_id}"): Case(
        Rule(allowed=STAFF_WRITE, foreign=True),
        on_note("POST", "/repository/update-partial/note/{pk}", lambda note: {"data": {"n": 6}}),
        target=World.new_note,
        intact=note_unchanged,
    ),
    ("DELETE", "/repository/delete/{datatype}/{record_id}"): Case(
        Rule(allowed=STAFF_WRITE, foreign=True),
        on_note("DELETE", "/repository/delete/note/{sk}"),
        target=World.new_note,
        intact=note_unchanged,
    ),
    ("POST", "/repository/delete/{datatype}"): Case(
        Rule(allowed=STAFF_WRITE, foreign=True),
        on_note("POST", "/repository/delete/note", lambda note: [note["sk"]]),
        target=World.new_note,
        intact=note_unchanged,
    ),
    # storefront (§7): browse is public
    **{
        ("GET", path): Case(public(), plain("GET", path))
        for path in (
            "/storefront/products",
            "/storefront/categories",
            "/storefront/brands",
            "/storefront/payment-gateways",
        )
    },
    ("GET", "/storefront/product/{slug_or_sku}"): Case(
        public(), plain("GET", lambda w: f"/storefront/product/{w.slug}")
    ),
    ("GET", "/storefront/gift-card/balance/{code}"): Case(
        public(), plain("GET", "/storefront/gift-card/balance/GIFT-50")
    ),
    ("POST", "/shipping/options"): Case(
        public(),
        plain(
            "POST",
            "/shipping/options",
            lambda w: {"items": [{"sku": w.sku, "quantity": 1}], "toAddress": ADDRESS, "orderTotal": 10},
        ),
    ),
    ("GET", "/storefront/cart/get/{customer_id}/{cart_id}"): Case(
        Rule(allowed=SHOP_READ, foreign=True),
        plain("GET", lambda w: f"/storefront/cart/get/{w.buyer_pk}/{w.cart_id}"),
    ),
    # No cartId: a new cart for the named customer, who is acme's (404 from globex: not its customer).
    ("POST", "/storefront/cart/add"): Case(
        Rule(allowed=SHOP_WRITE, foreign=True),
        on_cart("/storefront/cart/add", lambda w, _: {"sku": w.sku, "quantity": 1, "customerId": w.buyer_pk}),
    ),
    ("POST", "/storefront/cart/update"): Case(
        Rule(allowed=SHOP_WRITE, foreign=True),
        on_cart(
            "/storefront/cart/update",
            lambda w, cart: {"cartId": cart, "sku": w.sku, "quantity": 2, "customerId": w.buyer_pk},
        ),
        target=World.new_cart,
        intact=cart_unchanged,
    ),
    ("POST", "/storefront/cart/remove"): Case(
        Rule(allowed=SHOP_WRITE, foreign=True),
        on_cart(
            "/storefront/cart/remove",
            lambda w, cart: {"cartId": cart, "sku": w.sku, "customerId": w.buyer_pk},
        ),
        target=World.new_cart,
        intact=cart_unchanged,
    ),
    ("POST", "/storefront/pricing/calculate-cart"): Case(
        Rule(allowed=SHOP_READ, foreign=True),
        on_cart(
            "/storefront/pricing/calculate-cart",
            lambda w, cart: {"cartId": cart, "customerId": w.buyer_pk, "shippingAddress": ADDRESS},
        ),
    ),
    ("POST", "/storefront/checkout-cart"): Case(
        Rule(ok=201, allowed=SHOP_WRITE, foreign=True),
        on_cart("/storefront/checkout-cart", lambda w, cart: {"cartId": cart, "customerId": w.buyer_pk}),
        target=World.new_cart,
        intact=cart_not_checked_out,
    ),
    # Order numbers are per-org sequences: globex may hold its own order under the same number, which
    # its admin may read; acme's order must never be what it gets (checked by the secrets).
    ("GET", "/storefront/order/get"): Case(
        Rule(allowed=SHOP_READ, home=frozenset({200, 404})),
        plain("GET", lambda w: f"/storefront/order/get?orderNumber={w.order_number}"),
    ),
    ("GET", "/storefront/orders/get"): Case(Rule(allowed=SHOP_READ), plain("GET", "/storefront/orders/get")),
}


# -- the tests ---------------------------------------------------------------------------------------
def test_every_template_route_has_an_expected_row() -> None:
    # Given the routes template.yaml declares, and the rows of this matrix
    declared, rows = set(TEMPLATE_ROUTES), set(CASES)
    # Then each declared route has a row, and no row names a route the template does not declare
    assert declared - rows == set(), f"routes without an isolation row: {sorted(declared - rows)}"
    assert rows - declared == set(), (
        f"rows for routes the template does not declare: {sorted(rows - declared)}"
    )


def test_public_rows_are_exactly_the_routes_without_an_authorizer() -> None:
    # A route the template opens to everyone must be expected public here, and the reverse.
    for key, route in TEMPLATE_ROUTES.items():
        if key in CASES:
            assert CASES[key].rule.public == (not route.authorized), f"{key}: public in one place only"


def check_cell(world: World, rule: Rule, persona: str, outcome: Outcome) -> list[str]:
    response, expected = outcome.response, rule.expected(persona)
    if response.status not in expected:
        return [f"{persona}: {response.status} (expected {sorted(expected)}) {response.text[:300]}"]
    problems = [f"{persona}: {problem}" for problem in outcome.problems]
    if response.status >= 400:
        body = response.json()
        if not body.get("error") == body.get("code") == body.get("reason"):
            problems.append(f"{persona}: not the contract's error body: {response.text[:300]}")
    if persona in HOME_PERSONAS and response.status < 300:
        leaked = [secret for secret in world.secrets if secret in response.text]
        if leaked:
            problems.append(f"{persona}: answer carries acme's {leaked}: {response.text[:300]}")
    return problems


@pytest.mark.parametrize(("method", "path"), sorted(TEMPLATE_ROUTES), ids=lambda v: str(v))
def test_isolation_matrix(world: World, method: str, path: str) -> None:
    # Given a route the template declares, its expected status per persona, and for a route that
    # changes something: a target of acme's for each persona expected to succeed, and one shared by
    # the personas expected to be refused
    if (method, path) not in CASES:
        pytest.fail(f"{method} {path} has no row in the isolation matrix")
    case = CASES[(method, path)]
    personas = ACME_PERSONAS if case.rule.public else ACME_PERSONAS + HOME_PERSONAS
    shared_target = case.target(world) if case.target else None

    def cell(persona: str) -> Outcome:
        succeeds = any(status < 300 for status in case.rule.expected(persona))
        target = case.target(world) if case.target and succeeds else shared_target
        return case.call(world, persona, dict(world.headers[persona]), target)

    # When each persona calls it once (one after the other: a persona that wrongly succeeds must not
    # change what the next one meets in a way that depends on timing)
    outcomes = [cell(persona) for persona in personas]

    # Then each status is the contract's, a refusal carries the contract's error body, nothing of acme
    # reaches another org, and the refused personas changed nothing
    mismatches = [
        problem
        for p, o in zip(personas, outcomes, strict=True)
        for problem in check_cell(world, case.rule, p, o)
    ]
    if case.intact is not None and not case.intact(world, shared_target):
        mismatches.append("a persona that was refused (or should have been) changed acme's target")
    assert not mismatches, f"{method} {path}\n" + "\n".join(mismatches)


def test_a_partial_token_is_refused_on_every_route_behind_the_authorizer(api: LocalApi) -> None:
    # Given the partial token of a sign-in waiting for its second factor (a customer with 2FA on)
    import re
    import time

    import pyotp

    email = f"partial-{uuid.uuid4().hex[:10]}@matrix.test"
    signed_up = api.post(
        "/profile/customer/signup", headers={"orgid": "acme"}, body={"email": email, "password": PASSWORD}
    )
    assert signed_up.status == 201, signed_up.text
    headers = {"orgid": "acme", "authorization": "Bearer " + signed_up.json()["token"]}
    setup = api.post("/profile/security/2fa/setup", headers=headers)
    assert setup.status == 200, setup.text
    enabled = api.post(
        "/profile/security/2fa/enable",
        headers=headers,
        body={"code": pyotp.TOTP(setup.json()["secret"]).at(time.time())},
    )
    assert enabled.status == 200, enabled.text
    answer = api.post(
        "/profile/customer/signin", headers={"orgid": "acme"}, body={"email": email, "password": PASSWORD}
    )
    assert answer.status == 200 and answer.json()["twoFactorRequired"] is True, answer.text
    partial = answer.json()["partialToken"]

    # When it is sent, as a person's token, to every route the authorizer guards
    refused: list[str] = []
    for (method, path), route in sorted(TEMPLATE_ROUTES.items()):
        if not route.authorized:
            continue
        target = re.sub(r"\{[^}]+\}", "x", path)
        for name in ("authorization", "x-client-authorization"):
            response = api.request(
                method, target, headers={"orgid": "acme", name: f"Bearer {partial}"}, body={}
            )
            if response.status != 401:
                refused.append(f"{method} {path} ({name}): {response.status} {response.text[:200]}")

    # Then each answers 401: a partial token is never an access token
    assert not refused, "\n".join(refused)
