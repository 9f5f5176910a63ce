"""The identity wing's data access: where orgs, principals, memberships and sessions live, the DynamoDB
operations that write them, and ``IdentityData``, which reads and writes them through the store.

Layout (all keys tenant-scoped, see ``tenancy``):
- org:                 ``<org>:#org:<org>``
- User record:         ``<home org>:user:<id>`` (BaseModel; ``data.orgs`` lists its orgs and
                       ``data.memberships`` its roles, permissions and ``disabled`` per org, see
                       ``memberships``)
- User email index:    ``<org>:#user-email:<email>`` for every org in ``data.orgs`` -> the User's sk
- User membership:     ``<org>:#member:<user id>`` for every org in ``data.orgs`` (the org's user list;
                       resolves a user id within an org), counted in ``<org>:#count:user``
- Customer record:     ``<org>:customer:<id>``; email index ``<org>:#customer-email:<email>``
- session:             ``<home org>:#session:<sid>``; spent refresh hashes
                       ``<home org>:#refresh-spent:<sid>:<hash>``; a principal's sessions, indexed
                       ``<home org>:#principal-session:<kind>:<principal id>:<sid>`` (written with the
                       session, removed when a listing route revokes it, gone by TTL when it expires)
- sign-in failures:    ``<org>:#signin-failures:<kind>:<email>`` (recent failure stamps, the lock and
                       its escalation level; see ``lockout``); per source
                       ``<org>:#signin-source:<ip>:<epoch minute>`` (that minute's failures, a block)
- second factor:       ``<home org>:#2fa:<kind>:<principal id>`` (the TOTP secret sealed with KMS, pending
                       or enabled, the last TOTP step accepted, the SHA-256 of the unused recovery codes)
- 2FA challenge:       ``<org>:#2fa-challenge:<id>`` (one first factor waiting for its second, in the org of
                       the sign-in: principal, first factor, failures, an emailed code's salted hash; TTL)
- sign-in link:        ``<org>:#signin-link:<kind>:<selector>`` (the pending magic link and code of one
                       email, ``selector`` a digest of org, kind and email: the link's SHA-256, the code's
                       salted HMAC, expiry, wrong codes, requests in the current window; see
                       ``passwordless``)

Services hold the rules and call this module; only ``infra.store`` talks to DynamoDB. The authorizer's
session path imports this module too, so it imports nothing heavy (no passwords, no request models).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from appengine_core.infra.counters import counter_change, counter_key
from appengine_core.infra.envelope import Record
from appengine_core.infra.paging import PageRequest, PageResult, fetch_page
from appengine_core.infra.store import (
    TTL_ATTRIBUTE,
    Check,
    Delete,
    Operation,
    Put,
    TenantStore,
    Update,
)
from appengine_core.infra.tenancy import TenantKey

PrincipalKind = Literal["user", "customer"]
ORG_COLLECTION = "#org"
MEMBER_COLLECTION = "#member"
SESSION_COLLECTION = "#session"
SPENT_COLLECTION = "#refresh-spent"
PRINCIPAL_SESSION_COLLECTION = "#principal-session"
FAILURES_COLLECTION = "#signin-failures"
SOURCE_COLLECTION = "#signin-source"
SECOND_FACTOR_COLLECTION = "#2fa"
CHALLENGE_COLLECTION = "#2fa-challenge"
SIGNIN_LINK_COLLECTION = "#signin-link"
CUSTOMER_COLLECTION = "customer"
# An email longer than this (in UTF-8) is keyed by its digest, so that no key passes DynamoDB's 1 KB.
_MAX_EMAIL_KEY_BYTES = 320
PASSWORD_HASH = "passwordHash"
_NOT_REVOKED = "(attribute_not_exists(revoked) OR revoked <> :no)"


# -- keys ------------------------------------------------------------------------------------------
def org_key(orgid: str) -> TenantKey:
    return TenantKey(orgid, ORG_COLLECTION, orgid)


def email_index_key(orgid: str, kind: PrincipalKind, email: str) -> TenantKey:
    return TenantKey(orgid, f"#{kind}-email", email)


def member_key(orgid: str, user_id: str) -> TenantKey:
    return TenantKey(orgid, MEMBER_COLLECTION, user_id)


def session_key(home_orgid: str, session_id: str) -> TenantKey:
    return TenantKey(home_orgid, SESSION_COLLECTION, session_id)


def spent_key(home_orgid: str, session_id: str, digest: str) -> TenantKey:
    return TenantKey(home_orgid, SPENT_COLLECTION, f"{session_id}:{digest}")


def principal_session_prefix(principal_sk: str) -> str:
    """The sort-key prefix of the index items of ``principal_sk``'s sessions (in its home org)."""
    return principal_session_key(principal_sk, "-").sort[:-1]


def principal_session_key(principal_sk: str, session_id: str) -> TenantKey:
    """The index item that lists session ``session_id`` among ``principal_sk``'s sessions."""
    principal = TenantKey.parse(principal_sk)
    return TenantKey(
        principal.orgid,
        PRINCIPAL_SESSION_COLLECTION,
        f"{principal.collection}:{principal.item_id}:{session_id}",
    )


def failures_key(orgid: str, kind: PrincipalKind, email: str) -> TenantKey:
    """Where the failed sign-ins of ``email`` (normalized) as a ``kind`` in ``orgid`` are counted."""
    if len(email.encode()) > _MAX_EMAIL_KEY_BYTES:
        email = "sha256:" + hashlib.sha256(email.encode()).hexdigest()
    return TenantKey(orgid, FAILURES_COLLECTION, f"{kind}:{email}")


def source_key(orgid: str, source_ip: str, minute: int) -> TenantKey:
    """The failed sign-ins from ``source_ip`` in ``orgid`` during one epoch minute."""
    return TenantKey(orgid, SOURCE_COLLECTION, f"{source_ip[:64]}:{minute}")


def second_factor_key(principal_sk: str) -> TenantKey:
    """The 2FA item of ``principal_sk``, in its home org (a User's second factor is the person's, in
    every org it belongs to)."""
    principal = TenantKey.parse(principal_sk)
    return TenantKey(principal.orgid, SECOND_FACTOR_COLLECTION, f"{principal.collection}:{principal.item_id}")


def challenge_key(orgid: str, challenge_id: str) -> TenantKey:
    """A 2FA challenge, in the org the first factor signed in to."""
    return TenantKey(orgid, CHALLENGE_COLLECTION, challenge_id)


def signin_link_key(orgid: str, kind: PrincipalKind, selector: str) -> TenantKey:
    """The pending magic link and code of one email as a ``kind`` of ``orgid`` (``selector``: a digest
    of the three, which the link carries instead of the email)."""
    return TenantKey(orgid, SIGNIN_LINK_COLLECTION, f"{kind}:{selector}")


# -- models ------------------------------------------------------------------------------------------
class Org(BaseModel):
    orgid: str
    name: str
    createdAt: str  # noqa: N815
    settings: dict[str, Any] = Field(default_factory=dict)


class StoredPrincipal(BaseModel):
    """A principal as stored: its public envelope and, apart from it, its password hash (which never
    leaves the identity wing)."""

    record: Record
    password_hash: str | None = None


# -- operations: orgs and principals ---------------------------------------------------------------
def new_org(org: Org) -> Put:
    """The org item; fails if the org exists."""
    return Put(org_key(org.orgid), org.model_dump())


def org_exists(orgid: str) -> Check:
    return Check(org_key(orgid), "attribute_exists(PK)")


def new_principal(record: Record, password_hash: str | None) -> Put:
    """A principal's item; without a password hash for one that signs in only through a linked identity
    (OAuth): its password sign-in then verifies against the dummy hash and fails as a wrong password."""
    secret = {PASSWORD_HASH: password_hash} if password_hash is not None else {}
    return Put(record.key, record.to_item() | secret)


def membership_writes(orgid: str, user_sk: str, email: str) -> list[Operation]:
    """The items that make a user a member of ``orgid`` (all conditional: no duplicate email or member)."""
    user_id = TenantKey.parse(user_sk).item_id
    return [
        org_exists(orgid),
        Put(email_index_key(orgid, "user", email), {"principal": user_sk}),
        Put(member_key(orgid, user_id), {"principal": user_sk, "email": email}),
        counter_change(orgid, "user", 1),
    ]


def membership_removals(orgid: str, user_sk: str, email: str) -> list[Operation]:
    user_id = TenantKey.parse(user_sk).item_id
    return [
        Delete(email_index_key(orgid, "user", email), "attribute_exists(PK)"),
        Delete(member_key(orgid, user_id), "attribute_exists(PK)"),
        counter_change(orgid, "user", -1),
    ]


def new_user_writes(record: Record, password_hash: str, orgs: Sequence[str], email: str) -> list[Operation]:
    """A User and its membership in every org of ``orgs``, in one transaction."""
    operations: list[Operation] = [new_principal(record, password_hash)]
    for orgid in orgs:
        operations.extend(membership_writes(orgid, record.sk, email))
    return operations


def new_customer_writes(record: Record, password_hash: str | None, email: str) -> list[Operation]:
    """A Customer, its email index and its count, in an org that must exist (operation 1)."""
    return [
        new_principal(record, password_hash),
        org_exists(record.orgid),
        Put(email_index_key(record.orgid, "customer", email), {"principal": record.sk}),
        counter_change(record.orgid, "customer", 1),
    ]


def password_rehash(key: TenantKey, password_hash: str) -> Update:
    return Update(
        key,
        f"SET {PASSWORD_HASH} = :hash",
        values={":hash": password_hash},
        condition="attribute_exists(PK)",
    )


def record_rewrite(record: Record, data: Mapping[str, Any], now: str) -> Update:
    """A new ``data`` for ``record``, only over the version it was read at (the next version)."""
    return Update(
        record.key,
        "SET #data = :data, #version = :next, modifydate = :now",
        values={":data": dict(data), ":next": record.version + 1, ":now": now, ":current": record.version},
        names={"#data": "data", "#version": "version"},
        condition="#version = :current",
    )


# -- operations: sessions ----------------------------------------------------------------------------
def new_session(key: TenantKey, attributes: Mapping[str, Any], refresh_hash: str, expires_at: int) -> Put:
    return Put(key, dict(attributes) | {"refreshHash": refresh_hash, TTL_ATTRIBUTE: expires_at})


def session_listing(principal_sk: str, session_id: str, expires_at: int) -> Put:
    """The index item of a new session, kept (by TTL) as long as the session."""
    return Put(
        principal_session_key(principal_sk, session_id),
        {"session": session_id, TTL_ATTRIBUTE: expires_at},
    )


def session_unlisted(principal_sk: str, session_id: str) -> Delete:
    """A revoked session's index item, gone (whether or not it was still there)."""
    return Delete(principal_session_key(principal_sk, session_id))


def rotation(key: TenantKey, *, current: str, presented: str, successor: str, now: float) -> Update:
    """The session's current token becomes ``successor``, only if it still is ``current`` and the
    session is not revoked; ``presented`` stays the previous token for the grace window."""
    return Update(
        key,
        "SET refreshHash = :new, previousHash = :presented, rotatedAt = :now,"
        " lastSeenAt = :sec REMOVE siblingHashes",
        values={
            ":new": successor,
            ":presented": presented,
            ":now": now,
            ":sec": int(now),
            ":current": current,
            ":no": True,
        },
        condition=f"refreshHash = :current AND {_NOT_REVOKED}",
    )


def grace_sibling(
    key: TenantKey, *, presented: str, sibling: str, now: float, grace_seconds: int, max_siblings: int
) -> Update:
    """One more live token beside the current one, only while ``presented`` is the previous token
    inside its grace window and the session holds fewer than ``max_siblings`` of them."""
    return Update(
        key,
        "ADD siblingHashes :sibling SET lastSeenAt = :sec",
        values={
            ":sibling": {sibling},
            ":presented": presented,
            ":cutoff": now - grace_seconds,
            ":sec": int(now),
            ":no": True,
            ":max": max_siblings,
        },
        condition=(
            "previousHash = :presented AND rotatedAt >= :cutoff"
            " AND (attribute_not_exists(siblingHashes) OR size(siblingHashes) < :max)"
            f" AND {_NOT_REVOKED}"
        ),
    )


def seen(key: TenantKey, now: int, every_seconds: int) -> Update:
    """The session's ``lastSeenAt`` moved to ``now``, only if it is at least ``every_seconds`` old and
    the session is active (so a session is written at most once per ``every_seconds``)."""
    return Update(
        key,
        "SET lastSeenAt = :now",
        values={":now": now, ":stale": now - every_seconds, ":no": True},
        condition=f"attribute_exists(PK) AND lastSeenAt <= :stale AND expiresAt > :now AND {_NOT_REVOKED}",
    )


def spent_mark(home_orgid: str, session_id: str, digest: str, expires_at: int) -> Put:
    """A retired refresh token's hash, kept until its session expires."""
    return Put(
        spent_key(home_orgid, session_id, digest),
        {"session": session_id, TTL_ATTRIBUTE: expires_at},
        must_not_exist=False,
    )


def revocation(key: TenantKey, reason: str) -> Update:
    """Revoke a session that exists and is not revoked yet."""
    return Update(
        key,
        "SET revoked = :yes, revokedReason = :reason",
        values={":yes": True, ":reason": reason},
        condition="attribute_exists(PK) AND (attribute_not_exists(revoked) OR revoked <> :yes)",
    )


# -- operations: brute-force protection -------------------------------------------------------------
_NOT_LOCKED = "(attribute_not_exists(lockedUntil) OR lockedUntil <= :now)"
_NOT_BLOCKED = "(attribute_not_exists(blockedUntil) OR blockedUntil <= :now)"


def failure_mark(key: TenantKey, stamp: int, now: float, expires_at: int) -> Update:
    """One more failed sign-in (``stamp``: a unique nanosecond time) for an email that is not locked."""
    return Update(
        key,
        "ADD failures :stamp SET #ttl = :ttl",
        values={":stamp": {stamp}, ":ttl": expires_at, ":now": now},
        names={"#ttl": TTL_ATTRIBUTE},
        condition=_NOT_LOCKED,
    )


def failures_forgotten(key: TenantKey, stamps: Sequence[int]) -> Update:
    """Failure stamps that no longer count (older than the window) taken out of the set."""
    return Update(key, "DELETE failures :old", values={":old": set(stamps)}, condition="attribute_exists(PK)")


def lock_engagement(key: TenantKey, *, until: float, level: int, now: float, expires_at: int) -> Update:
    """The email locked until ``until`` at escalation ``level``, unless a lock holds already; the
    failures that led to it are spent."""
    return Update(
        key,
        "SET lockedUntil = :until, lockLevel = :level, #ttl = :ttl REMOVE failures",
        values={":until": until, ":level": level, ":ttl": expires_at, ":now": now},
        names={"#ttl": TTL_ATTRIBUTE},
        condition=_NOT_LOCKED,
    )


def failures_reset(key: TenantKey, *, now: float, expires_at: int) -> Update:
    """A successful sign-in: the count starts again, unless a lock engaged meanwhile (the escalation
    level stays: it resets only after a day without a lock)."""
    return Update(
        key,
        "SET #ttl = :ttl REMOVE failures",
        values={":ttl": expires_at, ":now": now},
        names={"#ttl": TTL_ATTRIBUTE},
        condition=_NOT_LOCKED,
    )


def lockout_cleared(key: TenantKey) -> Delete:
    """An admin's unlock: the count, the lock and the escalation, all gone (existing or not)."""
    return Delete(key)


def source_failure(key: TenantKey, now: float, expires_at: int) -> Update:
    """One more failed sign-in from a source in this minute, unless the source is blocked."""
    return Update(
        key,
        "ADD failures :one SET #ttl = :ttl",
        values={":one": 1, ":ttl": expires_at, ":now": now},
        names={"#ttl": TTL_ATTRIBUTE},
        condition=_NOT_BLOCKED,
    )


def source_failure_undone(key: TenantKey) -> Update:
    """A failure counted for a source taken back (the attempt was answered 429 after all)."""
    return Update(key, "ADD failures :minus", values={":minus": -1}, condition="attribute_exists(PK)")


def source_block(key: TenantKey, until: float) -> Update:
    """The source blocked until ``until`` (the first block of the minute wins)."""
    return Update(
        key,
        "SET blockedUntil = :until",
        values={":until": until},
        condition="attribute_exists(PK) AND attribute_not_exists(blockedUntil)",
    )


# -- operations: second factor --------------------------------------------------------------------
_2FA_ENABLED = "enabled = :yes"
_2FA_NOT_ENABLED = "(attribute_not_exists(enabled) OR enabled <> :yes)"
# Each TOTP step is accepted once per principal: only a step later than the last one accepted.
_STEP_UNSPENT = "(attribute_not_exists(lastStep) OR lastStep < :step)"
_CHALLENGE_ALIVE = "attribute_exists(PK) AND failures < :max AND expiresAt > :now"


def pending_second_factor(key: TenantKey, sealed: str, now: int) -> Update:
    """A new pending secret (replacing a pending one), unless 2FA is enabled."""
    return Update(
        key,
        "SET pendingSecret = :sealed, pendingAt = :now",
        values={":sealed": sealed, ":now": now, ":yes": True},
        condition=_2FA_NOT_ENABLED,
    )


def second_factor_enabling(
    key: TenantKey, *, pending: str, step: int, recovery_hashes: Sequence[str], now: int
) -> Update:
    """The pending secret ``pending`` (the one its code was checked against) becomes the secret, with
    its first step spent and a set of recovery-code hashes; only if it is still the pending one and 2FA
    is not enabled meanwhile."""
    return Update(
        key,
        "SET secret = :pending, enabled = :yes, enabledAt = :now, lastStep = :step,"
        " recoveryHashes = :codes REMOVE pendingSecret, pendingAt",
        values={
            ":pending": pending,
            ":yes": True,
            ":now": now,
            ":step": step,
            ":codes": set(recovery_hashes),
        },
        condition=f"pendingSecret = :pending AND {_2FA_NOT_ENABLED} AND {_STEP_UNSPENT}",
    )


def totp_step_spent(key: TenantKey, step: int) -> Update:
    """The replay guard: ``step`` is accepted, only if 2FA is enabled and no later (or equal) step was."""
    return Update(
        key,
        "SET lastStep = :step",
        values={":step": step, ":yes": True},
        condition=f"{_2FA_ENABLED} AND {_STEP_UNSPENT}",
    )


def recovery_codes_replaced(key: TenantKey, step: int, recovery_hashes: Sequence[str]) -> Update:
    """A new set of recovery-code hashes (the old set dies), with the TOTP step that allowed it spent."""
    return Update(
        key,
        "SET lastStep = :step, recoveryHashes = :codes",
        values={":step": step, ":codes": set(recovery_hashes), ":yes": True},
        condition=f"{_2FA_ENABLED} AND {_STEP_UNSPENT}",
    )


def recovery_code_spent(key: TenantKey, digest: str) -> Update:
    """One recovery code used: its hash leaves the set, only if it is still there (single use)."""
    return Update(
        key,
        "DELETE recoveryHashes :spent",
        values={":spent": {digest}, ":digest": digest, ":yes": True},
        condition=f"{_2FA_ENABLED} AND contains(recoveryHashes, :digest)",
    )


def second_factor_enabled(key: TenantKey) -> Check:
    return Check(key, _2FA_ENABLED, values={":yes": True})


def second_factor_removal(key: TenantKey, step: int | None = None) -> Delete:
    """2FA disabled: the item goes (secret, hashes, step), only if enabled (and, when a TOTP code
    allowed it, its step unspent)."""
    if step is None:
        return Delete(key, _2FA_ENABLED, values={":yes": True})
    return Delete(key, f"{_2FA_ENABLED} AND {_STEP_UNSPENT}", values={":yes": True, ":step": step})


def new_challenge(key: TenantKey, attributes: Mapping[str, Any], expires_at: int) -> Put:
    return Put(key, dict(attributes) | {"failures": 0, "expiresAt": expires_at, TTL_ATTRIBUTE: expires_at})


def challenge_failure(key: TenantKey, *, now: int, max_failures: int) -> Update:
    """One more wrong code for a challenge that is still alive (the last allowed one kills it)."""
    return Update(
        key,
        "ADD failures :one",
        values={":one": 1, ":max": max_failures, ":now": now},
        condition=_CHALLENGE_ALIVE,
    )


def challenge_completion(
    key: TenantKey, *, now: int, max_failures: int, email_code_hash: str | None = None
) -> Delete:
    """A challenge completes once: it goes, only if alive (and, for an emailed code, still holding the
    code that was checked)."""
    condition = _CHALLENGE_ALIVE
    values: dict[str, Any] = {":max": max_failures, ":now": now}
    if email_code_hash is not None:
        condition += " AND emailCodeHash = :hash"
        values[":hash"] = email_code_hash
    return Delete(key, condition, values=values)


def challenge_code_sent(
    key: TenantKey, *, salt: str, digest: str, now: int, max_failures: int, max_sends: int
) -> Update:
    """A new emailed code for a live challenge (replacing the previous one), at most ``max_sends``."""
    return Update(
        key,
        "SET emailCodeSalt = :salt, emailCodeHash = :hash ADD sends :one",
        values={
            ":salt": salt,
            ":hash": digest,
            ":one": 1,
            ":max": max_failures,
            ":now": now,
            ":sends": max_sends,
        },
        condition=f"{_CHALLENGE_ALIVE} AND (attribute_not_exists(sends) OR sends < :sends)",
    )


# -- operations: passwordless sign-in (magic link and code) ----------------------------------------
def _link_assignments(attributes: Mapping[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``#a0 = :a0, ...`` for every attribute (names as placeholders: some are reserved words)."""
    names = {f"#a{i}": name for i, name in enumerate(attributes)}
    values = {f":a{i}": value for i, value in enumerate(attributes.values())}
    return ", ".join(f"#a{i} = :a{i}" for i in range(len(names))), names, values


_LINK_COUNTERS = {"#requests": "requests", "#window": "requestWindow", "#misses": "misses"}


def signin_link_issued(
    key: TenantKey, attributes: Mapping[str, Any], *, window: int, max_requests: int
) -> Update:
    """A new link and code replacing the pending ones (their wrong codes forgotten), counted as one
    more request of ``window``; fails when the item counts another window (or none) or this one is full."""
    assignments, names, values = _link_assignments(attributes)
    return Update(
        key,
        f"SET {assignments} ADD #requests :one REMOVE #misses",
        values=values | {":one": 1, ":window": window, ":max": max_requests},
        names=names | _LINK_COUNTERS,
        condition="#window = :window AND #requests < :max",
    )


def signin_link_window_started(key: TenantKey, attributes: Mapping[str, Any], *, window: int) -> Update:
    """A new link and code as the first request of ``window``; fails if the item counts this window
    already (a parallel request started it: ``signin_link_issued`` decides then)."""
    assignments, names, values = _link_assignments(attributes)
    return Update(
        key,
        f"SET {assignments}, #requests = :one, #window = :window REMOVE #misses",
        values=values | {":one": 1, ":window": window},
        names=names | _LINK_COUNTERS,
        condition="attribute_not_exists(PK) OR #window <> :window",
    )


def signin_link_redeemed(
    key: TenantKey,
    *,
    attribute: Literal["tokenHash", "codeHash"],
    digest: str,
    now: float,
    max_misses: int,
) -> Delete:
    """The link and code spent together, once: only while the item still holds ``digest`` (not
    replaced), has not expired, has fewer than ``max_misses`` wrong codes and names a principal."""
    return Delete(
        key,
        "#hash = :digest AND #expires > :now AND #principal <> :none"
        " AND (attribute_not_exists(#misses) OR #misses < :max)",
        values={":digest": digest, ":now": now, ":none": "", ":max": max_misses},
        names={"#hash": attribute, "#expires": "expiresAt", "#principal": "principal", "#misses": "misses"},
    )


def signin_code_missed(key: TenantKey, *, code_hash: str) -> Update:
    """One more wrong code against the code ``code_hash`` (not against one that replaced it)."""
    return Update(
        key,
        "ADD #misses :one",
        values={":one": 1, ":seen": code_hash},
        names={"#misses": "misses", "#code": "codeHash"},
        condition="#code = :seen",
    )


# -- reads and writes ------------------------------------------------------------------------------
def stored_principal(item: Mapping[str, Any]) -> StoredPrincipal:
    hashed = item.get(PASSWORD_HASH)
    return StoredPrincipal(
        record=Record.from_item(dict(item)), password_hash=str(hashed) if hashed is not None else None
    )


class IdentityData:
    """Orgs, principals and memberships through the store; raises the store's ``ConditionFailed``
    and ``TransactionCollided`` for the services to judge."""

    def __init__(self, store: TenantStore | None = None) -> None:
        self.store = store or TenantStore()

    # -- orgs ----------------------------------------------------------------------------------
    def put_org(self, org: Org) -> None:
        self.store.put(new_org(org))

    def org(self, orgid: str) -> Org | None:
        item = self.store.get(org_key(orgid))
        return Org.model_validate(item) if item else None

    # -- principals ----------------------------------------------------------------------------
    def principal_item(self, principal_sk: str, *, consistent: bool = False) -> dict[str, Any] | None:
        """The stored item as it is (secrets included): for operator tooling and its tests."""
        return self.store.get(TenantKey.parse(principal_sk), consistent=consistent)

    def principal(self, principal_sk: str, *, consistent: bool = False) -> StoredPrincipal | None:
        item = self.principal_item(principal_sk, consistent=consistent)
        return stored_principal(item) if item else None

    def principal_and_second_factor(
        self, principal_sk: str
    ) -> tuple[StoredPrincipal | None, dict[str, Any] | None]:
        """A principal and its 2FA item in one strongly consistent round trip (a first factor's end
        decides between a session and a challenge on both)."""
        principal_key, factor_key = TenantKey.parse(principal_sk), second_factor_key(principal_sk)
        items = self.store.batch_get([principal_key, factor_key], consistent=True)
        item = items.get(principal_key.sort)
        return (stored_principal(item) if item else None), items.get(factor_key.sort)

    def principal_sk_by_email(self, orgid: str, kind: PrincipalKind, email: str) -> str | None:
        index = self.store.get(email_index_key(orgid, kind, email))
        return str(index["principal"]) if index else None

    def member_sk(self, orgid: str, user_id: str) -> str | None:
        item = self.store.get(member_key(orgid, user_id))
        return str(item["principal"]) if item else None

    def commit(self, operations: Sequence[Operation]) -> None:
        self.store.transact(operations)

    def rehash_password(self, key: TenantKey, password_hash: str) -> None:
        self.store.update(password_rehash(key, password_hash), return_new=False)

    def rewrite(self, record: Record, data: dict[str, Any], now: str, extra: Sequence[Operation]) -> Record:
        """``record`` with a new ``data`` (version-checked: operation 0), with ``extra`` in the same
        transaction; the record as written."""
        self.store.transact([record_rewrite(record, data, now), *extra])
        return record.model_copy(update={"data": data, "version": record.version + 1, "modifydate": now})

    # -- an org's users ------------------------------------------------------------------------
    def member_page(self, orgid: str, page: PageRequest) -> tuple[PageResult, list[Record]]:
        """One page of ``orgid``'s members and their records, in member order."""
        result = fetch_page(
            page,
            orgid,
            MEMBER_COLLECTION,
            lambda limit, after: self.store.query(
                orgid, MEMBER_COLLECTION, limit=limit, after_sort_key=after
            ),
        )
        keys = [TenantKey.parse(str(item["principal"])) for item in result.items]
        found = self.store.batch_get(keys)
        return result, [Record.from_item(found[k.sort]) for k in keys if k.sort in found]

    def count(self, orgid: str, collection: str) -> int:
        return int((self.store.get(counter_key(orgid, collection)) or {}).get("total", 0))

    # -- an org's customers --------------------------------------------------------------------
    def customer_page(self, orgid: str, page: PageRequest) -> tuple[PageResult, list[Record]]:
        """One page of ``orgid``'s customers (their envelopes only), in id (creation) order."""
        result = fetch_page(
            page,
            orgid,
            CUSTOMER_COLLECTION,
            lambda limit, after: self.store.query(
                orgid, CUSTOMER_COLLECTION, limit=limit, after_sort_key=after
            ),
        )
        return result, [Record.from_item(item) for item in result.items]

    # -- brute-force protection ----------------------------------------------------------------
    def lockout_items(self, keys: Sequence[TenantKey]) -> dict[str, dict[str, Any]]:
        """The counters of one sign-in attempt (its email, its source's minutes), strongly consistent,
        in one round trip, by sort key."""
        return self.store.batch_get(keys, consistent=True)

    def count_write(self, operation: Update) -> dict[str, Any]:
        """A counter's update, and the item as it stands right after it (``ConditionFailed`` if its
        condition does not hold)."""
        return self.store.update(operation) or {}

    def clear(self, operation: Delete) -> None:
        self.store.delete(operation)

    # -- second factor -------------------------------------------------------------------------
    def second_factor(self, principal_sk: str) -> dict[str, Any] | None:
        """The principal's 2FA item as stored (sealed secrets and hashes only), strongly consistent."""
        return self.store.get(second_factor_key(principal_sk), consistent=True)

    def challenge(self, orgid: str, challenge_id: str) -> dict[str, Any] | None:
        """A 2FA challenge as stored, strongly consistent."""
        return self.store.get(challenge_key(orgid, challenge_id), consistent=True)

    def save(self, operation: Put) -> None:
        self.store.put(operation)

    def change(self, operation: Update) -> None:
        """A conditional update (``ConditionFailed`` if its condition does not hold)."""
        self.store.update(operation, return_new=False)

    # -- passwordless sign-in ------------------------------------------------------------------
    def signin_link(self, key: TenantKey) -> dict[str, Any] | None:
        """An email's pending link item as stored (hashes only), strongly consistent."""
        return self.store.get(key, consistent=True)
