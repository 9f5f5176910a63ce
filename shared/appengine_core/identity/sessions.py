"""Sessions and their refresh-token families.

A session is one completed sign-in: ``<home org>:#session:<sid>``. It holds only hashes of its refresh
tokens. Every refresh rotates the token with a conditional write; the token it replaced stays
``previousHash`` for a 10-second grace window (a concurrent refresh from the same client gets a sibling
token in the same session). Only a token this service issued and rotated counts as reuse and revokes the
session with all its tokens: the rotation that retires a token (and any sibling it drops) records its
hash in ``<home org>:#refresh-spent:<sid>:<hash>`` in the same transaction, kept until the session
expires. Any other string naming the session (the id is in every access token, so anyone may forge the
shape) is a plain refusal that revokes nothing. Access tokens carry the session id, and the authorizer
reads the session on every request, so revocation holds from the next request.

Each session also has an index item under its principal (``data.principal_session_key``), written in
the same transaction, so that a principal's sessions are listed with one Query, never a Scan.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from appengine_core.identity.data import (
    PRINCIPAL_SESSION_COLLECTION,
    grace_sibling,
    new_session,
    principal_session_prefix,
    revocation,
    rotation,
    seen,
    session_listing,
    session_unlisted,
    spent_mark,
)
from appengine_core.identity.data import PrincipalKind as PrincipalKind
from appengine_core.identity.data import session_key as session_key
from appengine_core.identity.data import spent_key as spent_key
from appengine_core.infra.errors import ServiceUnavailable
from appengine_core.infra.paging import PageRequest, PageResult, fetch_page
from appengine_core.infra.store import ConditionFailed, Put, TenantStore, TransactionCollided
from appengine_core.infra.tenancy import TenantKey, is_valid_orgid

REFRESH_GRACE_SECONDS = 10
# lastSeenAt is written at most once a minute per session.
LAST_SEEN_EVERY_SECONDS = 60
# Grace siblings per rotation: bounds the session item and the transaction that retires them.
MAX_SIBLINGS = 32
# A transaction holds at most 100 operations: the session update and the spent hashes it records.
_MAX_SPENT_PER_ROTATION = 99
# revoke-others: at most this many sessions of a principal are revoked in one call.
MAX_SESSIONS_REVOKED = 1000
SESSION_ID = re.compile(r"^[0-9a-f]{32}$")
_TOKEN = re.compile(
    r"^(?P<org>[a-z0-9][a-z0-9-]{1,62})\.(?P<sid>[0-9a-f]{32})\.(?P<secret>[A-Za-z0-9_-]{43})$"
)

RefreshOutcome = Literal["rotated", "grace", "reuse", "invalid"]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class RefreshToken:
    home_orgid: str
    session_id: str
    secret: str

    @property
    def value(self) -> str:
        return f"{self.home_orgid}.{self.session_id}.{self.secret}"

    @property
    def digest(self) -> str:
        return _digest(self.secret)

    @classmethod
    def new(cls, home_orgid: str, session_id: str) -> RefreshToken:
        return cls(home_orgid, session_id, secrets.token_urlsafe(32))

    @classmethod
    def parse(cls, value: str) -> RefreshToken | None:
        match = _TOKEN.fullmatch(value.strip()) if isinstance(value, str) else None
        if not match or not is_valid_orgid(match["org"]):
            return None
        return cls(match["org"], match["sid"], match["secret"])


class Session(BaseModel):
    id: str
    principal: str  # the principal's sk
    kind: PrincipalKind
    method: str
    userAgent: str | None = None  # noqa: N815
    sourceIp: str | None = None  # noqa: N815
    createdAt: int  # noqa: N815
    lastSeenAt: int  # noqa: N815
    expiresAt: int  # noqa: N815
    revoked: bool = False

    def is_active(self, now: int | None = None) -> bool:
        return not self.revoked and self.expiresAt > (now or int(time.time()))


def session_from_item(item: dict[str, Any]) -> Session:
    return Session.model_validate(item)


class SessionStore:
    def __init__(self, store: TenantStore | None = None) -> None:
        self._store = store or TenantStore()

    def create(
        self,
        *,
        principal_sk: str,
        kind: PrincipalKind,
        method: str,
        lifetime_seconds: int,
        user_agent: str | None,
        source_ip: str | None,
    ) -> tuple[Session, RefreshToken]:
        home = TenantKey.parse(principal_sk).orgid
        now = int(time.time())
        session = Session(
            id=secrets.token_hex(16),
            principal=principal_sk,
            kind=kind,
            method=method,
            userAgent=(user_agent or "")[:512] or None,
            sourceIp=source_ip,
            createdAt=now,
            lastSeenAt=now,
            expiresAt=now + lifetime_seconds,
        )
        token = RefreshToken.new(home, session.id)
        self._store.transact(
            [
                new_session(
                    session_key(home, session.id), session.model_dump(), token.digest, session.expiresAt
                ),
                session_listing(principal_sk, session.id, session.expiresAt),
            ]
        )
        return session, token

    def touch(self, home_orgid: str, session_id: str, item: dict[str, Any], now: float | None = None) -> bool:
        """Moves the session's ``lastSeenAt`` to now when ``item`` (the session as just read) shows it
        older than a minute: at most one conditional write per session per minute, none otherwise.
        True if it wrote."""
        stamp = int(now or time.time())
        if int(item.get("lastSeenAt", 0)) > stamp - LAST_SEEN_EVERY_SECONDS:
            return False
        try:
            self._store.update(
                seen(session_key(home_orgid, session_id), stamp, LAST_SEEN_EVERY_SECONDS), return_new=False
            )
        except ConditionFailed:
            return False  # another request moved it meanwhile, or the session ended
        return True

    def get(self, home_orgid: str, session_id: str) -> Session | None:
        item = self.get_raw(home_orgid, session_id) if SESSION_ID.fullmatch(session_id) else None
        return session_from_item(item) if item else None

    def listed(self, principal_sk: str, page: PageRequest) -> tuple[PageResult, list[Session]]:
        """One page of ``principal_sk``'s session index and the sessions it names that are still active
        (a page may hold fewer than its size: revoked and expired ones are left out)."""
        home = TenantKey.parse(principal_sk).orgid
        prefix = principal_session_prefix(principal_sk)
        result = fetch_page(
            page,
            home,
            PRINCIPAL_SESSION_COLLECTION,
            lambda limit, after: self._store.query(
                home, PRINCIPAL_SESSION_COLLECTION, limit=limit, after_sort_key=after, sort_prefix=prefix
            ),
        )
        return result, self._active(home, principal_sk, [str(i["session"]) for i in result.items])

    def active_ids(self, principal_sk: str, limit: int = MAX_SESSIONS_REVOKED) -> list[str]:
        """The ids of ``principal_sk``'s active sessions (at most ``limit`` index items read)."""
        home = TenantKey.parse(principal_sk).orgid
        prefix = principal_session_prefix(principal_sk)
        ids: list[str] = []
        after: str | None = None
        while len(ids) < limit:
            found = self._store.query(
                home, PRINCIPAL_SESSION_COLLECTION, limit=100, after_sort_key=after, sort_prefix=prefix
            )
            ids += [str(i["session"]) for i in found.items]
            after = found.last_sort_key
            if after is None:
                break
        return [s.id for s in self._active(home, principal_sk, ids[:limit])]

    def _active(self, home: str, principal_sk: str, ids: list[str]) -> list[Session]:
        sessions: list[Session] = []
        now = int(time.time())
        for start in range(0, len(ids), 100):
            keys = [session_key(home, sid) for sid in ids[start : start + 100]]
            found = self._store.batch_get(keys, consistent=True)
            for key in keys:
                item = found.get(key.sort)
                if item is None:
                    continue
                session = session_from_item(item)
                if session.principal == principal_sk and session.is_active(now):
                    sessions.append(session)
        return sessions

    def get_raw(self, home_orgid: str, session_id: str) -> dict[str, Any] | None:
        return self._store.get(session_key(home_orgid, session_id), consistent=True)

    def refresh(
        self, token: RefreshToken, now: float | None = None, *, read: dict[str, Any] | None = None
    ) -> tuple[RefreshOutcome, RefreshToken | None]:
        """Rotate ``token``'s family. Returns the outcome and, for rotated/grace, the new token.
        ``read``: the session item as the caller just read it (consistently), decided on first instead
        of reading it again; the rotation's conditions hold whatever changed since."""
        now = now or time.time()
        key = session_key(token.home_orgid, token.session_id)
        collided = False
        for attempt in range(3):  # a lost race re-reads the session and decides again
            collided = False
            item = read if attempt == 0 and read is not None else self._store.get(key, consistent=True)
            if not item or item.get("revoked") or int(item.get("expiresAt", 0)) <= now:
                return "invalid", None
            presented = token.digest
            current = str(item.get("refreshHash", ""))
            siblings = [str(s) for s in item.get("siblingHashes") or ()]
            successor = RefreshToken.new(token.home_orgid, token.session_id)
            try:
                if hmac.compare_digest(presented, current) or presented in siblings:
                    # Every token this rotation retires is recorded spent in the same commit, so that
                    # presenting it again later is known to be reuse and nothing else ever is.
                    retired = [d for d in dict.fromkeys([presented, current, *siblings]) if d]
                    self._store.transact(
                        [
                            rotation(
                                key,
                                current=current,
                                presented=presented,
                                successor=successor.digest,
                                now=now,
                            ),
                            *(
                                self._spent(token, digest, int(item.get("expiresAt", 0)))
                                for digest in retired[:_MAX_SPENT_PER_ROTATION]
                            ),
                        ]
                    )
                    return "rotated", successor
                previous = str(item.get("previousHash", ""))
                rotated_at = float(item.get("rotatedAt", 0))
                if previous and hmac.compare_digest(presented, previous):
                    if now - rotated_at <= REFRESH_GRACE_SECONDS:
                        self._store.update(
                            grace_sibling(
                                key,
                                presented=presented,
                                sibling=successor.digest,
                                now=now,
                                grace_seconds=REFRESH_GRACE_SECONDS,
                                max_siblings=MAX_SIBLINGS,
                            ),
                            return_new=False,
                        )
                        return "grace", successor
                    # The token this session last rotated, past its grace: issued here, so reuse.
                elif not self._is_spent(token):
                    # Not a token of this family at all: a guess or a forgery naming a real session.
                    return "invalid", None
            except ConditionFailed:
                continue
            except TransactionCollided:
                collided = True
                continue
            self.revoke(token.home_orgid, token.session_id, reason="reuse")
            return "reuse", None
        if collided:
            # Concurrent transactions, not the token, kept the rotation out: the token is still good.
            raise ServiceUnavailable("the session is busy; retry", retry_after_seconds=1)
        return "invalid", None

    @staticmethod
    def _spent(token: RefreshToken, digest: str, expires_at: int) -> Put:
        return spent_mark(token.home_orgid, token.session_id, digest, expires_at)

    def _is_spent(self, token: RefreshToken) -> bool:
        key = spent_key(token.home_orgid, token.session_id, token.digest)
        return self._store.get(key, consistent=True) is not None

    def revoke(
        self, home_orgid: str, session_id: str, *, reason: str, principal_sk: str | None = None
    ) -> bool:
        """Revoke a session; True if it was active. With ``principal_sk`` its index item goes too."""
        key = session_key(home_orgid, session_id)
        for _ in range(3):  # a transaction that collided with a refresh of the session is tried again
            try:
                if principal_sk is None:
                    self._store.update(revocation(key, reason), return_new=False)
                else:
                    self._store.transact(
                        [revocation(key, reason), session_unlisted(principal_sk, session_id)]
                    )
            except ConditionFailed:
                return False
            except TransactionCollided:
                continue
            return True
        try:  # still colliding: the session at least (its index item then ends with its TTL)
            self._store.update(revocation(key, reason), return_new=False)
        except ConditionFailed:
            return False
        return True
