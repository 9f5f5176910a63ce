"""API key management (contract §5): create, list, get, regenerate (owner only), revoke."""

from __future__ import annotations

from typing import Any

from appengine_core.identity.directory import DirectoryService
from appengine_core.identity.principal import Caller, Principal
from appengine_core.infra.envelope import new_id, utc_now_iso
from appengine_core.infra.errors import Conflict, Forbidden, NotFound, Unauthorized
from appengine_core.infra.events import EventPublisher, publish_best_effort
from appengine_core.infra.paging import Page, PageRequest
from appengine_core.infra.store import ConditionFailed, TenantStore, TransactionCollided
from appengine_core.keys.data import ApiKeyData, StoredKey
from appengine_core.keys.format import (
    EXPIRY_BUCKET,
    KEY_ADMIN_ROLES,
    RACE_ATTEMPTS,
    display_prefix,
    generate_key,
    key_hash,
    owner_snapshot,
)
from appengine_core.keys.models import ApiKeyCreate, CreatedKey, KeyMetadata


# -- lifecycle ---------------------------------------------------------------------------------------
class ApiKeyService:
    def __init__(
        self,
        store: TenantStore | None = None,
        directory: DirectoryService | None = None,
        events: EventPublisher | None = None,
    ) -> None:
        self._data = ApiKeyData(store)
        self._directory = directory or DirectoryService(self._data.store)
        self._events = events or EventPublisher()

    def _owner_snapshot(self, caller: Caller) -> dict[str, Any]:
        owner = self._directory.principal(caller.principal.principal_id, consistent=True)
        snapshot = owner_snapshot(
            {"data": owner.data, "version": owner.version} if owner else None, caller.orgid
        )
        if snapshot is None:
            raise Unauthorized("your membership in this org is disabled")
        return snapshot

    def create(self, caller: Caller, request: ApiKeyCreate) -> CreatedKey:
        actor, orgid = caller.principal, caller.orgid
        _require_key_manager(actor)
        plaintext = generate_key()
        digest = key_hash(plaintext)
        key_id = new_id()
        expires = request.expiresAt
        item: dict[str, Any] = {
            "id": key_id,
            "orgid": orgid,
            "name": request.name,
            "description": request.description,
            "prefix": display_prefix(plaintext),
            "scopes": request.normalized_scopes(),
            "permissions": request.permissions,
            "rateLimits": request.normalized_limits(),
            "expiresAt": expires.isoformat().replace("+00:00", "Z") if expires else None,
            "createdAt": utc_now_iso(),
            "createdBy": actor.principal_id,
            "lastUsedAt": None,
            "usageCount": 0,
            "state": "active",
            **self._owner_snapshot(caller),
        }
        if expires:
            item |= {"expiryBucket": EXPIRY_BUCKET, "expiresAtEpoch": int(expires.timestamp())}
        key = StoredKey.model_validate(item)
        self._data.create(digest, key, created_by=actor.principal_id)
        publish_best_effort(
            self._events,
            "apikey.created",
            orgid,
            keyId=key_id,
            actor=actor.principal_id,
            prefix=key.prefix,
        )
        return CreatedKey.of_new(key.to_item(), plaintext)

    def _read(self, orgid: str, key_id: str) -> tuple[str, StoredKey]:
        """The current hash and credential item of a key of ``orgid``."""
        found = self._data.find(orgid, key_id)
        if found is None:
            raise NotFound("no such API key")
        return found

    def _load(self, caller: Caller, key_id: str) -> tuple[str, StoredKey]:
        _require_key_manager(caller.principal)
        digest, key = self._read(caller.orgid, key_id)
        if not _may_manage(caller.principal, key):
            raise NotFound("no such API key")
        return digest, key

    def get(self, caller: Caller, key_id: str) -> KeyMetadata:
        return KeyMetadata.of(self._load(caller, key_id)[1].to_item())

    def list_keys(self, caller: Caller, page: PageRequest) -> Page[KeyMetadata]:
        actor, orgid = caller.principal, caller.orgid
        _require_key_manager(actor)
        result, stored = self._data.page(orgid, page)
        keys = [KeyMetadata.of(key.to_item()) for key in stored if _may_manage(actor, key)]
        keys.sort(key=lambda k: k.createdAt)
        total = self._data.count(orgid) if _is_key_admin(actor) else None
        return Page[KeyMetadata].of(keys, result, total=total)

    def regenerate(self, caller: Caller, key_id: str) -> CreatedKey:
        actor, orgid = caller.principal, caller.orgid
        _require_key_manager(actor)
        old_digest, key = self._read(orgid, key_id)
        if key.createdBy != actor.principal_id:
            # A plaintext goes to nobody but the User the key acts as: not even a key admin or a
            # platform root, who would otherwise obtain the owner's rights (contract §5).
            raise Forbidden("only the key's owner may regenerate it")
        if key.state != "active":
            raise Conflict(f"the key is {key.state}")
        plaintext = generate_key()
        digest = key_hash(plaintext)
        renewed = StoredKey.model_validate(
            {k: v for k, v in key.to_item().items() if not k.startswith("window")}
            | {"prefix": display_prefix(plaintext), "regeneratedAt": utc_now_iso()}
        )
        try:
            self._data.regenerate(old_digest, digest, renewed)
        except ConditionFailed as exc:
            raise Conflict("the key was rotated or revoked meanwhile") from exc
        except TransactionCollided as error:
            raise Conflict("the key was rotated or revoked meanwhile") from error
        publish_best_effort(
            self._events,
            "apikey.regenerated",
            orgid,
            keyId=key_id,
            actor=actor.principal_id,
            prefix=renewed.prefix,
        )
        return CreatedKey.of_new(renewed.to_item(), plaintext)

    def revoke(self, caller: Caller, key_id: str) -> None:
        for _ in range(RACE_ATTEMPTS):
            digest, key = self._load(caller, key_id)
            if key.state == "revoked":
                return
            try:
                self._data.revoke(caller.orgid, key_id, digest, utc_now_iso())
            except ConditionFailed:
                continue
            except TransactionCollided:
                continue
            publish_best_effort(
                self._events,
                "apikey.revoked",
                caller.orgid,
                keyId=key_id,
                actor=caller.principal.principal_id,
            )
            return
        raise Conflict("the key kept changing while it was revoked: try again")

    def expire_due(self, now: float | None = None) -> int:
        """Mark keys past ``expiresAt`` expired (the jobs function); returns how many."""
        expired = 0
        for due in self._data.due(now):
            try:
                self._data.expire(due.digest)
            except ConditionFailed:
                continue
            expired += 1
            publish_best_effort(self._events, "apikey.expired", due.orgid, keyId=due.key_id)
        return expired


def _is_key_admin(actor: Principal) -> bool:
    return actor.has_role(*KEY_ADMIN_ROLES)


def _may_manage(actor: Principal, key: StoredKey) -> bool:
    return _is_key_admin(actor) or key.createdBy == actor.principal_id


def _require_key_manager(actor: Principal) -> None:
    if actor.kind != "user" or actor.credential != "jwt":
        raise Forbidden("API keys are managed with a staff user's token")
    if not (_is_key_admin(actor) or "create" in actor.permissions):
        raise Forbidden("needs ConfigAdmin, RootAdmin or the create permission")
