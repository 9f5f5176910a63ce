"""Sign-in and sign-up for staff Users and Customers (contract §3). Public routes; ``orgid`` required."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, TypeVar
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, SecretStr, ValidationError

from appengine_core.edge.guard import ORGID_HEADER, header, require_orgid
from appengine_core.edge.http import PUBLIC, PUBLIC_NO_ORG, HttpFunction, created, validation_details
from appengine_core.identity.data import PrincipalKind
from appengine_core.identity.directory import NewCustomer, NewUser
from appengine_core.identity.passwordless import (
    MAX_EMAIL_LENGTH,
    MAX_TOKEN_LENGTH,
    CodeRequest,
    LinkOrigin,
    LinkRequest,
    PasswordlessService,
    RedeemRequest,
    Sent,
)
from appengine_core.identity.second_factor import (
    CodeSendRequest,
    CodeSent,
    SecondFactorService,
    SecondFactorVerification,
)
from appengine_core.identity.signin import (
    AuthService,
    ClientInfo,
    Credentials,
    SignInEnvelope,
    TwoFactorChallenge,
)
from appengine_core.infra.errors import ValidationFailed, invalid_field
from appengine_core.keys.app_tokens import AppCredentials, AppToken, AppTokenService

api = HttpFunction("signin")
app = api.app


@cache
def auth_service() -> AuthService:
    return AuthService()


@cache
def app_token_service() -> AppTokenService:
    return AppTokenService()


@cache
def passwordless_service() -> PasswordlessService:
    return PasswordlessService(auth=auth_service())


def client_info() -> ClientInfo:
    event = app.current_event
    return ClientInfo(
        user_agent=header(event, "user-agent"), source_ip=event.request_context.identity.source_ip
    )


@api.post("/profile/signin", PUBLIC, summary="Staff sign-in", tags=["sign-in"])
@api.post("/profile/user/signin", PUBLIC, summary="Staff sign-in (alias)", tags=["sign-in"])
@api.post("/user/signin", PUBLIC, summary="Staff sign-in (alias)", tags=["sign-in"])
def user_sign_in(credentials: Credentials) -> SignInEnvelope | TwoFactorChallenge:
    return auth_service().sign_in("user", api.context().orgid, credentials, client_info()).envelope()


@api.post("/profile/customer/signin", PUBLIC, summary="Customer sign-in", tags=["sign-in"])
def customer_sign_in(credentials: Credentials) -> SignInEnvelope | TwoFactorChallenge:
    return auth_service().sign_in("customer", api.context().orgid, credentials, client_info()).envelope()


@api.post(
    "/profile/customer/signup",
    PUBLIC,
    summary="Customer sign-up",
    tags=["sign-in"],
    status_code=201,
    answers=SignInEnvelope,
)
def customer_sign_up(new: NewCustomer) -> Response[Any]:
    return created(
        auth_service()
        .sign_up_customer(api.context().orgid, new, client_info())
        .envelope()
        .model_dump(mode="json")
    )


@api.post(
    "/profile/user/signup",
    PUBLIC,
    summary="Staff self sign-up (org setting allowUserSignup)",
    tags=["sign-in"],
    status_code=201,
    answers=SignInEnvelope,
)
def user_sign_up(new: NewUser) -> Response[Any]:
    return created(
        auth_service()
        .sign_up_user(api.context().orgid, new, client_info())
        .envelope()
        .model_dump(mode="json")
    )


@api.post(
    "/profile/app/key",
    PUBLIC,
    summary="App token from an API key's credentials (AppEngine's clients)",
    tags=["sign-in"],
    errors=(401, 429),
)
def app_token(credentials: AppCredentials) -> AppToken:
    return app_token_service().issue(api.context().orgid, credentials, client_info().source_ip)


# -- passwordless sign-in (contract §4): a link and a code by email ----------------------------------
EmailQuery = Annotated[str | None, Query(max_length=MAX_EMAIL_LENGTH)]
TypeQuery = Annotated[str | None, Query(alias="type", max_length=32, description="`code`: the code alone")]
# A secret: Powertools logs a route's arguments at DEBUG, where a SecretStr shows as '**********'.
TokenQuery = Annotated[SecretStr | None, Query(max_length=MAX_TOKEN_LENGTH)]
OrgidQuery = Annotated[
    str | None, Query(max_length=63, description="the link's orgid, when no orgid header is sent")
]
# Percent-encoded by most clients (`%40`): three characters per byte at most.
EmailPath = Annotated[str, Path(min_length=1, max_length=3 * MAX_EMAIL_LENGTH)]
SIGNIN_ANSWERS = (401, 429)
M = TypeVar("M", bound=BaseModel)


def link_origin() -> LinkOrigin:
    event = app.current_event
    return LinkOrigin(
        domain=event.request_context.domain_name, context_path=event.request_context.path, path=event.path
    )


def validated(model: type[M], **fields: Any) -> M:
    """A request model from query or path values (a body is validated by Powertools): 422 if invalid."""
    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as error:
        raise ValidationFailed(details=validation_details(error.errors())) from error


def link_orgid(query_orgid: str | None) -> str:
    """The org of a link opened in a browser, which sends no headers: the ``orgid`` header if sent,
    else the ``orgid`` the link carries in its query (400 ``orgid_required`` if neither)."""
    event = app.current_event
    if header(event, ORGID_HEADER) is not None or not query_orgid:
        return require_orgid(event)
    return require_orgid({"headers": {ORGID_HEADER: query_orgid}})


def required(token: SecretStr | None) -> str:
    if token is None or not token.get_secret_value():
        raise invalid_field("token", "Field required")
    return token.get_secret_value()


def ask(kind: PrincipalKind, request: LinkRequest, *, code_only: bool = False) -> Sent:
    return passwordless_service().request(
        kind,
        api.context().orgid,
        request,
        client_info(),
        link_origin(),
        code_only=code_only,
    )


@api.post(
    "/profile/magic-link",
    PUBLIC,
    summary="Customer: mail a sign-in link and code (always 200)",
    tags=["passwordless"],
    errors=(429,),
)
def customer_magic_link(request: LinkRequest) -> Sent:
    return ask("customer", request)


@api.get(
    "/profile/magic-link",
    PUBLIC,
    summary="Customer: mail a sign-in link and code (always 200)",
    tags=["passwordless"],
    errors=(429,),
)
def customer_magic_link_by_query(email: EmailQuery = None, kind_of: TypeQuery = None) -> Sent:
    return ask("customer", validated(LinkRequest, email=email, type=kind_of))


@api.post(
    "/profile/user/magic-link",
    PUBLIC,
    summary="Staff: mail a sign-in link and code (always 200)",
    tags=["passwordless"],
    errors=(429,),
)
def user_magic_link(request: LinkRequest) -> Sent:
    return ask("user", request)


@api.get(
    "/profile/user/magic-link",
    PUBLIC,
    summary="Staff: mail a sign-in link and code (always 200)",
    tags=["passwordless"],
    errors=(429,),
)
def user_magic_link_by_query(email: EmailQuery = None, kind_of: TypeQuery = None) -> Sent:
    return ask("user", validated(LinkRequest, email=email, type=kind_of))


@api.post(
    "/profile/code/<email>",
    PUBLIC,
    summary="Customer: mail a sign-in code (always 200)",
    tags=["passwordless"],
    errors=(429,),
)
def customer_code(email: EmailPath) -> Sent:
    return ask("customer", validated(LinkRequest, email=unquote(email)), code_only=True)


@api.post(
    "/profile/code/<email>/verify",
    PUBLIC,
    summary="Customer: sign in with the mailed code",
    tags=["passwordless"],
    errors=SIGNIN_ANSWERS,
)
def customer_code_verify(email: EmailPath, body: CodeRequest) -> SignInEnvelope | TwoFactorChallenge:
    request = validated(RedeemRequest, email=unquote(email), code=body.code.get_secret_value())
    return passwordless_service().redeem("customer", api.context().orgid, request, client_info()).envelope()


@api.get(
    "/profile/magic-link/redirect",
    PUBLIC_NO_ORG,
    summary="Customer: sign in with the mailed link (orgid from the header or the link)",
    tags=["passwordless"],
    errors=(400, *SIGNIN_ANSWERS),
)
def customer_link_opened(
    token: TokenQuery = None, orgid: OrgidQuery = None
) -> SignInEnvelope | TwoFactorChallenge:
    return (
        passwordless_service()
        .redeem_token("customer", link_orgid(orgid), required(token), client_info())
        .envelope()
    )


@api.post(
    "/profile/magic-link/redirect",
    PUBLIC,
    summary="Customer: sign in with the mailed link's token, or email and code",
    tags=["passwordless"],
    errors=SIGNIN_ANSWERS,
)
def customer_link_redeemed(request: RedeemRequest) -> SignInEnvelope | TwoFactorChallenge:
    return passwordless_service().redeem("customer", api.context().orgid, request, client_info()).envelope()


@api.get(
    "/profile/user/magic-link/redirect",
    PUBLIC_NO_ORG,
    summary="Staff: sign in with the mailed link (orgid from the header or the link)",
    tags=["passwordless"],
    errors=(400, *SIGNIN_ANSWERS),
)
def user_link_opened(
    token: TokenQuery = None, orgid: OrgidQuery = None
) -> SignInEnvelope | TwoFactorChallenge:
    return (
        passwordless_service()
        .redeem_token("user", link_orgid(orgid), required(token), client_info())
        .envelope()
    )


@api.post(
    "/profile/user/magic-link/redirect",
    PUBLIC,
    summary="Staff: sign in with the mailed link's token, or email and code",
    tags=["passwordless"],
    errors=SIGNIN_ANSWERS,
)
def user_link_redeemed(request: RedeemRequest) -> SignInEnvelope | TwoFactorChallenge:
    return passwordless_service().redeem("user", api.context().orgid, request, client_info()).envelope()


# -- the second factor of a sign-in (contract §4): the partial token is the credential --------------
@cache
def second_factor_service() -> SecondFactorService:
    return SecondFactorService()


@api.post(
    "/profile/security/2fa/verify",
    PUBLIC,
    summary="Complete a sign-in with its second factor (TOTP, emailed or recovery code)",
    tags=["two-factor"],
    errors=(401, 429),
)
@api.post(
    "/profile/security/challenge/verify",
    PUBLIC,
    summary="Complete a sign-in with its second factor (alias)",
    tags=["two-factor"],
    errors=(401, 429),
)
def verify_second_factor(request: SecondFactorVerification) -> SignInEnvelope:
    return auth_service().verify_second_factor(api.context().orgid, request, client_info()).envelope()


@api.post(
    "/profile/security/challenge/send",
    PUBLIC,
    summary="Mail a one-time code that completes the sign-in's second factor",
    tags=["two-factor"],
    errors=(401, 429),
)
def send_second_factor_code(request: CodeSendRequest) -> CodeSent:
    return second_factor_service().send_code(api.context().orgid, request, client_info().source_ip)


lambda_handler = api.handler
