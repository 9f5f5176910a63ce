"""API keys (contract §5): format, lifecycle, and the authorizer's key path.

Format: ``aek_`` + 32 random base62 characters (~190 bits) + 6 base62 characters of the CRC32 of the
random part (GitHub's scheme): a malformed or made-up key is refused before any database read, and a
leaked key is recognisable by scanners. Only the SHA-256 of a key is stored.

Layout: the credential item ``<platform>:#apikey-<hh>:<sha256>`` (sharded by the hash's first two hex
digits) holds everything the authorizer needs, so resolving a key is one GetItem, and a key presented
with the wrong ``orgid`` can be told apart (403) from an unknown key (401). Per org,
``<org>:#apikey-id:<key id>`` points at the current hash (get, list, regenerate, revoke by id).

A key acts as its owner with the owner's membership in the KEY'S org (contract §1, §5): the key item
snapshots that membership (``ownerRoles``, ``ownerPermissions``, ``ownerPlatformRoot``) with the owner's
``version``. Per request the authorizer then makes one transactional write: a ConditionCheck that the
owner's ``version`` is unchanged and the rate-limit update on the key item itself (fixed windows per
minute/hour/day; the same write records ``usageCount`` and ``lastUsedAt``), so concurrent requests can
never admit more than the limit and a revocation, a regeneration or a change of the owner is acted on
from the very next request. A changed owner is re-read: the snapshot is refreshed, or the key is refused
(401) when the owner's membership in the key's org is disabled or gone.

Only a key's owner regenerates it (a plaintext goes to nobody but the User the key acts as); key admins
list, read and revoke every key of their org. A revoke is conditional on the id pointer still naming the
hash it read, and is retried on a lost race, so a revoke racing a regenerate always ends revoked.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import time
import zlib
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from appengine_core import aws
from appengine_core.directory import DirectoryService
from appengine_core.errors import Conflict, Forbidden, NotFound, Unauthorized
from appengine_core.events import EventPublisher, publish_best_effort
from appengine_core.memberships import effective_membership
from appengine_core.pagination import PageRequest, fetch_page
from appengine_core.principal import Principal
from appengine_core.records import new_id, utc_now_iso
from appengine_core.repository import counter_key
from appengine_core.settings import get_settings
from appengine_core.store import Check, ConditionFailed, Delete, Put, TenantStore, Update
from appengine_core.tenancy import TenantKey
from appengine_core.web import list_envelope

KEY_PREFIX = "aek_"
_ALPHABET = string.digits + string.ascii_letters
_RANDOM_LENGTH = 32
_CHECKSUM_LENGTH = 6
KEY_LENGTH = len(KEY_PREFIX) + _RANDOM_LENGTH + _CHECKSUM_LENGTH
ID_COLLECTION = "#apikey-id"
EXPIRY_BUCKET = "apikey"
DEFAULT_PER_MINUTE = 600
WINDOWS: dict[str, int] = {"perMinute": 60, "perHour": 3600, "perDay": 86400}
KEY_ADMIN_ROLES = ("RootAdmin", "ConfigAdmin")
# A revoke that keeps losing races to regenerates gives up after this many fresh reads (only the owner
# regenerates, one request at a time, so a few attempts always suffice in practice).
RACE_ATTEMPTS = 8
# Present in every snapshot of the owner's per-org rights; a key item without it predates them.
SNAPSHOT_MARK = "ownerPlatformRoot"

Scope = Literal["read", "write"]


# -- format -------------------------------------------------------------------------------------
def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, remainder = divmod(number, 62)
        digits.append(_ALPHABET[remainder])
    return "".join(reversed(digits))


def _checksum(random_part: str) -> str:
    return _base62(zlib.crc32(random_part.encode()), _CHECKSUM_LENGTH)


def generate_key() -> str:
    random_part = "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_LENGTH))
    return f"{KEY_PREFIX}{random_part}{_checksum(random_part)}"


def is_well_formed(key: str) -> bool:
    """Prefix, length, alphabet and checksum: checked before any database read."""
    if not isinstance(key, str) or len(key) != KEY_LENGTH or not key.startswith(KEY_PREFIX):
        return False
    body = key[len(KEY_PREFIX) :]
    if any(c not in _ALPHABET for c in body):
        return False
    random_part, checksum = body[:_RANDOM_LENGTH], body[_RANDOM_LENGTH:]
    return secrets.compare_digest(checksum, _checksum(random_part))


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[: len(KEY_PREFIX) + 8]


def credential_key(digest: str) -> TenantKey:
    return TenantKey(get_settings().platform_orgid, f"#apikey-{digest[:2]}", digest)


def id_key(orgid: str, key_id: str) -> TenantKey:
    return TenantKey(orgid, ID_COLLECTION, key_id)


# -- request models --------------------------------------------------------------------------------
class RateLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    perMinute: int | None = Field(default=None, ge=1, le=1_000_000)  # noqa: N815
    perHour: int | None = Field(default=None, ge=1, le=100_000_000)  # noqa: N815
    perDay: int | None = Field(default=None, ge=1, le=1_000_000_000)  # noqa: N815


class ApiKeyCreate(BaseModel):
    """Both request shapes of AppEngine's docs: ``scopes`` or ``permissions``, ``rateLimit`` or
    ``rateLimits``."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    scopes: list[Scope] | None = None
    permissions: list[str] | None = None
    rateLimit: dict[str, int] | None = None  # noqa: N815
    rateLimits: RateLimits | None = None  # noqa: N815
    expiresAt: datetime | None = None  # noqa: N815

    @field_validator("permissions")
    @classmethod
    def _permissions(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            for permission in value:
                action = permission.split(":", 1)[0]
                if action not in ("read", "write"):
                    raise ValueError(f"unknown permission {permission!r}: use read:<what> or write:<what>")
        return value

    @field_validator("rateLimit")
    @classmethod
    def _rate_limit(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        if value is not None and (
            set(value) != {"requestsPerMinute"} or not 1 <= value["requestsPerMinute"] <= 1_000_000
        ):
            raise ValueError("rateLimit takes {requestsPerMinute: 1..1000000}")
        return value

    @field_validator("expiresAt")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is not None:
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            if value.timestamp() <= time.time():
                raise ValueError("must be in the future")
        return value

    @model_validator(mode="after")
    def _some_scope(self) -> ApiKeyCreate:
        if not self.scopes and not self.permissions:
            raise ValueError("give scopes (read, write) or permissions (read:data, write:data, ...)")
        return self

    def normalized_scopes(self) -> list[str]:
        scopes: set[str] = set(self.scopes or ())
        scopes |= {p.split(":", 1)[0] for p in self.permissions or ()}
        return [s for s in ("read", "write") if s in scopes]

    def normalized_limits(self) -> dict[str, int]:
        limits = {k: v for k, v in (self.rateLimits.model_dump() if self.rateLimits else {}).items() if v}
        if self.rateLimit:
            limits["perMinute"] = self.rateLimit["requestsPerMinute"]
        return limits or {"perMinute": DEFAULT_PER_MINUTE}


METADATA_FIELDS = (
    "id",
    "name",
    "description",
    "prefix",
    "scopes",
    "permissions",
    "rateLimits",
    "expiresAt",
    "createdAt",
    "createdBy",
    "lastUsedAt",
    "usageCount",
    "state",
)


def metadata(item: dict[str, Any]) -> dict[str, Any]:
    """The public view of a key: never its hash, never owner snapshots or counters."""
    return {field: item.get(field) for field in METADATA_FIELDS} | {
        "usageCount": int(item.get("usageCount", 0))
    }


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
        except ClientError as error:
            if not _lost_race(error):
                raise
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
            except ClientError as error:
                if not _lost_race(error):
                    raise
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


def owner_snapshot(owner: dict[str, Any] | None, orgid: str) -> dict[str, Any] | None:
    """What a key of ``orgid`` acts with: its owner's membership there (or a platform root's platform
    membership), never the owner's rights in another org; None when that membership is disabled or gone."""
    if owner is None:
        return None
    membership, platform_root = effective_membership(
        owner.get("data") or {}, orgid, get_settings().platform_orgid
    )
    if membership is None:
        return None
    return {
        "ownerVersion": int(owner.get("version", 1)),
        "ownerRoles": list(membership.roles),
        "ownerPermissions": list(membership.permissions),
        SNAPSHOT_MARK: platform_root,
    }


def _lost_race(error: ClientError) -> bool:
    # DynamoDB cancels a transaction that collides with another one on the same item
    # (TransactionConflict): the caller decides again from a fresh read, as after a failed condition.
    if aws.client_error_code(error) != "TransactionCanceledException":
        return False
    reasons = error.response.get("CancellationReasons") or []
    return any(reason.get("Code") == "TransactionConflict" for reason in reasons)


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


# -- the authorizer's key path ------------------------------------------------------------------------
class KeyAuthenticator:
    def __init__(self, store: TenantStore | None = None) -> None:
        self._store = store or TenantStore()

    def authenticate(self, presented: str, orgid: str, now: float | None = None) -> Principal:
        """The principal a key acts as, or ``Unauthorized``/``Forbidden``; a key over its limit gives a
        principal carrying ``retry_after`` (the function answers 429: an authorizer cannot)."""
        if not is_well_formed(presented):
            raise Unauthorized("malformed API key")
        digest = key_hash(presented)
        key = credential_key(digest)
        for _ in range(3):
            now = now or time.time()
            item = self._store.get(key, consistent=True)
            if item is None or item.get("state") != "active":
                raise Unauthorized("unknown or revoked API key")
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
        sets = ["lastUsedAt = :now"]
        adds = ["usageCount :one"]
        conditions = ["#state = :active"]
        values: dict[str, Any] = {":now": utc_now_iso(), ":one": 1, ":active": "active"}
        retry_after: int | None = None
        for name, limit in limits.items():
            length = WINDOWS[name]
            window = int(now // length) * length
            start, count = f"window{name}Start", f"window{name}Count"
            values[f":{name}W"] = window
            values[f":{name}L"] = limit
            if int(item.get(start, -1)) == window:
                if int(item.get(count, 0)) >= limit:
                    retry_after = max(retry_after or 0, int(window + length - now) + 1)
                adds.append(f"{count} :one")
                conditions.append(f"{start} = :{name}W AND {count} < :{name}L")
            else:
                sets.append(f"{start} = :{name}W, {count} = :one")
                conditions.append(f"(attribute_not_exists({start}) OR {start} < :{name}W)")
        if retry_after is not None:
            return retry_after
        owner = TenantKey.parse(str(item["createdBy"]))
        try:
            self._store.transact(
                [
                    # Every change of a User (its memberships included) bumps its version: an unchanged
                    # version means the snapshot in the key is still the owner's membership here.
                    Check(
                        owner,
                        "#version = :v",
                        values={":v": int(item.get("ownerVersion", 1))},
                        names={"#version": "version"},
                    ),
                    Update(
                        key,
                        f"SET {', '.join(sets)} ADD {', '.join(adds)}",
                        values=values,
                        names={"#state": "state"},
                        condition=" AND ".join(conditions),
                    ),
                ]
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
            self._store.update(
                Update(
                    key,
                    "SET ownerVersion = :v, ownerRoles = :r, ownerPermissions = :p, #root = :root"
                    " REMOVE ownerOrgs",
                    values={
                        ":v": snapshot["ownerVersion"],
                        ":r": snapshot["ownerRoles"],
                        ":p": snapshot["ownerPermissions"],
                        ":root": snapshot[SNAPSHOT_MARK],
                    },
                    names={"#root": SNAPSHOT_MARK},
                    condition="attribute_exists(PK)",
                ),
                return_new=False,
            )
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
