"""Contract §5 and §1 over HTTP: who may do what with API keys (issue 13, items 1 and 10).

Only a key's owner regenerates it: a plaintext is never handed to anyone but the User the key acts as.
Key admins (RootAdmin, ConfigAdmin) list, read and revoke every key of their org; a User with `create`
manages its own keys only; an API key never manages keys. A revoke racing a regenerate ends revoked.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pytest

from tests.contract.conftest import HttpResponse, LocalApi, sign_in
from tests.contract.test_platform_http import assert_error


def headers_of(api: LocalApi, email: str, password: str, orgid: str = "acme") -> dict[str, str]:
    return {"orgid": orgid, "authorization": sign_in(api, email, password, orgid)["token"]}


@pytest.fixture(scope="module")
def admin(api: LocalApi) -> dict[str, str]:
    return headers_of(api, "admin@acme.test", "acme-admin-pass")


@pytest.fixture(scope="module")
def root_in_acme(api: LocalApi) -> dict[str, str]:
    # A platform root acting on acme (contract §1): it signs in at its platform org.
    token = sign_in(api, "root@platform.test", "platform-root-pass", "platform")["token"]
    return {"orgid": "acme", "authorization": token}


def new_staff(
    api: LocalApi, admin: dict[str, str], roles: list[str], permissions: list[str]
) -> dict[str, str]:
    """A fresh acme User (unique email), signed in."""
    email = f"keys-{uuid.uuid4().hex[:10]}@acme.test"
    created = api.post(
        "/user/create",
        headers=admin,
        body={"email": email, "password": "keys-pass-123", "roles": roles, "permissions": permissions},
    )
    assert created.status == 201, created.text
    return headers_of(api, email, "keys-pass-123")


def create_key(api: LocalApi, headers: dict[str, str], scopes: list[str] | None = None) -> dict[str, Any]:
    body = {"name": f"own-{uuid.uuid4().hex[:6]}", "scopes": scopes or ["read", "write"]}
    created = api.post("/api-key/create", headers=headers, body=body)
    assert created.status == 201, created.text
    return dict(created.json())


def listed_ids(api: LocalApi, headers: dict[str, str]) -> set[str]:
    """Every key id the caller may list, page after page (the shared stack holds many keys)."""
    ids: set[str] = set()
    path = "/api-key/list?ps=100"
    for _ in range(50):
        listed = api.get(path, headers=headers)
        assert listed.status == 200, listed.text
        ids |= {k["id"] for k in listed.json()["data"]}
        if not listed.json()["next"]:
            return ids
        path = f"/api-key/list?ps=100&next={quote(listed.json()['next'])}"
    raise AssertionError("the key list does not end")


def whoami_with(api: LocalApi, key: str) -> HttpResponse:
    return api.get("/profile/whoami", headers={"orgid": "acme", "x-api-key": key})


def test_only_a_key_s_owner_regenerates_it(
    api: LocalApi, admin: dict[str, str], root_in_acme: dict[str, str]
) -> None:
    # Given a key of a User with `create`, and a key a platform root created in acme
    owner = new_staff(api, admin, ["User"], ["read", "create"])
    users_key = create_key(api, owner)
    roots_key = create_key(api, root_in_acme)

    # When the org's RootAdmin or a platform root regenerates a key they do not own
    # Then 403, and no plaintext leaves the service: the old values still work
    for key, stranger in ((users_key, admin), (users_key, root_in_acme), (roots_key, admin)):
        refused = api.post(f"/api-key/regenerate/{key['id']}", headers=stranger)
        assert_error(refused, 403, "forbidden")
        assert "key" not in refused.json()
        assert whoami_with(api, key["key"]).status == 200

    # When the owner regenerates its own key / Then it gets the new plaintext, and the old one stops
    renewed = api.post(f"/api-key/regenerate/{users_key['id']}", headers=owner)
    assert renewed.status == 200, renewed.text
    assert renewed.json()["id"] == users_key["id"] and renewed.json()["key"] != users_key["key"]
    assert_error(whoami_with(api, users_key["key"]), 401, "unauthorized")
    assert whoami_with(api, renewed.json()["key"]).status == 200
    mine = api.post(f"/api-key/regenerate/{roots_key['id']}", headers=root_in_acme)
    assert mine.status == 200, mine.text


def test_key_admins_list_read_and_revoke_every_key_of_the_org(
    api: LocalApi, admin: dict[str, str], root_in_acme: dict[str, str]
) -> None:
    # Given keys of a User and of the platform root in acme, and a ConfigAdmin of acme
    owner = new_staff(api, admin, ["User"], ["read", "create"])
    config_admin = new_staff(api, admin, ["ConfigAdmin"], ["read"])
    users_key = create_key(api, owner)
    roots_key = create_key(api, root_in_acme)

    for key_admin in (admin, config_admin):
        # When a key admin lists and reads / Then it sees every key of the org, metadata only
        assert {users_key["id"], roots_key["id"]} <= listed_ids(api, key_admin)
        one = api.get(f"/api-key/{users_key['id']}", headers=key_admin)
        assert one.status == 200 and one.json()["createdBy"] and "key" not in one.json()

    # When a ConfigAdmin revokes keys it does not own / Then they stop at once
    for key in (users_key, roots_key):
        revoked = api.request("DELETE", f"/api-key/{key['id']}", headers=config_admin)
        assert revoked.status == 200 and revoked.json() == {"ok": True}
        assert_error(whoami_with(api, key["key"]), 401, "unauthorized")
        assert api.get(f"/api-key/{key['id']}", headers=admin).json()["state"] == "revoked"


def test_a_user_with_create_manages_its_own_keys_only(api: LocalApi, admin: dict[str, str]) -> None:
    # Given two Users with `create`, each with a key, and a key of the org's RootAdmin
    alice = new_staff(api, admin, ["User"], ["read", "create"])
    bob = new_staff(api, admin, ["User"], ["read", "create"])
    alices, bobs, admins = create_key(api, alice), create_key(api, bob), create_key(api, admin)

    # When Alice lists / Then only her own key
    assert listed_ids(api, alice) == {alices["id"]}

    # When Alice reads, revokes or regenerates someone else's key / Then refused, and the key still works
    for other in (bobs, admins):
        assert_error(api.get(f"/api-key/{other['id']}", headers=alice), 404, "not_found")
        assert_error(api.request("DELETE", f"/api-key/{other['id']}", headers=alice), 404, "not_found")
        assert_error(api.post(f"/api-key/regenerate/{other['id']}", headers=alice), 403, "forbidden")
        assert whoami_with(api, other["key"]).status == 200

    # When she revokes her own / Then it stops
    assert api.request("DELETE", f"/api-key/{alices['id']}", headers=alice).json() == {"ok": True}
    assert_error(whoami_with(api, alices["key"]), 401, "unauthorized")


@pytest.mark.parametrize("scopes", [["read"], ["write"], ["read", "write"]])
def test_api_keys_never_manage_keys(api: LocalApi, admin: dict[str, str], scopes: list[str]) -> None:
    # Given a key of the org's RootAdmin, and another key of the org
    key = create_key(api, admin, scopes)
    target = create_key(api, admin)
    with_key = {"orgid": "acme", "x-api-key": key["key"]}

    # When the key calls any /api-key/* route / Then 403: keys are managed with a person's token
    calls = [
        ("POST", "/api-key/create", {"name": "by-key", "scopes": ["read"]}),
        ("GET", "/api-key/list", None),
        ("GET", f"/api-key/{target['id']}", None),
        ("POST", f"/api-key/regenerate/{target['id']}", None),
        ("POST", f"/api-key/regenerate/{key['id']}", None),
        ("DELETE", f"/api-key/{target['id']}", None),
        ("DELETE", f"/api-key/{key['id']}", None),
    ]
    for method, path, body in calls:
        assert_error(api.request(method, path, headers=with_key, body=body), 403, "forbidden")

    # And nothing changed: both keys are active with their original values
    for unchanged in (target, key):
        view = api.get(f"/api-key/{unchanged['id']}", headers=admin).json()
        assert view["state"] == "active" and view["prefix"] == unchanged["prefix"]
    assert whoami_with(api, target["key"]).status == 200


def test_a_revoke_racing_a_regenerate_ends_revoked(api: LocalApi, admin: dict[str, str]) -> None:
    # Given a key of the org's RootAdmin (owner and key admin at once)
    statuses: list[int] = []
    with ThreadPoolExecutor(max_workers=3) as pool:
        for _ in range(10):
            key = create_key(api, admin)
            start = threading.Barrier(3)

            def regenerate(key_id: str = key["id"], start: threading.Barrier = start) -> HttpResponse:
                start.wait()
                return api.post(f"/api-key/regenerate/{key_id}", headers=admin)

            def revoke(key_id: str = key["id"], start: threading.Barrier = start) -> HttpResponse:
                start.wait()
                return api.request("DELETE", f"/api-key/{key_id}", headers=admin)

            # When a revoke and two regenerates of the key run at the same moment
            racing = [pool.submit(regenerate), pool.submit(revoke), pool.submit(regenerate)]
            answers = [f.result(timeout=30) for f in racing]
            statuses += [a.status for a in answers]

            # Then the revoke succeeds, each regenerate succeeds or is a 409 conflict, never a 500
            assert answers[1].status == 200 and answers[1].json() == {"ok": True}, answers[1].text
            for regenerated in (answers[0], answers[2]):
                assert regenerated.status in (200, 409), regenerated.text
            # And the key ends revoked: neither the old nor any new plaintext authenticates
            assert api.get(f"/api-key/{key['id']}", headers=admin).json()["state"] == "revoked"
            plaintexts = [key["key"]] + [a.json()["key"] for a in (answers[0], answers[2]) if a.status == 200]
            for plaintext in plaintexts:
                assert_error(whoami_with(api, plaintext), 401, "unauthorized")
    assert 500 not in statuses
