"""The handler-side guard: functions trust only the authorizer's context plus the ``orgid`` header.

Defence in depth: the authorizer already checked membership; this re-checks that the org the
authorizer approved is the one in the header, and decides the steps the gateway cannot answer itself
(400 ``orgid_required``, principal kind, roles) in the contract's order.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from appengine_core.identity.principal import Principal
from appengine_core.infra.errors import Forbidden, OrgidRequired, RateLimited, Unauthorized
from appengine_core.infra.tenancy import is_valid_orgid

ORGID_HEADER = "orgid"


def header(event: APIGatewayProxyEvent | dict[str, Any], name: str) -> str | None:
    """A request header, case-insensitively (API Gateway keeps the client's casing)."""
    headers = (event.headers if isinstance(event, APIGatewayProxyEvent) else event.get("headers")) or {}
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return str(value) if value is not None else None
    return None


def require_orgid(event: APIGatewayProxyEvent | dict[str, Any]) -> str:
    """The tenant of a public call: 400 when the header is missing or not an orgid."""
    orgid = (header(event, ORGID_HEADER) or "").strip()
    if not orgid:
        raise OrgidRequired()
    if not is_valid_orgid(orgid):
        raise OrgidRequired("the orgid header must match [a-z0-9][a-z0-9-]{1,62}")
    return orgid


def require_principal(
    event: APIGatewayProxyEvent, *, kinds: tuple[str, ...] = ("user", "customer")
) -> tuple[Principal, str]:
    """(principal, orgid) of an authenticated call, checked in the contract's order."""
    context = event.request_context.authorizer.get_context()
    if not context or "principalId" not in context or "kind" not in context:
        # A protected route reached without the authorizer: a deployment defect, never an open door.
        raise Unauthorized()
    principal = Principal.from_context(context)
    orgid = require_orgid(event)
    if principal.retry_after:
        raise RateLimited(principal.retry_after, "API key rate limit exceeded")
    if principal.orgid != orgid:
        raise Forbidden("the credential is not valid for this org")
    if principal.kind not in kinds:
        raise Forbidden(f"this route is not for {principal.kind} credentials")
    return principal, orgid


def require_scope(principal: Principal, scope: str) -> None:
    """Key scopes, checked once per request for every route (contract §1): ``read`` keys call reading
    routes only; everything else needs ``write``. Person tokens carry no scopes."""
    if principal.scopes is not None and scope not in principal.scopes:
        raise Forbidden(f"this API key lacks the {scope} scope")
