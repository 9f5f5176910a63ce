"""Social sign-in and enterprise SSO (contract §4 "Social sign-in and enterprise SSO"): the org's
provider settings (its RootAdmin/ConfigAdmin, with a person's token), the caller's linked identities, and
the sign-in flow (public: the start, the provider's callback, the application's exchange)."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import SecretStr

from appengine_core.edge.guard import ORGID_HEADER, header, require_orgid
from appengine_core.edge.http import OK_BODY, PUBLIC, PUBLIC_NO_ORG, Access, HttpFunction, Ok
from appengine_core.identity.data import PrincipalKind
from appengine_core.identity.oauth_flow import (
    MAX_PROVIDER_CODE_LENGTH,
    MAX_REDIRECT_URI_LENGTH,
    MAX_STATE_LENGTH,
    ExchangeRequest,
    OAuthFlowService,
)
from appengine_core.identity.oauth_links import IdentityLinks, LinkedIdentity
from appengine_core.identity.oauth_providers import (
    PROVIDER_ADMIN_ROLES,
    PROVIDER_NAMES,
    OAuthProviderService,
    ProviderSettings,
    ProviderView,
)
from appengine_core.identity.passwordless import LinkOrigin
from appengine_core.identity.signin import ClientInfo, SignInEnvelope, TwoFactorChallenge
from appengine_core.infra.errors import NotFound, invalid_field
from appengine_core.infra.paging import Page

api = HttpFunction("oauth")
app = api.app
# Provider settings: the org's admins, with their own token (never an API key, app token or Customer).
PROVIDER_ADMIN = Access(kinds=("user",), credentials=("jwt",), roles=PROVIDER_ADMIN_ROLES)
# Linked identities are a person's own: Users and Customers, with their own token only.
OWN_IDENTITIES = Access(credentials=("jwt",))


@cache
def provider_service() -> OAuthProviderService:
    return OAuthProviderService()


@cache
def identity_links() -> IdentityLinks:
    return IdentityLinks()


# -- provider settings -----------------------------------------------------------------------------
@api.get(
    "/profile/oauth/providers",
    PROVIDER_ADMIN,
    summary="The org's sign-in providers (never their client secrets)",
    tags=["oauth"],
)
def list_providers() -> Page[ProviderView]:
    return provider_service().list(api.caller())


@api.route(
    "PUT",
    "/profile/oauth/providers/<provider>",
    PROVIDER_ADMIN,
    summary="Set a sign-in provider (google, microsoft, github, facebook, oidc) for this org",
    tags=["oauth"],
)
def put_provider(provider: str, settings: ProviderSettings) -> ProviderView:
    return provider_service().put(api.caller(), provider, settings)


@api.get(
    "/profile/oauth/providers/<provider>",
    PROVIDER_ADMIN,
    summary="A sign-in provider's settings (`clientSecretSet`, never the secret)",
    tags=["oauth"],
)
def get_provider(provider: str) -> ProviderView:
    return provider_service().get(api.caller(), provider)


@api.route(
    "DELETE",
    "/profile/oauth/providers/<provider>",
    PROVIDER_ADMIN,
    summary="Remove a sign-in provider from this org",
    tags=["oauth"],
)
def delete_provider(provider: str) -> Ok:
    provider_service().delete(api.caller(), provider)
    return OK_BODY


# -- linked identities -----------------------------------------------------------------------------
@api.get(
    "/profile/security/identities",
    OWN_IDENTITIES,
    summary="The caller's identities linked in this org (provider, subject, email, linkedAt)",
    tags=["oauth"],
)
def own_identities() -> Page[LinkedIdentity]:
    return identity_links().own(api.caller())


@api.route(
    "DELETE",
    "/profile/security/identities/<provider>",
    OWN_IDENTITIES,
    summary="Unlink the caller's identity of a provider (409: its only way to sign in)",
    tags=["oauth"],
)
def unlink_identity(provider: str) -> Ok:
    identity_links().unlink(api.caller(), provider)
    return OK_BODY


# -- the sign-in flow (public): start, the provider's callback, the application's exchange ---------------
@cache
def flow_service() -> OAuthFlowService:
    return OAuthFlowService()


ProviderPath = Annotated[str, Path(min_length=1, max_length=64, description=", ".join(PROVIDER_NAMES))]
KindQuery = Annotated[str | None, Query(max_length=16, description="`customer` (the default) or `user`")]
RedirectUriQuery = Annotated[
    str | None,
    Query(
        alias="redirectUri",
        max_length=MAX_REDIRECT_URI_LENGTH,
        description="where the browser returns (#code= or #error=): one of the provider's redirectUris",
    ),
]
OrgidQuery = Annotated[
    str | None, Query(max_length=63, description="the org, when no orgid header is sent (a browser)")
]
# Secrets: Powertools logs a route's arguments at DEBUG, where a SecretStr shows as '**********'.
StateQuery = Annotated[SecretStr | None, Query(max_length=MAX_STATE_LENGTH)]
CodeQuery = Annotated[SecretStr | None, Query(max_length=MAX_PROVIDER_CODE_LENGTH)]
ErrorQuery = Annotated[str | None, Query(max_length=256, description="the provider's error, if any")]
REDIRECT_ANSWER: dict[int, Any] = {
    302: {
        "description": "to the provider, or back to redirectUri with #code=<one-time code> or #error=<why>",
        "headers": {"Location": {"description": "where the browser goes", "schema": {"type": "string"}}},
        "content": {"text/plain": {"schema": {"type": "string", "maxLength": 0}}},
    }
}


def client_info() -> ClientInfo:
    event = app.current_event
    return ClientInfo(
        user_agent=header(event, "user-agent"), source_ip=event.request_context.identity.source_ip
    )


def known_provider(provider: str) -> str:
    if provider not in PROVIDER_NAMES:
        raise NotFound(f"no sign-in provider {provider[:32]!r}; providers: {', '.join(PROVIDER_NAMES)}")
    return provider


def flow_orgid(query_orgid: str | None) -> str:
    """A browser sends no headers: the ``orgid`` header if sent, else the query's (400 if neither)."""
    event = app.current_event
    if header(event, ORGID_HEADER) is not None or not query_orgid:
        return require_orgid(event)
    return require_orgid({"headers": {ORGID_HEADER: query_orgid}})


def redirect(location: str) -> Response[str]:
    return Response(
        status_code=302,
        content_type="text/plain",
        body="",
        headers={"Location": location, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


@api.get(
    "/profile/<provider>",
    PUBLIC_NO_ORG,
    summary="Start a sign-in with a provider (a browser navigation): 302 to the provider",
    tags=["oauth"],
    errors=(400, 404, 422),
    status_code=302,
    responses=REDIRECT_ANSWER,
)
def start_sign_in(
    provider: ProviderPath,
    kind: KindQuery = None,
    redirect_uri: RedirectUriQuery = None,
    orgid: OrgidQuery = None,
) -> Response[str]:
    orgid = flow_orgid(orgid)
    if kind not in (None, "customer", "user"):
        raise invalid_field("kind", "must be customer or user")
    if not redirect_uri:
        raise invalid_field("redirectUri", "Field required")
    principal_kind: PrincipalKind = "user" if kind == "user" else "customer"
    event = app.current_event
    origin = LinkOrigin(
        domain=event.request_context.domain_name, context_path=event.request_context.path, path=event.path
    )
    location = flow_service().start(orgid, known_provider(provider), principal_kind, redirect_uri, origin)
    return redirect(location)


@api.get(
    "/profile/<provider>/redirect",
    PUBLIC_NO_ORG,
    summary="The provider's callback: 302 to redirectUri#code=... or #error=... (401 invalid_state)",
    tags=["oauth"],
    errors=(400, 401, 404),
    status_code=302,
    responses=REDIRECT_ANSWER,
)
def sign_in_callback(
    provider: ProviderPath, code: CodeQuery = None, state: StateQuery = None, error: ErrorQuery = None
) -> Response[str]:
    name = known_provider(provider)
    event = app.current_event
    header_orgid = require_orgid(event) if header(event, ORGID_HEADER) is not None else None
    location = flow_service().callback(
        name,
        state=state.get_secret_value() if state else None,
        code=code.get_secret_value() if code else None,
        error=error,
        header_orgid=header_orgid,
    )
    return redirect(location)


@api.post(
    "/profile/oauth/exchange",
    PUBLIC,
    summary="Sign in with the one-time code of a provider's sign-in (the sign-in envelope or the 2FA answer)",
    tags=["oauth"],
    errors=(401, 429),
)
def exchange_sign_in_code(request: ExchangeRequest) -> SignInEnvelope | TwoFactorChallenge:
    return flow_service().exchange(api.context().orgid, request, client_info()).envelope()


lambda_handler = api.handler
