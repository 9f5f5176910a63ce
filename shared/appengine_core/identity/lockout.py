"""Brute-force protection of the sign-in factors (contract §4, "Brute-force protection").

Failed factors are counted per (org, principal kind, email), for emails that exist and that do not
alike, and per source IP:

- a failure counts for 15 minutes; after 5 for an email, every attempt for it (the right password
  included) is refused, 429 ``rate_limited`` with ``Retry-After``, for an escalating window of 1, 5, 15,
  then 60 minutes; the escalation starts again after 24 hours without a lock. A success resets the
  count (not the escalation). The failures that engage a lock are spent by it: after the lock, the next
  lock takes 5 new failures.
- more than 30 failures from one source within a (clock) minute block that source for a minute.
- attempts answered 429 do not count; refresh failures are not sign-in factors and never come here.

Counting is atomic in DynamoDB (``identity.data``): each failure ADDs a unique stamp to the email's set
under the condition that no lock holds, and the set as written ranks it exactly among parallel
failures: the 5th engages the lock (and is still answered 401), any later one gets 429, however many
race around the threshold. Nothing here stores a password; the email is the key.

AppEngine's JS client retries every 401 once, so a wrong password sent through it arrives twice and
counts twice (each arrival is a failure: 5 failures are 3 typos through that client). Telling a
client's retry from a second guess would need a fingerprint of the password, which is not stored.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from appengine_core.identity.data import (
    IdentityData,
    PrincipalKind,
    failure_mark,
    failures_forgotten,
    failures_key,
    failures_reset,
    lock_engagement,
    lockout_cleared,
    source_block,
    source_failure,
    source_failure_undone,
    source_key,
)
from appengine_core.infra.errors import RateLimited
from appengine_core.infra.events import EventPublisher, publish_best_effort
from appengine_core.infra.store import ConditionFailed
from appengine_core.infra.tenancy import TenantKey

FAILURE_LIMIT = 5
FAILURE_WINDOW_SECONDS = 15 * 60
LOCK_WINDOWS_SECONDS = (60, 5 * 60, 15 * 60, 60 * 60)
ESCALATION_RESET_SECONDS = 24 * 60 * 60
SOURCE_LIMIT = 30
SOURCE_WINDOW_SECONDS = 60
SOURCE_BLOCK_SECONDS = 60
# An email's item remembers its escalation for a day after the longest lock ends.
_KEEP_SECONDS = ESCALATION_RESET_SECONDS + LOCK_WINDOWS_SECONDS[-1] + FAILURE_WINDOW_SECONDS
_NANOS = 1_000_000_000


# -- the schedule (pure) -----------------------------------------------------------------------------
def lock_window(level: int) -> int:
    """Seconds of the ``level``-th lock in a row (1-based): 1, 5, 15, then 60 minutes."""
    return LOCK_WINDOWS_SECONDS[min(max(level, 1), len(LOCK_WINDOWS_SECONDS)) - 1]


def escalated_level(previous_level: int, previous_until: float | None, now: float) -> int:
    """The level of a lock engaged at ``now``, after a previous lock of ``previous_level`` that ended
    at ``previous_until``: one more, unless a whole day passed without a lock (then 1 again)."""
    if previous_until is None or previous_level < 1 or now - previous_until >= ESCALATION_RESET_SECONDS:
        return 1
    return previous_level + 1


def recent_failures(stamps: Sequence[int], now: float) -> list[int]:
    """The failure stamps (nanoseconds) that still count at ``now``: those of the last 15 minutes."""
    cutoff = int((now - FAILURE_WINDOW_SECONDS) * _NANOS)
    return [stamp for stamp in stamps if stamp >= cutoff]


def retry_after(until: float, now: float) -> int:
    return max(1, math.ceil(until - now))


def normalized_email(email: str) -> str:
    return email.strip().lower()


def _minute(now: float) -> int:
    return int(now // SOURCE_WINDOW_SECONDS)


# -- the guard ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Attempt:
    """One sign-in attempt admitted by ``BruteForceGuard.admit``: what its outcome is counted against."""

    orgid: str
    kind: PrincipalKind
    email: str
    source_ip: str | None
    seen_before: bool  # the email had failures, a lock or an escalation when the attempt was admitted

    @property
    def key(self) -> TenantKey:
        return failures_key(self.orgid, self.kind, self.email)


def _locked(until: float, now: float) -> RateLimited:
    return RateLimited(retry_after(until, now), "too many failed sign-ins for this account; try again later")


def _blocked(until: float, now: float) -> RateLimited:
    return RateLimited(retry_after(until, now), "too many failed sign-ins from this address; try again later")


class BruteForceGuard:
    """Admits sign-in attempts and counts their outcome. Every sign-in factor (password today; codes
    and links as they come) calls ``admit`` before checking the factor, then ``failed`` or
    ``succeeded``."""

    def __init__(
        self,
        data: IdentityData | None = None,
        events: EventPublisher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._data = data or IdentityData()
        self._events = events or EventPublisher()
        self._clock = clock

    def admit(self, orgid: str, kind: PrincipalKind, email: str, source_ip: str | None) -> Attempt:
        """The attempt, or 429 when the email is locked or the source blocked (one read)."""
        now = self._clock()
        attempt = Attempt(orgid, kind, normalized_email(email), source_ip or None, seen_before=False)
        sources = self._source_keys(attempt, now)
        items = self._data.lockout_items([attempt.key, *sources])
        item = items.get(attempt.key.sort)
        until = float((item or {}).get("lockedUntil") or 0)
        if until > now:
            raise _locked(until, now)
        for key in sources:
            blocked = float(items.get(key.sort, {}).get("blockedUntil") or 0)
            if blocked > now:
                raise _blocked(blocked, now)
        if sources and int(items.get(sources[0].sort, {}).get("failures") or 0) > SOURCE_LIMIT:
            raise _blocked(now + SOURCE_BLOCK_SECONDS, now)
        return Attempt(orgid, kind, attempt.email, attempt.source_ip, seen_before=item is not None)

    def failed(self, attempt: Attempt) -> None:
        """Counts a failed factor; raises the 429 to answer instead of the 401 when this failure is
        past a limit (or a lock engaged while it was being checked)."""
        now = self._clock()
        counted = self._count_source(attempt, now)
        try:
            self._count_email(attempt, now)
        except RateLimited:
            # Answered 429, so it does not count for the source either.
            if counted is not None:
                with suppress(ConditionFailed):  # the minute's counter expired meanwhile
                    self._data.count_write(source_failure_undone(counted))
            raise

    def succeeded(self, attempt: Attempt) -> None:
        """A factor was right: the email's count starts again; 429 if a lock engaged meanwhile."""
        if not attempt.seen_before:
            return
        now = self._clock()
        try:
            self._data.count_write(failures_reset(attempt.key, now=now, expires_at=int(now) + _KEEP_SECONDS))
        except ConditionFailed as locked:
            raise _locked(self._lock_end(attempt.key, now), now) from locked

    def unlock(self, orgid: str, kind: PrincipalKind, email: str, actor: str) -> None:
        """Clears the count, the lock and the escalation of ``email`` in ``orgid`` (existing or not)."""
        attempt = Attempt(orgid, kind, normalized_email(email), None, seen_before=True)
        self._data.clear(lockout_cleared(attempt.key))
        publish_best_effort(
            self._events, "auth.unlocked", orgid, kind=kind, email=attempt.email, actor=actor, scope="email"
        )

    # -- per email -----------------------------------------------------------------------------
    def _count_email(self, attempt: Attempt, now: float) -> None:
        stamp = int(now) * _NANOS + secrets.randbelow(_NANOS)  # unique among parallel failures
        try:
            item = self._data.count_write(
                failure_mark(attempt.key, stamp, now, expires_at=int(now) + _KEEP_SECONDS)
            )
        except ConditionFailed as locked:
            raise _locked(self._lock_end(attempt.key, now), now) from locked
        stamps = [int(s) for s in item.get("failures") or []]
        recent = recent_failures(stamps, now)
        stale = sorted(set(stamps) - set(recent))
        if stale:
            with suppress(ConditionFailed):  # unlocked meanwhile: nothing left to forget
                self._data.count_write(failures_forgotten(attempt.key, stale))
        if len(recent) < FAILURE_LIMIT:
            return
        until = self._engage_lock(attempt, item, now)
        if len(recent) > FAILURE_LIMIT:
            # Past the limit: ranked after the failure that engaged the lock.
            raise _locked(until, now)

    def _engage_lock(self, attempt: Attempt, item: dict[str, Any], now: float) -> float:
        """Locks the email (unless a parallel failure did first); the lock's end."""
        previous_until = item.get("lockedUntil")
        level = escalated_level(
            int(item.get("lockLevel") or 0),
            float(previous_until) if previous_until is not None else None,
            now,
        )
        until = now + lock_window(level)
        try:
            self._data.count_write(
                lock_engagement(
                    attempt.key, until=until, level=level, now=now, expires_at=int(now) + _KEEP_SECONDS
                )
            )
        except ConditionFailed:
            return self._lock_end(attempt.key, now)
        publish_best_effort(
            self._events,
            "auth.locked",
            attempt.orgid,
            kind=attempt.kind,
            email=attempt.email,
            scope="email",
            level=level,
            seconds=lock_window(level),
            sourceIp=attempt.source_ip,
        )
        return until

    def _lock_end(self, key: TenantKey, now: float) -> float:
        item = self._data.lockout_items([key]).get(key.sort) or {}
        return max(float(item.get("lockedUntil") or 0), now + 1)

    # -- per source ----------------------------------------------------------------------------
    @staticmethod
    def _source_keys(attempt: Attempt, now: float) -> list[TenantKey]:
        """This minute's and the previous minute's counters of the attempt's source (a block engaged
        late in one minute holds into the next)."""
        if not attempt.source_ip:
            return []
        minute = _minute(now)
        return [source_key(attempt.orgid, attempt.source_ip, m) for m in (minute, minute - 1)]

    def _count_source(self, attempt: Attempt, now: float) -> TenantKey | None:
        """Counts the failure for its source (the counter it went to); 429 when the source is blocked
        or this failure is more than it may have in a minute."""
        if not attempt.source_ip:
            return None
        key = source_key(attempt.orgid, attempt.source_ip, _minute(now))
        expires_at = (_minute(now) + 3) * SOURCE_WINDOW_SECONDS
        try:
            item = self._data.count_write(source_failure(key, now, expires_at))
        except ConditionFailed as blocked:
            until = float((self._data.lockout_items([key]).get(key.sort) or {}).get("blockedUntil") or 0)
            raise _blocked(max(until, now + 1), now) from blocked
        if int(item.get("failures") or 0) <= SOURCE_LIMIT:
            return key
        until = now + SOURCE_BLOCK_SECONDS
        try:
            self._data.count_write(source_block(key, until))
        except ConditionFailed:
            until = float((self._data.lockout_items([key]).get(key.sort) or {}).get("blockedUntil") or until)
        else:
            publish_best_effort(
                self._events,
                "auth.locked",
                attempt.orgid,
                kind=attempt.kind,
                scope="source",
                sourceIp=attempt.source_ip,
                seconds=SOURCE_BLOCK_SECONDS,
            )
        raise _blocked(until, now)
