"""Per-org settings of the social sign-in and enterprise SSO providers (contract §4 "Social sign-in and
enterprise SSO"): ``google``, ``microsoft``, ``github``, ``facebook`` and ``oidc`` (the org's own OpenID
Connect provider: Okta, Entra ID, Keycloak, ...).

The org's RootAdmin or ConfigAdmin (a person's token: never an API key or app token, never a Customer)
sets a provider with PUT: its client id and secret, whether it is enabled, for which principal kinds,
the redirect URIs the sign-in may return to (an exact-match allow-list), issuer or endpoint overrides,
scopes, allowed email domains and whether unknown customers are created. The client secret is sealed
with KMS (``infra.sealing``, bound to the org, the provider and its purpose) and never returned: the
answer says ``clientSecretSet: true``. A PUT replaces the settings as a whole; ``clientSecret`` may be
left out once one is stored, and then the stored one is kept (unless ``clientId`` changes: a secret
belongs to its client, so a new client id needs its secret).

URLs (redirect URIs, issuers, endpoints) are absolute, without user info or fragment, and https; plain
http only on a loopback address (127.0.0.1, ::1, localhost) and only where the setting
``oauth_allow_loopback_http`` is on (the local stack and the tests), so that a local OpenID provider can
stand in.

Defaults filled in when a provider does not override them (shown by GET, used by the flow):
- google: issuer ``https://accounts.google.com``; microsoft: issuer
  ``https://login.microsoftonline.com/common/v2.0`` (any Entra ID tenant and personal accounts; the ID
  token's ``iss`` then names the user's tenant, see ``ProviderConfig.issuer_matches``); an org that
  wants one tenant sets ``issuer`` to ``https://login.microsoftonline.com/<tenant id>/v2.0``.
- github and facebook (plain OAuth 2.0, no ID token): their public authorization, token and profile
  endpoints (``PUBLIC_ENDPOINTS``); ``issuer`` is refused for them, ``endpoints`` for the OpenID ones.
- scopes: ``openid email profile`` for google, microsoft and oidc (``openid`` is required there),
  ``read:user user:email`` for github, ``email public_profile`` for facebook.

``ProviderDirectory.config`` is what the sign-in flow reads: the settings with the secret opened, or None
for a provider that is unknown, not configured or disabled.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from appengine_core.identity.data import PrincipalKind
from appengine_core.identity.oauth_data import (
    SEALED_SECRET,
    OAuthData,
    provider_key,
    provider_removal,
    provider_settings_rewritten,
    provider_settings_written,
)
from appengine_core.identity.principal import Caller, Principal, require_role
from appengine_core.infra.envelope import utc_now_iso
from appengine_core.infra.errors import Conflict, Forbidden, NotFound, ValidationFailed, invalid_field
from appengine_core.infra.events import EventPublisher, publish_best_effort
from appengine_core.infra.paging import Page
from appengine_core.infra.sealing import SealBroken, Sealer
from appengine_core.infra.settings import get_settings
from appengine_core.infra.store import ConditionFailed, TenantStore

ProviderName = Literal["google", "microsoft", "github", "facebook", "oidc"]
PROVIDER_NAMES: tuple[str, ...] = get_args(ProviderName)
OPENID_PROVIDERS = frozenset({"google", "microsoft", "oidc"})
PLAIN_OAUTH_PROVIDERS = frozenset({"github", "facebook"})
# Who configures providers: the org's admins (the same roles that manage its users), with their own token.
PROVIDER_ADMIN_ROLES = ("RootAdmin", "ConfigAdmin")
SEALING_PURPOSE = "oauth-client-secret"

PUBLIC_ISSUERS: dict[str, str] = {
    "google": "https://accounts.google.com",
    # Multi-tenant: discovery answers with the placeholder issuer .../{tenantid}/v2.0 (issuer_matches).
    "microsoft": "https://login.microsoftonline.com/common/v2.0",
}
PUBLIC_ENDPOINTS: dict[str, dict[str, str]] = {
    "github": {
        "authorization": "https://github.com/login/oauth/authorize",
        "token": "https://github.com/login/oauth/access_token",
        # The verified emails are at ``<userinfo>/emails`` (GitHub's /user/emails).
        "userinfo": "https://api.github.com/user",
    },
    "facebook": {
        "authorization": "https://www.facebook.com/v21.0/dialog/oauth",
        "token": "https://graph.facebook.com/v21.0/oauth/access_token",
        "userinfo": "https://graph.facebook.com/v21.0/me?fields=id,name,email",
    },
}
DEFAULT_SCOPES: dict[str, str] = {
    "google": "openid email profile",
    "microsoft": "openid email profile",
    "oidc": "openid email profile",
    "github": "read:user user:email",
    "facebook": "email public_profile",
}
# Entra ID's "any tenant" issuers and the tenant of personal Microsoft accounts.
MICROSOFT_HOST = "login.microsoftonline.com"
MICROSOFT_CONSUMERS_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
_MICROSOFT_MULTI_TENANT = frozenset({"common", "organizations", "consumers"})
_TENANT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

MAX_URL_LENGTH = 2048
MAX_REDIRECT_URIS = 20
MAX_ALLOWED_DOMAINS = 50
MAX_SCOPES = 30
MAX_SCOPES_TEXT = 4096
MAX_SECRET_BYTES = 2048  # sealed by KMS directly (at most 4 KB)
# A client id as providers issue them: visible ASCII (GUIDs, numbers, "xxx.apps.googleusercontent.com").
_CLIENT_ID = re.compile(r"^[\x21-\x7e]{1,512}$")
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,128}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
# Fields of the answer (GET) that a client may send back in a PUT: ignored.
_VIEW_ONLY_FIELDS = ("provider", "clientSecretSet", "createdAt", "updatedAt")

_log = logging.getLogger("appengine.oauth")


# -- URLs (pure) -------------------------------------------------------------------------------------
def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 or ``localhost``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_shape_problem(value: str, *, query_allowed: bool = True) -> str | None:
    """Why ``value`` is not an absolute http(s) URL as these settings take it, or None."""
    if len(value) > MAX_URL_LENGTH:
        return f"at most {MAX_URL_LENGTH} characters"
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value) or "\\" in value:
        return "must not contain spaces, control characters or backslashes"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (a port that is not a number raises)
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("https", "http"):
        return "must be an absolute https URL"
    if not parts.hostname:
        return "must name a host"
    if "@" in parts.netloc:
        return "must not carry user info"
    if "#" in value:
        return "must not have a fragment"
    if not query_allowed and parts.query:
        return "must not have a query"
    return None


def url_scheme_problem(value: str, *, allow_loopback_http: bool) -> str | None:
    """Why ``value`` (an http(s) URL of sound shape) may not be used here, or None: https, or http on a
    loopback address where that is allowed (the local stack)."""
    parts = urlsplit(value)
    if parts.scheme == "https":
        return None
    if allow_loopback_http and is_loopback_host(parts.hostname or ""):
        return None
    if allow_loopback_http:
        return "must be https (http only on a loopback address: 127.0.0.1, ::1, localhost)"
    return "must be https"


def _url(value: str, *, query_allowed: bool = True) -> str:
    problem = url_shape_problem(value, query_allowed=query_allowed)
    if problem:
        raise ValueError(problem)
    return value


def _issuer_url(value: str) -> str:
    return _url(value, query_allowed=False)


def _scope_tokens(value: Any) -> Any:
    """``"openid email"`` or ``["openid", "email"]`` as a list of tokens; anything else as it came."""
    if isinstance(value, str):
        if len(value) > MAX_SCOPES_TEXT:
            raise ValueError(f"at most {MAX_SCOPES_TEXT} characters")
        return value.split()
    return value


def _domain(value: str) -> str:
    domain = value.strip().lower().removeprefix("@").rstrip(".")
    if not _DOMAIN.fullmatch(domain):
        raise ValueError("not a domain name (e.g. example.com)")
    return domain


def _customers_only() -> list[PrincipalKind]:
    return ["customer"]


def _distinct(values: Sequence[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


# -- requests and answers ----------------------------------------------------------------------------
# As the contract writes scopes (a space-separated string), or as a list of them.
SCOPES_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {
            "type": "string",
            "maxLength": MAX_SCOPES_TEXT,
            "description": "space-separated: openid email profile",
        },
        {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 128},
            "maxItems": MAX_SCOPES,
        },
        {"type": "null"},
    ],
    "description": "default: openid email profile (google, microsoft, oidc), read:user user:email (github), "
    "email public_profile (facebook)",
}
Url = Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH, description="an absolute https URL")]
ScopeToken = Annotated[str, Field(min_length=1, max_length=128, pattern=_SCOPE_TOKEN.pattern)]
Domain = Annotated[str, Field(min_length=1, max_length=253)]


class Endpoints(BaseModel):
    """Overrides of a plain OAuth 2.0 provider's endpoints (github, facebook): each optional."""

    model_config = ConfigDict(extra="forbid")

    authorization: Url | None = None
    token: Url | None = None
    userinfo: Url | None = None

    @field_validator("authorization", "token", "userinfo")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        return None if value is None else _url(value)

    def given(self) -> dict[str, str]:
        return {name: url for name, url in self.model_dump().items() if url is not None}


class ProviderSettings(BaseModel):
    """The body of PUT ``/profile/oauth/providers/{provider}`` (contract §4).

    ``clientSecret`` is required by the first PUT of a provider; later ones may leave it out to keep the
    stored secret (not when ``clientId`` changes). The PUT replaces every other setting: what it leaves
    out takes its default. Fields of the answer (``provider``, ``clientSecretSet``, ...) may be sent
    back and are ignored; any other unknown field is refused (a misspelt ``allowedDomains`` must not
    silently allow everyone).
    """

    model_config = ConfigDict(extra="forbid")

    clientId: str = Field(min_length=1, max_length=512, pattern=_CLIENT_ID.pattern)  # noqa: N815
    clientSecret: SecretStr | None = Field(default=None, min_length=1, max_length=2048)  # noqa: N815
    enabled: bool = True
    kinds: list[PrincipalKind] = Field(default_factory=_customers_only, min_length=1, max_length=2)
    redirectUris: list[Url] = Field(min_length=1, max_length=MAX_REDIRECT_URIS)  # noqa: N815
    issuer: Url | None = None
    endpoints: Endpoints | None = None
    scopes: Annotated[list[ScopeToken] | None, WithJsonSchema(SCOPES_SCHEMA)] = Field(
        default=None, max_length=MAX_SCOPES
    )
    allowedDomains: list[Domain] = Field(  # noqa: N815
        default_factory=list, max_length=MAX_ALLOWED_DOMAINS
    )
    autoCreate: bool = True  # noqa: N815

    @model_validator(mode="before")
    @classmethod
    def _without_view_fields(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: v for k, v in value.items() if k not in _VIEW_ONLY_FIELDS}
        return value

    @field_validator("clientSecret")
    @classmethod
    def _secret_text(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value()
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
            raise ValueError("must not contain control characters")
        if len(text.encode("utf-8", "surrogatepass")) > MAX_SECRET_BYTES:
            raise ValueError(f"at most {MAX_SECRET_BYTES} bytes")
        return value

    @field_validator("kinds")
    @classmethod
    def _distinct_kinds(cls, value: list[PrincipalKind]) -> list[PrincipalKind]:
        return _distinct(value)

    @field_validator("redirectUris")
    @classmethod
    def _redirect_uris(cls, value: list[str]) -> list[str]:
        return _distinct([_url(uri) for uri in value])

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str | None) -> str | None:
        return None if value is None else _issuer_url(value)

    @field_validator("scopes", mode="before")
    @classmethod
    def _scopes(cls, value: Any) -> Any:
        return _scope_tokens(value)

    @field_validator("scopes")
    @classmethod
    def _distinct_scopes(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("name at least one scope, or leave scopes out for the default")
        return _distinct(value)

    @field_validator("allowedDomains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        return _distinct([_domain(d) for d in value])

    def checked_for(self, provider: str, *, allow_loopback_http: bool) -> ProviderSettings:
        """The settings if they fit ``provider`` and this deployment; 422 naming every problem
        otherwise (OpenID providers: issuer, no endpoints, ``openid`` scope; plain OAuth providers: no
        issuer; every URL https, or http on loopback where allowed)."""
        problems: list[dict[str, str]] = []

        def problem(field: str, text: str) -> None:
            problems.append({"field": field, "problem": text})

        openid = provider in OPENID_PROVIDERS
        if provider == "oidc" and self.issuer is None:
            problem("issuer", "required for oidc (the provider's issuer URL)")
        if not openid and self.issuer is not None:
            problem("issuer", f"{provider} is not an OpenID Connect provider: set its endpoints instead")
        if openid and self.endpoints is not None:
            problem("endpoints", f"{provider} is an OpenID Connect provider: its issuer names its endpoints")
        if openid and self.scopes is not None and "openid" not in self.scopes:
            problem("scopes", "must include openid")
        urls: list[tuple[str, str]] = [(f"redirectUris.{i}", uri) for i, uri in enumerate(self.redirectUris)]
        if self.issuer is not None:
            urls.append(("issuer", self.issuer))
        if self.endpoints is not None:
            urls += [(f"endpoints.{name}", url) for name, url in self.endpoints.given().items()]
        for field, url in urls:
            text = url_scheme_problem(url, allow_loopback_http=allow_loopback_http)
            if text:
                problem(field, text)
        if problems:
            raise ValidationFailed(details=problems)
        return self

    def stored(self, provider: str) -> dict[str, Any]:
        """The settings as stored (no secret): what the admin gave, defaults left to be filled in."""
        attributes: dict[str, Any] = {
            "provider": provider,
            "clientId": self.clientId,
            "enabled": self.enabled,
            "kinds": list(self.kinds),
            "redirectUris": list(self.redirectUris),
            "allowedDomains": list(self.allowedDomains),
            "autoCreate": self.autoCreate,
        }
        if self.issuer is not None:
            attributes["issuer"] = self.issuer
        if self.endpoints is not None and self.endpoints.given():
            attributes["endpoints"] = self.endpoints.given()
        if self.scopes is not None:
            attributes["scopes"] = " ".join(self.scopes)
        return attributes


class EndpointsView(BaseModel):
    authorization: str
    token: str
    userinfo: str


class ProviderView(BaseModel):
    """A provider's settings as its org's admins read them: never the secret, only that one is set;
    the public defaults filled in (issuer of google and microsoft, endpoints of github and facebook,
    scopes)."""

    provider: ProviderName
    clientId: str  # noqa: N815
    clientSecretSet: Literal[True] = True  # noqa: N815
    enabled: bool
    kinds: list[PrincipalKind]
    redirectUris: list[str]  # noqa: N815
    issuer: str | None = Field(default=None, description="OpenID Connect providers only")
    endpoints: EndpointsView | None = Field(default=None, description="github and facebook only")
    scopes: str = Field(description="space-separated")
    allowedDomains: list[str]  # noqa: N815
    autoCreate: bool  # noqa: N815
    createdAt: str | None = None  # noqa: N815
    updatedAt: str | None = None  # noqa: N815

    @classmethod
    def of_item(cls, item: Mapping[str, Any]) -> ProviderView:
        provider = str(item["provider"])
        endpoints = effective_endpoints(provider, item.get("endpoints"))
        return cls.model_validate(
            {
                "provider": provider,
                "clientId": item["clientId"],
                "enabled": bool(item.get("enabled", True)),
                "kinds": list(item.get("kinds") or ["customer"]),
                "redirectUris": list(item.get("redirectUris") or []),
                "issuer": effective_issuer(provider, item.get("issuer")),
                "endpoints": endpoints,
                "scopes": effective_scopes(provider, item.get("scopes")),
                "allowedDomains": list(item.get("allowedDomains") or []),
                "autoCreate": bool(item.get("autoCreate", True)),
                "createdAt": item.get("createdAt"),
                "updatedAt": item.get("updatedAt"),
            }
        )


def effective_issuer(provider: str, issuer: Any) -> str | None:
    if provider not in OPENID_PROVIDERS:
        return None
    return str(issuer) if issuer else PUBLIC_ISSUERS.get(provider)


def effective_endpoints(provider: str, endpoints: Any) -> dict[str, str] | None:
    if provider not in PLAIN_OAUTH_PROVIDERS:
        return None
    given = {k: str(v) for k, v in (endpoints or {}).items() if v}
    return PUBLIC_ENDPOINTS[provider] | given


def effective_scopes(provider: str, scopes: Any) -> str:
    return str(scopes) if scopes else DEFAULT_SCOPES[provider]


# -- what the sign-in flow reads ---------------------------------------------------------------------
class ProviderConfig(BaseModel):
    """An enabled provider of an org, everything the flow needs, the client secret opened (a
    ``SecretStr``: never shown by repr or logs)."""

    model_config = ConfigDict(frozen=True)

    orgid: str
    provider: ProviderName
    client_id: str
    client_secret: SecretStr
    kinds: tuple[PrincipalKind, ...]
    redirect_uris: tuple[str, ...]
    issuer: str | None  # OpenID Connect providers (google, microsoft, oidc); defaults filled in
    authorization_endpoint: str | None  # github, facebook (defaults filled in); None for OpenID ones
    token_endpoint: str | None
    userinfo_endpoint: str | None
    scopes: str  # space-separated
    allowed_domains: tuple[str, ...]
    auto_create: bool

    @property
    def openid(self) -> bool:
        """An OpenID Connect provider (ID token, discovery from the issuer)."""
        return self.provider in OPENID_PROVIDERS

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()

    @property
    def discovery_url(self) -> str | None:
        """The issuer's OpenID Connect discovery document (None for github and facebook)."""
        if self.issuer is None:
            return None
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    def allows(self, kind: str) -> bool:
        """Whether principals of ``kind`` (user, customer) may sign in with this provider here."""
        return kind in self.kinds

    def redirect_allowed(self, uri: str) -> bool:
        """Exact match against the allow-list (no prefix, no normalization: what was registered)."""
        return uri in self.redirect_uris

    def domain_allowed(self, email: str) -> bool:
        """Whether ``email``'s domain is one of ``allowedDomains`` (exactly; subdomains are not
        included); every domain when the list is empty."""
        if not self.allowed_domains:
            return True
        _, at, domain = email.rpartition("@")
        return bool(at) and domain.lower().rstrip(".") in self.allowed_domains

    def issuer_matches(self, iss: str, tenant_id: str | None = None) -> bool:
        """Whether an ID token's ``iss`` is this provider's issuer. Exact, except for Microsoft's
        multi-tenant issuers (``common``, ``organizations``, ``consumers``), whose tokens name the
        user's tenant: ``https://login.microsoftonline.com/<tid>/v2.0`` with ``tid`` the token's own
        ``tid`` claim (personal accounts: the consumers tenant; ``organizations``: any other)."""
        if self.issuer is None:
            return False
        if iss == self.issuer:
            return True
        parts = urlsplit(self.issuer)
        segments = parts.path.strip("/").split("/")
        if (
            self.provider != "microsoft"
            or parts.hostname != MICROSOFT_HOST
            or not segments
            or segments[0] not in _MICROSOFT_MULTI_TENANT
            or tenant_id is None
            or not _TENANT_ID.fullmatch(tenant_id)
        ):
            return False
        audience = segments[0]
        if audience == "consumers" and tenant_id != MICROSOFT_CONSUMERS_TENANT:
            return False
        if audience == "organizations" and tenant_id == MICROSOFT_CONSUMERS_TENANT:
            return False
        expected = parts._replace(path="/" + "/".join([tenant_id, *segments[1:]])).geturl()
        return iss == expected


def sealing_context(orgid: str, provider: str) -> dict[str, str]:
    """What a provider's sealed client secret is bound to: a seal copied to another org's or another
    provider's item does not open."""
    return {"appengine:orgid": orgid, "appengine:provider": provider, "appengine:purpose": SEALING_PURPOSE}


def provider_name(value: str) -> ProviderName | None:
    return value if value in PROVIDER_NAMES else None  # type: ignore[return-value]


class ProviderDirectory:
    """The flow's read of an org's provider settings."""

    def __init__(self, store: TenantStore | None = None, sealer: Sealer | None = None) -> None:
        self._data = OAuthData(store)
        self._sealer = sealer or Sealer()

    def config(self, orgid: str, provider: str) -> ProviderConfig | None:
        """The enabled provider's settings with its secret opened; None for an unknown provider name,
        one not configured in ``orgid``, or disabled. (The flow checks the kind itself: ``allows``.)"""
        name = provider_name(provider)
        if name is None:
            return None
        item = self._data.provider(orgid, name)
        if item is None or not item.get("enabled", True) or not item.get(SEALED_SECRET):
            return None
        try:
            secret = self._sealer.open(str(item[SEALED_SECRET]), sealing_context(orgid, name))
        except SealBroken:
            # Fail closed: a secret that does not open under this org and provider is not this one's.
            _log.error("a provider's client secret does not open", extra={"orgid": orgid, "provider": name})
            return None
        endpoints = effective_endpoints(name, item.get("endpoints")) or {}
        return ProviderConfig(
            orgid=orgid,
            provider=name,
            client_id=str(item["clientId"]),
            client_secret=SecretStr(secret),
            kinds=tuple(item.get("kinds") or ["customer"]),
            redirect_uris=tuple(str(u) for u in item.get("redirectUris") or []),
            issuer=effective_issuer(name, item.get("issuer")),
            authorization_endpoint=endpoints.get("authorization"),
            token_endpoint=endpoints.get("token"),
            userinfo_endpoint=endpoints.get("userinfo"),
            scopes=effective_scopes(name, item.get("scopes")),
            allowed_domains=tuple(str(d) for d in item.get("allowedDomains") or []),
            auto_create=bool(item.get("autoCreate", True)),
        )


# -- the admins' service -----------------------------------------------------------------------------
class OAuthProviderService:
    """PUT, GET, list and DELETE of an org's provider settings, for its RootAdmin/ConfigAdmin."""

    def __init__(
        self,
        store: TenantStore | None = None,
        sealer: Sealer | None = None,
        events: EventPublisher | None = None,
    ) -> None:
        self._data = OAuthData(store)
        self._sealer = sealer or Sealer()
        self._events = events or EventPublisher()

    def put(self, caller: Caller, provider: str, settings: ProviderSettings) -> ProviderView:
        actor = _admin(caller)
        name = _known(provider)
        orgid = caller.orgid
        settings.checked_for(name, allow_loopback_http=get_settings().oauth_allow_loopback_http)
        existing = self._data.provider(orgid, name)
        now = utc_now_iso()
        attributes = settings.stored(name) | {
            "createdAt": str(existing.get("createdAt") or now) if existing else now,
            "updatedAt": now,
            "updatedBy": actor.principal_id,
        }
        key = provider_key(orgid, name)
        if settings.clientSecret is not None:
            sealed = self._sealer.seal(settings.clientSecret.get_secret_value(), sealing_context(orgid, name))
            self._data.write(provider_settings_written(key, attributes | {SEALED_SECRET: sealed}))
        else:
            stored_secret = str((existing or {}).get(SEALED_SECRET) or "")
            if not stored_secret:
                raise invalid_field("clientSecret", "required: no client secret is stored for this provider")
            if existing is not None and existing.get("clientId") != settings.clientId:
                raise invalid_field("clientSecret", "required when clientId changes")
            try:
                self._data.write(provider_settings_rewritten(key, attributes, stored_secret))
            except ConditionFailed as changed:
                raise Conflict(
                    "the provider's settings changed meanwhile; read them and try again"
                ) from changed
        publish_best_effort(
            self._events,
            "oauth.provider.updated",
            orgid,
            actor=actor.principal_id,
            provider=name,
            enabled=settings.enabled,
            kinds=list(settings.kinds),
            fields=_changed_fields(existing, attributes, secret_given=settings.clientSecret is not None),
        )
        return ProviderView.of_item(attributes)

    def get(self, caller: Caller, provider: str) -> ProviderView:
        _admin(caller)
        name = _known(provider)
        item = self._data.provider(caller.orgid, name)
        if item is None:
            raise NotFound(f"{name} is not configured in this org")
        return ProviderView.of_item(item)

    def list(self, caller: Caller) -> Page[ProviderView]:
        _admin(caller)
        views = [
            ProviderView.of_item(item)
            for item in self._data.providers(caller.orgid)
            if item.get("provider") in PROVIDER_NAMES
        ]
        return Page[ProviderView](
            data=views, total=len(views), page=1, pageSize=len(PROVIDER_NAMES), hasNext=False, next=None
        )

    def delete(self, caller: Caller, provider: str) -> None:
        actor = _admin(caller)
        name = _known(provider)
        try:
            self._data.remove(provider_removal(provider_key(caller.orgid, name)))
        except ConditionFailed as missing:
            raise NotFound(f"{name} is not configured in this org") from missing
        publish_best_effort(
            self._events, "oauth.provider.deleted", caller.orgid, actor=actor.principal_id, provider=name
        )


def _changed_fields(
    existing: Mapping[str, Any] | None, attributes: Mapping[str, Any], *, secret_given: bool
) -> list[str]:
    """Which settings a PUT changed (names only: never a value), for the event."""
    compared = (
        *("clientId", "enabled", "kinds", "redirectUris", "issuer", "endpoints", "scopes"),
        *("allowedDomains", "autoCreate"),
    )
    before = existing or {}
    changed = [name for name in compared if before.get(name) != attributes.get(name)]
    if secret_given:
        changed.append("clientSecret")
    return changed


def _known(provider: str) -> ProviderName:
    name = provider_name(provider)
    if name is None:
        raise NotFound(f"no provider {provider[:64]!r}; providers: {', '.join(PROVIDER_NAMES)}")
    return name


def _admin(caller: Caller) -> Principal:
    """The org's RootAdmin or ConfigAdmin (or a platform root), with a person's own token."""
    actor = caller.principal
    if actor.credential != "jwt":
        raise Forbidden("providers are configured with a person's own token")
    if not actor.is_user:
        raise Forbidden("needs a staff member's own token")
    require_role(actor, *PROVIDER_ADMIN_ROLES)
    return actor
