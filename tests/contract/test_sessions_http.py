"""Contract §4, sessions and devices, over HTTP: a person lists its own active sessions (``current`` is
the one of the call) and revokes one or all the others; the org's RootAdmin/ConfigAdmin lists and
revokes those of its Users and Customers. A revoked session's access and refresh tokens are 401 from
the next request; another principal's session, an unknown one and another org's principal are 404;
customers and API keys are 403 on the admin routes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.contract.conftest import LocalApi, sign_in
from tests.contract.test_platform_http import assert_error

ORG = "acme"
PASSWORD = "sessions-pass-1234"
SESSION_FIELDS = {"id", "kind", "method", "userAgent", "sourceIp", "createdAt", "lastSeenAt", "current"}


def headers_of(signed_in: dict[str, Any], orgid: str = ORG) -> dict[str, str]:
    return {"orgid": orgid, "authorization": "Bearer " + signed_in["token"]}


@pytest.fixture(scope="module")
def admin(api: LocalApi) -> dict[str, str]:
    return headers_of(sign_in(api, "admin@acme.test", "acme-admin-pass", ORG))


def new_customer(api: LocalApi) -> dict[str, Any]:
    email = f"sessions-{uuid.uuid4().hex[:12]}@acme.test"
    response = api.post(
        "/profile/customer/signup", headers={"orgid": ORG}, body={"email": email, "password": PASSWORD}
    )
    assert response.status == 201, response.text
    return {"email": email, "pk": response.json()["customer"]["pk"], "signed_in": response.json()}


def new_user(api: LocalApi, admin: dict[str, str]) -> dict[str, Any]:
    email = f"sessions-{uuid.uuid4().hex[:12]}@acme.test"
    created = api.post(
        "/user/create",
        headers=admin,
        body={"email": email, "password": PASSWORD, "roles": ["User"], "permissions": ["read"]},
    )
    assert created.status == 201, created.text
    return {"email": email, "pk": created.json()["pk"], "sk": created.json()["sk"]}


def customer_sign_in(api: LocalApi, email: str) -> dict[str, Any]:
    return sign_in(api, email, PASSWORD, ORG, kind="customer")


def sessions(api: LocalApi, headers: dict[str, str], path: str = "/profile/security/sessions") -> list[Any]:
    response = api.get(path, headers=headers)
    assert response.status == 200, response.text
    body = response.json()
    assert set(body) == {"data", "page", "pageSize", "hasNext", "next"}
    return list(body["data"])


def refresh(api: LocalApi, token: str, kind: str = "customer") -> int:
    return api.post(f"/profile/{kind}/refresh", headers={"orgid": ORG}, body={"refreshToken": token}).status


def test_a_person_lists_its_sessions_with_the_current_one_flagged(api: LocalApi) -> None:
    customer = new_customer(api)
    second = customer_sign_in(api, customer["email"])
    listed = sessions(api, headers_of(second))
    # Given the sign-up's session and a sign-in's: both listed, the calling one is current
    assert len(listed) == 2
    assert all(set(s) == SESSION_FIELDS for s in listed)
    current = [s for s in listed if s["current"]]
    assert len(current) == 1
    assert all(s["kind"] == "customer" and s["method"] == "password" for s in listed)
    assert all(isinstance(s["createdAt"], int) and s["lastSeenAt"] >= s["createdAt"] for s in listed)
    # And the other one is current from its own token
    other = sessions(api, headers_of(customer["signed_in"]))
    assert {s["id"] for s in other if s["current"]} != {current[0]["id"]}


def test_a_revoked_session_is_401_from_the_next_request_and_no_longer_listed(api: LocalApi) -> None:
    customer = new_customer(api)
    keeper = customer_sign_in(api, customer["email"])
    victim = customer["signed_in"]
    listed = sessions(api, headers_of(keeper))
    victim_id = next(s["id"] for s in listed if not s["current"])
    # When the keeper revokes the other session
    revoked = api.request("DELETE", f"/profile/security/sessions/{victim_id}", headers=headers_of(keeper))
    assert revoked.status == 200, revoked.text
    assert revoked.json() == {"ok": True}
    # Then its access token and its refresh token are refused
    assert_error(api.get("/profile/whoami", headers=headers_of(victim)), 401, "unauthorized")
    assert refresh(api, victim["refreshToken"]) == 401
    # And it is gone from the list; revoking it again is 404
    assert [s["id"] for s in sessions(api, headers_of(keeper))] != [victim_id]
    assert victim_id not in {s["id"] for s in sessions(api, headers_of(keeper))}
    again = api.request("DELETE", f"/profile/security/sessions/{victim_id}", headers=headers_of(keeper))
    assert_error(again, 404, "not_found")
    assert api.get("/profile/whoami", headers=headers_of(keeper)).status == 200


def test_revoke_others_keeps_only_the_current_session(api: LocalApi) -> None:
    customer = new_customer(api)
    others = [customer["signed_in"], customer_sign_in(api, customer["email"])]
    keeper = customer_sign_in(api, customer["email"])
    assert len(sessions(api, headers_of(keeper))) == 3
    response = api.post("/profile/security/sessions/revoke-others", headers=headers_of(keeper))
    assert response.status == 200, response.text
    assert response.json() == {"ok": True}
    listed = sessions(api, headers_of(keeper))
    assert len(listed) == 1 and listed[0]["current"] is True
    for other in others:
        assert api.get("/profile/whoami", headers=headers_of(other)).status == 401
        assert refresh(api, other["refreshToken"]) == 401
    # The kept session still refreshes
    assert refresh(api, keeper["refreshToken"]) == 200


def test_another_principals_session_or_an_unknown_one_is_404(api: LocalApi) -> None:
    mine, theirs = new_customer(api), new_customer(api)
    their_id = sessions(api, headers_of(theirs["signed_in"]))[0]["id"]
    for session_id in (their_id, "0" * 32, "not-a-session"):
        response = api.request(
            "DELETE", f"/profile/security/sessions/{session_id}", headers=headers_of(mine["signed_in"])
        )
        assert_error(response, 404, "not_found")
    # The other customer's session is untouched
    assert api.get("/profile/whoami", headers=headers_of(theirs["signed_in"])).status == 200


def test_an_admin_lists_and_revokes_a_users_and_a_customers_sessions(
    api: LocalApi, admin: dict[str, str]
) -> None:
    user = new_user(api, admin)
    user_session = sign_in(api, user["email"], PASSWORD, ORG)
    for path_id in (user["pk"], user["sk"]):
        listed = sessions(api, admin, f"/user/{path_id}/sessions")
        assert len(listed) == 1 and listed[0]["kind"] == "user" and listed[0]["current"] is False
    session_id = sessions(api, admin, f"/user/{user['pk']}/sessions")[0]["id"]
    revoked = api.request("DELETE", f"/user/{user['pk']}/sessions/{session_id}", headers=admin)
    assert revoked.status == 200, revoked.text
    assert api.get("/profile/whoami", headers=headers_of(user_session)).status == 401
    assert refresh(api, user_session["refreshToken"], "user") == 401
    assert sessions(api, admin, f"/user/{user['pk']}/sessions") == []

    customer = new_customer(api)
    listed = sessions(api, admin, f"/customer/{customer['pk']}/sessions")
    assert len(listed) == 1 and listed[0]["kind"] == "customer"
    # A session of another principal named under this customer is 404
    assert_error(
        api.request("DELETE", f"/customer/{customer['pk']}/sessions/{session_id}", headers=admin),
        404,
        "not_found",
    )
    revoked = api.request("DELETE", f"/customer/{customer['pk']}/sessions/{listed[0]['id']}", headers=admin)
    assert revoked.status == 200, revoked.text
    assert api.get("/profile/whoami", headers=headers_of(customer["signed_in"])).status == 401


def test_another_orgs_principals_are_404_to_an_admin(api: LocalApi, admin: dict[str, str]) -> None:
    globex_admin = headers_of(sign_in(api, "admin@globex.test", "globex-admin-pass", "globex"), "globex")
    acme_user = new_user(api, admin)
    sign_in(api, acme_user["email"], PASSWORD, ORG)
    acme_customer = new_customer(api)
    for path in (f"/customer/{acme_customer['pk']}/sessions", f"/user/{acme_user['pk']}/sessions"):
        assert_error(api.get(path, headers=globex_admin), 404, "not_found")
        assert_error(api.request("DELETE", f"{path}/{'0' * 32}", headers=globex_admin), 404, "not_found")
    # And the acme principals' sessions are still there
    assert len(sessions(api, admin, f"/user/{acme_user['pk']}/sessions")) == 1


def test_customers_and_api_keys_are_refused(api: LocalApi, admin: dict[str, str]) -> None:
    customer = new_customer(api)
    as_customer = headers_of(customer["signed_in"])
    for method, path in (
        ("GET", f"/customer/{customer['pk']}/sessions"),
        ("DELETE", f"/customer/{customer['pk']}/sessions/{'0' * 32}"),
        ("GET", "/user/user-x/sessions"),
    ):
        assert_error(api.request(method, path, headers=as_customer), 403, "forbidden")
    key = api.post("/api-key/create", headers=admin, body={"name": "sessions", "scopes": ["read", "write"]})
    assert key.status == 201, key.text
    with_key = {"orgid": ORG, "x-api-key": key.json()["key"]}
    for method, path in (
        ("GET", "/profile/security/sessions"),
        ("POST", "/profile/security/sessions/revoke-others"),
        ("DELETE", f"/profile/security/sessions/{'0' * 32}"),
        ("GET", f"/customer/{customer['pk']}/sessions"),
    ):
        assert_error(api.request(method, path, headers=with_key), 403, "forbidden")
