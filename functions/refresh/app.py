"""Refresh-token rotation for both principal kinds, and sign-out (contract §3)."""

from __future__ import annotations

from functools import cache

from appengine_core.edge.http import OK_BODY, PUBLIC, Access, HttpFunction, Ok
from appengine_core.identity.signin import AuthService, RefreshRequest, SignInEnvelope

# Sessions belong to people: an API key never signs anything out (contract §1).
PERSON = Access(credentials=("jwt",))
api = HttpFunction("refresh")
app = api.app


@cache
def auth_service() -> AuthService:
    return AuthService()


@api.post("/profile/user/refresh", PUBLIC, summary="Rotate a staff refresh token", tags=["sign-in"])
@api.post("/user/refresh", PUBLIC, summary="Rotate a staff refresh token (alias)", tags=["sign-in"])
def user_refresh(request: RefreshRequest) -> SignInEnvelope:
    return auth_service().refresh("user", api.context().orgid, request).envelope()


@api.post("/profile/customer/refresh", PUBLIC, summary="Rotate a customer refresh token", tags=["sign-in"])
@api.post("/customer/refresh", PUBLIC, summary="Rotate a customer refresh token (alias)", tags=["sign-in"])
def customer_refresh(request: RefreshRequest) -> SignInEnvelope:
    return auth_service().refresh("customer", api.context().orgid, request).envelope()


@api.post(
    "/profile/signout",
    PERSON,
    summary="Revoke the current session and its refresh tokens",
    tags=["sign-in"],
)
def sign_out() -> Ok:
    auth_service().sign_out(api.caller())
    return OK_BODY


lambda_handler = api.handler
