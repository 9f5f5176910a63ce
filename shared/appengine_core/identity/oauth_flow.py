"""Social sign-in and enterprise SSO: the flow (contract §4 "Social sign-in and enterprise SSO").

1. **Start** (a browser navigation): the org's enabled provider for that kind, a ``redirectUri`` on the
   provider's allow-list (exact match; else 422 and no redirect), then 302 to the provider's
   authorization endpoint: Authorization Code with PKCE (S256), a ``state`` and, for OpenID Connect, a
   ``nonce``. The state is ``<orgid>.<256 random bits>`` (the provider hands it back untouched, and the
   org tells where to look it up); its item, under the digest of the random part, binds org, kind,
   provider, the redirect URI and this API's callback URI, and holds a random salt from which the PKCE
   verifier and the nonce are derived with the state itself (HMAC-SHA256): the item alone cannot
   rebuild the verifier, nor can the URL. It lives 10 minutes and is spent once.
2. **Callback** (``/profile/{provider}/redirect``): the state spent by a conditional delete (unknown,
   used, expired, or another provider's: 401 ``invalid_state``, no redirect). From there on every
   refusal is a 302 to ``redirectUri#error=<reason>``: the code is exchanged (client secret + verifier),
   the ID token validated (OpenID Connect) or the profile APIs read (GitHub, Facebook), a verified email
   required (inside ``allowedDomains`` when set), and the principal picked: the one linked to (provider,
   subject); else the principal of that kind in the org with that email, which is linked; else, for
   customers with ``autoCreate``, a new customer without a password (it signs in through its linked
   identities; a password sign-in fails as a wrong password, in the same time). Users are never
   created. A disabled principal is refused. Success: 302 to ``redirectUri#code=<one-time code>``: 256
   random bits, stored as a digest, bound to org, kind, principal and provider, 60 seconds, once.
   Tokens never travel in a URL.
3. **Exchange** (POST ``/profile/oauth/exchange`` ``{code}``, ``orgid`` header): the code spent by a
   conditional delete (unknown, used, expired or another org's: 401 ``invalid_code``), then
   ``AuthService.first_factor_done``: the sign-in envelope, or the 2FA answer; the session's method is
   ``oauth:<provider>``.

Reasons after the state check: ``access_denied`` (the person declined at the provider),
``provider_error`` (the provider failed, answered garbage, or its token did not verify; logged as a
warning), ``email_not_verified`` (no email, or not verified: ``email_verified`` absent counts as
unverified), ``domain_not_allowed``, ``no_account`` (no principal and none may be created),
``account_disabled``, ``identity_conflict`` (the principal with that email already has another account
of this provider linked here).

OAuth refusals are not counted by the brute-force guard (``lockout``): nothing is guessed here (the
state and the exchange code carry 256 random bits, and the provider authenticated the person), and
counting them per email would let anyone holding a provider account with a victim's unverified email
lock the victim's password sign-in. A lock on an email does not stop its OAuth sign-in either, and an
OAuth sign-in does not reset the email's failed-password count.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from appengine_core.identity.data import IdentityData, PrincipalKind
from appengine_core.identity.directory import CustomerProfile, DirectoryService, normalize_email
from appengine_core.identity.oauth_clients import (
    TENANT_PLACEHOLDER,
    OAuthClients,
    ProviderError,
    ProviderIdentity,
    ProviderMetadata,
    identity_from_claims,
)
from appengine_core.identity.oauth_flow_data import (
    OAuthFlowData,
    code_key,
    code_spent,
    new_code,
    new_state,
    state_key,
    state_spent,
)
from appengine_core.identity.oauth_links import IdentityLinks
from appengine_core.identity.oauth_providers import PROVIDER_NAMES, ProviderConfig, ProviderDirectory
from appengine_core.identity.passwordless import LinkOrigin, may_sign_in
from appengine_core.identity.signin import AuthService, ClientInfo, FirstFactorOutcome
from appengine_core.infra.envelope import Record
from appengine_core.infra.errors import (
    Conflict,
    InvalidCode,
    InvalidState,
    NotFound,
    Unauthorized,
    invalid_field,
)
from appengine_core.infra.events import EventPublisher, publish_best_effort
from appengine_core.infra.settings import get_settings
from appengine_core.infra.store import ConditionFailed, TenantStore

STATE_LIFETIME_SECONDS = 10 * 60
CODE_LIFETIME_SECONDS = 60
MAX_STATE_LENGTH = 128
MAX_CODE_LENGTH = 128
MAX_PROVIDER_CODE_LENGTH = 4096
MAX_REDIRECT_URI_LENGTH = 2048
CALLBACK_PATH = "/profile/{provider}/redirect"
GOOGLE_ISSUER = "https://accounts.google.com"
Reason = Literal[
    "access_denied",
    "provider_error",
    "email_not_verified",
    "domain_not_allowed",
    "no_account",
    "account_disabled",
    "identity_conflict",
]
_SECRET = re.compile(r"^[A-Za-z0-9_-]{43}$")  # token_urlsafe(32)
_STATE = re.compile(r"^(?P<orgid>[a-z0-9][a-z0-9-]{1,62})\.(?P<secret>[A-Za-z0-9_-]{43})$")
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")
_LOOPBACK = re.compile(r"^(?:localhost|127(?:\.[0-9]{1,3}){3}|\[::1\])(?::[0-9]{1,5})?$", re.IGNORECASE)
_log = logging.getLogger("appengine.oauth")


# -- secrets and bindings (pure) ---------------------------------------------------------------------
def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def derived(state_secret: str, salt: str, purpose: Literal["pkce", "nonce"]) -> str:
    """The PKCE verifier (43 characters of base64url: RFC 7636's minimum length, 256 bits) or the nonce
    of a flow: an HMAC-SHA256 of the item's salt under the state's secret."""
    return _b64(hmac.new(state_secret.encode(), f"{purpose}:{salt}".encode(), hashlib.sha256).digest())


def pkce_verifier(state_secret: str, salt: str) -> str:
    return derived(state_secret, salt, "pkce")


def flow_nonce(state_secret: str, salt: str) -> str:
    return derived(state_secret, salt, "nonce")


def issue_state(orgid: str) -> tuple[str, str]:
    """(the state sent to the provider, its secret part)."""
    secret = secrets.token_urlsafe(32)
    return f"{orgid}.{secret}", secret


def parse_state(state: str | None) -> tuple[str, str]:
    """(orgid, secret) of a state this service issued; 401 ``invalid_state`` for anything else."""
    match = _STATE.fullmatch(state or "") if isinstance(state, str) else None
    if match is None:
        raise InvalidState()
    return match["orgid"], match["secret"]


def callback_url(provider: str, origin: LinkOrigin) -> str:
    """This API's callback for ``provider``, as registered at the provider: built from what API Gateway
    says about the request (never a client's ``Host`` header deployed): ``http://<loopback host>/...``
    on the local stack (which serves routes at the root), ``https://<domainName><base path>/...``
    deployed."""
    path = CALLBACK_PATH.format(provider=provider)
    domain = origin.domain if origin.domain and _HOST.fullmatch(origin.domain) else "127.0.0.1:3000"
    if _LOOPBACK.fullmatch(domain):
        return f"http://{domain}{path}"
    return f"https://{domain}{origin.base_path()}{path}"


def with_fragment(redirect_uri: str, **values: str) -> str:
    """``redirect_uri#k=v&...``: what the application reads in its page (never sent to a server)."""
    return f"{redirect_uri}#{urlencode(values)}"


def verified_email(identity: ProviderIdentity) -> str | None:
    """The provider's email, normalized, if the provider says it is verified; else None."""
    if not identity.email or not identity.email_verified:
        return None
    try:
        return normalize_email(identity.email)
    except ValueError:
        return None


def email_refusal(identity: ProviderIdentity, config: ProviderConfig) -> Reason | None:
    """Why the provider's email does not sign anyone in here (unverified, outside the allowed
    domains), or None."""
    email = verified_email(identity)
    if email is None:
        return "email_not_verified"
    if not config.domain_allowed(email):
        return "domain_not_allowed"
    return None


def issuer_check(
    config: ProviderConfig, metadata: ProviderMetadata
) -> Callable[[str, Mapping[str, Any]], bool]:
    """Whether an ID token's ``iss`` is the provider's: the configured issuer (Microsoft's
    multi-tenant ones: the token's own tenant, ``ProviderConfig.issuer_matches``), the issuer the
    discovery document names, or Google's documented bare form."""

    def accepted(iss: str, claims: Mapping[str, Any]) -> bool:
        tenant = claims.get("tid")
        if config.issuer_matches(iss, tenant if isinstance(tenant, str) else None):
            return True
        if TENANT_PLACEHOLDER not in metadata.issuer and iss == metadata.issuer:
            return True
        return (
            config.provider == "google" and metadata.issuer == GOOGLE_ISSUER and iss == "accounts.google.com"
        )

    return accepted


# -- requests and answers ----------------------------------------------------------------------------
class ExchangeRequest(BaseModel):
    """``{code}``: the one-time code the callback put in the redirect URI's fragment."""

    model_config = ConfigDict(extra="ignore")

    code: SecretStr = Field(min_length=1, max_length=MAX_CODE_LENGTH)


class _Refused(Exception):
    def __init__(self, reason: Reason, detail: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


# -- the service -------------------------------------------------------------------------------------
class OAuthFlowService:
    def __init__(
        self,
        auth: AuthService | None = None,
        providers: ProviderDirectory | None = None,
        links: IdentityLinks | None = None,
        clients: OAuthClients | None = None,
        store: TenantStore | None = None,
        events: EventPublisher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        store = store or TenantStore()
        self._events = events or EventPublisher()
        self._data = OAuthFlowData(store)
        self._identity = IdentityData(store)
        self._directory = DirectoryService(data=self._identity)
        self._auth = auth or AuthService(store=store, events=self._events)
        self._providers = providers or ProviderDirectory(store)
        self._links = links or IdentityLinks(store, self._events)
        self._clients = clients or OAuthClients(allow_loopback_http=get_settings().oauth_allow_loopback_http)
        self._clock = clock

    # -- 1. start ------------------------------------------------------------------------------------
    def start(
        self, orgid: str, provider: str, kind: PrincipalKind, redirect_uri: str, origin: LinkOrigin
    ) -> str:
        """Where the browser goes: the provider's authorization URL (or, when the provider cannot be
        reached, ``redirectUri#error=provider_error``). 404: the provider is not enabled for this org
        and kind; 422: ``redirectUri`` is not on its list."""
        config = self._config(orgid, provider, kind)
        if "#" in redirect_uri or not config.redirect_allowed(redirect_uri):
            raise invalid_field("redirectUri", "not one of the redirect URIs set for this provider")
        try:
            endpoint = self._authorization_endpoint(config)
        except ProviderError as failure:
            self._warn(orgid, config.provider, kind, "start", failure)
            return with_fragment(redirect_uri, error="provider_error")
        state, secret = issue_state(orgid)
        salt = secrets.token_hex(16)
        callback = callback_url(config.provider, origin)
        attributes = {
            "kind": kind,
            "provider": config.provider,
            "redirectUri": redirect_uri,
            "callbackUri": callback,
            "salt": salt,
        }
        now = self._clock()
        self._data.save(new_state(state_key(orgid, secret), attributes, int(now) + STATE_LIFETIME_SECONDS))
        return self._clients.authorization_url(
            endpoint,
            client_id=config.client_id,
            scope=config.scopes,
            callback=callback,
            state=state,
            verifier=pkce_verifier(secret, salt),
            nonce=flow_nonce(secret, salt) if config.openid else None,
        )

    def _config(self, orgid: str, provider: str, kind: PrincipalKind) -> ProviderConfig:
        config = self._providers.config(orgid, provider) if provider in PROVIDER_NAMES else None
        if config is None or not config.allows(kind):
            raise NotFound(f"{provider[:32]} sign-in is not enabled for {kind}s of this org")
        return config

    def _authorization_endpoint(self, config: ProviderConfig) -> str:
        if config.openid:
            return self._clients.discover(self._issuer(config)).authorization_endpoint
        if not config.authorization_endpoint:
            raise ProviderError("no authorization endpoint is configured")
        return self._clients.check_url(config.authorization_endpoint, "authorization endpoint")

    @staticmethod
    def _issuer(config: ProviderConfig) -> str:
        if not config.issuer:
            raise ProviderError("no issuer is configured")
        return config.issuer

    # -- 2. callback ---------------------------------------------------------------------------------
    def callback(
        self,
        provider: str,
        *,
        state: str | None,
        code: str | None,
        error: str | None = None,
        header_orgid: str | None = None,
    ) -> str:
        """Where the browser goes back to: ``redirectUri#code=...`` or ``redirectUri#error=<reason>``.
        401 ``invalid_state`` (no redirect) for a state that is unknown, used, expired, of another
        provider or of another org than the ``orgid`` header sent, or whose provider was disabled (or
        its redirect URI unlisted) since the start."""
        orgid, secret = parse_state(state)
        if header_orgid and header_orgid != orgid:
            raise InvalidState()
        item = self._spend_state(orgid, secret, provider)
        kind: PrincipalKind = "user" if item.get("kind") == "user" else "customer"
        redirect_uri = str(item["redirectUri"])
        config = self._providers.config(orgid, provider)
        if config is None or not config.allows(kind) or not config.redirect_allowed(redirect_uri):
            # Disabled, or the redirect URI unlisted, since the start: the browser is never sent to a
            # redirect URI the provider's settings do not list (any more).
            self._refused(orgid, kind, provider, "settings_changed")
            raise InvalidState("the provider's settings changed since this sign-in started; start again")
        try:
            if error or not code:
                # The person declined (access_denied), or the provider sent an error instead of a code.
                declined = error == "access_denied"
                detail = f"the provider answered {str(error)[:64]!r}" if error else "no code"
                raise _Refused("access_denied" if declined else "provider_error", detail)
            if len(code) > MAX_PROVIDER_CODE_LENGTH:
                raise _Refused("provider_error", "the code is too long")
            identity = self._identity_of(config, code, secret, item)
            refusal = email_refusal(identity, config)
            if refusal is not None:
                raise _Refused(refusal)
            record = self._principal_for(config, kind, identity)
        except ProviderError as failure:
            self._warn(orgid, provider, kind, "callback", failure)
            self._refused(orgid, kind, provider, "provider_error")
            return with_fragment(redirect_uri, error="provider_error")
        except _Refused as refusal:
            self._refused(orgid, kind, provider, refusal.reason, refusal.detail)
            return with_fragment(redirect_uri, error=refusal.reason)
        one_time = secrets.token_urlsafe(32)
        attributes = {"kind": kind, "principal": record.sk, "provider": provider}
        expires_at = int(self._clock()) + CODE_LIFETIME_SECONDS
        self._data.save(new_code(code_key(orgid, one_time), attributes, expires_at))
        return with_fragment(redirect_uri, code=one_time)

    def _spend_state(self, orgid: str, secret: str, provider: str) -> dict[str, Any]:
        key = state_key(orgid, secret)
        item = self._data.item(key)
        now = self._clock()
        if item is None or item.get("provider") != provider or float(item.get("expiresAt") or 0) <= now:
            raise InvalidState()
        try:
            self._data.spend(state_spent(key, provider=provider, now=now))
        except ConditionFailed as spent:  # used by a parallel callback meanwhile
            raise InvalidState() from spent
        return item

    def _identity_of(
        self, config: ProviderConfig, code: str, secret: str, item: Mapping[str, Any]
    ) -> ProviderIdentity:
        salt, callback = str(item["salt"]), str(item["callbackUri"])
        verifier = pkce_verifier(secret, salt)
        client_secret = config.client_secret.get_secret_value()
        if config.openid:
            metadata = self._clients.discover(self._issuer(config))
            token = self._clients.exchange_code(
                metadata.token_endpoint,
                client_id=config.client_id,
                client_secret=client_secret,
                code=code,
                verifier=verifier,
                callback=callback,
                auth_method=metadata.token_auth_method(),
            )
            access_token = str(token["access_token"])
            claims = self._clients.verified_claims(
                token.get("id_token"),
                metadata,
                client_id=config.client_id,
                nonce=flow_nonce(secret, salt),
                issuer_ok=issuer_check(config, metadata),
                access_token=access_token,
            )
            identity = identity_from_claims(claims)
            if identity.email is None and metadata.userinfo_endpoint:
                # Some providers put the email in userinfo only; it must be about the same subject.
                info = self._clients.userinfo(metadata.userinfo_endpoint, access_token)
                if info.get("sub") != identity.subject:
                    raise ProviderError("the userinfo answer is about another subject")
                extra = {
                    k: info[k] for k in ("email", "email_verified", "given_name", "family_name") if k in info
                }
                identity = identity_from_claims(claims | extra)
            return identity
        if not config.token_endpoint or not config.userinfo_endpoint:
            raise ProviderError("no token or profile endpoint is configured")
        token = self._clients.exchange_code(
            config.token_endpoint,
            client_id=config.client_id,
            client_secret=client_secret,
            code=code,
            verifier=verifier,
            callback=callback,
            auth_method="client_secret_post",
        )
        access_token = str(token["access_token"])
        if config.provider == "github":
            return self._clients.github_identity(config.userinfo_endpoint, access_token)
        return self._clients.facebook_identity(config.userinfo_endpoint, access_token, client_secret)

    def _principal_for(
        self, config: ProviderConfig, kind: PrincipalKind, identity: ProviderIdentity
    ) -> Record:
        """The principal (provider, subject) signs in as: linked; else found by the verified email and
        linked; else a new customer (``autoCreate``), linked. Refused when none, or disabled."""
        orgid, provider, email = config.orgid, config.provider, verified_email(identity)
        assert email is not None  # email_refusal ran first
        linked = self._links.principal_for(orgid, kind, provider, identity.subject)
        if linked is not None:
            return self._usable(kind, orgid, linked)
        sk = self._identity.principal_sk_by_email(orgid, kind, email)
        if sk is None and kind == "customer" and config.auto_create:
            sk = self._new_customer(orgid, email, identity, provider)
        if sk is None:
            raise _Refused("no_account")
        record = self._usable(kind, orgid, sk)
        try:
            self._links.link(orgid, kind, provider, identity.subject, record.sk, email)
        except Conflict as taken:
            # Linked to this subject by a parallel callback meanwhile: sign in as the linked principal;
            # else the principal holds another account of this provider here.
            raced = self._links.principal_for(orgid, kind, provider, identity.subject)
            if raced is None:
                raise _Refused("identity_conflict") from taken
            return self._usable(kind, orgid, raced)
        except NotFound as gone:
            raise _Refused("no_account") from gone
        return record

    def _usable(self, kind: PrincipalKind, orgid: str, principal_sk: str) -> Record:
        stored = self._identity.principal(principal_sk, consistent=True)
        if stored is None:
            raise _Refused("no_account")
        if not may_sign_in(kind, stored.record, orgid):
            raise _Refused("account_disabled")
        return stored.record

    def _new_customer(self, orgid: str, email: str, identity: ProviderIdentity, provider: str) -> str | None:
        profile = CustomerProfile(firstName=identity.given_name, lastName=identity.family_name)
        try:
            record = self._directory.create_customer_without_password(orgid, email, profile)
        except Conflict:
            # Created by a parallel sign-in (or sign-up) meanwhile: that customer is the one.
            return self._identity.principal_sk_by_email(orgid, "customer", email)
        publish_best_effort(
            self._events, "customer.created", orgid, principal=record.sk, via=f"oauth:{provider}"
        )
        return record.sk

    # -- 3. exchange ---------------------------------------------------------------------------------
    def exchange(self, orgid: str, request: ExchangeRequest, client: ClientInfo) -> FirstFactorOutcome:
        """The sign-in envelope (or the 2FA answer) for a one-time code, once; 401 ``invalid_code``."""
        value = request.code.get_secret_value()
        if not _SECRET.fullmatch(value):
            raise InvalidCode()
        key = code_key(orgid, value)
        item = self._data.item(key)
        now = self._clock()
        if item is None or float(item.get("expiresAt") or 0) <= now:
            raise InvalidCode()
        principal_sk, provider = str(item["principal"]), str(item["provider"])
        kind: PrincipalKind = "user" if item.get("kind") == "user" else "customer"
        try:
            self._data.spend(code_spent(key, principal_sk=principal_sk, now=now))
        except ConditionFailed as spent:  # exchanged by a parallel request meanwhile
            raise InvalidCode() from spent
        method = f"oauth:{provider}"
        stored = self._identity.principal(principal_sk, consistent=True)
        if stored is None or not may_sign_in(kind, stored.record, orgid):
            # Disabled (or removed) since the callback: the code is spent and signs nobody in.
            self._refused(orgid, kind, provider, "account_disabled", principal=principal_sk)
            raise Unauthorized("this account is disabled")
        return self._auth.first_factor_done(kind, orgid, stored.record, method, client)

    # -- events and logs -----------------------------------------------------------------------------
    def _refused(
        self,
        orgid: str,
        kind: PrincipalKind,
        provider: str,
        reason: str,
        detail: str | None = None,
        principal: str | None = None,
    ) -> None:
        facts = {"principal": principal} if principal else {}
        if detail:
            _log.info(
                "oauth sign-in refused",
                extra={"orgid": orgid, "provider": provider, "reason": reason, "detail": detail},
            )
        publish_best_effort(
            self._events,
            "auth.sign_in_failed",
            orgid,
            kind=kind,
            method=f"oauth:{provider}",
            reason=reason,
            **facts,
        )

    @staticmethod
    def _warn(orgid: str, provider: str, kind: str, step: str, failure: ProviderError) -> None:
        _log.warning(
            "identity provider failed",
            extra={
                "orgid": orgid,
                "provider": provider,
                "kind": kind,
                "step": step,
                "detail": failure.message,
            },
        )
