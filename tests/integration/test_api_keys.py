"""API keys end to end through the in-process gateway: lifecycle, every refusal path, limits, secrecy."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from appengine_core.infra import aws
from appengine_core.infra.envelope import Record
from appengine_local.runtime import LocalLambda
from tests.conftest import load_event
from tests.integration.conftest import bearer_for, body_of


def create_key(gateway: Any, owner: Record, **body: Any) -> dict[str, Any]:
    request = {"name": "ci", "scopes": ["read", "write"]} | body
    response = gateway.post("/api-key/create", headers=bearer_for(owner), json=request)
    assert response.status_code == 201, response.text
    return dict(response.json)


def whoami_with_key(gateway: Any, key: str, orgid: str = "acme", **headers: str) -> Any:
    return gateway.get("/profile/whoami", headers={"orgid": orgid, "x-api-key": key, **headers})


def test_create_shows_the_plaintext_once_and_the_key_acts_as_its_owner(
    gateway: Any, tenants: dict[str, Record]
) -> None:
    admin = tenants["acme_admin"]
    created = create_key(gateway, admin, description="deploy bot")
    assert created["key"].startswith("aek_") and created["prefix"] == created["key"][:12]
    assert created["state"] == "active" and created["createdBy"] == admin.sk
    response = whoami_with_key(gateway, created["key"])
    assert response.status_code == 200 and response.json["principal"]["sk"] == admin.sk
    listed = gateway.get("/api-key/list", headers=bearer_for(admin)).json
    one = gateway.get(f"/api-key/{created['id']}", headers=bearer_for(admin)).json
    assert listed["total"] == 1 and listed["data"][0]["id"] == created["id"]
    for view in (listed["data"][0], one):
        assert "key" not in view and created["key"] not in json.dumps(view)
        assert view["usageCount"] == 1 and view["lastUsedAt"]


def test_malformed_keys_are_refused_without_a_database_read(gateway: Any, tenants: dict[str, Record]) -> None:
    calls: list[str] = []
    # The authorizer runs in this process: count its DynamoDB calls.
    aws.dynamodb().meta.client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.append(model.name)
    )
    from appengine_core.keys.format import generate_key

    key = generate_key()
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    for bad in (tampered, "aek_nope", "x" * 42):
        calls.clear()
        response = whoami_with_key(gateway, bad)
        assert response.status_code == 401 and response.json["error"] == "unauthorized"
        assert "GetItem" not in calls and "BatchGetItem" not in calls


def test_resolving_a_key_is_one_read_and_one_conditional_write_then_the_write_alone(
    gateway: Any, tenants: dict[str, Record]
) -> None:
    from appengine_core.keys.authenticator import KeyAuthenticator

    created = create_key(gateway, tenants["acme_admin"])
    calls: list[str] = []
    aws.dynamodb().meta.client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.append(model.name)
    )
    # A container that has not seen the key reads it, then admits the request
    keys = KeyAuthenticator()
    principal = keys.authenticate(created["key"], "acme")
    assert principal.credential == "apikey" and principal.scopes == ("read", "write")
    assert calls == ["GetItem", "TransactWriteItems"]
    # Warm, the admission write alone (its conditions prove the cached item still true)
    calls.clear()
    assert keys.authenticate(created["key"], "acme") == principal
    assert calls == ["TransactWriteItems"]


def test_a_key_works_only_in_its_own_org(gateway: Any, tenants: dict[str, Record]) -> None:
    created = create_key(gateway, tenants["acme_admin"])
    assert whoami_with_key(gateway, created["key"], orgid="globex").status_code == 403
    assert whoami_with_key(gateway, created["key"], orgid="nosuchorg").status_code == 403


def test_an_unknown_well_formed_key_is_401(gateway: Any, tenants: dict[str, Record]) -> None:
    from appengine_core.keys.format import generate_key

    assert whoami_with_key(gateway, generate_key()).status_code == 401


def test_a_key_without_orgid_is_400(gateway: Any, tenants: dict[str, Record]) -> None:
    created = create_key(gateway, tenants["acme_admin"])
    response = gateway.get("/profile/whoami", headers={"x-api-key": created["key"]})
    assert response.status_code == 400 and response.json["error"] == "orgid_required"


def test_revoke_and_regenerate_take_effect_on_the_next_request(
    gateway: Any, tenants: dict[str, Record]
) -> None:
    admin = tenants["acme_admin"]
    created = create_key(gateway, admin)
    regenerated = gateway.post(f"/api-key/regenerate/{created['id']}", headers=bearer_for(admin))
    assert regenerated.status_code == 200
    new_key = regenerated.json["key"]
    assert new_key != created["key"] and regenerated.json["id"] == created["id"]
    assert whoami_with_key(gateway, created["key"]).status_code == 401
    assert whoami_with_key(gateway, new_key).status_code == 200
    assert gateway.delete(f"/api-key/{created['id']}", headers=bearer_for(admin)).json == {"ok": True}
    assert whoami_with_key(gateway, new_key).status_code == 401
    assert gateway.get(f"/api-key/{created['id']}", headers=bearer_for(admin)).json["state"] == "revoked"
    again = gateway.post(f"/api-key/regenerate/{created['id']}", headers=bearer_for(admin))
    assert again.status_code == 409


def test_a_disabled_owner_s_keys_stop_at_once_and_role_changes_apply(
    gateway: Any, tenants: dict[str, Record]
) -> None:
    from appengine_core.infra.store import TenantStore, Update

    admin, reader = tenants["acme_admin"], tenants["acme_reader"]
    # A reader may not make keys; give it `create` and it may (its own only).
    assert (
        gateway.post(
            "/api-key/create", headers=bearer_for(reader), json={"name": "r", "scopes": ["read"]}
        ).status_code
        == 403
    )
    gateway.post(
        f"/user/update/{reader.pk}", headers=bearer_for(admin), json={"permissions": ["read", "create"]}
    )
    created = create_key(gateway, reader, scopes=["read"])
    assert whoami_with_key(gateway, created["key"]).status_code == 200
    # Disabling the owner's membership in the key's org (any path that bumps its version) stops the key
    # on the very next request.
    TenantStore().update(
        Update(
            reader.key,
            "SET #d.#m.#o.#x = :t, #v = #v + :one",
            values={":t": True, ":one": 1},
            names={"#d": "data", "#m": "memberships", "#o": "acme", "#x": "disabled", "#v": "version"},
        )
    )
    assert whoami_with_key(gateway, created["key"]).status_code == 401


def test_expired_keys_are_refused_and_the_job_marks_them(
    gateway: Any, tenants: dict[str, Record], bus_messages: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    from appengine_core.ops.jobs import JOBS

    soon = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()
    created = create_key(gateway, tenants["acme_admin"], expiresAt=soon)
    admin_headers = bearer_for(tenants["acme_admin"])  # issued now, before the clock moves
    assert whoami_with_key(gateway, created["key"]).status_code == 200
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 60)
    assert whoami_with_key(gateway, created["key"]).status_code == 401
    assert JOBS["expire-api-keys"]() == {"expired": 1}
    assert JOBS["expire-api-keys"]() == {"expired": 0}
    view = gateway.get(f"/api-key/{created['id']}", headers=admin_headers).json
    assert view["state"] == "expired"
    kinds = [e["detail-type"] for e in bus_messages()]
    assert "apikey.created" in kinds and "apikey.expired" in kinds


def test_the_rate_limit_answers_429_with_retry_after(
    gateway: Any, tenants: dict[str, Record], monkeypatch: pytest.MonkeyPatch
) -> None:
    created = create_key(gateway, tenants["acme_admin"], rateLimit={"requestsPerMinute": 2})
    # Pin the clock 20 s into a minute so the window cannot roll over mid-test.
    minute = (int(time.time()) // 60 + 1) * 60
    monkeypatch.setattr(time, "time", lambda: minute + 20.0)
    statuses = [whoami_with_key(gateway, created["key"]).status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    refused = whoami_with_key(gateway, created["key"])
    assert refused.status_code == 429 and refused.json["error"] == "rate_limited"
    assert refused.headers["Retry-After"] == "41"
    # Refused requests are not counted; the next window admits again.
    monkeypatch.setattr(time, "time", lambda: minute + 61.0)
    assert whoami_with_key(gateway, created["key"]).status_code == 200


def test_a_jwt_wins_over_a_key_and_an_invalid_jwt_is_401_even_with_a_valid_key(
    gateway: Any, tenants: dict[str, Record]
) -> None:
    created = create_key(gateway, tenants["acme_admin"])
    customer_headers = bearer_for(tenants["acme_customer"])
    response = whoami_with_key(gateway, created["key"], authorization=customer_headers["authorization"])
    assert response.status_code == 200 and response.json["kind"] == "customer"
    assert whoami_with_key(gateway, created["key"], authorization="Bearer garbage").status_code == 401


def test_customers_and_keys_cannot_manage_keys(gateway: Any, tenants: dict[str, Record]) -> None:
    created = create_key(gateway, tenants["acme_admin"])
    assert gateway.get("/api-key/list", headers=bearer_for(tenants["acme_customer"])).status_code == 403
    with_key = {"orgid": "acme", "x-api-key": created["key"]}
    assert (
        gateway.post("/api-key/create", headers=with_key, json={"name": "x", "scopes": ["read"]}).status_code
        == 403
    )


def test_no_plaintext_key_in_any_stored_item_or_log(
    gateway: Any,
    tenants: dict[str, Record],
    aws_stack: dict[str, str],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    bus_messages: Any,
) -> None:
    caplog.set_level("DEBUG")
    for sdk in ("botocore", "boto3", "urllib3"):
        caplog.set_level("WARNING", logger=sdk)
    admin = tenants["acme_admin"]
    created = create_key(gateway, admin)
    whoami_with_key(gateway, created["key"])
    regenerated = gateway.post(f"/api-key/regenerate/{created['id']}", headers=bearer_for(admin)).json["key"]
    whoami_with_key(gateway, regenerated)
    table = aws_stack["AppTable"]
    # The test may Scan: it inspects everything stored, which no request path ever does.
    items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=table)["Items"]
    captured = capfd.readouterr()
    haystack = json.dumps(items) + captured.out + captured.err + caplog.text + json.dumps(bus_messages())
    for plaintext in (created["key"], regenerated):
        assert plaintext not in haystack
        assert plaintext[4:] not in haystack  # nor its random part alone


def test_the_api_key_sample_event_runs(functions: LocalLambda, tenants: dict[str, Record]) -> None:
    event = load_event("api-key-list")
    event["requestContext"]["authorizer"] = {
        "kind": "customer",
        "principalId": tenants["acme_customer"].sk,
        "orgid": "acme",
        "credential": "jwt",
    }
    event["headers"] = {"orgid": "acme"}
    response = functions.invoke("ApiKeysFunction", event)
    assert response["statusCode"] == 403 and body_of(response)["error"] == "forbidden"


# -- per-org owner rights (issue 13, item 3 as it applies to keys) -------------------------------------
EVERYTHING = ["create", "read", "update", "delete", "review", "approve"]


def shared_user(memberships: dict[str, dict[str, Any]]) -> Record:
    """A User of acme and globex whose rights are held per org (the stored shape of contract §1)."""
    from appengine_core.identity.directory import DirectoryService, NewUser
    from appengine_core.infra.store import TenantStore, Update

    record = DirectoryService().create_user(
        "acme",
        NewUser(
            email="consultant@acme.test",
            password="consultant-pass",
            roles=["User"],
            permissions=["read"],
            orgs=sorted(memberships),
        ),
    )
    TenantStore().update(
        Update(
            record.key,
            "SET #d.#m = :m, #v = #v + :one REMOVE #d.#r, #d.#p, #d.#x",
            values={":m": memberships, ":one": 1},
            names={
                "#d": "data",
                "#v": "version",
                "#m": "memberships",
                "#r": "roles",
                "#p": "permissions",
                "#x": "disabled",
            },
        )
    )
    return record


def set_membership(record: Record, orgid: str, membership: dict[str, Any] | None) -> None:
    from appengine_core.infra.store import TenantStore, Update

    if membership is None:
        expression, values = "REMOVE #d.#m.#o SET #v = #v + :one", {":one": 1}
    else:
        expression, values = "SET #d.#m.#o = :m, #v = #v + :one", {":one": 1, ":m": membership}
    TenantStore().update(
        Update(
            record.key,
            expression,
            values=values,
            names={"#d": "data", "#m": "memberships", "#v": "version", "#o": orgid},
        )
    )


def key_of(record: Record, orgid: str, membership: dict[str, Any], *, root: bool = False) -> str:
    """A key ``record`` creates in ``orgid`` with its membership there (what the authorizer would pass)."""
    from appengine_core.identity.principal import Caller, Principal
    from appengine_core.keys.models import ApiKeyCreate
    from appengine_core.keys.service import ApiKeyService

    actor = Principal(
        kind="user",
        principal_id=record.sk,
        orgid=orgid,
        roles=tuple(membership["roles"]),
        permissions=tuple(membership["permissions"]),
        platform_root=root,
    )
    caller = Caller(principal=actor, orgid=orgid)
    return ApiKeyService().create(caller, ApiKeyCreate(name="k", scopes=["read", "write"])).key


def test_a_key_acts_with_its_owner_s_membership_in_the_key_s_org_only(tenants: dict[str, Record]) -> None:
    from appengine_core.infra.errors import Unauthorized
    from appengine_core.keys.authenticator import KeyAuthenticator

    # Given a User who is RootAdmin in acme and a plain User with `create` in globex, with a key in each
    admin = {"roles": ["RootAdmin"], "permissions": EVERYTHING, "disabled": False}
    plain = {"roles": ["User"], "permissions": ["read", "create"], "disabled": False}
    consultant = shared_user({"acme": admin, "globex": plain})
    in_acme, in_globex = key_of(consultant, "acme", admin), key_of(consultant, "globex", plain)
    keys = KeyAuthenticator()

    # When the globex key is used / Then it has the globex membership, never the acme one
    principal = keys.authenticate(in_globex, "globex")
    assert (principal.roles, principal.permissions, principal.platform_root) == (
        ("User",),
        ("read", "create"),
        False,
    )
    assert keys.authenticate(in_acme, "acme").roles == ("RootAdmin",)

    # When the acme membership changes (the owner's version moves) / Then the globex key re-reads it and
    # still acts with globex's rights
    set_membership(consultant, "acme", admin | {"roles": ["RootAdmin", "ConfigAdmin"]})
    assert keys.authenticate(in_globex, "globex").roles == ("User",)
    assert keys.authenticate(in_acme, "acme").roles == ("RootAdmin", "ConfigAdmin")

    # When the globex membership is disabled, then removed / Then the globex key is refused (401), the
    # acme key keeps working
    set_membership(consultant, "globex", plain | {"disabled": True})
    with pytest.raises(Unauthorized):
        keys.authenticate(in_globex, "globex")
    set_membership(consultant, "globex", None)
    with pytest.raises(Unauthorized):
        keys.authenticate(in_globex, "globex")
    assert keys.authenticate(in_acme, "acme").roles == ("RootAdmin", "ConfigAdmin")


def test_a_platform_root_s_key_is_root_only_while_its_platform_membership_is(
    tenants: dict[str, Record],
) -> None:
    from appengine_core.infra.errors import Unauthorized
    from appengine_core.infra.store import TenantStore, Update
    from appengine_core.keys.authenticator import KeyAuthenticator

    # Given a key the platform root created in acme
    root = tenants["platform_root"]
    key = key_of(root, "acme", {"roles": ["RootAdmin"], "permissions": EVERYTHING}, root=True)
    keys = KeyAuthenticator()
    principal = keys.authenticate(key, "acme")
    assert principal.platform_root and principal.roles == ("RootAdmin",)

    # When its platform membership is demoted to a plain User / Then the key is refused in acme (401):
    # it was never a member of acme itself
    TenantStore().update(
        Update(
            root.key,
            "SET #d.#m.#o.#r = :user, #v = #v + :one",
            values={":user": ["User"], ":one": 1},
            names={"#d": "data", "#m": "memberships", "#o": "platform", "#r": "roles", "#v": "version"},
        )
    )
    with pytest.raises(Unauthorized):
        keys.authenticate(key, "acme")


def test_a_snapshot_from_before_per_org_rights_is_refreshed_on_first_use(tenants: dict[str, Record]) -> None:
    from appengine_core.infra.store import TenantStore, Update
    from appengine_core.keys.authenticator import KeyAuthenticator
    from appengine_core.keys.format import credential_key, key_hash

    # Given a key whose snapshot has the old global shape and claims more than the owner holds in acme
    plain = {"roles": ["User"], "permissions": ["read", "create"], "disabled": False}
    consultant = shared_user({"acme": plain, "platform": plain})
    key = key_of(consultant, "acme", plain)
    TenantStore().update(
        Update(
            credential_key(key_hash(key)),
            "SET ownerRoles = :r, ownerOrgs = :o REMOVE ownerPlatformRoot",
            values={":r": ["RootAdmin"], ":o": ["acme", "platform"]},
        )
    )

    # When it is used / Then it acts with the owner's acme membership, not as a platform root
    principal = KeyAuthenticator().authenticate(key, "acme")
    assert principal.roles == ("User",) and not principal.platform_root
    stored = TenantStore().get(credential_key(key_hash(key))) or {}
    assert stored["ownerPlatformRoot"] is False and "ownerOrgs" not in stored


# -- a revoke racing a regenerate (issue 13, item 10) -------------------------------------------------
def test_a_regenerate_landing_inside_a_revoke_still_ends_revoked(
    gateway: Any, tenants: dict[str, Record], monkeypatch: pytest.MonkeyPatch
) -> None:
    from appengine_core.identity.principal import Caller, Principal
    from appengine_core.infra.errors import Conflict, Unauthorized
    from appengine_core.keys.authenticator import KeyAuthenticator
    from appengine_core.keys.service import ApiKeyService

    # Given a key, and a revoke whose read is followed at once by the owner's regenerate
    admin = tenants["acme_admin"]
    created = create_key(gateway, admin)
    actor = Caller(
        principal=Principal(
            kind="user",
            principal_id=admin.sk,
            orgid="acme",
            roles=("RootAdmin",),
            permissions=tuple(EVERYTHING),
        ),
        orgid="acme",
    )
    service = ApiKeyService()
    read_for_revoke = service._load
    regenerated: list[str] = []

    def read_then_lose_the_race(*args: Any) -> Any:
        loaded = read_for_revoke(*args)
        if not regenerated:
            regenerated.append(service.regenerate(actor, created["id"]).key)
        return loaded

    monkeypatch.setattr(service, "_load", read_then_lose_the_race)

    # When the revoke commits after the regenerate / Then no error, and the key ends revoked
    service.revoke(actor, created["id"])
    assert regenerated and service.get(actor, created["id"]).state == "revoked"
    # And neither the old nor the new value authenticates
    for plaintext in (created["key"], regenerated[0]):
        with pytest.raises(Unauthorized):
            KeyAuthenticator().authenticate(plaintext, "acme")
    # And a regenerate of the revoked key is a conflict, not a new live value
    with pytest.raises(Conflict):
        service.regenerate(actor, created["id"])
