"""Sign-in and sign-up for staff Users and Customers (contract §3). Public routes; ``orgid`` required."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import Response

from appengine_core.edge.guard import header
from appengine_core.edge.http import PUBLIC, HttpFunction, created
from appengine_core.identity.directory import NewCustomer, NewUser
from appengine_core.identity.signin import AuthService, ClientInfo, Credentials, SignInEnvelope
from appengine_core.keys.app_tokens import AppCredentials, AppToken, AppTokenService

api = HttpFunction("signin")
app = api.app


@cache
def auth_service() -> AuthService:
    return AuthService()


@cache
def app_token_service() -> AppTokenService:
    return AppTokenService()


def client_info() -> ClientInfo:
    event = app.current_event
    return ClientInfo(
        user_agent=header(event, "user-agent"), source_ip=event.request_context.identity.source_ip
    )


@api.post("/profile/signin", PUBLIC, summary="Staff sign-in", tags=["sign-in"])
@api.post("/profile/user/signin", PUBLIC, summary="Staff sign-in (alias)", tags=["sign-in"])
@api.post("/user/signin", PUBLIC, summary="Staff sign-in (alias)", tags=["sign-in"])
def user_sign_in(credentials: Credentials) -> SignInEnvelope:
    return auth_service().sign_in("user", api.context().orgid, credentials, client_info()).envelope()


@api.post("/profile/customer/signin", PUBLIC, summary="Customer sign-in", tags=["sign-in"])
def customer_sign_in(credentials: Credentials) -> SignInEnvelope:
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


lambda_handler = api.handler
