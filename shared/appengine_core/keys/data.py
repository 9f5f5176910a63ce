"""The keys wing's data access: the DynamoDB operations that write API keys (the layout is in
``keys.format``) and ``ApiKeyData``, which reads and writes them through the store.

The authorizer's key path imports this module for its operation builders, so it imports nothing heavy
(no request models, no key management).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from appengine_core.infra.counters import counter_change, counter_key
from appengine_core.infra.paging import PageRequest, PageResult, fetch_page
from appengine_core.infra.store import Check, Delete, Operation, Put, TenantStore, Update
from appengine_core.infra.tenancy import TenantKey
from appengine_core.keys.format import (
    EXPIRY_BUCKET,
    ID_COLLECTION,
    RACE_ATTEMPTS,
    SNAPSHOT_MARK,
    credential_key,
    id_key,
)

COUNTED_AS = "apikey"  # the counter of an org's keys: ``<org>:#count:apikey``


class StoredKey(BaseModel):
    """A key's credential item, as stored: what the service reads; every other attribute (name, scopes,
    limits, owner snapshot, window counters, ...) is kept as it is."""

    model_config = ConfigDict(extra="allow")

    id: str
    orgid: str
    createdBy: str  # noqa: N815
    createdAt: str  # noqa: N815
    state: str
    prefix: str

    def to_item(self) -> dict[str, Any]:
        return self.model_dump()


@dataclass(frozen=True)
class DueKey:
    """A key whose ``expiresAt`` has passed, as the expiry index lists it."""

    digest: str
    orgid: str
    key_id: str


@dataclass(frozen=True)
class CountedWindow:
    """One rate-limit window a request is counted in: ``same_window`` when the key's stored window is
    this one (the count grows, below ``limit``), else the window starts again at one."""

    name: str
    start: int
    limit: int
    same_window: bool


# -- operations: management --------------------------------------------------------------------------
def new_key_writes(digest: str, key: StoredKey, created_by: str) -> list[Operation]:
    """The credential item, the org's pointer to it, and the org's key count."""
    return [
        Put(credential_key(digest), key.to_item()),
        Put(id_key(key.orgid, key.id), {"hash": digest, "createdBy": created_by}),
        counter_change(key.orgid, COUNTED_AS, 1),
    ]


def regeneration_writes(old_digest: str, new_digest: str, renewed: StoredKey) -> list[Operation]:
    """The old value disappears in the same commit that makes the new one exist (only from an active
    key whose pointer still names ``old_digest``)."""
    return [
        Delete(
            credential_key(old_digest),
            "#state = :active",
            values={":active": "active"},
            names={"#state": "state"},
        ),
        Put(credential_key(new_digest), renewed.to_item()),
        Update(
            id_key(renewed.orgid, renewed.id),
            "SET #hash = :new",
            values={":new": new_digest, ":old": old_digest},
            names={"#hash": "hash"},
            condition="#hash = :old",
        ),
    ]


def revocation_writes(orgid: str, key_id: str, digest: str, now: str) -> list[Operation]:
    """Revoking a hash that a regenerate has just replaced would leave the new value live: the pointer
    must still name ``digest``."""
    return [
        Check(id_key(orgid, key_id), "#hash = :digest", values={":digest": digest}, names={"#hash": "hash"}),
        Update(
            credential_key(digest),
            "SET #state = :revoked, revokedAt = :now REMOVE expiryBucket",
            values={":revoked": "revoked", ":now": now},
            names={"#state": "state"},
            condition="attribute_exists(PK)",
        ),
    ]


def expiry(digest: str) -> Update:
    """An active key becomes expired and leaves the expiry index."""
    return Update(
        credential_key(digest),
        "SET #state = :expired REMOVE expiryBucket",
        values={":expired": "expired", ":active": "active"},
        names={"#state": "state"},
        condition="#state = :active",
    )


# -- operations: the authorizer's key path -----------------------------------------------------------
def admission_writes(
    key: TenantKey, owner: TenantKey, owner_version: int, windows: Sequence[CountedWindow], now: str
) -> list[Operation]:
    """One request counted on an active key in every window (usage too), only if its owner's version is
    still ``owner_version`` (operation 0), and the key still holds the snapshot of that version and no
    window moved since it was read (operation 1).

    A committed admission thus proves that the key item the principal was taken from is still true: of
    what a principal is made of, only ``state`` (revoke, the expiry job) and the owner snapshot (named by
    ``ownerVersion``) change after a credential item is written, and a regenerate deletes the item (the
    condition on ``state`` fails too); its id, org, owner, scopes, limits and ``expiresAtEpoch`` never
    change. The authorizer's per-container cache of credential items relies on this
    (``keys.authenticator``)."""
    sets = ["lastUsedAt = :now"]
    adds = ["usageCount :one"]
    conditions = ["#state = :active", "ownerVersion = :ownerVersion"]
    values: dict[str, Any] = {
        ":now": now,
        ":one": 1,
        ":active": "active",
        ":ownerVersion": owner_version,
    }
    for window in windows:
        name = window.name
        start, count = f"window{name}Start", f"window{name}Count"
        values[f":{name}W"] = window.start
        values[f":{name}L"] = window.limit
        if window.same_window:
            adds.append(f"{count} :one")
            conditions.append(f"{start} = :{name}W AND {count} < :{name}L")
        else:
            sets.append(f"{start} = :{name}W, {count} = :one")
            conditions.append(f"(attribute_not_exists({start}) OR {start} < :{name}W)")
    return [
        # Every change of a User (its memberships included) bumps its version: an unchanged version
        # means the snapshot in the key is still the owner's membership here.
        Check(owner, "#version = :v", values={":v": owner_version}, names={"#version": "version"}),
        Update(
            key,
            f"SET {', '.join(sets)} ADD {', '.join(adds)}",
            values=values,
            names={"#state": "state"},
            condition=" AND ".join(conditions),
        ),
    ]


def owner_snapshot_update(key: TenantKey, snapshot: Mapping[str, Any]) -> Update:
    """The owner's current rights in the key's org, written into an existing key."""
    return Update(
        key,
        "SET ownerVersion = :v, ownerRoles = :r, ownerPermissions = :p, #root = :root REMOVE ownerOrgs",
        values={
            ":v": snapshot["ownerVersion"],
            ":r": snapshot["ownerRoles"],
            ":p": snapshot["ownerPermissions"],
            ":root": snapshot[SNAPSHOT_MARK],
        },
        names={"#root": SNAPSHOT_MARK},
        condition="attribute_exists(PK)",
    )


# -- reads and writes ------------------------------------------------------------------------------
class ApiKeyData:
    """API keys through the store; raises the store's ``ConditionFailed`` and ``TransactionCollided``
    for the service to judge."""

    def __init__(self, store: TenantStore | None = None) -> None:
        self.store = store or TenantStore()

    def find(self, orgid: str, key_id: str) -> tuple[str, StoredKey] | None:
        """The current hash and credential item of a key of ``orgid``, or None."""
        for _ in range(RACE_ATTEMPTS):
            pointer = self.store.get(id_key(orgid, key_id), consistent=True)
            if pointer is None:
                return None
            digest = str(pointer["hash"])
            item = self.store.get(credential_key(digest), consistent=True)
            if item is not None:
                if item.get("orgid") != orgid:
                    return None
                return digest, StoredKey.model_validate(item)
            # A regenerate moved the key between the two reads: follow the pointer again.
        return None

    def page(self, orgid: str, page: PageRequest) -> tuple[PageResult, list[StoredKey]]:
        """One page of ``orgid``'s key pointers and the keys they name (those still of ``orgid``)."""
        result = fetch_page(
            page,
            orgid,
            ID_COLLECTION,
            lambda limit, after: self.store.query(orgid, ID_COLLECTION, limit=limit, after_sort_key=after),
        )
        found = self.store.batch_get([credential_key(str(p["hash"])) for p in result.items])
        keys = [StoredKey.model_validate(item) for item in found.values() if item.get("orgid") == orgid]
        return result, keys

    def credential(self, digest: str) -> dict[str, Any] | None:
        """The credential item of the key whose value hashes to ``digest``, as stored, or None."""
        return self.store.get(credential_key(digest), consistent=True)

    def owner(self, owner_sk: str) -> dict[str, Any] | None:
        """The User a key acts as, as stored (its per-org memberships decide what the key may do)."""
        return self.store.get(TenantKey.parse(owner_sk), consistent=True)

    def count(self, orgid: str) -> int:
        return int((self.store.get(counter_key(orgid, COUNTED_AS)) or {}).get("total", 0))

    def create(self, digest: str, key: StoredKey, created_by: str) -> None:
        self.store.transact(new_key_writes(digest, key, created_by))

    def regenerate(self, old_digest: str, new_digest: str, renewed: StoredKey) -> None:
        self.store.transact(regeneration_writes(old_digest, new_digest, renewed))

    def revoke(self, orgid: str, key_id: str, digest: str, now: str) -> None:
        self.store.transact(revocation_writes(orgid, key_id, digest, now))

    def due(self, now: float | None = None) -> list[DueKey]:
        entries = self.store.query_expiry_index(EXPIRY_BUCKET, until_epoch=int(now or time.time()))
        return [
            DueKey(
                digest=str(entry["SK"]).rsplit(":", 1)[1],
                orgid=str(entry.get("orgid")),
                key_id=str(entry.get("id")),
            )
            for entry in entries
        ]

    def expire(self, digest: str) -> None:
        self.store.update(expiry(digest), return_new=False)
