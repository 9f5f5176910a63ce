"""Who am I, customer self-service and staff user management (contract §4)."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from appengine_core.edge.http import CUSTOMER, SIGNED_IN, Access, HttpFunction, created
from appengine_core.edge.metering import UsageMeter
from appengine_core.identity.directory import CustomerProfile, NewUser
from appengine_core.identity.profiles import (
    USER_ADMIN_ROLES,
    USER_LIST_ROLES,
    ProfileService,
    UserUpdate,
    WhoAmI,
)
from appengine_core.infra.envelope import Record
from appengine_core.infra.paging import Page, PageRequest

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
def whoami() -> WhoAmI:
    return profile_service().whoami(api.caller())


@api.get("/profile/customer/profile", CUSTOMER, summary="The customer's own profile", tags=["profile"])
def customer_profile() -> Record:
    return profile_service().customer_profile(api.caller())


@api.post("/profile/customer/update", CUSTOMER, summary="Update the customer's own profile", tags=["profile"])
def update_customer_profile(changes: CustomerProfile) -> Record:
    return profile_service().update_customer_profile(api.caller(), changes)


@api.post("/user/create", USER_ADMIN, summary="Create a staff user in this org", tags=["users"])
def create_user(new: NewUser) -> Response[Any]:
    return created(profile_service().create_user(api.caller(), new).model_dump(mode="json"))


@api.get("/user/org/<orgid>", USER_LISTING, summary="The org's staff users, paged", tags=["users"])
def list_org_users(orgid: str) -> Page[Record]:
    page = PageRequest.from_query(app.current_event.query_string_parameters or {})
    return profile_service().list_org_users(api.caller(), orgid, page)


@api.post(
    "/user/update/<user_id>",
    USER_ADMIN,
    summary="Change a user's roles, permissions, orgs or disabled",
    tags=["users"],
)
def update_user(user_id: str, update: UserUpdate) -> Record:
    return profile_service().update_user(api.caller(), user_id, update)


@api.get(
    "/profile/usage",
    Access(kinds=("user",), roles=("RootAdmin",)),
    summary="Requests per day for this org",
    tags=["profile"],
)
def usage(days: Annotated[int, Query(ge=1, le=90)] = 30) -> Page[dict[str, Any]]:
    rows = usage_meter().daily(api.caller().orgid, days)
    return Page[dict[str, Any]](data=rows, total=len(rows), page=1, pageSize=days, hasNext=False, next=None)


lambda_handler = api.handler
