"""The security audit log's pure rules (issue 15): what of an event is stored (a whitelist), which events
are not stored at all, the keys that order an org's log newest first, the TTL, and the template's rule."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from appengine_core.identity import audit
from appengine_core.identity.audit import (
    AUDITED_EVENT_TYPES,
    NEVER_AUDITED,
    AuditQuery,
    Dropped,
    audit_item,
    expires_at,
    redact,
    sortable_time,
    subject_of,
)
from appengine_core.identity.audit_data import AuditItem, audit_key, audit_put
from appengine_core.infra.errors import ValidationFailed
from appengine_local.template import load_template

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
ADMIN_SK = "acme:user:019b7a7f0000aa"
SECRETS = {
    "token": "eyJhbGciOiJFZERTQSJ9.secret-token",
    "refreshToken": "r3fr3sh-secret",
    "code": "123456",
    "recoveryCode": "ABCD-EFGH",
    "password": "hunter2-secret",
    "passwordHash": "$argon2id$secret",
    "link": "https://example.test/magic?token=magic-secret",
    "text": "your code is 654321",
    "secret": "JBSWY3DPEHPK3PXP",
    "key": "ak_live_secret",
}


def bus_event(detail_type: str = "auth.sign_in_failed", **detail: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": detail_type,
        "source": "appengine",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"orgid": "acme", "time": "2026-01-01T00:00:00.000Z", **detail},
    }


def stored(event: dict[str, Any]) -> AuditItem:
    item = audit_item(event, NOW, 400)
    assert isinstance(item, AuditItem), item
    return item


# -- redaction ---------------------------------------------------------------------------------------
def test_only_whitelisted_facts_are_kept() -> None:
    # Given a detail with every whitelisted kind of fact, an unknown field and the secrets of the brief
    detail = {
        "kind": "user",
        "session": "s-1",
        "method": "password+2fa",
        "reason": "wrong_password",
        "keyId": "k-1",
        "email": "admin@acme.test",
        "sourceIp": "203.0.113.9",
        "userAgent": "curl/8.5.0",
        "roles": ["RootAdmin"],
        "disabled": True,
        "level": 2,
        "favouriteColour": "blue",
        **SECRETS,
    }
    # When it is redacted
    kept = redact(detail)
    # Then the facts stay and nothing else does
    assert kept == {k: v for k, v in detail.items() if k not in SECRETS and k != "favouriteColour"}
    assert not set(SECRETS.values()) & set(json.dumps(kept).split('"'))


def test_values_that_are_not_plain_short_facts_are_dropped() -> None:
    kept = redact(
        {
            "reason": "x" * 321,  # longer than any fact of ours: dropped, never cut
            "email": "",
            "roles": [{"nested": "object"}],
            "orgs": [f"org-{i}" for i in range(51)],
            "target": {"sk": "acme:user:1"},
            "level": 10**16,
            "seconds": float("nan"),
            "count": 3.0,
        }
    )
    assert kept == {"count": 3}


def test_a_secret_looking_name_is_dropped_even_if_whitelisted(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a whitelist someone extended with names that look secret
    names = ("resetToken", "otpSeed", "linkSent", "codeSent", "apiSecret", "newPasswordAt", "keyHash")
    monkeypatch.setattr(audit, "DETAIL_FIELDS", audit.DETAIL_FIELDS | set(names))
    # Then none of them is stored
    assert redact(dict.fromkeys(names, "value") | {"kind": "user"}) == {"kind": "user"}


def test_a_crafted_event_stores_no_secret_anywhere() -> None:
    # Given an event whose detail carries secrets beside its facts, also as principal and actor
    event = bus_event("auth.second_factor_failed", principal=ADMIN_SK, actor=SECRETS["token"], **SECRETS)
    # When it is turned into its item
    put = audit_put(stored(event))
    text = json.dumps(dict(put.attributes), default=str)
    # Then no secret value appears in what is written
    assert not [name for name, value in SECRETS.items() if value in text]
    assert put.attributes["principal"] == ADMIN_SK and "actor" not in put.attributes


# -- what is not stored ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (bus_event(NEVER_AUDITED, to="a@acme.test", code="123456"), "never audited"),
        (bus_event("record.created"), "not a security event"),
        ({**bus_event(), "source": "somebody.else"}, "not a security event"),
        ({**bus_event(), "detail": "not an object"}, "no detail"),
        ({**bus_event(), "detail": {"time": "2026-01-01T00:00:00Z"}}, "no valid orgid"),
        (bus_event(orgid="Not An Org"), "no valid orgid"),
        (bus_event(orgid="acme:#audit"), "no valid orgid"),
        ({**bus_event(), "id": "../../etc"}, "no valid event id"),
        ({**bus_event(time="yesterday"), "time": None}, "no valid time"),
        ({}, "not a security event"),
    ],
)
def test_events_that_are_dropped(event: dict[str, Any], reason: str) -> None:
    assert audit_item(event, NOW, 400) == Dropped(reason)


def test_every_audited_type_is_stored_and_notification_requested_is_not_one() -> None:
    assert NEVER_AUDITED not in AUDITED_EVENT_TYPES
    for detail_type in AUDITED_EVENT_TYPES:
        assert stored(bus_event(detail_type)).event_type == detail_type


# -- keys, times, subjects, TTL ----------------------------------------------------------------------
def test_times_become_fixed_width_utc_so_keys_sort_by_time() -> None:
    assert sortable_time("2026-01-01T01:00:00+01:00") == "2026-01-01T00:00:00.000Z"
    assert sortable_time("2026-01-01T00:00:00Z") == "2026-01-01T00:00:00.000Z"
    assert sortable_time("2026-01-01T00:00:00.123456Z") == "2026-01-01T00:00:00.123Z"
    assert sortable_time("2026-01-01T00:00:00") == "2026-01-01T00:00:00.000Z"  # naive: UTC
    for junk in (None, 17, "", "soon", "1970-01-01T00:00:00Z", "2026-01-01T00:00:00Z" + " " * 40):
        assert sortable_time(junk) is None


def test_sort_keys_order_an_orgs_events_newest_first_and_stay_in_the_org() -> None:
    # Given events at several times (one with an offset, one at the same millisecond as another)
    times = [
        "2026-03-01T10:00:00.000Z",
        "2026-03-01T10:00:00.000Z",
        "2026-03-01T12:30:00+02:00",  # 10:30Z
        "2026-02-28T23:59:59.999Z",
        "2026-03-01T09:59:59.5Z",
    ]
    items = [
        stored({**bus_event(time=at), "id": f"00000000-0000-0000-0000-00000000000{n}"})
        for n, at in enumerate(times)
    ]
    keys = [audit_key(i.orgid, i.time, i.event_id).sort for i in items]
    # Then a descending sort of the keys (ScanIndexForward=False) is newest first by time
    newest_first = [i.time for i in sorted(items, key=lambda i: audit_key("acme", i.time, i.event_id).sort)]
    assert newest_first[::-1] == sorted((i.time for i in items), reverse=True)
    assert newest_first[-1] == "2026-03-01T10:30:00.000Z"
    # Every key is in acme's partition, begins with acme's prefix, and the two same-time events differ
    assert all(k.startswith("acme:#audit:") for k in keys) and len(set(keys)) == len(keys)
    assert {audit_put(i).key.partition for i in items} == {"acme:#audit"}


def test_the_event_id_is_the_outbox_id_when_there_is_one_else_the_bus_id() -> None:
    assert stored(bus_event()).event_id == "6a7e8feb-b491-4cf7-a9f1-bf3703467718"
    assert stored(bus_event(eventId="019b7a7f4c00a1b2c3d4e5f6a7b8c9d0")).event_id == (
        "019b7a7f4c00a1b2c3d4e5f6a7b8c9d0"
    )
    # A redelivery is the same event: same id, same time, so the same key
    first, again = stored(bus_event()), stored(bus_event())
    assert audit_key("acme", first.time, first.event_id) == audit_key("acme", again.time, again.event_id)


def test_subjects_are_pk_forms_of_principal_and_actor() -> None:
    assert subject_of("acme:user:019b") == "user-019b"
    assert subject_of("globex:customer:abc") == "customer-abc"
    assert subject_of("user-019b") == "user-019b"
    for junk in ("acme:note:1", "note-1", "acme:user:", "user-", "ACME:user:1", "acme:user:1:2"):
        assert subject_of(junk) is None
    item = stored(bus_event("user.updated", principal="acme:user:t1", actor=ADMIN_SK))
    assert item.subjects == ("user-t1", "user-019b7a7f0000aa")


def test_the_ttl_is_now_plus_the_retention() -> None:
    assert expires_at(NOW, 400) == int(NOW) + 400 * 86400
    assert expires_at(NOW + 0.9, 1) == int(NOW) + 86400
    assert stored(bus_event()).expires_at == int(NOW) + 400 * 86400
    assert audit_item(bus_event(), NOW, 30) == replace(stored(bus_event()), expires_at=int(NOW) + 30 * 86400)


# -- the listing's filters ---------------------------------------------------------------------------
def test_filters_take_an_audited_type_and_a_principal_sk_or_pk() -> None:
    assert AuditQuery().checked() == (None, None)
    assert AuditQuery(type="auth.locked", principal="acme:user:1").checked() == ("auth.locked", "user-1")
    assert AuditQuery(principal="customer-9").checked() == (None, "customer-9")
    for bad in (AuditQuery(type=NEVER_AUDITED), AuditQuery(type="record.created"), AuditQuery(principal="x")):
        with pytest.raises(ValidationFailed):
            bad.checked()


# -- the template ------------------------------------------------------------------------------------
def test_the_template_rule_matches_the_audited_types_only() -> None:
    template = load_template()
    function = template.resources["AuditFunction"]["Properties"]
    rule = function["Events"]["Security"]
    assert rule["Type"] == "EventBridgeRule"
    assert rule["Properties"]["EventBusName"] == {"Ref": "EventBus"}
    pattern = rule["Properties"]["Pattern"]
    assert pattern["source"] == ["appengine"]
    assert sorted(pattern["detail-type"]) == sorted(AUDITED_EVENT_TYPES)
    assert NEVER_AUDITED not in json.dumps(pattern)
    # Retention: a parameter of 400 days by default, given to the audit function
    assert template.parameters["AuditRetentionDays"]["Default"] == 400
    assert function["Environment"]["Variables"]["AUDIT_RETENTION_DAYS"] == {"Ref": "AuditRetentionDays"}
    # Least privilege: one DynamoDB action, PutItem
    actions = [
        action
        for statement in function["Policies"][0]["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    ]
    assert [a for a in actions if a.startswith("dynamodb:")] == ["dynamodb:PutItem"]
    assert template.resources["AppTable"]["Properties"]["TimeToLiveSpecification"]["AttributeName"] == "ttl"
