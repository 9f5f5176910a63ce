"""Who am I, customer self-service, staff user management, customer administration, the unlock of
emails locked by the brute-force protection, and sessions and devices (contract §4)."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from appengine_core.edge.http import CUSTOMER, OK_BODY, SIGNED_IN, Access, HttpFunction, Ok, created
from appengine_core.edge.metering import UsageMeter
from appengine_core.identity.audit import (
    AUDIT_READER_ROLES,
    AuditedEventType,
    AuditEvent,
    AuditQuery,
    AuditService,
)
from appengine_core.identity.devices import SessionService, SessionView
from appengine_core.identity.directory import CustomerProfile, NewUser
from appengine_core.identity.profiles import (
    USER_ADMIN_ROLES,
    USER_LIST_ROLES,
    CustomerUpdate,
    ProfileService,
    UnlockRequest,
    UserUpdate,
    WhoAmI,
)
from appengine_core.identity.second_factor import (
    DisableRequest,
    RecoveryCodes,
    SecondFactorService,
    TotpCode,
    TwoFactorDisabled,
    TwoFactorSetup,
)
from appengine_core.infra.envelope import Record
from appengine_core.infra.paging import Page, PageRequest

api = HttpFunction("profile")
app = api.app
# Managing users takes a person's token: an API key never administers (contract §1).
USER_ADMIN = Access(kinds=("user",), credentials=("jwt",), roles=USER_ADMIN_ROLES)
USER_LISTING = Access(kinds=("user",), credentials=("jwt",), roles=USER_LIST_ROLES, permission="read")
CUSTOMER_LISTING = Access(kinds=("user",), permission="read")
# Sessions are a person's: its own with its own token; the org's admins, with theirs (never a key).
OWN_SESSIONS = Access(credentials=("jwt",))
SESSION_ADMIN = Access(kinds=("user",), credentials=("jwt",), roles=USER_ADMIN_ROLES)
# A person's second factor: Users and Customers alike, with their own token only (contract §1, §4).
OWN_SECOND_FACTOR = Access(credentials=("jwt",))
# The org's security events: its RootAdmin (or a platform root), with a person's token (issue 15).
AUDIT_READER = Access(kinds=("user",), credentials=("jwt",), roles=AUDIT_READER_ROLES)


@cache
def profile_service() -> ProfileService:
    return ProfileService()


@cache
def session_service() -> SessionService:
    return SessionService()


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


@api.post(
    "/user/create",
    USER_ADMIN,
    summary="Create a staff user in this org",
    tags=["users"],
    status_code=201,
    answers=Record,
)
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


@api.post(
    "/user/unlock",
    USER_ADMIN,
    summary="Clear the failed sign-ins and the lock of a staff email",
    tags=["users"],
)
def unlock_user(request: UnlockRequest) -> Ok:
    profile_service().unlock(api.caller(), "user", request)
    return OK_BODY


@api.post(
    "/customer/unlock",
    USER_ADMIN,
    summary="Clear the failed sign-ins and the lock of a customer email",
    tags=["customers"],
)
def unlock_customer(request: UnlockRequest) -> Ok:
    profile_service().unlock(api.caller(), "customer", request)
    return OK_BODY


@api.get("/customer/list", CUSTOMER_LISTING, summary="The org's customers, paged", tags=["customers"])
def list_customers(email: Annotated[str | None, Query(max_length=320)] = None) -> Page[Record]:
    page = PageRequest.from_query(app.current_event.query_string_parameters or {})
    return profile_service().list_customers(api.caller(), page, email)


@api.post(
    "/customer/update/<customer_id>",
    USER_ADMIN,
    summary="Disable a customer (or enable it again)",
    tags=["customers"],
)
def update_customer(customer_id: str, update: CustomerUpdate) -> Record:
    return profile_service().update_customer(api.caller(), customer_id, update)


@api.get(
    "/profile/usage",
    Access(kinds=("user",), roles=("RootAdmin",)),
    summary="Requests per day for this org",
    tags=["profile"],
)
def usage(days: Annotated[int, Query(ge=1, le=90)] = 30) -> Page[dict[str, Any]]:
    rows = usage_meter().daily(api.caller().orgid, days)
    return Page[dict[str, Any]](data=rows, total=len(rows), page=1, pageSize=days, hasNext=False, next=None)


# -- sessions and devices (§4) -----------------------------------------------------------------------
def _page() -> PageRequest:
    return PageRequest.from_query(app.current_event.query_string_parameters or {})


@api.get(
    "/profile/security/sessions",
    OWN_SESSIONS,
    summary="The caller's active sessions (current: the one of this call)",
    tags=["sessions"],
)
def own_sessions() -> Page[SessionView]:
    return session_service().own_sessions(api.caller(), _page())


@api.route(
    "DELETE",
    "/profile/security/sessions/<session_id>",
    OWN_SESSIONS,
    summary="Revoke one of the caller's sessions",
    tags=["sessions"],
)
def revoke_own_session(session_id: str) -> Ok:
    session_service().revoke_own(api.caller(), session_id)
    return OK_BODY


@api.post(
    "/profile/security/sessions/revoke-others",
    OWN_SESSIONS,
    summary="Revoke every session of the caller but the one of this call",
    tags=["sessions"],
)
def revoke_other_sessions() -> Ok:
    session_service().revoke_others(api.caller())
    return OK_BODY


@api.get("/user/<user_id>/sessions", SESSION_ADMIN, summary="A user's active sessions", tags=["sessions"])
def user_sessions(user_id: str) -> Page[SessionView]:
    return session_service().user_sessions(api.caller(), user_id, _page())


@api.route(
    "DELETE",
    "/user/<user_id>/sessions/<session_id>",
    SESSION_ADMIN,
    summary="Revoke a session of a user of this org",
    tags=["sessions"],
)
def revoke_user_session(user_id: str, session_id: str) -> Ok:
    session_service().revoke_user_session(api.caller(), user_id, session_id)
    return OK_BODY


@api.get(
    "/customer/<customer_id>/sessions",
    SESSION_ADMIN,
    summary="A customer's active sessions",
    tags=["sessions"],
)
def customer_sessions(customer_id: str) -> Page[SessionView]:
    return session_service().customer_sessions(api.caller(), customer_id, _page())


@api.route(
    "DELETE",
    "/customer/<customer_id>/sessions/<session_id>",
    SESSION_ADMIN,
    summary="Revoke a session of a customer of this org",
    tags=["sessions"],
)
def revoke_customer_session(customer_id: str, session_id: str) -> Ok:
    session_service().revoke_customer_session(api.caller(), customer_id, session_id)
    return OK_BODY


# -- security audit (issue 15) -------------------------------------------------------------------------
@cache
def audit_service() -> AuditService:
    return AuditService()


@api.get(
    "/profile/security/audit",
    AUDIT_READER,
    summary="The org's security events, newest first, paged (`type`, `principal` filter)",
    tags=["security"],
)
def security_audit(
    type: Annotated[AuditedEventType | None, Query()] = None,
    principal: Annotated[str | None, Query(max_length=256)] = None,
) -> Page[AuditEvent]:
    return audit_service().events(api.caller(), _page(), AuditQuery(type=type, principal=principal))


# -- second factor (§4) ----------------------------------------------------------------------------
@cache
def second_factor_service() -> SecondFactorService:
    return SecondFactorService()


def _source_ip() -> str | None:
    return app.current_event.request_context.identity.source_ip


@api.post(
    "/profile/security/2fa/setup",
    OWN_SECOND_FACTOR,
    summary="A new TOTP secret (shown once; pending until enabled)",
    tags=["two-factor"],
)
def second_factor_setup() -> TwoFactorSetup:
    return second_factor_service().setup(api.caller())


@api.post(
    "/profile/security/2fa/enable",
    OWN_SECOND_FACTOR,
    summary="Turn 2FA on with a code of the pending secret; the recovery codes, shown once",
    tags=["two-factor"],
)
def second_factor_enable(request: TotpCode) -> RecoveryCodes:
    return second_factor_service().enable(api.caller(), request)


@api.post(
    "/profile/security/2fa/recovery-codes",
    OWN_SECOND_FACTOR,
    summary="A new set of recovery codes (the old set stops working)",
    tags=["two-factor"],
)
def second_factor_recovery_codes(request: TotpCode) -> RecoveryCodes:
    return second_factor_service().regenerate_recovery_codes(api.caller(), request, _source_ip())


@api.post(
    "/profile/security/2fa/disable",
    OWN_SECOND_FACTOR,
    summary="Turn 2FA off with a code of the authenticator or the password",
    tags=["two-factor"],
)
def second_factor_disable(request: DisableRequest) -> TwoFactorDisabled:
    return second_factor_service().disable(api.caller(), request, _source_ip())


lambda_handler = api.handler
