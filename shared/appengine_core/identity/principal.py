"""The verified caller, as the authorizer describes it to functions.

API Gateway passes the authorizer's context to the function as flat strings; ``Principal`` is the one
place that encodes and decodes it, so the authorizer and the guard can never disagree on the format.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from appengine_core.infra.errors import Forbidden

Credential = Literal["jwt", "apikey"]
ADMIN_ROLES = frozenset({"RootSystem", "RootAdmin"})


class Principal(BaseModel):
    kind: Literal["user", "customer"]
    principal_id: str  # the principal record's sk
    orgid: str | None  # the org this call acts on ("" when the orgid header was missing)
    credential: Credential = "jwt"
    roles: tuple[str, ...] = ()
    permissions: tuple[str, ...] = ()
    platform_root: bool = False
    session_id: str | None = None
    api_key_id: str | None = None
    scopes: tuple[str, ...] | None = None  # None: not limited by key scopes
    retry_after: int | None = None  # set when an API key is over its rate limit: the function answers 429

    def to_context(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "principalId": self.principal_id,
            "orgid": self.orgid or "",
            "credential": self.credential,
            "roles": ",".join(self.roles),
            "permissions": ",".join(self.permissions),
            "platformRoot": "true" if self.platform_root else "false",
            "sessionId": self.session_id or "",
            "apiKeyId": self.api_key_id or "",
            "scopes": "" if self.scopes is None else ",".join(self.scopes) or "-",
            "retryAfter": str(self.retry_after or ""),
        }

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> Principal:
        def as_tuple(value: Any) -> tuple[str, ...]:
            return tuple(v for v in str(value or "").split(",") if v)

        scopes = str(context.get("scopes") or "")
        return cls(
            kind=context["kind"],
            principal_id=str(context["principalId"]),
            orgid=str(context.get("orgid") or "") or None,
            credential=context.get("credential") or "jwt",
            roles=as_tuple(context.get("roles")),
            permissions=as_tuple(context.get("permissions")),
            platform_root=str(context.get("platformRoot")).lower() == "true",
            session_id=str(context.get("sessionId") or "") or None,
            api_key_id=str(context.get("apiKeyId") or "") or None,
            scopes=None if not scopes else tuple(s for s in scopes.split(",") if s and s != "-"),
            retry_after=int(context["retryAfter"])
            if str(context.get("retryAfter") or "").isdigit()
            else None,
        )

    @property
    def is_user(self) -> bool:
        return self.kind == "user"

    def has_role(self, *roles: str) -> bool:
        return self.platform_root or any(role in self.roles for role in roles)

    def has_permission(self, permission: str) -> bool:
        # Key scopes are not permissions: the edge checks them once per request (guard.require_scope).
        return self.platform_root or permission in self.permissions


def require_role(principal: Principal, *roles: str) -> None:
    if not principal.has_role(*roles):
        raise Forbidden(f"needs one of the roles {', '.join(roles)}")


def require_permission(principal: Principal, permission: str) -> None:
    if not principal.has_permission(permission):
        raise Forbidden(f"needs the {permission} permission")


class Caller(BaseModel):
    """Who calls and on which org: what every service method takes first. The org is the one the
    authorizer approved and the guard re-checked against the ``orgid`` header, never one from a body."""

    model_config = ConfigDict(frozen=True)

    principal: Principal
    orgid: str
