"""Signing-key rotation rules (pure): overlap for the access-token lifetime, then retirement, and the
version id a rotation may write (its compare-and-swap)."""

from __future__ import annotations

import uuid

import pytest

from appengine_core.identity.signing import (
    APP_TOKEN_TTL_SECONDS,
    CACHE_SECONDS,
    overlap_seconds,
    rotated_keyset,
    successor_version,
)
from appengine_core.identity.tokens import _LEEWAY_SECONDS
from appengine_core.infra.settings import get_settings

DAY = 86400


def test_an_empty_keyset_gets_its_first_key() -> None:
    keyset = rotated_keyset({"keys": []}, now=1000, rotation_seconds=30 * DAY, retire_after_seconds=1020)
    assert keyset is not None
    (key,) = keyset["keys"]
    assert key["retiresAt"] is None and key["createdAt"] == 1000 and "PRIVATE KEY" in key["privateKey"]


def test_a_young_key_is_left_alone() -> None:
    keyset = rotated_keyset({"keys": []}, now=0, rotation_seconds=30 * DAY, retire_after_seconds=1020)
    assert keyset is not None
    assert rotated_keyset(keyset, now=DAY, rotation_seconds=30 * DAY, retire_after_seconds=1020) is None


def test_an_old_key_is_replaced_and_kept_until_its_tokens_expire() -> None:
    first = rotated_keyset({"keys": []}, now=0, rotation_seconds=30 * DAY, retire_after_seconds=1020)
    assert first is not None
    old_kid = first["keys"][0]["kid"]
    rotated = rotated_keyset(first, now=31 * DAY, rotation_seconds=30 * DAY, retire_after_seconds=1020)
    assert rotated is not None
    new, old = rotated["keys"]
    assert new["retiresAt"] is None and old["kid"] == old_kid and old["retiresAt"] == 31 * DAY + 1020
    # After the overlap the old key is dropped.
    later = rotated_keyset(rotated, now=31 * DAY + 1020, rotation_seconds=30 * DAY, retire_after_seconds=1020)
    assert later is not None
    assert [k["kid"] for k in later["keys"]] == [new["kid"]]


def test_forced_rotation_replaces_a_young_key() -> None:
    first = rotated_keyset({"keys": []}, now=0, rotation_seconds=30 * DAY, retire_after_seconds=60)
    assert first is not None
    forced = rotated_keyset(first, now=10, rotation_seconds=30 * DAY, retire_after_seconds=60, force=True)
    assert forced is not None and len(forced["keys"]) == 2


def test_the_successor_version_is_one_per_version_read() -> None:
    # Given two runs that read the same version of the keyset secret, and a run that read another one
    read = "a3c1e0d2-5b4f-4c6a-9e8d-7f1b2c3d4e5f"
    # Then the runs that read the same version may write only the same version id (a valid UUID that
    # Secrets Manager accepts as a ClientRequestToken), and the run that read another version another id
    assert successor_version(read) == successor_version(read)
    assert successor_version(read) != successor_version("0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f70")
    assert str(uuid.UUID(successor_version(read))) == successor_version(read)
    assert successor_version(read) != read


@pytest.mark.parametrize("ttl", ["60", "900", "3600"])
def test_the_overlap_outlives_every_token_the_old_key_can_still_sign(
    clean_env: pytest.MonkeyPatch, ttl: str
) -> None:
    # Given an access-token lifetime (and the settings every deployment has)
    for name, value in {
        "APPENGINE_TABLE": "table",
        "APPENGINE_EVENT_BUS": "bus",
        "APPENGINE_SIGNING_KEYS_SECRET": "keyset",
        "ACCESS_TOKEN_TTL_SECONDS": ttl,
    }.items():
        clean_env.setenv(name, value)
    get_settings.cache_clear()
    try:
        overlap = overlap_seconds()
        # Then the old key outlives the last token it can sign: one signed by a container whose cached
        # keyset still names it current (one cache period after the rotation), for the longest lifetime
        # (access or app token), accepted up to the verifiers' leeway past its expiry
        longest = max(int(ttl), APP_TOKEN_TTL_SECONDS)
        assert overlap >= CACHE_SECONDS + longest + _LEEWAY_SECONDS
    finally:
        get_settings.cache_clear()
