"""API keys: the format and where keys live (contract §5).

Format: ``aek_`` + 32 random base62 characters (~190 bits) + 6 base62 characters of the CRC32 of the
random part (GitHub's scheme): a malformed or made-up key is refused before any database read, and a
leaked key is recognisable by scanners. Only the SHA-256 of a key is stored.

Layout: the credential item ``<platform>:#apikey-<hh>:<sha256>`` (sharded by the hash's first two hex
digits) holds everything the authorizer needs, so resolving a key is one GetItem, and a key presented
with the wrong ``orgid`` can be told apart (403) from an unknown key (401). Per org,
``<org>:#apikey-id:<key id>`` points at the current hash (get, list, regenerate, revoke by id).

This module is on the authorizer's hot path: it imports nothing heavy.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import zlib
from typing import Any, Literal

from appengine_core.identity.memberships import effective_membership
from appengine_core.infra.settings import get_settings
from appengine_core.infra.tenancy import TenantKey

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
