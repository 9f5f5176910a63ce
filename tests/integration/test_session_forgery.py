"""Refresh-token families (contract §3, issue 13 item 9): only a token this service issued and rotated
counts as reuse; a made-up token naming a real session is refused and revokes nothing."""

from __future__ import annotations

import secrets
import time
from typing import Any

from appengine_core.identity.sessions import (
    MAX_SIBLINGS,
    REFRESH_GRACE_SECONDS,
    RefreshToken,
    SessionStore,
    spent_key,
)
from appengine_core.infra.envelope import Record
from appengine_core.infra.store import Delete, TenantStore


def new_session(record: Record, sessions: SessionStore) -> RefreshToken:
    _, token = sessions.create(
        principal_sk=record.sk,
        kind="user",
        method="password",
        lifetime_seconds=3600,
        user_agent="test",
        source_ip="127.0.0.1",
    )
    return token


def forged(token: RefreshToken) -> RefreshToken:
    return RefreshToken(token.home_orgid, token.session_id, secrets.token_urlsafe(32))


def is_revoked(sessions: SessionStore, token: RefreshToken) -> bool:
    return bool((sessions.get_raw(token.home_orgid, token.session_id) or {}).get("revoked"))


def test_a_forged_token_is_invalid_and_revokes_nothing(tenants: dict[str, Any]) -> None:
    # Given a session that has rotated once, inside and after its grace window
    sessions = SessionStore()
    first = new_session(tenants["acme_admin"], sessions)
    outcome, current = sessions.refresh(first)
    assert outcome == "rotated" and current is not None
    for now in (time.time(), time.time() + REFRESH_GRACE_SECONDS + 5):
        # When a made-up token of the right shape names it / Then invalid, not reuse
        assert sessions.refresh(forged(first), now=now) == ("invalid", None)
        # And the session lives on
        assert not is_revoked(sessions, first)
    outcome, _ = sessions.refresh(current)
    assert outcome == "rotated"


def test_a_genuine_rotated_token_after_the_grace_is_reuse(tenants: dict[str, Any]) -> None:
    # Given a token rotated more than the grace window ago
    sessions = SessionStore()
    first = new_session(tenants["acme_admin"], sessions)
    outcome, current = sessions.refresh(first)
    assert outcome == "rotated" and current is not None

    # When it comes back after the grace window / Then reuse, and the whole session is revoked
    later = time.time() + REFRESH_GRACE_SECONDS + 1
    assert sessions.refresh(first, now=later) == ("reuse", None)
    assert is_revoked(sessions, first)
    assert sessions.refresh(current, now=later) == ("invalid", None)


def test_every_retired_token_is_recorded_spent_until_the_session_expires(tenants: dict[str, Any]) -> None:
    # Given a rotation, then a grace sibling, then a rotation by the sibling
    sessions, store = SessionStore(), TenantStore()
    first = new_session(tenants["acme_admin"], sessions)
    _, second = sessions.refresh(first)
    outcome, sibling = sessions.refresh(first)  # the same token again, within the grace window
    assert outcome == "grace" and second is not None and sibling is not None
    _, third = sessions.refresh(sibling)
    assert third is not None

    # Then the first token, the dropped current one and the sibling are all recorded, with the session's ttl
    expires = int((sessions.get_raw(first.home_orgid, first.session_id) or {})["expiresAt"])
    for retired in (first, second, sibling):
        item = store.get(spent_key(retired.home_orgid, retired.session_id, retired.digest))
        assert item is not None and item["ttl"] == expires
    assert store.get(spent_key(third.home_orgid, third.session_id, third.digest)) is None

    # And the dropped one (never rotated itself) is reuse when presented again
    assert sessions.refresh(second) == ("reuse", None)
    assert is_revoked(sessions, first)


def test_the_last_rotated_token_is_reuse_even_without_a_spent_record(tenants: dict[str, Any]) -> None:
    # Given a session rotated before spent records existed (the record of its last token is missing)
    sessions, store = SessionStore(), TenantStore()
    first = new_session(tenants["acme_admin"], sessions)
    sessions.refresh(first)
    store.delete(Delete(spent_key(first.home_orgid, first.session_id, first.digest)))

    # When its previous token comes back after the grace / Then it is still known to be issued: reuse
    assert sessions.refresh(first, now=time.time() + REFRESH_GRACE_SECONDS + 1) == ("reuse", None)


def test_grace_siblings_are_bounded(tenants: dict[str, Any]) -> None:
    # Given a rotated session
    sessions = SessionStore()
    first = new_session(tenants["acme_admin"], sessions)
    _, current = sessions.refresh(first)
    assert current is not None

    # When the rotated token is presented again and again within the grace window
    outcomes = [sessions.refresh(first)[0] for _ in range(MAX_SIBLINGS + 2)]

    # Then siblings stop at the bound with a plain refusal, and the session is not revoked
    assert outcomes == ["grace"] * MAX_SIBLINGS + ["invalid", "invalid"]
    assert not is_revoked(sessions, first)
    assert sessions.refresh(current)[0] == "rotated"
