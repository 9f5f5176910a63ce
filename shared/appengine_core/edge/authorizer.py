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

from aws_lambda_powertools import Logger

from appengine_core.identity.memberships import effective_membership
from appengine_core.identity.principal import Principal
from appengine_core.identity.sessions import SessionStore, session_key
from appengine_core.identity.tokens import AccessClaims, AppClaims, TokenService
from appengine_core.infra.errors import Forbidden, Unauthorized
from appengine_core.infra.settings import get_settings
from appengine_core.infra.store import TenantStore
from appengine_core.infra.tenancy import TenantKey, is_valid_orgid
from appengine_core.keys.authenticator import KeyAuthenticator
from appengine_core.keys.format import is_well_formed

# A child of the authorizer function's logger: its lines carry the function's keys (request, principal).
logger = Logger(service="authorizer", child=True)


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
        self._sessions = SessionStore(self._store)

    def _seen(self, home_orgid: str, session_id: str, session: dict[str, Any]) -> None:
        """``lastSeenAt`` for the sessions list: at most one conditional write per session per minute (the
        session item just read tells whether a minute has passed), never a refusal if it fails."""
        _never_fails(lambda: self._sessions.touch(home_orgid, session_id, session))

    def decide(self, headers: Mapping[str, str]) -> Principal:
        lowered = {k.lower(): v for k, v in headers.items()}
        orgid = (lowered.get("orgid") or "").strip()
        client_token = bearer(lowered.get("x-client-authorization"))
        authorization = bearer(lowered.get("authorization"))
        if client_token and authorization:
            return self._person_beside_application(client_token, authorization, orgid)
        if authorization and self._tokens.is_app_token(authorization):
            return self._application(self._tokens.verify_app(authorization), orgid)
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

    def _application(self, claims: AppClaims, orgid: str) -> Principal:
        """An app token alone acts exactly as its API key (contract §5): the key's item, read and
        admitted as the key is (the admission write; a read first when the container has not cached
        the item), decides."""
        if not is_valid_orgid(orgid):
            # As a key: without an org the guard answers 400.
            return Principal(kind="user", principal_id="-", orgid=None, credential="apikey", scopes=())
        app = self._admit_application(claims, orgid)
        logger.info("application", extra={"application": app.api_key_id, "principal": app.principal_id})
        return app

    def _person_beside_application(self, person_token: str, application: str, orgid: str) -> Principal:
        """AppEngine's clients: the person's token in ``x-client-authorization``, the calling
        application's in ``Authorization``. The application's credential is verified, never ignored
        (contract §1: invalid -> 401); an app token is also counted against its key's limits (over them:
        429, as the key), an access token is verified as such. The person's rights decide."""
        app_claims = self._tokens.verify_app(application) if self._tokens.is_app_token(application) else None
        if app_claims is None:
            self._tokens.verify(application)
        person_claims = self._tokens.verify(person_token)
        if app_claims is None or not is_valid_orgid(orgid):
            # Without an org the guard answers 400 before anything is counted.
            return self._from_jwt(person_claims, orgid)
        app = self._admit_application(app_claims, orgid)
        person = self._from_jwt(person_claims, orgid)
        logger.info(
            "application beside a person",
            extra={
                "application": app.api_key_id,
                "applicationPrincipal": app.principal_id,
                "person": person.principal_id,
                "kind": person.kind,
            },
        )
        return person.model_copy(update={"api_key_id": app.api_key_id, "retry_after": app.retry_after})

    def _admit_application(self, claims: AppClaims, orgid: str) -> Principal:
        if claims.org != orgid:
            raise Forbidden("the app token belongs to another org")
        return self._keys.authenticate_app(claims.sub, claims.ref, orgid)

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
        # Strongly consistent: a revocation or a disable written a moment ago must already be seen.
        found = self._store.batch_get([key, session_of_token], consistent=True)
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
        self._seen(key.orgid, claims.sid, session)
        if claims.kind == "customer":
            if claims.org != key.orgid:
                raise Unauthorized()
            if not is_valid_orgid(orgid):
                return Principal(kind="customer", principal_id=claims.sub, orgid=None, session_id=claims.sid)
            if orgid != key.orgid:
                raise Forbidden("the credential may not act on this org")
            return Principal(kind="customer", principal_id=claims.sub, orgid=orgid, session_id=claims.sid)
        return user_principal(claims.sub, data, orgid, session_id=claims.sid)


def _never_fails(write: Any) -> None:
    try:
        write()
    except Exception:
        # A session's lastSeenAt is a convenience for its owner; it must never refuse a request.
        logger.warning("session lastSeenAt not written", exc_info=True)


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
