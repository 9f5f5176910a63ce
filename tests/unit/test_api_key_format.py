"""API key format: prefix + 32 random base62 + CRC32 checksum, refused before any read when malformed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from appengine_core.keys.format import KEY_LENGTH, display_prefix, generate_key, is_well_formed, key_hash
from appengine_core.keys.models import ApiKeyCreate


def test_generated_keys_are_well_formed_and_distinct() -> None:
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    assert all(is_well_formed(k) and len(k) == KEY_LENGTH and k.startswith("aek_") for k in keys)


@given(position=st.integers(min_value=4, max_value=KEY_LENGTH - 1), replacement=st.sampled_from("0aZ9"))
def test_any_single_character_change_breaks_the_checksum(position: int, replacement: str) -> None:
    key = generate_key()
    changed = key[:position] + replacement + key[position + 1 :]
    if changed != key:
        assert not is_well_formed(changed)


@pytest.mark.parametrize(
    "candidate", ["", "aek_", "ghp_" + "a" * 38, "aek_" + "!" * 38, "aek_short", None, 42]
)
def test_garbage_is_not_a_key(candidate: object) -> None:
    assert not is_well_formed(candidate)  # type: ignore[arg-type]


def test_only_the_prefix_is_displayable_and_the_hash_is_sha256() -> None:
    key = generate_key()
    assert display_prefix(key) == key[:12] and len(key_hash(key)) == 64 and key not in key_hash(key)


def test_both_request_shapes_normalize_to_scopes_and_limits() -> None:
    by_scopes = ApiKeyCreate(name="a", scopes=["read"], rateLimit={"requestsPerMinute": 5})
    assert by_scopes.normalized_scopes() == ["read"] and by_scopes.normalized_limits() == {"perMinute": 5}
    by_permissions = ApiKeyCreate(
        name="b", permissions=["read:data", "write:profile"], rateLimits={"perHour": 100, "perDay": 1000}
    )
    assert by_permissions.normalized_scopes() == ["read", "write"]
    assert by_permissions.normalized_limits() == {"perHour": 100, "perDay": 1000}
    assert ApiKeyCreate(name="c", scopes=["write"]).normalized_limits() == {"perMinute": 600}


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x"},  # no scope at all
        {"name": "x", "scopes": ["admin"]},
        {"name": "x", "permissions": ["delete:everything"]},
        {"name": "x", "scopes": ["read"], "rateLimit": {"requestsPerMinute": 0}},
        {"name": "x", "scopes": ["read"], "rateLimit": {"perMinute": 5}},
        {
            "name": "x",
            "scopes": ["read"],
            "expiresAt": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        },
        {"name": "", "scopes": ["read"]},
    ],
)
def test_invalid_key_requests_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ApiKeyCreate.model_validate(body)
