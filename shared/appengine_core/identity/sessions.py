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

from appengine_core.identity.data import PrincipalKind as PrincipalKind
from appengine_core.identity.data import (
    grace_sibling,
    new_session,
    revocation,
    rotation,
    spent_mark,
)
from appengine_core.identity.data import session_key as session_key
from appengine_core.identity.data import spent_key as spent_key
from appengine_core.infra.store import ConditionFailed, Put, TenantStore, TransactionCollided
from appengine_core.infra.tenancy import TenantKey, is_valid_orgid

REFRESH_GRACE_SECONDS = 10
# Grace siblings per rotation: bounds the session item and the transaction that retires them.
MAX_SIBLINGS = 32
# A transaction holds at most 100 operations: the session update and the spent hashes it records.
_MAX_SPENT_PER_ROTATION = 99
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
        self._store.put(
            new_session(session_key(home, session.id), session.model_dump(), token.digest, session.expiresAt)
        )
        return session, token

    def get_raw(self, home_orgid: str, session_id: str) -> dict[str, Any] | None:
        return self._store.get(session_key(home_orgid, session_id), consistent=True)

    def refresh(
        self, token: RefreshToken, now: float | None = None
    ) -> tuple[RefreshOutcome, RefreshToken | None]:
        """Rotate ``token``'s family. Returns the outcome and, for rotated/grace, the new token."""
        now = now or time.time()
        key = session_key(token.home_orgid, token.session_id)
        for _ in range(3):  # a lost race re-reads the session and decides again
            item = self._store.get(key, consistent=True)
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
                continue
            self.revoke(token.home_orgid, token.session_id, reason="reuse")
            return "reuse", None
        return "invalid", None

    @staticmethod
    def _spent(token: RefreshToken, digest: str, expires_at: int) -> Put:
        return spent_mark(token.home_orgid, token.session_id, digest, expires_at)

    def _is_spent(self, token: RefreshToken) -> bool:
        key = spent_key(token.home_orgid, token.session_id, token.digest)
        return self._store.get(key, consistent=True) is not None

    def revoke(self, home_orgid: str, session_id: str, *, reason: str) -> bool:
        """Revoke a session; True if it was active."""
        try:
            self._store.update(revocation(session_key(home_orgid, session_id), reason), return_new=False)
        except ConditionFailed:
            return False
        return True
