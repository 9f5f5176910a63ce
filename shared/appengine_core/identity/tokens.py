"""Access tokens: short-lived EdDSA JWTs with a ``kid``, bound to principal kind, token use and session.

A token of one kind or use is never accepted as another: ``typ``, ``use`` and ``kind`` are all checked,
the algorithm list is fixed (no ``none``, no HMAC with a public key), and issuer and audience must match.
"""

from __future__ import annotations

import secrets
import time
from typing import Literal

import jwt
from pydantic import BaseModel, ValidationError

from appengine_core.identity.signing import ALGORITHM, KeySource, KeyStore
from appengine_core.infra.errors import Unauthorized
from appengine_core.infra.settings import get_settings

TokenUse = Literal["access", "partial"]
TOKEN_TYPES: dict[str, str] = {"access": "at+jwt", "partial": "partial+jwt"}
_LEEWAY_SECONDS = 30


class AccessClaims(BaseModel):
    sub: str  # the principal's sk
    kind: Literal["user", "customer"]
    use: TokenUse
    sid: str
    org: str | None = None  # customers only: the one org the token is valid for
    iat: int
    exp: int
    jti: str


class TokenService:
    def __init__(self, keys: KeySource | None = None) -> None:
        self._keys = keys or KeyStore()

    def issue(
        self,
        *,
        subject: str,
        kind: Literal["user", "customer"],
        session_id: str,
        orgid: str | None = None,
        use: TokenUse = "access",
        ttl_seconds: int | None = None,
    ) -> tuple[str, int]:
        """(token, lifetime in seconds)."""
        settings = get_settings()
        lifetime = ttl_seconds or settings.access_token_ttl_seconds
        now = int(time.time())
        key = self._keys.current()
        claims = {
            "iss": settings.token_issuer,
            "aud": settings.token_audience,
            "sub": subject,
            "kind": kind,
            "use": use,
            "sid": session_id,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": secrets.token_urlsafe(12),
        }
        if kind == "customer":
            claims["org"] = orgid
        token = jwt.encode(
            claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": TOKEN_TYPES[use]}
        )
        return token, lifetime

    def verify(self, token: str, *, use: TokenUse = "access") -> AccessClaims:
        """The claims of a valid token of the given use; ``Unauthorized`` for anything else."""
        settings = get_settings()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("malformed token") from exc
        if header.get("alg") != ALGORITHM or header.get("typ") != TOKEN_TYPES[use] or not header.get("kid"):
            raise Unauthorized("invalid token")
        key = self._keys.verification_key(str(header["kid"]))
        if key is None:
            raise Unauthorized("invalid token")
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=settings.token_audience,
                issuer=settings.token_issuer,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub", "iss", "aud", "jti"]},
            )
            claims = AccessClaims.model_validate(payload)
        except (jwt.PyJWTError, ValidationError) as exc:
            raise Unauthorized("invalid or expired token") from exc
        if claims.use != use or (claims.kind == "customer" and not claims.org):
            raise Unauthorized("invalid token")
        return claims
