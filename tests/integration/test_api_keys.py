"""API keys end to end through the in-process gateway: lifecycle, every refusal path, limits, secrecy."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from appengine_core import aws
from appengine_core.records import Record
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
    from appengine_core.apikeys import generate_key

    key = generate_key()
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    for bad in (tampered, "aek_nope", "x" * 42):
        calls.clear()
        response = whoami_with_key(gateway, bad)
        assert response.status_code == 401 and response.json["error"] == "unauthorized"
        assert "GetItem" not in calls and "BatchGetItem" not in calls


def test_resolving_a_key_is_one_read_and_one_conditional_write(
    gateway: Any, tenants: dict[str, Record]
) -> None:
    from appengine_core.apikeys import KeyAuthenticator

    created = create_key(gateway, tenants["acme_admin"])
    calls: list[str] = []
    aws.dynamodb().meta.client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.append(model.name)
    )
    principal = KeyAuthenticator().authenticate(created["key"], "acme")
    assert principal.credential == "apikey" and principal.scopes == ("read", "write")
    assert calls == ["GetItem", "TransactWriteItems"]


def test_a_key_works_only_in_its_own_org(gateway: Any, tenants: dict[str, Record]) -> None:
    created = create_key(gateway, tenants["acme_admin"])
    assert whoami_with_key(gateway, created["key"], orgid="globex").status_code == 403
    assert whoami_with_key(gateway, created["key"], orgid="nosuchorg").status_code == 403


def test_an_unknown_well_formed_key_is_401(gateway: Any, tenants: dict[str, Record]) -> None:
    from appengine_core.apikeys import generate_key

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
    from appengine_core.store import TenantStore, Update

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
    # Disabling the owner (any path that bumps its version) stops the key on the very next request.
    TenantStore().update(
        Update(
            reader.key,
            "SET #d.disabled = :t, #v = #v + :one",
            values={":t": True, ":one": 1},
            names={"#d": "data", "#v": "version"},
        )
    )
    assert whoami_with_key(gateway, created["key"]).status_code == 401


def test_expired_keys_are_refused_and_the_job_marks_them(
    gateway: Any, tenants: dict[str, Record], bus_messages: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    from appengine_core.jobs import JOBS

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
