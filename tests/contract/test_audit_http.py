"""Issue 15, the security audit log, over HTTP through the local gateway: security events published by
real requests reach the audit function through the template's EventBridge rule (the local stack's rule
dispatcher) and GET /profile/security/audit shows them to the org's RootAdmin, newest first.

The events arrive asynchronously (the bus is drained every half second), so each check polls the log
for a few seconds. Failing sign-ins speak from an address of their own (see ``test_lockout_http``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from boto3.dynamodb.conditions import Key

from tests.contract.conftest import HttpResponse, LocalApi, sign_in
from tests.contract.test_platform_http import assert_error
from tests.contract.test_storefront_security_http import own_address, send_from, table_of

AUDIT = "/profile/security/audit"
PASSWORD = "audit-pass-1234"
WAIT_SECONDS = 15


def bearer(
    api: LocalApi, email: str, password: str, orgid: str = "acme", kind: str = "user"
) -> dict[str, str]:
    return {"orgid": orgid, "authorization": "Bearer " + sign_in(api, email, password, orgid, kind)["token"]}


def admin(api: LocalApi) -> dict[str, str]:
    return bearer(api, "admin@acme.test", "acme-admin-pass")


def poll(
    api: LocalApi, headers: dict[str, str], query: str, done: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """The log's first page for ``query`` once ``done`` holds for it (fails after ``WAIT_SECONDS``)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        response = api.get(AUDIT + query, headers=headers)
        assert response.status == 200, response.text
        events: list[dict[str, Any]] = response.json()["data"]
        if done(events):
            return events
        assert time.monotonic() < deadline, f"the audit log never showed the events: {response.text[:1000]}"
        time.sleep(0.25)


def new_user(api: LocalApi, headers: dict[str, str], roles: list[str]) -> dict[str, Any]:
    email = f"audit-{uuid.uuid4().hex[:12]}@acme.test"
    created = api.post(
        "/user/create",
        headers=headers,
        body={"email": email, "password": PASSWORD, "roles": roles, "permissions": ["read"]},
    )
    assert created.status == 201, created.text
    return dict(created.json())


def test_sign_in_events_reach_the_audit_log_newest_first(api: LocalApi) -> None:
    # Given a new staff user of acme, a wrong password for it, and then its sign-in
    acme_admin = admin(api)
    user = new_user(api, acme_admin, ["User"])
    email = user["data"]["email"]
    wrong = send_from(
        api,
        own_address(),
        "POST",
        "/profile/signin",
        {"orgid": "acme"},
        {"email": email, "password": "nope-nope"},
    )
    assert_error(wrong, 401, "invalid_credentials")
    sign_in(api, email, PASSWORD, "acme")
    # When acme's RootAdmin reads the log about that user (by its pk), and its failed sign-ins
    about = poll(api, acme_admin, f"?principal={user['pk']}", lambda e: len(e) >= 2)
    failed = poll(
        api,
        acme_admin,
        "?type=auth.sign_in_failed&ps=100",
        lambda events: any(e["detail"].get("email") == email for e in events),
    )
    # Then the user's events come newest first: its sign-in, then its creation by the admin
    assert [e["type"] for e in about] == ["auth.signed_in", "user.created"]
    signed_in, created = about
    assert signed_in["principal"] == user["sk"] and signed_in["detail"]["method"] == "password"
    assert signed_in["time"] > created["time"] and created["actor"].startswith("acme:user:")
    # And the failed sign-in shows the facts, never the password tried
    (mine,) = [e for e in failed if e["detail"].get("email") == email]
    assert mine["detail"] == {"kind": "user", "email": email, "reason": "wrong_password"}
    assert mine["orgid"] == "acme" and mine["time"] < signed_in["time"]
    # The same filter by the user's sk gives the same events
    assert poll(api, acme_admin, f"?principal={user['sk']}", lambda e: len(e) >= 2) == about


def test_audit_items_are_whitelisted_with_a_ttl_and_hold_no_secret(api: LocalApi) -> None:
    # Given events that went through requests carrying passwords and tokens
    acme_admin = admin(api)
    user = new_user(api, acme_admin, ["User"])
    session = sign_in(api, user["data"]["email"], PASSWORD, "acme")
    signed_out = api.post("/profile/signout", headers={"orgid": "acme", "authorization": session["token"]})
    assert signed_out.status == 200, signed_out.text
    poll(api, acme_admin, f"?principal={user['pk']}", lambda e: "auth.signed_out" in [x["type"] for x in e])
    # When acme's audit items are read from the table itself
    items = table_of(api).query(KeyConditionExpression=Key("PK").eq("acme:#audit"), ScanIndexForward=False)
    mine = [i for i in items["Items"] if user["sk"] in json.dumps(i, default=str)]
    # Then each carries a TTL about 400 days out and no password, token or refresh token
    assert len(mine) >= 3
    now = time.time()
    assert all(now + 399 * 86400 < int(i["ttl"]) < now + 401 * 86400 for i in mine)
    text = json.dumps(mine, default=str)
    for secret in (PASSWORD, session["token"], session["refreshToken"]):
        assert secret not in text
    assert all(i["SK"].startswith("acme:#audit:") for i in items["Items"])


def test_only_the_orgs_root_admin_reads_it(api: LocalApi) -> None:
    acme_admin = admin(api)
    config_admin = new_user(api, acme_admin, ["ConfigAdmin"])
    key = api.post("/api-key/create", headers=acme_admin, body={"name": "audit", "scopes": ["read", "write"]})
    assert key.status == 201, key.text
    refused: dict[str, HttpResponse] = {
        "config admin": api.get(AUDIT, headers=bearer(api, config_admin["data"]["email"], PASSWORD)),
        "reader": api.get(AUDIT, headers=bearer(api, "reader@acme.test", "acme-reader-pass")),
        "customer": api.get(
            AUDIT, headers=bearer(api, "buyer@acme.test", "acme-buyer-pass", kind="customer")
        ),
        "api key": api.get(AUDIT, headers={"orgid": "acme", "x-api-key": key.json()["key"]}),
        "globex admin": api.get(
            AUDIT, headers=bearer(api, "admin@globex.test", "globex-admin-pass", "globex") | {"orgid": "acme"}
        ),
    }
    for who, response in refused.items():
        assert response.status == 403, who
        assert_error(response, 403, "forbidden")
    assert_error(api.get(AUDIT, headers={"orgid": "acme"}), 401, "unauthorized")
    # The platform root reads acme's log
    root = bearer(api, "root@platform.test", "platform-root-pass", "platform") | {"orgid": "acme"}
    assert api.get(AUDIT, headers=root).status == 200


def test_an_org_never_sees_another_orgs_events(api: LocalApi) -> None:
    # Given an event of acme (a user created) and one of globex (its admin signs in)
    acme_admin = admin(api)
    user = new_user(api, acme_admin, ["User"])
    globex_admin = bearer(api, "admin@globex.test", "globex-admin-pass", "globex")
    poll(api, acme_admin, f"?principal={user['pk']}", lambda e: len(e) >= 1)
    globex = poll(api, globex_admin, "?type=auth.signed_in&ps=100", lambda e: len(e) >= 1)
    # Then globex's log holds globex's events only, and never acme's user
    assert {e["orgid"] for e in globex} == {"globex"}
    everything = api.get(AUDIT + "?ps=100", headers=globex_admin)
    assert everything.status == 200 and user["sk"] not in everything.text
    assert api.get(AUDIT + f"?principal={user['pk']}", headers=globex_admin).json()["data"] == []


def test_a_persons_call_through_an_application_is_audited_with_both(api: LocalApi) -> None:
    # Given an application (an app token from an API key of acme) and acme's admin signed in
    acme_admin = admin(api)
    key = api.post("/api-key/create", headers=acme_admin, body={"name": "app", "scopes": ["read", "write"]})
    assert key.status == 201, key.text
    issued = api.post(
        "/profile/app/key",
        headers={"orgid": "acme"},
        body={"appId": key.json()["id"], "key": key.json()["prefix"], "secret": key.json()["key"]},
    )
    assert issued.status == 200, issued.text
    through_app = {
        "orgid": "acme",
        "authorization": f"Bearer {issued.json()['token']}",
        "x-client-authorization": acme_admin["authorization"],
    }

    # When the admin creates a user through the application, as AppEngine's clients do
    user = new_user(api, through_app, ["User"])

    # Then the audit log names the person as the actor and the application beside it
    (created,) = poll(api, acme_admin, f"?type=user.created&principal={user['pk']}", lambda e: len(e) == 1)
    assert created["actor"].startswith("acme:user:")
    assert created["detail"]["application"] == key.json()["id"]
