"""The security audit log (issue 15) in-process: the audit function keeps the events EventBridge hands it
(whitelisted, with a TTL, once per event id), and GET /profile/security/audit pages an org's events for
its RootAdmin, newest first, filtered by type and principal, never another org's."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from appengine_core.identity.audit_data import AUDIT_COLLECTION
from appengine_core.identity.directory import DirectoryService, NewUser
from appengine_core.infra.envelope import Record
from appengine_core.infra.store import TenantStore
from appengine_local.runtime import LocalLambda
from tests.conftest import load_event
from tests.integration.conftest import bearer_for

AUDIT = "/profile/security/audit"
SECRET_DETAIL = {
    "token": "eyJhbGciOiJFZERTQSJ9.a-secret-token",
    "refreshToken": "a-secret-refresh",
    "code": "918273",
    "recoveryCode": "RCVR-SECRET",
    "password": "a-secret-password",
    "link": "https://acme.test/magic?token=a-secret-magic",
    "text": "your code is 918273",
    "secret": "JBSWY3DPEHPK3PXP",
    "credentials": {"password": "nested-secret"},
}


def stored_items(orgid: str = "acme") -> list[dict[str, Any]]:
    """Every audit item of ``orgid`` as stored (raw, newest first)."""
    return TenantStore().query(orgid, AUDIT_COLLECTION, limit=1000, newest_first=True).items


def deliver(functions: LocalLambda, event: dict[str, Any]) -> str:
    """Hands one event to the audit function as EventBridge does; its result."""
    return str(functions.invoke("AuditFunction", event)["result"])


def security_event(
    detail_type: str, orgid: str = "acme", at: str = "2026-01-01T00:00:00.000Z", n: int = 0, **detail: Any
) -> dict[str, Any]:
    return load_event("audit-event") | {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "detail-type": detail_type,
        "detail": {"orgid": orgid, "time": at, **detail},
    }


def audit_page(gateway: Any, record: Record, query: str = "", orgid: str | None = None) -> Any:
    headers = bearer_for(record) | ({"orgid": orgid} if orgid else {})
    return gateway.get(AUDIT + query, headers=headers)


# -- the audit function ------------------------------------------------------------------------------
def test_the_sample_event_is_stored_whitelisted_with_a_ttl(
    functions: LocalLambda, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given the sample security event (a failed sign-in), with secrets added to its detail
    event = load_event("audit-event")
    event["detail"] |= SECRET_DETAIL
    # When the audit function gets it
    before = int(time.time())
    assert deliver(functions, event) == "stored"
    # Then acme's log holds one item: the whitelisted facts, a TTL 400 days out, and no secret
    (item,) = stored_items()
    assert item["eventType"] == "auth.sign_in_failed" and item["eventId"] == event["id"]
    assert item["time"] == "2026-01-01T00:00:00.000Z" and item["orgid"] == "acme"
    assert item["detail"] == {"kind": "user", "email": "admin@acme.test", "reason": "wrong_password"}
    assert before + 400 * 86400 <= item["ttl"] <= int(time.time()) + 400 * 86400
    text = json.dumps(item, default=str)
    assert not [name for name, value in SECRET_DETAIL.items() if json.dumps(value).strip('"') in text]
    assert "secret" not in text.lower()
    # And the function's log names the event, never its detail
    logged = capfd.readouterr()
    assert "security event stored" in logged.out and event["id"] in logged.out
    assert "secret" not in (logged.out + logged.err).lower() and "918273" not in logged.out + logged.err


def test_a_redelivered_event_is_stored_once(functions: LocalLambda) -> None:
    event = security_event("auth.signed_in", principal="acme:user:u1", session="s1", method="password")
    assert deliver(functions, event) == "stored"
    # When EventBridge delivers the same event again (and again)
    assert deliver(functions, event) == "duplicate"
    assert deliver(functions, json.loads(json.dumps(event))) == "duplicate"
    # Then the log holds it once
    assert [i["eventId"] for i in stored_items()] == [event["id"]]


def test_notification_and_malformed_events_store_nothing(functions: LocalLambda) -> None:
    mail = security_event(
        "notification.requested", to="a@acme.test", code="918273", link="https://x", text="918273"
    )
    assert deliver(functions, mail) == "dropped"
    assert deliver(functions, security_event("auth.locked", orgid="Not-An-Org")) == "dropped"
    assert deliver(functions, {**security_event("auth.locked"), "detail": None}) == "dropped"
    assert deliver(functions, {"unexpected": True}) == "dropped"
    assert stored_items() == []


def test_a_failing_table_raises_so_the_event_is_delivered_again(
    functions: LocalLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given DynamoDB throttling the first write
    original, attempts = TenantStore.put, []

    def throttled_once(store: TenantStore, operation: Any) -> None:
        attempts.append(operation)
        if len(attempts) == 1:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "PutItem")
        original(store, operation)

    monkeypatch.setattr(TenantStore, "put", throttled_once)
    # Then the function fails (Lambda retries it, then parks it in the dead-letter queue)
    with pytest.raises(ClientError):
        deliver(functions, security_event("auth.locked"))
    assert stored_items() == []
    # And the retry stores it
    assert deliver(functions, security_event("auth.locked")) == "stored"
    assert len(stored_items()) == 1


# -- end to end: real events from the bus ------------------------------------------------------------
def test_sign_in_events_from_the_bus_are_listed_newest_first(
    gateway: Any, functions: LocalLambda, tenants: dict[str, Record], bus_messages: Any
) -> None:
    # Given a wrong password and then a sign-in of acme's reader
    wrong = {"email": "reader@acme.test", "password": "not-the-password"}
    right = {"email": "reader@acme.test", "password": "acme-reader-pass"}
    assert gateway.post("/profile/signin", headers={"orgid": "acme"}, json=wrong).status_code == 401
    time.sleep(0.01)
    assert gateway.post("/profile/signin", headers={"orgid": "acme"}, json=right).status_code == 200
    # When the rule hands the bus's security events to the audit function (notifications excluded)
    delivered = [e for e in bus_messages() if e["detail-type"] != "notification.requested"]
    assert {e["detail-type"] for e in delivered} >= {"auth.sign_in_failed", "auth.signed_in"}
    assert {deliver(functions, e) for e in delivered} == {"stored"}
    # Then acme's RootAdmin reads them, newest first, with their facts
    response = audit_page(gateway, tenants["acme_admin"])
    assert response.status_code == 200, response.text
    body = response.json
    events = [e for e in body["data"] if e["type"].startswith("auth.sign")]
    assert [e["type"] for e in events] == ["auth.signed_in", "auth.sign_in_failed"]
    signed_in, failed = events
    assert signed_in["principal"] == tenants["acme_reader"].sk
    assert signed_in["detail"]["method"] == "password" and signed_in["detail"]["session"]
    assert failed["detail"] == {"kind": "user", "email": "reader@acme.test", "reason": "wrong_password"}
    assert body["total"] == len(body["data"]) and body["hasNext"] is False and body["next"] is None
    assert "not-the-password" not in response.text and "acme-reader-pass" not in response.text


# -- the listing -------------------------------------------------------------------------------------
@pytest.fixture
def logged(functions: LocalLambda, tenants: dict[str, Record]) -> list[dict[str, Any]]:
    """25 acme events a minute apart (sign-ins of the reader, locks, and user updates by the admin),
    and 3 of globex; acme's, oldest first."""
    reader, admin = tenants["acme_reader"], tenants["acme_admin"]
    acme = []
    for n in range(25):
        at = f"2026-01-01T00:{n:02d}:00.000Z"
        if n % 5 == 0:
            event = security_event("user.updated", at=at, n=n, principal=reader.sk, actor=admin.sk)
        elif n % 5 == 1:
            event = security_event("auth.locked", at=at, n=n, email="ghost@acme.test", scope="email")
        else:
            event = security_event("auth.signed_in", at=at, n=n, principal=reader.sk, session=f"s{n}")
        assert deliver(functions, event) == "stored"
        acme.append(event)
    for n in range(3):
        globex = security_event(
            "auth.signed_in", orgid="globex", n=100 + n, principal=tenants["globex_admin"].sk
        )
        assert deliver(functions, globex) == "stored"
    return acme


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [e["id"] for e in response.json["data"]]


def test_pages_by_cursor_and_by_number_newest_first(
    gateway: Any, tenants: dict[str, Record], logged: list[dict[str, Any]]
) -> None:
    admin = tenants["acme_admin"]
    newest_first = [e["id"] for e in reversed(logged)]
    # Page 1 of 10: the newest ten, a cursor, and the total
    first = audit_page(gateway, admin, "?ps=10")
    assert ids(first) == newest_first[:10]
    assert first.json["total"] == 25 and first.json["hasNext"] is True and first.json["page"] == 1
    # The cursor goes on from there, to the end
    second = audit_page(gateway, admin, f"?ps=10&next={first.json['next']}")
    assert ids(second) == newest_first[10:20] and second.json["hasNext"] is True
    third = audit_page(gateway, admin, f"?ps=10&next={second.json['next']}")
    assert ids(third) == newest_first[20:] and third.json["hasNext"] is False and third.json["next"] is None
    # Page numbers give the same pages
    assert ids(audit_page(gateway, admin, "?p=2&ps=10")) == newest_first[10:20]
    assert ids(audit_page(gateway, admin, "?p=3&ps=10")) == newest_first[20:]
    assert ids(audit_page(gateway, admin, "?p=4&ps=10")) == []
    # A page number beyond the cap, a foreign cursor and a cursor of another filter are 422
    assert audit_page(gateway, admin, "?p=101").status_code == 422
    assert audit_page(gateway, admin, "?next=bm90LWEtY3Vyc29y").status_code == 422
    typed = f"?ps=10&type=auth.signed_in&next={first.json['next']}"
    assert audit_page(gateway, admin, typed).status_code == 422


def test_filters_by_type_and_by_principal(
    gateway: Any, tenants: dict[str, Record], logged: list[dict[str, Any]]
) -> None:
    admin, reader = tenants["acme_admin"], tenants["acme_reader"]

    def expected(keep: Any) -> list[str]:
        return [e["id"] for e in reversed(logged) if keep(e)]

    # By type
    locks = audit_page(gateway, admin, "?type=auth.locked")
    assert ids(locks) == expected(lambda e: e["detail-type"] == "auth.locked")
    assert locks.json["total"] == 5
    assert all(e["detail"] == {"email": "ghost@acme.test", "scope": "email"} for e in locks.json["data"])
    # By principal, its sk or its pk: events about it and events it did
    about_reader = expected(lambda e: e["detail"].get("principal") == reader.sk)
    assert ids(audit_page(gateway, admin, f"?principal={reader.sk}")) == about_reader
    assert ids(audit_page(gateway, admin, f"?principal={reader.pk}")) == about_reader
    by_admin = expected(lambda e: e["detail"].get("actor") == admin.sk)
    assert ids(audit_page(gateway, admin, f"?principal={admin.pk}")) == by_admin
    # Both, paged by cursor
    query = f"?type=user.updated&principal={reader.pk}&ps=2"
    first = audit_page(gateway, admin, query)
    assert ids(first) == by_admin[:2] and first.json["hasNext"] is True
    second = audit_page(gateway, admin, f"{query}&next={first.json['next']}")
    assert ids(second) == by_admin[2:4]
    # Nobody's events, and filters that are not filters
    assert ids(audit_page(gateway, admin, "?principal=customer-nobody")) == []
    for bad in ("?type=notification.requested", "?type=record.created", "?principal=acme:note:1"):
        response = audit_page(gateway, admin, bad)
        assert response.status_code == 422 and response.json["error"] == "validation_error", bad


def test_an_org_never_sees_another_orgs_events(
    gateway: Any, tenants: dict[str, Record], logged: list[dict[str, Any]]
) -> None:
    acme = audit_page(gateway, tenants["acme_admin"], "?ps=100")
    globex = audit_page(gateway, tenants["globex_admin"], "?ps=100")
    assert len(ids(acme)) == 25 and {e["orgid"] for e in acme.json["data"]} == {"acme"}
    assert len(ids(globex)) == 3 and {e["orgid"] for e in globex.json["data"]} == {"globex"}
    assert tenants["globex_admin"].sk not in acme.text
    # A principal of globex named in acme's filter finds nothing of globex
    assert ids(audit_page(gateway, tenants["acme_admin"], f"?principal={tenants['globex_admin'].sk}")) == []
    # An acme cursor is refused in globex
    first = audit_page(gateway, tenants["acme_admin"], "?ps=5")
    assert audit_page(gateway, tenants["globex_admin"], f"?next={first.json['next']}").status_code == 422


def test_only_the_orgs_root_admin_or_a_platform_root_reads_it(
    gateway: Any, tenants: dict[str, Record], logged: list[dict[str, Any]]
) -> None:
    # Given a ConfigAdmin of acme and an API key of acme's RootAdmin
    config_admin = DirectoryService().create_user(
        "acme",
        NewUser(
            email="config@acme.test", password="config-pass-1", roles=["ConfigAdmin"], permissions=["read"]
        ),
    )
    created = gateway.post(
        "/api-key/create", headers=bearer_for(tenants["acme_admin"]), json={"name": "a", "scopes": ["read"]}
    )
    assert created.status_code == 201, created.text
    # Then only acme's RootAdmin and the platform root acting on acme read acme's log
    assert len(ids(audit_page(gateway, tenants["acme_admin"]))) == 20
    assert len(ids(audit_page(gateway, tenants["platform_root"], orgid="acme"))) == 20
    refused = [
        audit_page(gateway, config_admin),
        audit_page(gateway, tenants["acme_reader"]),
        audit_page(gateway, tenants["acme_customer"]),
        audit_page(gateway, tenants["globex_admin"], orgid="acme"),
        gateway.get(AUDIT, headers={"orgid": "acme", "x-api-key": created.json["key"]}),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert all(r.json["error"] == "forbidden" and "ghost@acme.test" not in r.text for r in refused)
    assert gateway.get(AUDIT, headers={"orgid": "acme"}).status_code == 401


def test_the_sample_events_run(functions: LocalLambda, tenants: dict[str, Record]) -> None:
    from tests.integration.test_profile import call

    # The sample security event, then the sample listing (?type=auth.sign_in_failed), authorized by
    # the real authorizer as acme's RootAdmin
    assert deliver(functions, load_event("audit-event")) == "stored"
    query = load_event("audit-list")["queryStringParameters"]
    response = call(functions, "audit-list", tenants["acme_admin"], query=query)
    assert response["statusCode"] == 200, response
    body = json.loads(response["body"])
    assert [(e["type"], e["detail"]["email"]) for e in body["data"]] == [
        ("auth.sign_in_failed", "admin@acme.test")
    ]
