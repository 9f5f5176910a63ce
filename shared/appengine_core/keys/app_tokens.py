"""App tokens (contract §5): how AppEngine's clients authenticate the calling application.

``POST /profile/app/key`` trades an API key's credentials (``appId``: the key's id, ``key``: its prefix,
``secret``: its value) for a short-lived JWT of its own use (``identity.tokens``), bound to the key
(its id and the hash of its value) and its org. The key is verified as the authorizer verifies it
(checksum, SHA-256 lookup, state, expiry, org, its owner still enabled there) and the id and prefix
must match; whatever is wrong, the answer is the same 401. Failed attempts are counted and throttled
as failed sign-ins are (``identity.lockout``: per key id, and per source address with sign-ins).

The token is then used as the key itself (``keys.authenticator``): the same item, counters, usage and
revocation, proven current on every request by the admission write.
"""

from __future__ import annotations

import secrets
import time

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from appengine_core.identity.data import PrincipalKind
from appengine_core.identity.lockout import BruteForceGuard
from appengine_core.identity.tokens import TokenService
from appengine_core.infra.errors import InvalidCredentials
from appengine_core.keys.data import ApiKeyData
from appengine_core.keys.format import KEY_LENGTH, display_prefix, is_well_formed, key_hash, owner_snapshot

# The lockout counts failures per (org, kind, name): app credentials are counted as the "user" kind under
# a name no email can be (emails have an "@", these never do).
_LOCKOUT_KIND: PrincipalKind = "user"
_INVALID = "invalid app credentials"


class AppCredentials(BaseModel):
    """An API key's credentials as AppEngine's clients send them (their `appId`, `appKey`, `appSecret`)."""

    model_config = ConfigDict(extra="ignore")

    appId: str = Field(min_length=1, max_length=64, description="the API key's id")  # noqa: N815
    key: str = Field(min_length=1, max_length=64, description="the API key's prefix")
    secret: SecretStr = Field(min_length=1, max_length=KEY_LENGTH * 4, description="the API key itself")


class AppTokenBody(BaseModel):
    token: str
    expiresIn: int  # noqa: N815


class AppToken(AppTokenBody):
    """The answer: the token at the top level and under ``data`` (AppEngine's clients read either)."""

    data: AppTokenBody


class AppTokenService:
    def __init__(
        self,
        data: ApiKeyData | None = None,
        tokens: TokenService | None = None,
        lockout: BruteForceGuard | None = None,
    ) -> None:
        self._data = data or ApiKeyData()
        self._tokens = tokens or TokenService()
        self._lockout = lockout or BruteForceGuard()

    def issue(self, orgid: str, credentials: AppCredentials, source_ip: str | None) -> AppToken:
        """A new app token for the key, or 401 ``invalid_credentials`` (429 past the failure limits)."""
        attempt = self._lockout.admit(orgid, _LOCKOUT_KIND, f"app:{credentials.appId}", source_ip)
        digest = self._verify(orgid, credentials)
        if digest is None:
            self._lockout.failed(attempt)  # 429 instead of 401 past a limit
            raise InvalidCredentials(_INVALID)
        self._lockout.succeeded(attempt)
        token, lifetime = self._tokens.issue_app(key_id=credentials.appId, reference=digest, orgid=orgid)
        return AppToken(token=token, expiresIn=lifetime, data=AppTokenBody(token=token, expiresIn=lifetime))

    def _verify(self, orgid: str, credentials: AppCredentials) -> str | None:
        """The key's hash when the credentials name a live key of ``orgid``, else None (one answer for
        every reason)."""
        secret = credentials.secret.get_secret_value().strip()
        if not is_well_formed(secret):
            return None
        digest = key_hash(secret)
        item = self._data.credential(digest)
        if item is None:
            return None
        # Every comparison is made, in constant time, whichever fails first.
        matches = [
            item.get("state") == "active",
            item.get("orgid") == orgid,
            secrets.compare_digest(str(item.get("id", "")).encode(), credentials.appId.encode()),
            secrets.compare_digest(str(item.get("prefix", "")).encode(), credentials.key.strip().encode()),
            secrets.compare_digest(display_prefix(secret).encode(), credentials.key.strip().encode()),
        ]
        expires = item.get("expiresAtEpoch")
        if expires is not None and int(expires) <= time.time():
            return None
        if not all(matches):
            return None
        # As the authorizer: a key acts only while its owner is an enabled member of the key's org.
        if owner_snapshot(self._data.owner(str(item["createdBy"])), orgid) is None:
            return None
        return digest
