"""Asymmetric signing keys (Ed25519, each with a ``kid``), stored in Secrets Manager, served as JWKS.

The keyset secret holds ``{"keys": [...]}``, newest (current) first. Rotation adds a new current key and
gives the previous one a ``retiresAt`` far enough out that every token it signed expires first; retired
keys leave the JWKS and stop verifying. Reads go through Powertools Parameters with a short cache;
an unknown ``kid`` forces one refetch (rate-limited) so a fresh rotation is picked up at once.

Rotation is a compare-and-swap on the secret's version (``KeyStore.rotate``): the jobs function and the
operator CLI both go through it, so two runs at once add one key, never two.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from appengine_core.infra import aws
from appengine_core.infra.errors import ServiceUnavailable
from appengine_core.infra.settings import get_settings

ALGORITHM = "EdDSA"
CACHE_SECONDS = 60
# App tokens (AppEngine's clients' application credential) live this long; a retired key must outlive them.
APP_TOKEN_TTL_SECONDS = 900
_REFETCH_INTERVAL_SECONDS = 5.0
# The namespace of the version ids rotation writes: the successor of version V is uuid5(namespace, V).
ROTATION_NAMESPACE = uuid.UUID("6f1d2c3e-8a47-5b0e-9c1f-2d4b6a8e0f13")


def overlap_seconds() -> int:
    """How long a replaced key stays published and verifying: the longest token lifetime (access or app
    token) plus two cache periods (a container may sign with the old key for one cache period after the
    rotation, and verifiers accept a token up to 30 s past its ``exp``)."""
    settings = get_settings()
    return max(settings.access_token_ttl_seconds, APP_TOKEN_TTL_SECONDS) + 2 * CACHE_SECONDS


def successor_version(version_id: str) -> str:
    """The one version id a rotation may write after having read version ``version_id``."""
    return str(uuid.uuid5(ROTATION_NAMESPACE, version_id))


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey
    created_at: int
    retires_at: int | None

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(OKPAlgorithm.to_jwk(self.public_key))
        return jwk | {"kid": self.kid, "use": "sig", "alg": ALGORITHM}


class KeySource(Protocol):
    """What token signing and verification need from a keyset."""

    def current(self) -> SigningKey: ...

    def verification_key(self, kid: str) -> Ed25519PublicKey | None: ...


def new_key_entry(now: int) -> dict[str, Any]:
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "kid": secrets.token_urlsafe(12),
        "alg": ALGORITHM,
        "privateKey": pem,
        "createdAt": now,
        "retiresAt": None,
    }


def rotated_keyset(
    keyset: dict[str, Any], *, now: int, rotation_seconds: int, retire_after_seconds: int, force: bool = False
) -> dict[str, Any] | None:
    """The keyset after a rotation check, or None when nothing needs to change.

    Drops keys past their ``retiresAt``; adds a new current key when there is none, when the current one
    is older than ``rotation_seconds``, or when forced; the replaced key retires ``retire_after_seconds``
    from now (the access-token lifetime plus cache slack), so its tokens stay verifiable until they expire.
    """
    keys = [k for k in keyset.get("keys", []) if k.get("retiresAt") is None or k["retiresAt"] > now]
    changed = len(keys) != len(keyset.get("keys", []))
    current = next((k for k in keys if k.get("retiresAt") is None), None)
    if current is None or force or now - int(current["createdAt"]) >= rotation_seconds:
        for key in keys:
            if key.get("retiresAt") is None:
                key["retiresAt"] = now + retire_after_seconds
        keys.insert(0, new_key_entry(now))
        changed = True
    return {"keys": keys} if changed else None


class KeyStore:
    """The process-wide view of the keyset secret."""

    def __init__(self, secret_name: str | None = None) -> None:
        self._secret_name = secret_name or get_settings().signing_keys_secret
        self._provider: SecretsProvider | None = None
        self._parsed: dict[str, SigningKey] = {}
        self._last_forced = 0.0
        self._lock = threading.Lock()

    def _load(self, *, force: bool = False) -> list[SigningKey]:
        if self._provider is None:
            self._provider = SecretsProvider(boto3_client=aws.secretsmanager())
        raw = self._provider.get(
            self._secret_name, transform="json", max_age=CACHE_SECONDS, force_fetch=force
        )
        now = int(time.time())
        keys = []
        for entry in (raw or {}).get("keys", []):  # type: ignore[union-attr]
            retires_at = entry.get("retiresAt")
            if retires_at is not None and retires_at <= now:
                continue
            keys.append(self._parse(entry))
        return keys

    def _parse(self, entry: dict[str, Any]) -> SigningKey:
        kid = str(entry["kid"])
        cached = self._parsed.get(kid)
        if cached is not None and cached.retires_at == entry.get("retiresAt"):
            return cached
        private_key = serialization.load_pem_private_key(entry["privateKey"].encode(), password=None)
        if not isinstance(private_key, Ed25519PrivateKey):
            raise ServiceUnavailable("signing key is not Ed25519")
        key = SigningKey(kid, private_key, int(entry["createdAt"]), entry.get("retiresAt"))
        self._parsed[kid] = key
        return key

    def current(self) -> SigningKey:
        for key in self._load():
            if key.retires_at is None:
                return key
        raise ServiceUnavailable("no signing key: run `appengine-admin rotate-signing-key` once after deploy")

    def verification_key(self, kid: str) -> Ed25519PublicKey | None:
        """The public key for ``kid``, refetching once (at most every few seconds) if it is unknown."""
        for key in self._load():
            if key.kid == kid:
                return key.public_key
        with self._lock:
            if time.monotonic() - self._last_forced < _REFETCH_INTERVAL_SECONDS:
                return None
            self._last_forced = time.monotonic()
        for key in self._load(force=True):
            if key.kid == kid:
                return key.public_key
        return None

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self._load()]}

    # -- operator side (jobs, CLI) -------------------------------------------------------------
    def rotate(self, *, force: bool = False) -> bool:
        """Run the rotation check against the stored secret; True when this run's change was stored.

        Why this is safe with two runs at once (the scheduled job and an operator, or a retried
        invocation): the write is a compare-and-swap on the version that was read. ``PutSecretValue``
        takes a ``ClientRequestToken`` that becomes the new version's id, and Secrets Manager documents
        that a token already used for a version with other content fails (``ResourceExistsException``:
        a version cannot be modified), while the same token with the same content is ignored. The token
        is derived from the version read (``successor_version``), so every run that read version V can
        write only version uuid5(V): the first one wins, any other that read V has its write refused and
        re-checks the keyset the winner wrote, where the current key is now fresh, so it ends with
        "nothing to do" (a forced run included: the fresh key it wanted exists). A run that read a later
        version derives another token, and a version id is never written twice (Secrets Manager keeps
        every version of the last 24 hours), so no stale read can overwrite a newer keyset. botocore's
        own retry of a write that timed out but committed resends the same token and content, and is
        ignored. Every writer of the secret must use this path (the template's initial value aside);
        ``ReservedConcurrentExecutions`` on the jobs function only limits cost, it is not the guard.
        """
        settings = get_settings()
        client = aws.secretsmanager()
        for _ in range(2):  # one re-check after a lost race; a second loss means others keep rotating
            read = client.get_secret_value(SecretId=self._secret_name)
            keyset = json.loads(read.get("SecretString") or "{}")
            updated = rotated_keyset(
                keyset,
                now=int(time.time()),
                rotation_seconds=settings.signing_key_rotation_days * 86400,
                retire_after_seconds=overlap_seconds(),
                force=force,
            )
            if updated is None:
                return False
            try:
                client.put_secret_value(
                    SecretId=self._secret_name,
                    SecretString=json.dumps(updated),
                    ClientRequestToken=successor_version(read["VersionId"]),
                )
            except client.exceptions.ResourceExistsException:
                # Another run wrote the successor of the version read: check again against its keyset,
                # unforced (the rotation a forced run asked for has just happened).
                force = False
                continue
            self._parsed.clear()
            self._load(force=True)
            return True
        return False
