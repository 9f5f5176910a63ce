"""Contract §1 and §5 "App tokens" over HTTP (issue 16): an API key's credentials trade for a short-lived
app token that acts exactly as the key (org, scopes, limits, usage, revocation), never administers, and
beside a person's token identifies the calling application only.

Every failing request for a token speaks from a loopback address of its own (the failures count per
source, as failed sign-ins do, and 127.0.0.1's allowance belongs to the other tests).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.contract.conftest import HttpResponse, LocalApi, sign_in
from tests.contract.test_platform_http import assert_error
from tests.contract.test_storefront_security_http import one_window, own_address, send_from

ORG = "acme"
PASSWORD = "app-token-pass-123"


@pytest.fixture(scope="module")
def admin(api: LocalApi) -> dict[str, str]:
    return {"orgid": ORG, "authorization": sign_in(api, "admin@acme.test", "acme-admin-pass", ORG)["token"]}


def create_key(api: LocalApi, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = api.post(
        "/api-key/create",
        headers=headers,
        body={"name": f"app-{uuid.uuid4().hex[:6]}", "scopes": ["read", "write"]} | body,
    )
    assert response.status == 201, response.text
    return dict(response.json())


def credentials(key: dict[str, Any]) -> dict[str, str]:
    return {"appId": key["id"], "key": key["prefix"], "secret": key["key"]}


def issue(api: LocalApi, body: dict[str, Any], orgid: str = ORG) -> HttpResponse:
    return api.post("/profile/app/key", headers={"orgid": orgid}, body=body)


def app_token(api: LocalApi, key: dict[str, Any]) -> str:
    response = issue(api, credentials(key))
    assert response.status == 200, response.text
    return str(response.json()["token"])


def as_app(token: str, orgid: str = ORG) -> dict[str, str]:
    return {"orgid": orgid, "authorization": f"Bearer {token}"}


def whoami(api: LocalApi, headers: dict[str, str]) -> HttpResponse:
    return api.get("/profile/whoami", headers=headers)


def usage_of(api: LocalApi, admin: dict[str, str], key: dict[str, Any]) -> int:
    return int(api.get(f"/api-key/{key['id']}", headers=admin).json()["usageCount"])


# -- issuing ---------------------------------------------------------------------------------------
def test_a_keys_credentials_give_an_app_token_that_acts_as_the_key(
    api: LocalApi, admin: dict[str, str]
) -> None:
    # Given a key of acme's RootAdmin
    key = create_key(api, admin)
    # When its credentials are traded for an app token
    response = issue(api, credentials(key))
    # Then the answer carries the token at the top level and under data, for 15 minutes
    assert response.status == 200, response.text
    body = response.json()
    assert set(body) == {"token", "expiresIn", "data"}
    assert body["expiresIn"] == 900 and body["data"] == {"token": body["token"], "expiresIn": 900}
    # And the token, with or without `Bearer `, acts as the key: its owner, in its org
    for authorization in (f"Bearer {body['token']}", body["token"]):
        me = whoami(api, {"orgid": ORG, "authorization": authorization})
        assert me.status == 200, me.text
        assert me.json()["kind"] == "user" and me.json()["principal"]["data"]["email"] == "admin@acme.test"
    # And only in the key's org
    assert_error(whoami(api, as_app(body["token"], "globex")), 403, "forbidden")
    # And the token was counted as the key's usage (issuing it was not)
    assert usage_of(api, admin, key) == 2


def test_the_orgid_header_is_required(api: LocalApi, admin: dict[str, str]) -> None:
    key = create_key(api, admin)
    assert_error(api.post("/profile/app/key", body=credentials(key)), 400, "orgid_required")
    token = app_token(api, key)
    assert_error(api.get("/profile/whoami", headers={"authorization": token}), 400, "orgid_required")


def test_wrong_credentials_all_give_one_401(api: LocalApi, admin: dict[str, str]) -> None:
    # Given live keys (a fresh one per attempt: failures count per key id), a revoked key, a key of globex
    other, revoked = create_key(api, admin), create_key(api, admin)
    assert api.request("DELETE", f"/api-key/{revoked['id']}", headers=admin).status == 200
    globex_admin = {
        "orgid": "globex",
        "authorization": sign_in(api, "admin@globex.test", "globex-admin-pass", "globex")["token"],
    }
    foreign = create_key(api, globex_admin)

    def flipped(value: str) -> str:
        return value[:-1] + ("A" if value[-1] != "A" else "B")

    wrong: list[Callable[[dict[str, Any]], dict[str, Any]]] = [
        lambda k: credentials(k) | {"secret": other["key"]},  # another key's value
        lambda k: credentials(k) | {"secret": flipped(k["key"])},  # its checksum fails
        lambda k: credentials(k) | {"secret": "not-a-key"},
        lambda k: credentials(k) | {"appId": other["id"]},
        lambda k: credentials(k) | {"appId": "0" * 32},
        lambda k: credentials(k) | {"key": other["prefix"]},
        lambda k: credentials(k) | {"key": "aek_00000000"},
        lambda _: credentials(revoked),
        lambda _: credentials(foreign),  # a key of another org, presented to acme
    ]
    # When each is presented (each from an address of its own)
    bodies = []
    for make in wrong:
        body = make(create_key(api, admin))
        response = send_from(api, own_address(), "POST", "/profile/app/key", {"orgid": ORG}, body)
        # Then each is the same 401, whatever was wrong
        assert_error(response, 401, "invalid_credentials")
        bodies.append({k: v for k, v in response.json().items() if k != "requestId"})
    assert all(b == bodies[0] for b in bodies), bodies
    # And right credentials work, in their key's org only
    assert issue(api, credentials(foreign), "globex").status == 200
    good = credentials(create_key(api, admin))
    assert issue(api, good).status == 200
    assert_error(
        send_from(api, own_address(), "POST", "/profile/app/key", {"orgid": "globex"}, good),
        401,
        "invalid_credentials",
    )


def test_failed_attempts_are_throttled_like_sign_ins(api: LocalApi, admin: dict[str, str]) -> None:
    # Given a key, and someone guessing its secret from one address
    key, other = create_key(api, admin), create_key(api, admin)
    source = own_address()
    guess = credentials(key) | {"secret": other["key"]}
    one_window()
    # When five guesses fail / Then each is 401, and from then on every attempt for the key is 429
    for _ in range(5):
        failed = send_from(api, source, "POST", "/profile/app/key", {"orgid": ORG}, guess)
        assert_error(failed, 401, "invalid_credentials")
    for body in (guess, credentials(key)):
        locked = send_from(api, own_address(), "POST", "/profile/app/key", {"orgid": ORG}, body)
        assert_error(locked, 429, "rate_limited")
        assert 1 <= int(locked.headers["retry-after"]) <= 60
    # And the key itself, and the app tokens already issued, keep working
    assert whoami(api, {"orgid": ORG, "x-api-key": key["key"]}).status == 200


# -- used as the key -------------------------------------------------------------------------------
def test_an_app_token_has_its_keys_scopes(api: LocalApi, admin: dict[str, str]) -> None:
    # Given a read key's app token
    reader = as_app(app_token(api, create_key(api, admin, scopes=["read"])))
    # When it reads / Then it may
    assert api.post("/repository/find/note", headers=reader, body={"query": {}}).status == 200
    # When it writes / Then 403
    refused = api.post("/repository/create", headers=reader, body={"datatype": "note", "data": {}})
    assert_error(refused, 403, "forbidden")
    # And a write key's app token writes
    writer = as_app(app_token(api, create_key(api, admin, scopes=["read", "write"])))
    created = api.post("/repository/create", headers=writer, body={"datatype": "note", "data": {"n": 1}})
    assert created.status == 201, created.text


def test_the_key_and_its_app_tokens_share_one_rate_limit(api: LocalApi, admin: dict[str, str]) -> None:
    # Given a key of 4 requests a minute and two app tokens of it
    key = create_key(api, admin, rateLimit={"requestsPerMinute": 4})
    first, second = app_token(api, key), app_token(api, key)
    one_window()
    credentials_in_turn = [
        {"orgid": ORG, "x-api-key": key["key"]},
        as_app(first),
        as_app(second),
        {"orgid": ORG, "x-api-key": key["key"]},
    ]
    # When each is used once / Then all pass: 4 requests in all
    for headers in credentials_in_turn:
        assert whoami(api, headers).status == 200
    # And the next request is over the limit, whichever of them makes it
    for headers in credentials_in_turn:
        over = whoami(api, headers)
        assert_error(over, 429, "rate_limited")
        assert int(over.headers["retry-after"]) >= 1
    assert usage_of(api, admin, key) == 4


def test_regenerating_or_revoking_the_key_ends_its_app_tokens(api: LocalApi, admin: dict[str, str]) -> None:
    # Given a key and an app token of it
    key = create_key(api, admin)
    token = app_token(api, key)
    assert whoami(api, as_app(token)).status == 200
    # When the key is regenerated / Then the token is refused from the next request, and so are the
    # old credentials
    fresh = api.post(f"/api-key/regenerate/{key['id']}", headers=admin)
    assert fresh.status == 200, fresh.text
    renewed = key | {"key": fresh.json()["key"], "prefix": fresh.json()["prefix"]}
    assert_error(whoami(api, as_app(token)), 401, "unauthorized")
    stale = send_from(api, own_address(), "POST", "/profile/app/key", {"orgid": ORG}, credentials(key))
    assert_error(stale, 401, "invalid_credentials")
    # And the new credentials give a token that works until the key is revoked
    renewed_token = app_token(api, renewed)
    assert whoami(api, as_app(renewed_token)).status == 200
    assert api.request("DELETE", f"/api-key/{key['id']}", headers=admin).status == 200
    assert_error(whoami(api, as_app(renewed_token)), 401, "unauthorized")


def test_a_disabled_owner_ends_its_keys_app_tokens(api: LocalApi, admin: dict[str, str]) -> None:
    # Given a User of acme who may make keys, its key and an app token of it
    email = f"app-owner-{uuid.uuid4().hex[:10]}@acme.test"
    made = api.post(
        "/user/create",
        headers=admin,
        body={"email": email, "password": PASSWORD, "roles": ["User"], "permissions": ["read", "create"]},
    )
    assert made.status == 201, made.text
    owner = {"orgid": ORG, "authorization": sign_in(api, email, PASSWORD, ORG)["token"]}
    key = create_key(api, owner, scopes=["read"])
    token = app_token(api, key)
    assert whoami(api, as_app(token)).status == 200
    # When the owner is disabled in acme
    disabled = api.post(f"/user/update/{made.json()['sk']}", headers=admin, body={"disabled": True})
    assert disabled.status == 200, disabled.text
    # Then the app token is refused from the next request, as the key is, and no new one is issued
    assert_error(whoami(api, as_app(token)), 401, "unauthorized")
    assert_error(whoami(api, {"orgid": ORG, "x-api-key": key["key"]}), 401, "unauthorized")
    refused = send_from(api, own_address(), "POST", "/profile/app/key", {"orgid": ORG}, credentials(key))
    assert_error(refused, 401, "invalid_credentials")


def test_an_app_token_never_administers(api: LocalApi, admin: dict[str, str]) -> None:
    # Given an app token of a read-write key of the org's RootAdmin
    key = create_key(api, admin)
    app = as_app(app_token(api, key))
    user = {"email": f"x-{uuid.uuid4().hex[:8]}@acme.test", "password": PASSWORD, "roles": ["User"]}
    # When it manages keys, users, customers or sessions / Then 403: those take a person's token
    refusals = [
        api.post("/api-key/create", headers=app, body={"name": "x", "scopes": ["read"]}),
        api.get("/api-key/list", headers=app),
        api.get(f"/api-key/{key['id']}", headers=app),
        api.post(f"/api-key/regenerate/{key['id']}", headers=app),
        api.request("DELETE", f"/api-key/{key['id']}", headers=app),
        api.post("/user/create", headers=app, body=user | {"permissions": ["read"]}),
        api.get(f"/user/org/{ORG}", headers=app),
        api.post("/profile/signout", headers=app),
    ]
    for refused in refusals:
        assert_error(refused, 403, "forbidden")
    assert whoami(api, {"orgid": ORG, "x-api-key": key["key"]}).status == 200


# -- beside a person's token ----------------------------------------------------------------------
def test_beside_a_person_the_app_token_is_verified_and_the_person_decides(
    api: LocalApi, admin: dict[str, str]
) -> None:
    # Given a read key's app token and a customer's token, sent as AppEngine's clients send them
    key = create_key(api, admin, scopes=["read"], rateLimit={"requestsPerMinute": 3})
    token = app_token(api, key)
    buyer = sign_in(api, "buyer@acme.test", "acme-buyer-pass", ORG, kind="customer")["token"]
    one_window()
    both = {"orgid": ORG, "authorization": f"Bearer {token}", "x-client-authorization": f"Bearer {buyer}"}
    # When they call / Then the person decides: a customer, whom staff routes refuse whatever the key may
    me = whoami(api, both)
    assert me.status == 200, me.text
    assert me.json()["kind"] == "customer"
    assert_error(api.post("/repository/find/note", headers=both, body={"query": {}}), 403, "forbidden")
    # And a staff person's rights are not narrowed to the read key's scope: it writes
    staff = {**both, "x-client-authorization": admin["authorization"]}
    created = api.post("/repository/create", headers=staff, body={"datatype": "note", "data": {}})
    assert created.status == 201, created.text
    # And each call was counted against the key: past its limit, 429
    assert usage_of(api, admin, key) == 3
    assert_error(whoami(api, both), 429, "rate_limited")
    # And an invalid application credential beside a valid person is 401
    for bad in ("Bearer not-a-token", f"Bearer {token[:-4]}AAAA", f"Bearer {buyer}x"):
        assert_error(whoami(api, {**both, "authorization": bad}), 401, "unauthorized")


def test_beside_a_person_a_revoked_keys_app_token_is_401(api: LocalApi, admin: dict[str, str]) -> None:
    key = create_key(api, admin)
    token = app_token(api, key)
    buyer = sign_in(api, "buyer@acme.test", "acme-buyer-pass", ORG, kind="customer")["token"]
    both = {"orgid": ORG, "authorization": token, "x-client-authorization": buyer}
    assert whoami(api, both).status == 200
    assert api.request("DELETE", f"/api-key/{key['id']}", headers=admin).status == 200
    assert_error(whoami(api, both), 401, "unauthorized")
    # An app token is never a person's token
    assert_error(whoami(api, {"orgid": ORG, "x-client-authorization": token}), 401, "unauthorized")


def test_an_expired_app_token_is_401(api: LocalApi, admin: dict[str, str], signing_keyset: Any) -> None:
    # Given an app token of a live key whose lifetime has passed (signed with the stack's own key)
    import jwt
    from cryptography.hazmat.primitives import serialization

    key = create_key(api, admin)
    claims = jwt.decode(app_token(api, key), options={"verify_signature": False})
    current = signing_keyset["keys"][0]
    private = serialization.load_pem_private_key(current["privateKey"].encode(), password=None)
    past = int(time.time()) - 3600
    expired = jwt.encode(
        claims | {"iat": past, "nbf": past, "exp": past + 900},
        private,  # type: ignore[arg-type]
        algorithm="EdDSA",
        headers={"kid": current["kid"], "typ": "app+jwt"},
    )
    # When it is used / Then 401
    assert_error(whoami(api, as_app(expired)), 401, "unauthorized")
