"""The authorizer's key path: one GetItem to resolve a key, one transactional write to admit a request.

Per request the authorizer makes one transactional write: a ConditionCheck that the owner is unchanged
(its ``version`` is snapshotted in the key) and the rate-limit update on the key item itself (fixed
windows per minute/hour/day; the same write records ``usageCount`` and ``lastUsedAt``), so concurrent
requests can never admit more than the limit and a revocation, a regeneration or a changed owner is
seen from the very next request. An app token (contract §5) takes the same path on the item it names:
one counter, one usage and one revocation for a key and all its app tokens. Imports nothing of key
management (passlib, pydantic request models).
"""

from __future__ import annotations

import time
from typing import Any

from appengine_core.identity.principal import Principal
from appengine_core.infra.envelope import utc_now_iso
from appengine_core.infra.errors import Forbidden, Unauthorized
from appengine_core.infra.store import ConditionFailed, TenantStore
from appengine_core.infra.tenancy import TenantKey
from appengine_core.keys.data import CountedWindow, admission_writes, owner_snapshot_update
from appengine_core.keys.format import (
    SNAPSHOT_MARK,
    WINDOWS,
    credential_key,
    is_well_formed,
    key_hash,
    owner_snapshot,
)


# -- the authorizer's key path ------------------------------------------------------------------------
class KeyAuthenticator:
    def __init__(self, store: TenantStore | None = None) -> None:
        self._store = store or TenantStore()

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
        like the key itself (one read, the admission write, the same counters). ``reference`` is the
        key's hash when the token was issued: a regenerated key no longer has it (401), a revoked or
        expired one is refused as the key is, and so is a key whose owner is disabled in its org."""
        if len(reference) != 64 or any(c not in "0123456789abcdef" for c in reference):
            raise Unauthorized("malformed app token")
        return self._authenticate(credential_key(reference), orgid, now, key_id=key_id)

    def _authenticate(
        self, key: TenantKey, orgid: str, now: float | None, *, key_id: str | None = None
    ) -> Principal:
        for _ in range(3):
            now = now or time.time()
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
            if SNAPSHOT_MARK not in item:
                # Written before rights were held per org: take the owner's membership in this org first.
                self._refresh_owner(key, item)
                continue
            try:
                retry_after = self._admit(key, item, now)
            except _OwnerChanged:
                self._refresh_owner(key, item)
                continue
            return _principal_of(item, orgid, retry_after)
        raise Unauthorized("the key's owner keeps changing")

    def _admit(self, key: TenantKey, item: dict[str, Any], now: float) -> int | None:
        """Count this request in every window; None when admitted, else seconds until a retry may pass."""
        limits: dict[str, int] = {
            k: int(v) for k, v in (item.get("rateLimits") or {}).items() if k in WINDOWS
        }
        windows: list[CountedWindow] = []
        retry_after: int | None = None
        for name, limit in limits.items():
            length = WINDOWS[name]
            window = int(now // length) * length
            same_window = int(item.get(f"window{name}Start", -1)) == window
            if same_window and int(item.get(f"window{name}Count", 0)) >= limit:
                retry_after = max(retry_after or 0, int(window + length - now) + 1)
            windows.append(CountedWindow(name=name, start=window, limit=limit, same_window=same_window))
        if retry_after is not None:
            return retry_after
        owner = TenantKey.parse(str(item["createdBy"]))
        try:
            self._store.transact(
                admission_writes(key, owner, int(item.get("ownerVersion", 1)), windows, utc_now_iso())
            )
        except ConditionFailed as exc:
            if exc.index == 0:
                raise _OwnerChanged() from exc
            # Another request moved a window first: decide again from a fresh read.
            fresh = self._store.get(key, consistent=True)
            if fresh is None or fresh.get("state") != "active":
                raise Unauthorized("unknown or revoked API key") from exc
            return self._admit(key, fresh, now)
        return None

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
