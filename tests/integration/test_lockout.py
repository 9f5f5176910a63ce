"""Brute-force protection (contract §4) on the template's table in moto: the guard itself under a
clock the tests move (escalation, the 15-minute count, a day's reset, per source), then the sign-in
handlers and the admin routes (unlock, customer administration) in-process."""

from __future__ import annotations

import json
from typing import Any

import pytest

from appengine_core.identity.data import IdentityData, failures_key
from appengine_core.identity.lockout import (
    FAILURE_LIMIT,
    SOURCE_LIMIT,
    Attempt,
    BruteForceGuard,
)
from appengine_core.infra.envelope import Record
from appengine_core.infra.errors import RateLimited
from appengine_core.infra.events import DomainEvent, EventPublisher
from appengine_local.runtime import LocalLambda
from tests.conftest import load_event
from tests.integration.conftest import body_of, header_of
from tests.integration.test_profile import call
from tests.integration.test_sign_in import sign_in

START = 1_767_225_600.0  # on a minute boundary


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder(EventPublisher):
    def __init__(self) -> None:
        self.events: list[DomainEvent] = []

    def publish(self, events: Any) -> None:
        self.events.extend(events)

    def types(self) -> list[str]:
        return [e.detail_type for e in self.events]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def guard(aws_stack: dict[str, str], clock: Clock, recorder: Recorder) -> BruteForceGuard:
    return BruteForceGuard(IdentityData(), recorder, clock=clock)


def fail(guard: BruteForceGuard, email: str = "who@acme.test", source: str | None = "10.0.0.1") -> int:
    """One failed attempt: the status it gets (401, or 429 from admit or from counting)."""
    try:
        attempt = guard.admit("acme", "user", email, source)
        guard.failed(attempt)
    except RateLimited:
        return 429
    return 401


def retry_after_of(guard: BruteForceGuard, email: str = "who@acme.test") -> int:
    with pytest.raises(RateLimited) as refused:
        guard.admit("acme", "user", email, "10.0.0.9")
    return refused.value.retry_after_seconds


def test_five_failures_lock_for_a_minute_then_five_more_lock_longer(
    guard: BruteForceGuard, clock: Clock, recorder: Recorder
) -> None:
    # Given five failures: each answered 401
    assert [fail(guard) for _ in range(FAILURE_LIMIT)] == [401] * 5
    # Then the email is locked for a minute, for anyone and from anywhere
    assert retry_after_of(guard) == 60
    assert recorder.types().count("auth.locked") == 1
    # And after the minute, five new failures lock it for 5 minutes, then 15, then 60, then 60
    for window in (300, 900, 3600, 3600):
        clock.advance(retry_after_of(guard))
        assert [fail(guard) for _ in range(FAILURE_LIMIT)] == [401] * 5
        assert retry_after_of(guard) == window
    locked = [e.detail for e in recorder.events if e.detail_type == "auth.locked"]
    assert [e["level"] for e in locked] == [1, 2, 3, 4, 5]
    assert all(e["email"] == "who@acme.test" and "password" not in json.dumps(e) for e in locked)


def test_the_escalation_resets_after_a_day_without_a_lock(guard: BruteForceGuard, clock: Clock) -> None:
    for _ in range(2):
        [fail(guard) for _ in range(FAILURE_LIMIT)]
        clock.advance(retry_after_of(guard))
    [fail(guard) for _ in range(FAILURE_LIMIT)]
    assert retry_after_of(guard) == 900
    # When a day passes after that lock ends
    clock.advance(900 + 24 * 3600)
    [fail(guard) for _ in range(FAILURE_LIMIT)]
    # Then the next lock is a first one again
    assert retry_after_of(guard) == 60


def test_a_failure_counts_for_15_minutes(guard: BruteForceGuard, clock: Clock) -> None:
    assert [fail(guard) for _ in range(4)] == [401] * 4
    clock.advance(15 * 60 + 1)
    # The four old failures no longer count: four more are still 401 and nothing is locked
    assert [fail(guard) for _ in range(4)] == [401] * 4
    guard.admit("acme", "user", "who@acme.test", None)
    assert fail(guard) == 401
    assert retry_after_of(guard) == 60


def test_a_success_resets_the_count_but_not_the_escalation(guard: BruteForceGuard, clock: Clock) -> None:
    [fail(guard) for _ in range(FAILURE_LIMIT)]
    clock.advance(60)
    assert [fail(guard) for _ in range(4)] == [401] * 4
    guard.succeeded(guard.admit("acme", "user", "who@acme.test", "10.0.0.1"))
    assert [fail(guard) for _ in range(4)] == [401] * 4
    assert fail(guard) == 401
    assert retry_after_of(guard) == 300  # the second lock of the day


def test_unknown_emails_kinds_and_orgs_are_counted_apart(guard: BruteForceGuard) -> None:
    [fail(guard, "ghost@acme.test") for _ in range(FAILURE_LIMIT)]
    assert retry_after_of(guard, "GHOST@acme.test ") == 60  # normalized like sign-in
    guard.admit("acme", "customer", "ghost@acme.test", None)
    guard.admit("globex", "user", "ghost@acme.test", None)
    guard.admit("acme", "user", "other@acme.test", None)


def test_unlock_clears_count_lock_and_escalation(guard: BruteForceGuard, recorder: Recorder) -> None:
    for _ in range(2):
        [fail(guard) for _ in range(FAILURE_LIMIT)]
        guard.unlock("acme", "user", "Who@acme.test", actor="acme:user:admin")
        guard.admit("acme", "user", "who@acme.test", None)
    # The escalation went with it: the next lock is a first one
    [fail(guard) for _ in range(FAILURE_LIMIT)]
    assert retry_after_of(guard) == 60
    unlocked = [e.detail for e in recorder.events if e.detail_type == "auth.unlocked"]
    assert unlocked[0] == {
        "kind": "user",
        "email": "who@acme.test",
        "actor": "acme:user:admin",
        "scope": "email",
    }


def test_more_than_30_failures_from_a_source_in_a_minute_block_it(
    guard: BruteForceGuard, clock: Clock
) -> None:
    # Given 30 failures from one source, over many emails (none of them locked)
    statuses = [fail(guard, f"u{i % 10}@acme.test", "10.1.1.1") for i in range(SOURCE_LIMIT)]
    assert statuses == [401] * SOURCE_LIMIT
    # When one more fails, it is answered 429 and the source is blocked for a minute, whatever the email
    assert fail(guard, "fresh@acme.test", "10.1.1.1") == 429
    with pytest.raises(RateLimited) as refused:
        guard.admit("acme", "user", "another@acme.test", "10.1.1.1")
    assert refused.value.retry_after_seconds == 60
    # And other sources are not
    guard.admit("acme", "user", "another@acme.test", "10.1.1.2")
    # And after the minute the source may try again
    clock.advance(61)
    guard.admit("acme", "user", "another@acme.test", "10.1.1.1")


def test_an_attempt_answered_429_is_not_counted(guard: BruteForceGuard, clock: Clock) -> None:
    [fail(guard) for _ in range(FAILURE_LIMIT)]
    assert [fail(guard) for _ in range(20)] == [429] * 20
    clock.advance(60)
    assert [fail(guard) for _ in range(4)] == [401] * 4


def test_a_lock_engaged_while_a_factor_was_checked_wins_over_its_success(guard: BruteForceGuard) -> None:
    admitted: Attempt = guard.admit("acme", "user", "who@acme.test", None)
    fail(guard)  # the item exists now
    admitted = guard.admit("acme", "user", "who@acme.test", None)
    [fail(guard) for _ in range(FAILURE_LIMIT - 1)]
    with pytest.raises(RateLimited):
        guard.succeeded(admitted)


def test_the_store_holds_no_password(guard: BruteForceGuard) -> None:
    [fail(guard) for _ in range(3)]
    item = IdentityData().lockout_items([failures_key("acme", "user", "who@acme.test")])
    assert item and "password" not in json.dumps(item, default=str).lower()


# -- through the handlers --------------------------------------------------------------------------
def test_five_wrong_passwords_then_the_right_one_is_429_with_retry_after(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    statuses = [sign_in(functions, "admin@acme.test", "wrong-password")["statusCode"] for _ in range(5)]
    assert statuses == [401] * 5
    refused = sign_in(functions, "admin@acme.test", "acme-admin-pass")
    assert refused["statusCode"] == 429
    assert body_of(refused)["error"] == body_of(refused)["code"] == "rate_limited"
    assert 1 <= int(header_of(refused, "Retry-After") or 0) <= 60


def test_an_admin_unlocks_and_the_right_password_works_again(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    for _ in range(5):
        sign_in(functions, "buyer@acme.test", "wrong-password", sample="signin-customer")
    assert (
        sign_in(functions, "buyer@acme.test", "acme-buyer-pass", sample="signin-customer")["statusCode"]
        == 429
    )
    # A reader may not unlock; the admin may
    assert (
        call(functions, "customer-unlock", tenants["acme_reader"], body={"email": "buyer@acme.test"})[
            "statusCode"
        ]
        == 403
    )
    unlocked = call(functions, "customer-unlock", tenants["acme_admin"], body={"email": "Buyer@acme.test"})
    assert unlocked["statusCode"] == 200 and body_of(unlocked) == {"ok": True}
    assert (
        sign_in(functions, "buyer@acme.test", "acme-buyer-pass", sample="signin-customer")["statusCode"]
        == 200
    )


def test_customer_list_and_disable(functions: LocalLambda, tenants: dict[str, Record]) -> None:
    buyer = tenants["acme_customer"]
    listed = call(functions, "customer-list", tenants["acme_reader"], query={"email": "BUYER@acme.test"})
    assert listed["statusCode"] == 200
    assert [c["sk"] for c in body_of(listed)["data"]] == [buyer.sk]
    everyone = body_of(call(functions, "customer-list", tenants["acme_admin"], query=None))
    assert (
        everyone["total"] == 1 and everyone["hasNext"] is False and "passwordHash" not in json.dumps(everyone)
    )
    assert (
        body_of(call(functions, "customer-list", tenants["globex_admin"], orgid="globex", query=None))["data"]
        == []
    )

    def update(caller: Record, path_id: str, body: Any, orgid: str = "acme") -> dict[str, Any]:
        return call(
            functions,
            "customer-update",
            caller,
            orgid=orgid,
            body=body,
            path=f"/customer/update/{path_id}",
            path_parameters={"customer_id": path_id},
        )

    assert update(tenants["acme_reader"], buyer.pk, {"disabled": True})["statusCode"] == 403
    assert update(tenants["globex_admin"], buyer.pk, {"disabled": True}, orgid="globex")["statusCode"] == 404
    assert update(tenants["acme_admin"], buyer.sk, {"disabled": "yes"})["statusCode"] == 422
    assert update(tenants["acme_admin"], buyer.sk, {"disabled": True, "roles": []})["statusCode"] == 422
    disabled = update(tenants["acme_admin"], buyer.sk, {"disabled": True})
    assert disabled["statusCode"] == 200 and body_of(disabled)["data"]["disabled"] is True
    assert (
        sign_in(functions, "buyer@acme.test", "acme-buyer-pass", sample="signin-customer")["statusCode"]
        == 401
    )
    enabled = update(tenants["acme_admin"], buyer.pk, {"disabled": False})
    assert enabled["statusCode"] == 200 and body_of(enabled)["version"] == buyer.version + 2
    assert (
        sign_in(functions, "buyer@acme.test", "acme-buyer-pass", sample="signin-customer")["statusCode"]
        == 200
    )


def test_the_sample_events_of_the_new_routes_exist() -> None:
    for name in ("user-unlock", "customer-unlock", "customer-list", "customer-update"):
        assert load_event(name)["requestContext"]["identity"]["sourceIp"]
