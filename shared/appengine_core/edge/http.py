"""The HTTP edge shared by every function: resolver factory, error mapping, envelopes, request ids.

This is the single place where domain errors become HTTP responses (contract §1) and where every
response gets its ``x-request-id``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from appengine_core.edge.guard import require_orgid, require_principal, require_scope
from appengine_core.edge.metering import UsageMeter
from appengine_core.identity.principal import Caller, Principal, require_permission, require_role
from appengine_core.infra.errors import DomainError, Forbidden, RateLimited, Unauthorized, http_status_of

REQUEST_ID_HEADER = "x-request-id"
LambdaHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def error_body(
    status: int, code: str, message: str, request_id: str, details: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """The contract's error body. ``code`` and ``reason`` repeat ``error`` for AppEngine's clients."""
    body: dict[str, Any] = {
        "statusCode": status,
        "error": code,
        "code": code,
        "reason": code,
        "message": message,
        "requestId": request_id,
    }
    if details is not None:
        body["details"] = list(details)
    return body


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":"), default=str),
        headers=dict(headers or {}),
    )


def created(body: Any) -> Response[Any]:
    return json_response(201, body)


OK_BODY = {"ok": True}


def validation_details(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    details = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part not in ("body",)]
        details.append({"field": ".".join(location) or "body", "problem": str(error.get("msg", "invalid"))})
    return details


def domain_error_response(error: DomainError, request_id: str) -> Response[Any]:
    status = http_status_of(error)
    headers = {"Retry-After": str(error.retry_after_seconds)} if isinstance(error, RateLimited) else {}
    return json_response(
        status, error_body(status, error.code, error.message, request_id, error.details), headers
    )


def _request_id(app: APIGatewayRestResolver) -> str:
    try:
        return str(app.current_event.request_context.request_id or "")
    except (AttributeError, KeyError, TypeError):
        return ""


def create_resolver(logger: Logger) -> APIGatewayRestResolver:
    """A REST-API resolver with request validation and the contract's error mapping installed."""
    app = APIGatewayRestResolver(enable_validation=True)

    def internal_error() -> Response[Any]:
        # The stack trace goes to the log under the request id, never to the caller.
        logger.exception("unhandled error")
        body = error_body(500, "internal_error", "unexpected error", _request_id(app))
        return json_response(500, body)

    @app.exception_handler(DomainError)
    def _domain_error(error: DomainError) -> Response[Any]:
        if http_status_of(error) >= 500:
            logger.error("request failed", extra={"code": error.code})
        return domain_error_response(error, _request_id(app))

    @app.exception_handler(RequestValidationError)
    def _invalid_request(error: RequestValidationError) -> Response[Any]:
        errors = list(error.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            body = error_body(400, "invalid_json", "the request body is not valid JSON", _request_id(app))
            return json_response(400, body)
        details = validation_details(errors)
        body = error_body(422, "validation_error", "the request is invalid", _request_id(app), details)
        return json_response(422, body)

    @app.exception_handler([UnicodeDecodeError, RequestUnsupportedContentType])
    def _not_json(_: Exception) -> Response[Any]:
        # Bytes that are not UTF-8, or a body sent as something other than JSON: not JSON at all.
        message = "the request body must be JSON (content-type: application/json)"
        return json_response(400, error_body(400, "invalid_json", message, _request_id(app)))

    @app.exception_handler([RecursionError, ValueError])
    def _beyond_the_json_parser(error: Exception) -> Response[Any]:
        # Python's JSON parser gives up, before any model sees the body, on nesting hundreds of levels
        # deep and on integers of thousands of digits. DynamoDB takes neither (32 levels, 38 digits), so
        # such a body is invalid input (422). Any other ValueError is a defect: 500 as everywhere else.
        if isinstance(error, RecursionError):
            problem = "nested too deeply (DynamoDB stops at 32 levels)"
        elif "integer string conversion" in str(error):
            problem = "a number of more than 38 digits"
        else:
            return internal_error()
        details = [{"field": "body", "problem": problem}]
        body = error_body(422, "validation_error", "the request is invalid", _request_id(app), details)
        return json_response(422, body)

    @app.not_found
    def _no_route(_: NotFoundError) -> Response[Any]:
        return json_response(404, error_body(404, "not_found", "no such route", _request_id(app)))

    @app.exception_handler(Exception)
    def _unexpected(_: Exception) -> Response[Any]:
        return internal_error()

    return app


@dataclass(frozen=True)
class Access:
    """Who may call a route, checked before the body is validated (contract §1 order: 401, 400
    ``orgid_required``, 403 kind, 403 role/permission, then 422)."""

    public: bool = False
    orgid_required: bool = True
    kinds: tuple[str, ...] = ("user", "customer")
    credentials: tuple[str, ...] = ("jwt", "apikey")
    roles: tuple[str, ...] = ()
    permission: str | None = None
    # roles OR this permission (e.g. API keys: ConfigAdmin/RootAdmin, or anyone with ``create``)
    or_permission: str | None = None
    # A reading route (contract §1): a ``read``-scoped key may call it. None: every GET reads, nothing
    # else does; the POST routes that only read (finds, pricing, shipping options) say ``reads=True``.
    reads: bool | None = None


PUBLIC = Access(public=True)
PUBLIC_NO_ORG = Access(public=True, orgid_required=False)
SIGNED_IN = Access()
STAFF = Access(kinds=("user",))
CUSTOMER = Access(kinds=("customer",))


@dataclass(frozen=True)
class RequestContext:
    """The org of a call and, on protected routes, its verified principal."""

    orgid: str
    principal: Principal | None


class HttpFunction:
    """One HTTP Lambda: a Powertools resolver whose routes each declare their ``Access``.

    The access check runs before Powertools validates the body, so a caller without the right to a
    route learns nothing about its body schema and statuses come in the contract's order.
    """

    def __init__(self, service: str) -> None:
        self.logger = Logger(service=service)
        self.metrics = Metrics(namespace="AppEngine", service=service)
        self.app = create_resolver(self.logger)
        self._access: dict[tuple[str, str], Access] = {}
        self._usage_meter: UsageMeter | None = None

    def route(
        self, method: str, path: str, access: Access, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        # Powertools writes path parameters as <name>; API Gateway's resource (and the template) as {name}.
        resource = re.sub(r"<(\w+)>", r"{\1}", path)
        if access.reads is None:
            access = replace(access, reads=method.upper() == "GET")
        self._access[(method.upper(), resource)] = access
        return self.app.route(path, method.upper(), **kwargs)

    def get(
        self, path: str, access: Access, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.route("GET", path, access, **kwargs)

    def post(
        self, path: str, access: Access, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.route("POST", path, access, **kwargs)

    def _meter(self) -> UsageMeter:
        if self._usage_meter is None:
            self._usage_meter = UsageMeter()
        return self._usage_meter

    def context(self) -> RequestContext:
        caller = self.app.context.get("caller")
        if not isinstance(caller, RequestContext):
            raise Unauthorized()
        return caller

    def caller(self) -> Caller:
        """The verified caller of a protected route, as services take it."""
        principal, orgid = self.principal()
        return Caller(principal=principal, orgid=orgid)

    def principal(self) -> tuple[Principal, str]:
        context = self.context()
        if context.principal is None:
            raise Unauthorized()
        return context.principal, context.orgid

    def _check_access(self, event: dict[str, Any]) -> RequestContext | None:
        access = self._access.get((str(event.get("httpMethod", "")).upper(), str(event.get("resource", ""))))
        if access is None:
            return None  # no such route: the resolver answers 404
        proxy = APIGatewayProxyEvent(event)
        if access.public:
            orgid = require_orgid(proxy) if access.orgid_required else ""
            if orgid:
                self._meter().count_request(orgid)
            return RequestContext(orgid=orgid, principal=None)
        principal, orgid = require_principal(proxy, kinds=access.kinds)
        if principal.credential not in access.credentials:
            raise Forbidden(f"this route does not take {principal.credential} credentials")
        require_scope(principal, "read" if access.reads else "write")
        holds_alternative = access.or_permission is not None and principal.has_permission(
            access.or_permission
        )
        if access.roles and not holds_alternative:
            require_role(principal, *access.roles)
        if access.permission:
            require_permission(principal, access.permission)
        self.logger.append_keys(orgid=orgid, principal=principal.principal_id, kind=principal.kind)
        self._meter().count_request(orgid)
        return RequestContext(orgid=orgid, principal=principal)

    @property
    def handler(self) -> LambdaHandler:
        def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
            request_id = (event.get("requestContext") or {}).get("requestId") or ""
            try:
                caller = self._check_access(event)
            except DomainError as refusal:
                response = domain_error_response(refusal, request_id)
                result = ResponseBuilder(response).build(APIGatewayProxyEvent(event))  # type: ignore[arg-type]
            else:
                if caller is not None:
                    self.app.append_context(caller=caller)  # type: ignore[no-untyped-call]
                result = self.app.resolve(_as_json_request(event), context)
            return _with_request_id(result, request_id)

        return http_entrypoint_for(handle, self.logger, self.metrics)


def _as_json_request(event: dict[str, Any]) -> dict[str, Any]:
    """Every body this API takes is JSON: read it as JSON whatever content type the client declared
    (``curl -d`` says form-urlencoded), so a body that is not JSON is 400 ``invalid_json``, never a
    parser error for a format we do not speak."""
    if not event.get("body"):
        return event
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    multi = {k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "content-type"}
    return event | {
        "headers": headers | {"content-type": "application/json"},
        "multiValueHeaders": multi | {"content-type": ["application/json"]},
    }


def _with_request_id(result: dict[str, Any], request_id: str) -> dict[str, Any]:
    if "multiValueHeaders" in result:
        result["multiValueHeaders"][REQUEST_ID_HEADER] = [request_id]
    else:
        result.setdefault("headers", {})[REQUEST_ID_HEADER] = request_id
    return result


def http_entrypoint_for(handle: LambdaHandler, logger: Logger, metrics: Metrics) -> LambdaHandler:
    with_logging = logger.inject_lambda_context(
        handle, correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
    )
    instrumented: LambdaHandler = metrics.log_metrics(with_logging, raise_on_empty_metrics=False)
    return instrumented
