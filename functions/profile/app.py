"""Who am I, customer self-service and staff user management (contract §4)."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from appengine_core.edge.http import CUSTOMER, SIGNED_IN, Access, HttpFunction, created
from appengine_core.edge.metering import UsageMeter
from appengine_core.identity.directory import CustomerProfile, NewUser
from appengine_core.identity.profiles import USER_ADMIN_ROLES, USER_LIST_ROLES, ProfileService, UserUpdate
from appengine_core.infra.paging import PageRequest, list_envelope

api = HttpFunction("profile")
app = api.app
# Managing users takes a person's token: an API key never administers (contract §1).
USER_ADMIN = Access(kinds=("user",), credentials=("jwt",), roles=USER_ADMIN_ROLES)
USER_LISTING = Access(kinds=("user",), credentials=("jwt",), roles=USER_LIST_ROLES, permission="read")


@cache
def profile_service() -> ProfileService:
    return ProfileService()


@cache
def usage_meter() -> UsageMeter:
    return UsageMeter()


@api.get("/profile/whoami", SIGNED_IN, summary="The caller and the org of this call", tags=["profile"])
def whoami() -> dict[str, Any]:
    principal, orgid = api.principal()
    return profile_service().whoami(principal, orgid)


@api.get("/profile/customer/profile", CUSTOMER, summary="The customer's own profile", tags=["profile"])
def customer_profile() -> dict[str, Any]:
    principal, _ = api.principal()
    return profile_service().customer_profile(principal).model_dump()


@api.post("/profile/customer/update", CUSTOMER, summary="Update the customer's own profile", tags=["profile"])
def update_customer_profile(changes: CustomerProfile) -> dict[str, Any]:
    principal, _ = api.principal()
    return profile_service().update_customer_profile(principal, changes).model_dump()


@api.post("/user/create", USER_ADMIN, summary="Create a staff user in this org", tags=["users"])
def create_user(new: NewUser) -> Response[Any]:
    principal, orgid = api.principal()
    return created(profile_service().create_user(principal, orgid, new).model_dump())


@api.get("/user/org/<orgid>", USER_LISTING, summary="The org's staff users, paged", tags=["users"])
def list_org_users(orgid: str) -> dict[str, Any]:
    principal, header_orgid = api.principal()
    page = PageRequest.from_query(app.current_event.query_string_parameters or {})
    return profile_service().list_org_users(principal, header_orgid, orgid, page)


@api.post(
    "/user/update/<user_id>",
    USER_ADMIN,
    summary="Change a user's roles, permissions, orgs or disabled",
    tags=["users"],
)
def update_user(user_id: str, update: UserUpdate) -> dict[str, Any]:
    principal, orgid = api.principal()
    return profile_service().update_user(principal, orgid, user_id, update).model_dump()


@api.get(
    "/profile/usage",
    Access(kinds=("user",), roles=("RootAdmin",)),
    summary="Requests per day for this org",
    tags=["profile"],
)
def usage(days: Annotated[int, Query(ge=1, le=90)] = 30) -> dict[str, Any]:
    _, orgid = api.principal()
    rows = usage_meter().daily(orgid, days)
    return list_envelope(rows, page=1, page_size=days, has_next=False, next_cursor=None, total=len(rows))


lambda_handler = api.handler
