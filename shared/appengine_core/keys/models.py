"""API keys: the request models of key management and the public view of a key (contract §5)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from appengine_core.keys.format import DEFAULT_PER_MINUTE, Scope


# -- request models --------------------------------------------------------------------------------
class RateLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    perMinute: int | None = Field(default=None, ge=1, le=1_000_000)  # noqa: N815
    perHour: int | None = Field(default=None, ge=1, le=100_000_000)  # noqa: N815
    perDay: int | None = Field(default=None, ge=1, le=1_000_000_000)  # noqa: N815


class ApiKeyCreate(BaseModel):
    """Both request shapes of AppEngine's docs: ``scopes`` or ``permissions``, ``rateLimit`` or
    ``rateLimits``."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    scopes: list[Scope] | None = None
    permissions: list[str] | None = None
    rateLimit: dict[str, int] | None = None  # noqa: N815
    rateLimits: RateLimits | None = None  # noqa: N815
    expiresAt: datetime | None = None  # noqa: N815

    @field_validator("permissions")
    @classmethod
    def _permissions(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            for permission in value:
                action = permission.split(":", 1)[0]
                if action not in ("read", "write"):
                    raise ValueError(f"unknown permission {permission!r}: use read:<what> or write:<what>")
        return value

    @field_validator("rateLimit")
    @classmethod
    def _rate_limit(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        if value is not None and (
            set(value) != {"requestsPerMinute"} or not 1 <= value["requestsPerMinute"] <= 1_000_000
        ):
            raise ValueError("rateLimit takes {requestsPerMinute: 1..1000000}")
        return value

    @field_validator("expiresAt")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is not None:
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            if value.timestamp() <= time.time():
                raise ValueError("must be in the future")
        return value

    @model_validator(mode="after")
    def _some_scope(self) -> ApiKeyCreate:
        if not self.scopes and not self.permissions:
            raise ValueError("give scopes (read, write) or permissions (read:data, write:data, ...)")
        return self

    def normalized_scopes(self) -> list[str]:
        scopes: set[str] = set(self.scopes or ())
        scopes |= {p.split(":", 1)[0] for p in self.permissions or ()}
        return [s for s in ("read", "write") if s in scopes]

    def normalized_limits(self) -> dict[str, int]:
        limits = {k: v for k, v in (self.rateLimits.model_dump() if self.rateLimits else {}).items() if v}
        if self.rateLimit:
            limits["perMinute"] = self.rateLimit["requestsPerMinute"]
        return limits or {"perMinute": DEFAULT_PER_MINUTE}


# -- answers --------------------------------------------------------------------------------------
class KeyMetadata(BaseModel):
    """The public view of a key (contract §5): never its hash, never owner snapshots or counters."""

    id: str
    name: str
    description: str | None = None
    prefix: str
    scopes: list[Scope]
    permissions: list[str] | None = None
    rateLimits: dict[str, int]  # noqa: N815 (the contract's field names)
    expiresAt: str | None = None  # noqa: N815
    createdAt: str  # noqa: N815
    createdBy: str  # noqa: N815
    lastUsedAt: str | None = None  # noqa: N815
    usageCount: int = 0  # noqa: N815
    state: Literal["active", "revoked", "expired"]

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> KeyMetadata:
        """The public fields of a stored key item (every other attribute left out)."""
        return cls.model_validate(
            {field: item.get(field) for field in cls.model_fields}
            | {"usageCount": int(item.get("usageCount", 0))}
        )


class CreatedKey(KeyMetadata):
    """A key with its plaintext: the one answer that ever shows it (create and regenerate)."""

    key: str

    @classmethod
    def of_new(cls, item: Mapping[str, Any], plaintext: str) -> CreatedKey:
        return cls.model_validate(KeyMetadata.of(item).model_dump() | {"key": plaintext})
