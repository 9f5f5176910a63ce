"""Password hashing: argon2id at OWASP parameters through passlib (the maintained libpass distribution)."""

from __future__ import annotations

from functools import lru_cache

from passlib.context import CryptContext

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
ARGON2_MEMORY_KIB = 19456
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256


@lru_cache(maxsize=1)
def password_context() -> CryptContext:
    return CryptContext(
        schemes=["argon2"],
        argon2__type="ID",
        argon2__memory_cost=ARGON2_MEMORY_KIB,
        argon2__rounds=ARGON2_TIME_COST,
        argon2__parallelism=ARGON2_PARALLELISM,
    )


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Verifying unknown emails against a real hash makes them cost the same time as known ones.
    return str(password_context().hash("appengine-dummy-password-for-timing"))


def hash_password(password: str) -> str:
    return str(password_context().hash(password))


def verify_password(password: str, stored_hash: str | None) -> tuple[bool, str | None]:
    """(matches, replacement hash when the stored one uses outdated parameters)."""
    if not stored_hash:
        password_context().verify(password, _dummy_hash())
        return False, None
    matches, new_hash = password_context().verify_and_update(password, stored_hash)
    return bool(matches), new_hash
