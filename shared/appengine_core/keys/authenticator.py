"""The authorizer's key path: one transactional write per request on a warm container.

Every request is admitted by one transactional write: a ConditionCheck that the owner is unchanged
(its ``version`` is snapshotted in the key) and the rate-limit update on the key item itself (fixed
windows per minute/hour/day; the same write records ``usageCount`` and ``lastUsedAt``), conditioned on
the key being active, still holding that snapshot, and on every window as it was last seen. So
concurrent requests can never admit more than the limit, and a revocation, a regeneration or a changed
owner is seen from the very next request.

The credential item comes from a consistent GetItem the first time a container sees a key; then, for
up to ``CACHE_SECONDS``, from a per-container cache of what the principal needs (never the presented
key), because the admission write's conditions prove it still true: a credential item changes after
it is written only in ``state`` (revoke, expiry job; a regenerate deletes it) and in its owner snapshot
(``ownerVersion``), and its expiry is read from the cached ``expiresAtEpoch``, which never changes.
When the write is cancelled (revoked, regenerated, owner changed, over a limit, a window moved by another
container) the entry is dropped and the request is decided as a cold one: a fresh read, the same
refusals and ``retry_after`` as always.

An app token (contract §5) takes the same path on the item it names: one counter, one usage and one
revocation for a key and all its app tokens. Imports nothing of key management (passlib, pydantic
request models).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appengine_core.identity.principal import Principal
from appengine_core.infra.envelope import utc_now_iso
from appengine_core.infra.errors import Forbidden, Unauthorized
from appengine_core.infra.store import ConditionFailed, TenantStore, TransactionCollided
from appengine_core.infra.tenancy import TenantKey
from appengine_core.keys.data import CountedWindow, admission_writes, owner_snapshot_update
from appengine_core.keys.format import (
    RACE_ATTEMPTS,
    SNAPSHOT_MARK,
    WINDOWS,
    credential_key,
    is_well_formed,
    key_hash,
    owner_snapshot,
)

# Keys a container remembers, and for how long at most before it reads the item again.
CACHE_SIZE = 1_000
CACHE_SECONDS = 60.0

# What a warm request needs of a credential item: the principal, its expiry, its limits, and the owner
# snapshot's version that the admission write proves.
_KEPT = (
    "id",
    "orgid",
    "createdBy",
    "expiresAtEpoch",
    "scopes",
    "rateLimits",
    "ownerVersion",
    "ownerRoles",
    "ownerPermissions",
    SNAPSHOT_MARK,
)


@dataclass(frozen=True)
class _Admitted:
    """A credential item as of its last admission: its ``_KEPT`` attributes, the start of the window
    each limit last counted in, and when it was read from the table."""

    item: dict[str, Any]
    starts: dict[str, int]
    read_at: float


class CredentialCache:
    """The credential items a container admitted lately, by credential key (the key's hash): at most
    ``size`` of them, each for ``seconds`` after it was read. Thread-safe (the local stack serves
    several requests in one process)."""

    def __init__(self, size: int = CACHE_SIZE, seconds: float = CACHE_SECONDS) -> None:
        self._size = size
        self._seconds = seconds
        self._entries: OrderedDict[TenantKey, _Admitted] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: TenantKey, now: float) -> _Admitted | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if abs(now - entry.read_at) >= self._seconds:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key: TenantKey, entry: _Admitted) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def drop(self, key: TenantKey) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


# -- the authorizer's key path ------------------------------------------------------------------------
class KeyAuthenticator:
    """One per container (the authorizer's ``AuthorizerService`` is), with its ``CredentialCache``.
    ``clock`` gives the time when a caller passes no ``now`` (default: ``time.time``)."""

    def __init__(
        self,
        store: TenantStore | None = None,
        *,
        cache: CredentialCache | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._store = store or TenantStore()
        self._cache = cache if cache is not None else CredentialCache()
        self._clock = clock

    def authenticate(self, presented: str, orgid: str, now: float | None = None) -> Principal:
        """The principal a key acts as, or ``Unauthorized``/``Forbidden``; a key over its limit gives a
        principal carrying ``retry_after`` (the function answers 429: an authorizer cannot)."""
        if not is_well_formed(presented):
            raise Unauthorized("malformed API key")
        return self._authenticate(credential_key(key_hash(presented)), orgid, now)

    def authenticate_app(
        self, key_id: str, reference: str, orgid: str, now: float | None = None
    ) -> Principal:
        """The principal an app token acts as: exactly its API key's (contract §5), read and admitted
        like the key itself (the admission write, the same counters). ``reference`` is the key's hash
        when the token was issued: a regenerated key no longer has it (401), a revoked or expired one is
        refused as the key is, and so is a key whose owner is disabled in its org."""
        if len(reference) != 64 or any(c not in "0123456789abcdef" for c in reference):
            raise Unauthorized("malformed app token")
        return self._authenticate(credential_key(reference), orgid, now, key_id=key_id)

    def _authenticate(
        self, key: TenantKey, orgid: str, now: float | None, *, key_id: str | None = None
    ) -> Principal:
        if now is None:
            now = self._clock() if self._clock is not None else time.time()
        cached = self._cache.get(key, now)
        if cached is not None:
            principal = self._admit_cached(key, cached, orgid, now, key_id)
            if principal is not None:
                return principal
        return self._authenticate_afresh(key, orgid, now, key_id)

    def _admit_cached(
        self, key: TenantKey, cached: _Admitted, orgid: str, now: float, key_id: str | None
    ) -> Principal | None:
        """The principal of a cached item, admitted by the one write that proves the item still true;
        None when the request must be decided from a fresh read (any refusal, any doubt)."""
        item = cached.item
        expires = item.get("expiresAtEpoch")
        if (
            item["orgid"] != orgid
            or (key_id is not None and item["id"] != key_id)
            or (expires is not None and int(expires) <= now)
        ):
            return None  # refused from a fresh read, with today's exact reason
        windows: list[CountedWindow] = []
        for name, limit in _limits(item).items():
            window = _window_start(name, now)
            start = cached.starts.get(name)
            if start is not None and start > window:
                return None  # another container's clock opened a later window: count as it did
            windows.append(CountedWindow(name=name, start=window, limit=limit, same_window=start == window))
        owner = TenantKey.parse(str(item["createdBy"]))
        try:
            self._store.transact(
                admission_writes(key, owner, int(item["ownerVersion"]), windows, utc_now_iso())
            )
        except ConditionFailed:
            # Revoked, regenerated, expired by the job, owner changed, over a limit, or a window another
            # container moved: whichever, decided as on a cold container.
            self._cache.drop(key)
            return None
        self._cache.put(key, _Admitted(item, _starts(windows), cached.read_at))
        return _principal_of(item, orgid, None)

    def _authenticate_afresh(self, key: TenantKey, orgid: str, now: float, key_id: str | None) -> Principal:
        """A consistent read of the credential item, decided and admitted; cached when admitted."""
        self._cache.drop(key)
        for _ in range(3):
            item = self._store.get(key, consistent=True)
            if item is None or item.get("state") != "active":
                raise Unauthorized("unknown or revoked API key")
            if key_id is not None and item.get("id") != key_id:
                raise Unauthorized("the app token names another key")
            expires = item.get("expiresAtEpoch")
            if expires is not None and int(expires) <= now:
                raise Unauthorized("expired API key")
            if item.get("orgid") != orgid:
                raise Forbidden("the key belongs to another org")
            if SNAPSHOT_MARK not in item or "ownerVersion" not in item:
                # Written before rights were held per org: take the owner's membership in this org first.
                self._refresh_owner(key, item)
                continue
            try:
                admitted, windows, retry_after = self._admit(key, item, now)
            except _OwnerChanged:
                self._refresh_owner(key, item)
                continue
            if retry_after is None:
                kept = {name: admitted[name] for name in _KEPT if name in admitted}
                self._cache.put(key, _Admitted(kept, _starts(windows), now))
            return _principal_of(admitted, orgid, retry_after)
        raise Unauthorized("the key's owner keeps changing")

    def _admit(
        self, key: TenantKey, item: dict[str, Any], now: float
    ) -> tuple[dict[str, Any], list[CountedWindow], int | None]:
        """Count this request in every window: the item admitted (read again if a window moved first),
        the windows it was counted in, and None, or else seconds until a retry may pass."""
        for _ in range(RACE_ATTEMPTS):
            windows, retry_after = _count_in(item, now)
            if retry_after is not None:
                return item, windows, retry_after
            owner = TenantKey.parse(str(item["createdBy"]))
            try:
                self._store.transact(
                    admission_writes(key, owner, int(item["ownerVersion"]), windows, utc_now_iso())
                )
            except ConditionFailed as exc:
                if exc.index == 0:
                    raise _OwnerChanged() from exc
                # Another request moved a window first (or refreshed the snapshot): decide again from a
                # fresh read.
                fresh = self._store.get(key, consistent=True)
                if fresh is None or fresh.get("state") != "active":
                    raise Unauthorized("unknown or revoked API key") from exc
                if "ownerVersion" not in fresh:
                    raise _OwnerChanged() from exc
                item = fresh
                continue
            return item, windows, None
        # Every attempt lost a race to another request of the same key: as a colliding write, 503.
        raise TransactionCollided()

    def _refresh_owner(self, key: TenantKey, item: dict[str, Any]) -> None:
        owner = self._store.get(TenantKey.parse(str(item["createdBy"])), consistent=True)
        snapshot = owner_snapshot(owner, str(item.get("orgid")))
        if snapshot is None:
            raise Unauthorized("the key's owner is disabled in the key's org or left it")
        try:
            self._store.update(owner_snapshot_update(key, snapshot), return_new=False)
        except ConditionFailed as exc:
            raise Unauthorized("unknown or revoked API key") from exc


class _OwnerChanged(Exception):
    pass


def _limits(item: dict[str, Any]) -> dict[str, int]:
    return {k: int(v) for k, v in (item.get("rateLimits") or {}).items() if k in WINDOWS}


def _window_start(name: str, now: float) -> int:
    length = WINDOWS[name]
    return int(now // length) * length


def _starts(windows: list[CountedWindow]) -> dict[str, int]:
    return {window.name: window.start for window in windows}


def _count_in(item: dict[str, Any], now: float) -> tuple[list[CountedWindow], int | None]:
    """The windows a request is counted in, from the item as read, and None, or else seconds until a
    retry may pass (the latest of the full windows' ends)."""
    windows: list[CountedWindow] = []
    retry_after: int | None = None
    for name, limit in _limits(item).items():
        length = WINDOWS[name]
        window = _window_start(name, now)
        stored = int(item.get(f"window{name}Start", -1))
        if stored > window:
            # Another container, its clock a little ahead, has opened the next window: count in it
            # (counting in ours could never commit: a window only moves forward).
            window = stored
        same_window = stored == window
        if same_window and int(item.get(f"window{name}Count", 0)) >= limit:
            retry_after = max(retry_after or 0, int(window + length - now) + 1)
        windows.append(CountedWindow(name=name, start=window, limit=limit, same_window=same_window))
    return windows, retry_after


def _principal_of(item: dict[str, Any], orgid: str, retry_after: int | None) -> Principal:
    roles = tuple(str(r) for r in item.get("ownerRoles") or ())
    return Principal(
        kind="user",
        principal_id=str(item["createdBy"]),
        orgid=orgid,
        credential="apikey",
        roles=roles,
        permissions=tuple(str(p) for p in item.get("ownerPermissions") or ()),
        platform_root=item.get(SNAPSHOT_MARK) is True,
        api_key_id=str(item["id"]),
        scopes=tuple(str(s) for s in item.get("scopes") or ()),
        retry_after=retry_after,
    )
