"""Runtime settings, validated once per process and cached.

Values come from the environment the template (or the local stack) gives each function; nothing here
is read at import time, so tests set the environment and call ``get_settings.cache_clear()``.
"""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from appengine_core.infra.tenancy import validate_orgid

# Environment variable -> Settings field. The template's Globals set these for every function.
ENVIRONMENT_VARIABLES = {
    "APPENGINE_TABLE": "table_name",
    "APPENGINE_EVENT_BUS": "event_bus_name",
    "APPENGINE_SIGNING_KEYS_SECRET": "signing_keys_secret",
    "PLATFORM_ORGID": "platform_orgid",
    "TOKEN_ISSUER": "token_issuer",
    "TOKEN_AUDIENCE": "token_audience",
    "ACCESS_TOKEN_TTL_SECONDS": "access_token_ttl_seconds",
    "REFRESH_TOKEN_TTL_SECONDS": "refresh_token_ttl_seconds",
    "SIGNING_KEY_ROTATION_DAYS": "signing_key_rotation_days",
    "STAGE": "stage",
    "APPENGINE_SECOND_FACTOR_KEY": "second_factor_key",
    "APPENGINE_CODE_PEPPER_SECRET": "code_pepper_secret",
    "MAIL_SENDER_ADDRESS": "mail_sender",
    "AUDIT_RETENTION_DAYS": "audit_retention_days",
    "MAGIC_LINK_URL": "magic_link_url",
    "APPENGINE_OAUTH_ALLOW_LOOPBACK_HTTP": "oauth_allow_loopback_http",
}


class SettingsError(RuntimeError):
    """The environment does not describe a usable deployment (a deploy or local-stack defect)."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    table_name: str = Field(min_length=3)
    event_bus_name: str = Field(min_length=1)
    signing_keys_secret: str = Field(min_length=1)
    platform_orgid: str = "platform"
    token_issuer: str = "appengine"
    token_audience: str = "appengine-api"
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=3600)
    signing_key_rotation_days: int = Field(default=30, ge=1, le=365)
    stage: str = "local"
    # The KMS key (id, ARN or alias) that seals TOTP secrets; unset: 2FA setup and verify answer 503.
    second_factor_key: str | None = Field(default=None, min_length=1, max_length=2048)
    # The secret holding the key of the HMAC under which one-time codes are stored (infra.pepper); unset:
    # magic-link codes and emailed 2FA codes answer 503.
    code_pepper_secret: str | None = Field(default=None, min_length=1, max_length=2048)
    # The mailer's From address (an SES-verified address or one of a verified domain); empty: do not send.
    mail_sender: str = Field(default="", max_length=320, pattern=r"^$|^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
    # How long security events stay in an org's audit log (their items' TTL), issue 15.
    audit_retention_days: int = Field(default=400, ge=1, le=3650)
    # Where a magic link points (a page that redeems the token; ``{kind}`` becomes user or customer);
    # empty: this API's own redirect route, built from the request (identity.passwordless).
    magic_link_url: str = Field(default="", max_length=1024, pattern=r"^$|^https?://[^\s#]+$")
    # OAuth issuers, endpoints and redirect URIs may be plain http on a loopback address (127.0.0.1, ::1,
    # localhost): set ("true") by the local stack and the tests only, so that a local OpenID provider can
    # stand in; never in the template (contract §4 "Social sign-in").
    oauth_allow_loopback_http: bool = False

    @field_validator("platform_orgid")
    @classmethod
    def _platform_orgid_is_an_orgid(cls, value: str) -> str:
        return validate_orgid(value)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    raw = {field: os.environ[name] for name, field in ENVIRONMENT_VARIABLES.items() if os.environ.get(name)}
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        missing = ", ".join(
            name
            for name, field in ENVIRONMENT_VARIABLES.items()
            if any(e["loc"][0] == field for e in exc.errors())
        )
        raise SettingsError(f"invalid or missing settings: {missing}") from exc
