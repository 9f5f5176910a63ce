"""API key management (contract §5): create, list, get, regenerate (owner only), revoke."""

from __future__ import annotations

import time
from typing import Any

from appengine_core.identity.directory import DirectoryService
from appengine_core.identity.principal import Principal
from appengine_core.infra.counters import counter_key
from appengine_core.infra.envelope import new_id, utc_now_iso
from appengine_core.infra.errors import Conflict, Forbidden, NotFound, Unauthorized
from appengine_core.infra.events import EventPublisher, publish_best_effort
from appengine_core.infra.paging import PageRequest, fetch_page, list_envelope
from appengine_core.infra.store import (
    Check,
    ConditionFailed,
    Delete,
    Put,
    TenantStore,
    TransactionCollided,
    Update,
)
from appengine_core.infra.tenancy import TenantKey
from appengine_core.keys.format import (
    EXPIRY_BUCKET,
    ID_COLLECTION,
    KEY_ADMIN_ROLES,
    RACE_ATTEMPTS,
    credential_key,
    display_prefix,
    generate_key,
    id_key,
    key_hash,
    owner_snapshot,
)
from appengine_core.keys.models import ApiKeyCreate, metadata


# -- lifecycle ---------------------------------------------------------------------------------------
class ApiKeyService:
    def __init__(
        self,
        store: TenantStore | None = None,
        directory: DirectoryService | None = None,
        events: EventPublisher | None = None,
    ) -> None:
        self._store = store or TenantStore()
        self._directory = directory or DirectoryService(self._store)
        self._events = events or EventPublisher()

    def _owner_snapshot(self, principal: Principal, orgid: str) -> dict[str, Any]:
        snapshot = owner_snapshot(
            self._directory.get_principal(principal.principal_id, consistent=True), orgid
        )
        if snapshot is None:
            raise Unauthorized("your membership in this org is disabled")
        return snapshot

    def create(self, actor: Principal, orgid: str, request: ApiKeyCreate) -> dict[str, Any]:
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
            **self._owner_snapshot(actor, orgid),
        }
        if expires:
            item |= {"expiryBucket": EXPIRY_BUCKET, "expiresAtEpoch": int(expires.timestamp())}
        self._store.transact(
            [
                Put(credential_key(digest), item),
                Put(id_key(orgid, key_id), {"hash": digest, "createdBy": actor.principal_id}),
                Update(
                    counter_key(orgid, "apikey"),
                    "ADD #total :one",
                    values={":one": 1},
                    names={"#total": "total"},
                ),
            ]
        )
        publish_best_effort(
            self._events,
            "apikey.created",
            orgid,
            keyId=key_id,
            actor=actor.principal_id,
            prefix=item["prefix"],
        )
        return metadata(item) | {"key": plaintext}

    def _read(self, orgid: str, key_id: str) -> tuple[str, dict[str, Any]]:
        """The current hash and credential item of a key of ``orgid``."""
        for _ in range(RACE_ATTEMPTS):
            pointer = self._store.get(id_key(orgid, key_id), consistent=True)
            if pointer is None:
                break
            digest = str(pointer["hash"])
            item = self._store.get(credential_key(digest), consistent=True)
            if item is not None:
                if item.get("orgid") != orgid:
                    break
                return digest, item
            # A regenerate moved the key between the two reads: follow the pointer again.
        raise NotFound("no such API key")

    def _load(self, actor: Principal, orgid: str, key_id: str) -> tuple[str, dict[str, Any]]:
        _require_key_manager(actor)
        digest, item = self._read(orgid, key_id)
        if not _may_manage(actor, item):
            raise NotFound("no such API key")
        return digest, item

    def get(self, actor: Principal, orgid: str, key_id: str) -> dict[str, Any]:
        return metadata(self._load(actor, orgid, key_id)[1])

    def list_keys(self, actor: Principal, orgid: str, page: PageRequest) -> dict[str, Any]:
        _require_key_manager(actor)
        result = fetch_page(
            page,
            orgid,
            ID_COLLECTION,
            lambda limit, after: self._store.query(orgid, ID_COLLECTION, limit=limit, after_sort_key=after),
        )
        found = self._store.batch_get([credential_key(str(p["hash"])) for p in result.items])
        keys = [
            metadata(item)
            for item in found.values()
            if item.get("orgid") == orgid and _may_manage(actor, item)
        ]
        keys.sort(key=lambda k: str(k["createdAt"]))
        admin = _is_key_admin(actor)
        total = int((self._store.get(counter_key(orgid, "apikey")) or {}).get("total", 0)) if admin else None
        return list_envelope(
            keys,
            page=result.page,
            page_size=result.page_size,
            has_next=result.has_next,
            next_cursor=result.next_cursor,
            total=total,
        )

    def regenerate(self, actor: Principal, orgid: str, key_id: str) -> dict[str, Any]:
        _require_key_manager(actor)
        old_digest, item = self._read(orgid, key_id)
        if item.get("createdBy") != actor.principal_id:
            # A plaintext goes to nobody but the User the key acts as: not even a key admin or a
            # platform root, who would otherwise obtain the owner's rights (contract §5).
            raise Forbidden("only the key's owner may regenerate it")
        if item.get("state") != "active":
            raise Conflict(f"the key is {item.get('state')}")
        plaintext = generate_key()
        digest = key_hash(plaintext)
        renewed = {k: v for k, v in item.items() if not k.startswith("window")} | {
            "prefix": display_prefix(plaintext),
            "regeneratedAt": utc_now_iso(),
        }
        try:
            self._store.transact(
                [
                    # The old value disappears in the same commit that makes the new one exist.
                    _delete_if_active(credential_key(old_digest)),
                    Put(credential_key(digest), renewed),
                    Update(
                        id_key(orgid, key_id),
                        "SET #hash = :new",
                        values={":new": digest, ":old": old_digest},
                        names={"#hash": "hash"},
                        condition="#hash = :old",
                    ),
                ]
            )
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
            prefix=renewed["prefix"],
        )
        return metadata(renewed) | {"key": plaintext}

    def revoke(self, actor: Principal, orgid: str, key_id: str) -> None:
        for _ in range(RACE_ATTEMPTS):
            digest, item = self._load(actor, orgid, key_id)
            if item.get("state") == "revoked":
                return
            try:
                self._store.transact(
                    [
                        # Revoking a hash that a regenerate has just replaced would leave the new value
                        # live: the pointer must still name the hash read above.
                        Check(
                            id_key(orgid, key_id),
                            "#hash = :digest",
                            values={":digest": digest},
                            names={"#hash": "hash"},
                        ),
                        Update(
                            credential_key(digest),
                            "SET #state = :revoked, revokedAt = :now REMOVE expiryBucket",
                            values={":revoked": "revoked", ":now": utc_now_iso()},
                            names={"#state": "state"},
                            condition="attribute_exists(PK)",
                        ),
                    ]
                )
            except ConditionFailed:
                continue
            except TransactionCollided:
                continue
            publish_best_effort(self._events, "apikey.revoked", orgid, keyId=key_id, actor=actor.principal_id)
            return
        raise Conflict("the key kept changing while it was revoked: try again")

    def expire_due(self, now: float | None = None) -> int:
        """Mark keys past ``expiresAt`` expired (the jobs function); returns how many."""
        now = now or time.time()
        expired = 0
        for entry in self._store.query_expiry_index(EXPIRY_BUCKET, until_epoch=int(now)):
            digest = str(entry["SK"]).rsplit(":", 1)[1]
            try:
                self._store.update(
                    Update(
                        credential_key(digest),
                        "SET #state = :expired REMOVE expiryBucket",
                        values={":expired": "expired", ":active": "active"},
                        names={"#state": "state"},
                        condition="#state = :active",
                    ),
                    return_new=False,
                )
            except ConditionFailed:
                continue
            expired += 1
            publish_best_effort(
                self._events, "apikey.expired", str(entry.get("orgid")), keyId=str(entry.get("id"))
            )
        return expired


def _delete_if_active(key: TenantKey) -> Delete:
    return Delete(key, "#state = :active", values={":active": "active"}, names={"#state": "state"})


def _is_key_admin(actor: Principal) -> bool:
    return actor.has_role(*KEY_ADMIN_ROLES)


def _may_manage(actor: Principal, item: dict[str, Any]) -> bool:
    return _is_key_admin(actor) or item.get("createdBy") == actor.principal_id


def _require_key_manager(actor: Principal) -> None:
    if actor.kind != "user" or actor.credential != "jwt":
        raise Forbidden("API keys are managed with a staff user's token")
    if not (_is_key_admin(actor) or "create" in actor.permissions):
        raise Forbidden("needs ConfigAdmin, RootAdmin or the create permission")
