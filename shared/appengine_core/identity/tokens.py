"""Access tokens: short-lived EdDSA JWTs with a ``kid``, bound to principal kind, token use and session.

A token of one kind or use is never accepted as another: ``typ``, ``use`` and ``kind`` are all checked,
the algorithm list is fixed (no ``none``, no HMAC with a public key), and issuer and audience must match.

App tokens (contract §5) are JWTs of their own use (``use: "app"``, ``typ: app+jwt``), signed with the
same keys: bound to an API key (``sub``: its id, ``ref``: its credential item's hash) and its org. They
name no principal and no session: the key they name decides, read afresh on every request.
"""

from __future__ import annotations

import secrets
import time
from typing import Literal

import jwt
from pydantic import BaseModel, ValidationError

from appengine_core.identity.signing import ALGORITHM, APP_TOKEN_TTL_SECONDS, KeySource, KeyStore
from appengine_core.infra.errors import Unauthorized
from appengine_core.infra.settings import get_settings

TokenUse = Literal["access", "partial"]
TOKEN_TYPES: dict[str, str] = {"access": "at+jwt", "partial": "partial+jwt"}
APP_TOKEN_TYPE = "app+jwt"
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


class AppClaims(BaseModel):
    sub: str  # the API key's id
    ref: str  # the SHA-256 of the key's value when the token was issued: its credential item
    org: str  # the key's org
    use: Literal["app"]
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
        lifetime = ttl_seconds or get_settings().access_token_ttl_seconds
        claims: dict[str, object] = {"sub": subject, "kind": kind, "use": use, "sid": session_id}
        if kind == "customer":
            claims["org"] = orgid
        return self._signed(claims, TOKEN_TYPES[use], lifetime), lifetime

    def issue_app(self, *, key_id: str, reference: str, orgid: str) -> tuple[str, int]:
        """(app token, lifetime in seconds) for the API key ``key_id`` of ``orgid``."""
        claims: dict[str, object] = {"sub": key_id, "ref": reference, "org": orgid, "use": "app"}
        return self._signed(claims, APP_TOKEN_TYPE, APP_TOKEN_TTL_SECONDS), APP_TOKEN_TTL_SECONDS

    def _signed(self, claims: dict[str, object], token_type: str, lifetime: int) -> str:
        """``claims`` with issuer, audience and times, signed with the current key under its ``kid``."""
        settings = get_settings()
        now = int(time.time())
        key = self._keys.current()
        registered = {
            "iss": settings.token_issuer,
            "aud": settings.token_audience,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": secrets.token_urlsafe(12),
        }
        return jwt.encode(
            registered | claims,
            key.private_key,
            algorithm=ALGORITHM,
            headers={"kid": key.kid, "typ": token_type},
        )

    def verify(self, token: str, *, use: TokenUse = "access") -> AccessClaims:
        """The claims of a valid token of the given use; ``Unauthorized`` for anything else."""
        payload = self._payload(token, TOKEN_TYPES[use])
        try:
            claims = AccessClaims.model_validate(payload)
        except ValidationError as exc:
            raise Unauthorized("invalid or expired token") from exc
        if claims.use != use or (claims.kind == "customer" and not claims.org):
            raise Unauthorized("invalid token")
        return claims

    def verify_app(self, token: str) -> AppClaims:
        """The claims of a valid app token; ``Unauthorized`` for anything else (an access token too)."""
        payload = self._payload(token, APP_TOKEN_TYPE)
        try:
            return AppClaims.model_validate(payload)
        except ValidationError as exc:
            raise Unauthorized("invalid or expired token") from exc

    @staticmethod
    def is_app_token(token: str) -> bool:
        """Whether ``token`` says it is an app token (unverified: only to pick the verification)."""
        try:
            return jwt.get_unverified_header(token).get("typ") == APP_TOKEN_TYPE
        except jwt.PyJWTError:
            return False

    def _payload(self, token: str, token_type: str) -> dict[str, object]:
        """The verified payload of a token of ``token_type``; ``Unauthorized`` for anything else."""
        settings = get_settings()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("malformed token") from exc
        if header.get("alg") != ALGORITHM or header.get("typ") != token_type or not header.get("kid"):
            raise Unauthorized("invalid token")
        key = self._keys.verification_key(str(header["kid"]))
        if key is None:
            raise Unauthorized("invalid token")
        try:
            payload: dict[str, object] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=settings.token_audience,
                issuer=settings.token_issuer,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub", "iss", "aud", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid or expired token") from exc
        return payload
