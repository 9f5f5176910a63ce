"""Signing-key rotation rules (pure): overlap for the access-token lifetime, then retirement."""

from __future__ import annotations

from appengine_core.identity.signing import rotated_keyset

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
