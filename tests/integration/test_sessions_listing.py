"""Sessions and devices (contract §4) in the store: each session is listed under its principal by a
Query on its index (never a Scan), revoked and expired ones are left out, a listing route's revocation
removes the index item, and ``lastSeenAt`` is written at most once a minute per session."""

from __future__ import annotations

import time
from typing import Any

from appengine_core.identity.data import principal_session_key
from appengine_core.identity.sessions import LAST_SEEN_EVERY_SECONDS, SessionStore
from appengine_core.infra.envelope import Record
from appengine_core.infra.paging import PageRequest
from appengine_core.infra.store import TenantStore


def start(sessions: SessionStore, record: Record, lifetime: int = 3600) -> str:
    session, _ = sessions.create(
        principal_sk=record.sk,
        kind="user",
        method="password",
        lifetime_seconds=lifetime,
        user_agent="pytest",
        source_ip="127.0.0.1",
    )
    return session.id


def test_a_principals_sessions_are_listed_from_its_index_without_the_ended_ones(
    tenants: dict[str, Any],
) -> None:
    sessions, admin = SessionStore(), tenants["acme_admin"]
    before = {s.id for s in sessions.listed(admin.sk, PageRequest(page_size=100))[1]}
    kept, revoked, expired = start(sessions, admin), start(sessions, admin), start(sessions, admin, -1)
    assert sessions.revoke(admin.orgid, revoked, reason="test", principal_sk=admin.sk)
    listed = {s.id for s in sessions.listed(admin.sk, PageRequest(page_size=100))[1]} - before
    assert listed == {kept}
    assert kept in sessions.active_ids(admin.sk)
    # The revoked session's index item is gone; the expired one's stays until its TTL
    store = TenantStore()
    assert store.get(principal_session_key(admin.sk, revoked)) is None
    assert store.get(principal_session_key(admin.sk, expired)) is not None
    # Another principal's sessions are not in this list
    other = tenants["acme_reader"]
    assert kept not in {s.id for s in sessions.listed(other.sk, PageRequest(page_size=100))[1]}


def test_last_seen_is_written_at_most_once_a_minute(tenants: dict[str, Any]) -> None:
    sessions, admin = SessionStore(), tenants["acme_admin"]
    sid = start(sessions, admin)
    item = sessions.get_raw(admin.orgid, sid) or {}
    # Within the minute: no write at all
    assert not sessions.touch(admin.orgid, sid, item)
    # A minute later: one write, and a second request with the same stale read loses the condition
    later = time.time() + LAST_SEEN_EVERY_SECONDS + 1
    assert sessions.touch(admin.orgid, sid, item, now=later)
    assert not sessions.touch(admin.orgid, sid, item, now=later)
    assert (sessions.get_raw(admin.orgid, sid) or {})["lastSeenAt"] == int(later)
    # A revoked session is never touched
    sessions.revoke(admin.orgid, sid, reason="test", principal_sk=admin.sk)
    assert not sessions.touch(admin.orgid, sid, item, now=later + 2 * LAST_SEEN_EVERY_SECONDS)


def test_the_authorizer_moves_last_seen_once_a_minute(gateway: Any, tenants: dict[str, Any]) -> None:
    # Given a session last seen two minutes ago
    from appengine_core.identity.data import session_key
    from appengine_core.identity.tokens import TokenService
    from appengine_core.infra.store import Update

    sessions, admin, store = SessionStore(), tenants["acme_admin"], TenantStore()
    sid = start(sessions, admin)
    token, _ = TokenService().issue(subject=admin.sk, kind="user", session_id=sid, orgid=admin.orgid)
    old = int(time.time()) - 2 * LAST_SEEN_EVERY_SECONDS
    store.update(Update(session_key(admin.orgid, sid), "SET lastSeenAt = :t", values={":t": old}))
    headers = {"orgid": "acme", "authorization": f"Bearer {token}"}
    # When two requests pass the authorizer
    assert gateway.get("/profile/whoami", headers=headers).status_code == 200
    first = int((store.get(session_key(admin.orgid, sid)) or {})["lastSeenAt"])
    assert gateway.get("/profile/whoami", headers=headers).status_code == 200
    second = int((store.get(session_key(admin.orgid, sid)) or {})["lastSeenAt"])
    # Then the first moved lastSeenAt to now and the second, within the minute, wrote nothing
    assert first >= int(time.time()) - 5 and second == first
