"""The authorizer's decision: who is calling, and may they act on the requested org.

Outcomes map onto REST-API authorizer semantics: ``Unauthorized`` -> 401 (the handler raises
"Unauthorized"), ``Forbidden`` -> 403 (a Deny policy), a ``Principal`` -> Allow with context.
A missing ``orgid`` is allowed through with an empty org so that the function's guard answers
400 ``orgid_required`` (contract §1 puts it after 401 and before 403; the gateway cannot say 400).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from appengine_core.apikeys import KeyAuthenticator, is_well_formed
from appengine_core.errors import Forbidden, Unauthorized
from appengine_core.principal import ADMIN_ROLES, Principal
from appengine_core.sessions import session_key
from appengine_core.settings import get_settings
from appengine_core.store import TenantStore
from appengine_core.tenancy import TenantKey, is_valid_orgid
from appengine_core.tokens import AccessClaims, TokenService


def bearer(value: str | None) -> str | None:
    """The token of an ``Authorization``-style header; ``Bearer `` is optional (contract §1)."""
    if value is None:
        return None
    value = value.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value or None


class AuthorizerService:
    def __init__(self, tokens: TokenService | None = None, store: TenantStore | None = None) -> None:
        self._tokens = tokens or TokenService()
        self._store = store or TenantStore()
        self._keys = KeyAuthenticator(self._store)

    def decide(self, headers: Mapping[str, str]) -> Principal:
        lowered = {k.lower(): v for k, v in headers.items()}
        orgid = (lowered.get("orgid") or "").strip()
        person_token = bearer(lowered.get("x-client-authorization")) or bearer(lowered.get("authorization"))
        if person_token:
            principal, orgs = self._from_jwt(self._tokens.verify(person_token))
        elif lowered.get("x-api-key"):
            if not is_well_formed(lowered["x-api-key"].strip()):
                raise Unauthorized("malformed API key")
            if not is_valid_orgid(orgid):
                # A key resolves only within its org: without one the guard answers 400.
                return Principal(kind="user", principal_id="-", orgid=None, credential="apikey", scopes=())
            return self._keys.authenticate(lowered["x-api-key"].strip(), orgid)
        else:
            raise Unauthorized()
        if not is_valid_orgid(orgid):
            return principal
        if not (principal.platform_root or orgid in orgs):
            raise Forbidden("the credential may not act on this org")
        return principal.model_copy(update={"orgid": orgid})

    def _from_jwt(self, claims: AccessClaims) -> tuple[Principal, list[str]]:
        """The principal behind a verified token and the orgs it may act on."""
        try:
            key = TenantKey.parse(claims.sub)
        except ValueError as exc:
            raise Unauthorized() from exc
        if key.collection != claims.kind:
            raise Unauthorized()
        # The principal and its session in one round trip: a disabled principal or a revoked session
        # is refused from the very next request.
        session_of_token = session_key(key.orgid, claims.sid)
        found = self._store.batch_get([key, session_of_token])
        item, session = found.get(key.sort), found.get(session_of_token.sort)
        data: dict[str, Any] = (item or {}).get("data") or {}
        if not item or data.get("disabled"):
            raise Unauthorized()
        if (
            not session
            or session.get("revoked")
            or int(session.get("expiresAt", 0)) <= time.time()
            or session.get("principal") != claims.sub
            or session.get("kind") != claims.kind
        ):
            raise Unauthorized()
        if claims.kind == "customer":
            if claims.org != key.orgid:
                raise Unauthorized()
            principal = Principal(kind="customer", principal_id=claims.sub, orgid=None, session_id=claims.sid)
            return principal, [key.orgid]
        roles = tuple(str(r) for r in data.get("roles") or ())
        orgs = [str(o) for o in data.get("orgs") or ()]
        principal = Principal(
            kind="user",
            principal_id=claims.sub,
            orgid=None,
            roles=roles,
            permissions=tuple(str(p) for p in (data.get("permissions") or {}).get("content") or ()),
            platform_root=get_settings().platform_orgid in orgs and bool(ADMIN_ROLES & set(roles)),
            session_id=claims.sid,
        )
        return principal, orgs
