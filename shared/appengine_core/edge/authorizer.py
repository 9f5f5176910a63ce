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

from appengine_core.identity.memberships import effective_membership
from appengine_core.identity.principal import Principal
from appengine_core.identity.sessions import session_key
from appengine_core.identity.tokens import AccessClaims, TokenService
from appengine_core.infra.errors import Forbidden, Unauthorized
from appengine_core.infra.settings import get_settings
from appengine_core.infra.store import TenantStore
from appengine_core.infra.tenancy import TenantKey, is_valid_orgid
from appengine_core.keys.authenticator import KeyAuthenticator
from appengine_core.keys.format import is_well_formed


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
        client_token = bearer(lowered.get("x-client-authorization"))
        authorization = bearer(lowered.get("authorization"))
        if client_token and authorization:
            # Beside a person's token, ``Authorization`` carries the calling application's credential: it
            # is verified, never ignored (contract §1). Until app tokens exist (issue #16) the only valid
            # credential it can hold is an access token; anything else is 401.
            self._tokens.verify(authorization)
        person_token = client_token or authorization
        if person_token:
            return self._from_jwt(self._tokens.verify(person_token), orgid)
        if lowered.get("x-api-key"):
            if not is_well_formed(lowered["x-api-key"].strip()):
                raise Unauthorized("malformed API key")
            if not is_valid_orgid(orgid):
                # A key resolves only within its org: without one the guard answers 400.
                return Principal(kind="user", principal_id="-", orgid=None, credential="apikey", scopes=())
            return self._keys.authenticate(lowered["x-api-key"].strip(), orgid)
        raise Unauthorized()

    def _from_jwt(self, claims: AccessClaims, orgid: str) -> Principal:
        """The principal behind a verified token, acting on ``orgid``."""
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
        # A customer's ``disabled`` is its own; a User's is per membership (checked below: 403).
        if not item or (claims.kind == "customer" and data.get("disabled")):
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
            if not is_valid_orgid(orgid):
                return Principal(kind="customer", principal_id=claims.sub, orgid=None, session_id=claims.sid)
            if orgid != key.orgid:
                raise Forbidden("the credential may not act on this org")
            return Principal(kind="customer", principal_id=claims.sub, orgid=orgid, session_id=claims.sid)
        return user_principal(claims.sub, data, orgid, session_id=claims.sid)


def user_principal(
    principal_id: str, data: Mapping[str, Any], orgid: str, *, session_id: str | None
) -> Principal:
    """A User acting on ``orgid`` with that org's membership only (contract §1), or with its platform
    membership when it is a platform root. 403 when it is not an enabled member of ``orgid``.

    Without a valid orgid the principal carries no rights: the guard answers 400 ``orgid_required``.
    """
    if not is_valid_orgid(orgid):
        return Principal(kind="user", principal_id=principal_id, orgid=None, session_id=session_id)
    membership, platform_root = effective_membership(data, orgid, get_settings().platform_orgid)
    if membership is None:
        raise Forbidden("the credential may not act on this org")
    return Principal(
        kind="user",
        principal_id=principal_id,
        orgid=orgid,
        roles=membership.roles,
        permissions=membership.permissions,
        platform_root=platform_root,
        session_id=session_id,
    )
