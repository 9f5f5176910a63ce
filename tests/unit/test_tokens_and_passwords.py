"""Token rules (kind, use, typ, algorithm, issuer, audience, expiry) and password hashing rules."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appengine_core.identity import passwords
from appengine_core.identity.signing import SigningKey
from appengine_core.identity.tokens import TokenService
from appengine_core.infra.errors import Unauthorized
from appengine_core.infra.settings import get_settings


class InMemoryKeys:
    """A keyset held in memory: the unit-test stand-in for the Secrets Manager-backed KeyStore."""

    def __init__(self) -> None:
        self.key = SigningKey("kid-1", Ed25519PrivateKey.generate(), created_at=0, retires_at=None)

    def current(self) -> SigningKey:
        return self.key

    def verification_key(self, kid: str) -> Ed25519PublicKey | None:
        return self.key.public_key if kid == self.key.kid else None


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "APPENGINE_TABLE": "t-1",
        "APPENGINE_EVENT_BUS": "b",
        "APPENGINE_SIGNING_KEYS_SECRET": "s",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def keys() -> InMemoryKeys:
    return InMemoryKeys()


def forge(keys: InMemoryKeys, claims: dict[str, Any], **header: Any) -> str:
    return jwt.encode(
        claims, keys.key.private_key, algorithm="EdDSA", headers={"kid": "kid-1", "typ": "at+jwt", **header}
    )


def valid_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": "appengine",
        "aud": "appengine-api",
        "sub": "acme:user:1",
        "kind": "user",
        "use": "access",
        "sid": "s",
        "iat": now,
        "exp": now + 60,
        "jti": "j",
    } | overrides


def test_issued_tokens_verify_with_their_claims(keys: InMemoryKeys) -> None:
    service = TokenService(keys)
    token, lifetime = service.issue(subject="acme:customer:1", kind="customer", session_id="s1", orgid="acme")
    claims = service.verify(token)
    assert (claims.sub, claims.kind, claims.use, claims.sid, claims.org) == (
        "acme:customer:1",
        "customer",
        "access",
        "s1",
        "acme",
    )
    assert lifetime == 900 and jwt.get_unverified_header(token)["typ"] == "at+jwt"


@pytest.mark.parametrize(
    ("claims", "header"),
    [
        (valid_claims(exp=int(time.time()) - 120), {}),
        (valid_claims(iss="someone-else"), {}),
        (valid_claims(aud="another-api"), {}),
        (valid_claims(use="partial"), {}),
        (valid_claims(use="refresh"), {}),
        (valid_claims(kind="admin"), {}),
        (valid_claims(kind="customer"), {}),  # a customer token must name its org
        (valid_claims(), {"typ": "partial+jwt"}),
        (valid_claims(), {"typ": "JWT"}),
        (valid_claims(), {"kid": "unknown"}),
        ({k: v for k, v in valid_claims().items() if k != "jti"}, {}),
    ],
)
def test_tokens_of_another_kind_use_issuer_or_age_are_refused(
    keys: InMemoryKeys, claims: dict[str, Any], header: dict[str, Any]
) -> None:
    with pytest.raises(Unauthorized):
        TokenService(keys).verify(forge(keys, claims, **header))


def test_an_hmac_token_is_refused_even_with_the_right_claims(keys: InMemoryKeys) -> None:
    token = jwt.encode(valid_claims(), "s" * 32, algorithm="HS256", headers={"kid": "kid-1", "typ": "at+jwt"})
    with pytest.raises(Unauthorized):
        TokenService(keys).verify(token)


def test_partial_tokens_verify_only_as_partial(keys: InMemoryKeys) -> None:
    service = TokenService(keys)
    token, _ = service.issue(
        subject="acme:user:1", kind="user", session_id="s", use="partial", ttl_seconds=300
    )
    assert service.verify(token, use="partial").use == "partial"
    with pytest.raises(Unauthorized):
        service.verify(token)


def test_passwords_are_argon2id_at_owasp_parameters() -> None:
    stored = passwords.hash_password("correct horse")
    assert stored.startswith("$argon2id$") and "m=19456,t=2,p=1" in stored
    assert passwords.verify_password("correct horse", stored) == (True, None)
    assert passwords.verify_password("wrong", stored) == (False, None)


def test_an_unknown_principal_is_verified_against_a_dummy_and_fails() -> None:
    assert passwords.verify_password("anything", None) == (False, None)


def test_a_hash_with_old_parameters_gets_a_replacement() -> None:
    from passlib.hash import argon2

    weak = argon2.using(type="ID", memory_cost=1024, rounds=1, parallelism=1).hash("pw")
    matches, replacement = passwords.verify_password("pw", weak)
    assert matches and replacement is not None and "m=19456" in replacement
