"""The HTTP edge shared by every function: resolver factory, error mapping, envelopes, request ids.

This is the single place where domain errors become HTTP responses (contract §1) and where every
response gets its ``x-request-id``.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast, get_origin

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse, OpenAPIResponseHeader
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, Field

from appengine_core.edge.guard import ORGID_HEADER, require_orgid, require_principal, require_scope
from appengine_core.edge.metering import UsageMeter
from appengine_core.identity.principal import Caller, Principal, require_permission, require_role
from appengine_core.infra import aws
from appengine_core.infra.errors import (
    DomainError,
    Forbidden,
    ServiceUnavailable,
    Unauthorized,
    http_status_of,
    invalid_field,
)
from appengine_core.infra.events import calling_application
from appengine_core.infra.store import TransactionCollided
from appengine_core.infra.tenancy import ORGID_PATTERN

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.models import OpenAPI, SecurityScheme

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


class ErrorDetail(BaseModel):
    """One reason a request is invalid."""

    field: str = Field(description="the field, dotted (`data.price`), or `body`")
    problem: str


class ErrorBody(BaseModel):
    """The contract's error body (§1); ``code`` and ``reason`` repeat ``error``."""

    statusCode: int  # noqa: N815 (the contract's field names)
    error: str = Field(description="the machine word: unauthorized, forbidden, not_found, ...")
    code: str
    reason: str
    message: str = Field(description="human readable")
    requestId: str  # noqa: N815


class ValidationErrorBody(ErrorBody):
    """The error body of a 422: what is invalid, field by field."""

    details: list[ErrorDetail]


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":"), default=str),
        headers=dict(headers or {}),
    )


def created(body: Any) -> Response[Any]:
    return json_response(201, body)


class Ok(BaseModel):
    """The answer of an action with no object to show (delete, revoke, sign-out, unlock): contract §2."""

    ok: bool = True


OK_BODY = Ok()


def validation_details(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    details = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part not in ("body",)]
        details.append({"field": ".".join(location) or "body", "problem": str(error.get("msg", "invalid"))})
    return details


def domain_error_response(error: DomainError, request_id: str) -> Response[Any]:
    status = http_status_of(error)
    retry_after = getattr(error, "retry_after_seconds", None)
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    return json_response(
        status, error_body(status, error.code, error.message, request_id, error.details), headers
    )


def _request_id(app: APIGatewayRestResolver) -> str:
    try:
        return str(app.current_event.request_context.request_id or "")
    except (AttributeError, KeyError, TypeError):
        return ""


def security_schemes() -> dict[str, SecurityScheme]:
    """The credentials of contract §1, as the OpenAPI document names them. Built when a document is
    asked for: Powertools' OpenAPI models cost a cold start about half of ``import boto3`` again, and
    no request needs them (validation uses the routes' own models)."""
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, HTTPBearer

    return {
        "bearerAuth": HTTPBearer(
            bearerFormat="JWT",
            description="A User's or Customer's access token, or an app token (`Bearer ` optional)",
        ),
        "apiKey": APIKey(
            name="x-api-key",
            description="An API key: acts as the User it belongs to, within the key's scopes",
            **{"in": APIKeyIn.header},
        ),
        "clientAuthorization": APIKey(
            name="x-client-authorization",
            description="A person's access token as AppEngine's clients send it (`Authorization` may "
            "then hold the calling application's token)",
            **{"in": APIKeyIn.header},
        ),
    }


ORGID_PARAMETER: dict[str, Any] = {
    "name": ORGID_HEADER,
    "in": "header",
    "required": True,
    "description": "The tenant the call acts on",
    "schema": {"type": "string", "pattern": ORGID_PATTERN.pattern},
}
# Powertools' own 422 body, which this API never answers with (ours is ValidationErrorBody).
_POWERTOOLS_ERROR_SCHEMA = "#/components/schemas/HTTPValidationError"


class DocumentedResolver(APIGatewayRestResolver):
    """A REST-API resolver whose OpenAPI document also states the ``orgid`` header of the operations
    that need it: the edge reads the header itself, so no handler declares it as a parameter."""

    def __init__(self) -> None:
        super().__init__(enable_validation=True)
        self.orgid_operations: set[tuple[str, str]] = set()  # (method, OpenAPI path)

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        # Powertools keeps the request on the router *class*. Lambda runs one request per process, but
        # the local stack runs many containers' copies of a handler in one process, concurrently: the
        # request is also kept on this resolver instance, which serves one request at a time, and wins.
        self.current_event = cast(APIGatewayProxyEvent, self._to_proxy_event(dict(event)))
        self.lambda_context = context
        return super().resolve(event, context)

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> OpenAPI:
        from aws_lambda_powertools.event_handler.openapi.models import Parameter

        kwargs["security_schemes"] = kwargs.get("security_schemes") or security_schemes()
        document = super().get_openapi_schema(*args, **kwargs)
        orgid = Parameter.model_validate(ORGID_PARAMETER)
        for path, item in (document.paths or {}).items():
            for method in ("get", "put", "post", "delete", "patch"):
                operation = getattr(item, method, None)
                if operation is None:
                    continue
                if (method.upper(), path) in self.orgid_operations:
                    operation.parameters = [orgid, *(operation.parameters or [])]
                responses = operation.responses or {}
                if _POWERTOOLS_ERROR_SCHEMA in json.dumps(responses.get(422, {}), default=str):
                    del responses[422]  # Powertools' default on a route that validates nothing
        if document.components and document.components.schemas:
            _drop_unused_schemas(document)
        return document


def _drop_unused_schemas(document: OpenAPI) -> None:
    """Powertools always adds its own validation error schemas; keep only the schemas referenced."""
    schemas = document.components.schemas if document.components else None
    while schemas:
        text = document.model_dump_json(by_alias=True, exclude_none=True)
        unused = [name for name in schemas if f'"#/components/schemas/{name}"' not in text]
        if not unused:
            return
        for name in unused:
            del schemas[name]


def create_resolver(logger: Logger) -> DocumentedResolver:
    """A REST-API resolver with request validation and the contract's error mapping installed."""
    app = DocumentedResolver()

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
        elif isinstance(error, UnicodeEncodeError):
            problem = "must be valid Unicode text (a lone surrogate escape)"
        else:
            return internal_error()
        details = [{"field": "body", "problem": problem}]
        body = error_body(422, "validation_error", "the request is invalid", _request_id(app), details)
        return json_response(422, body)

    @app.not_found
    def _no_route(_: NotFoundError) -> Response[Any]:
        return json_response(404, error_body(404, "not_found", "no such route", _request_id(app)))

    @app.exception_handler([ClientError, BotoCoreError])
    def _aws_failed(error: Exception) -> Response[Any]:
        if not aws.is_transient(error):
            return internal_error()
        # botocore's retries ran out: tell the client when to try again instead of failing with 500.
        logger.warning(
            "AWS unavailable", extra={"error": type(error).__name__, "code": aws.client_error_code(error)}
        )
        unavailable = ServiceUnavailable(
            "a backing service is briefly unavailable; retry", retry_after_seconds=1
        )
        return domain_error_response(unavailable, _request_id(app))

    @app.exception_handler(TransactionCollided)
    def _collided(_: TransactionCollided) -> Response[Any]:
        # Concurrent transactions held an item of this write each time the store sent it: nothing was
        # written and nothing was refused, so the client may simply try again.
        logger.warning("write collided with concurrent transactions")
        busy = ServiceUnavailable(
            "a concurrent change held an item of this write; retry", retry_after_seconds=1
        )
        return domain_error_response(busy, _request_id(app))

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


# What the services behind today's public routes answer beyond what the edge decides (contract §3,
# §7: wrong credentials, sign-up refused or taken, gift-card guessing); a route may also name its
# own with ``errors=``.
PUBLIC_ROUTE_ERRORS: tuple[tuple[re.Pattern[str], tuple[int, ...]], ...] = (
    (re.compile(r"/signin$"), (401, 403, 429)),
    (re.compile(r"/signup$"), (403, 404, 409, 429)),
    (re.compile(r"/refresh$"), (401, 429)),
    (re.compile(r"^/storefront/gift-card/"), (404, 429)),
)
_ERROR_DESCRIPTIONS = {
    400: "`orgid_required`: the orgid header is missing or not an orgid; `invalid_json`: not JSON",
    401: "`unauthorized` (credentials missing or invalid) or `invalid_credentials`",
    403: "`forbidden`: the credential may not do this in this org (kind, role, permission, key scope)",
    404: "`not_found`: nothing of that id in this org",
    409: "`conflict`: a duplicate, a stale `version`, not enough stock",
    422: "`validation_error`: the body or parameters are invalid (`details` names each problem)",
    429: "`rate_limited`: too many requests; `Retry-After` says when to try again",
    500: "`internal_error`: unexpected; the `requestId` finds it in the logs",
    503: "`service_unavailable`: AWS is briefly overloaded or out of reach; retry after `Retry-After`",
}
_RETRY_AFTER: dict[str, OpenAPIResponseHeader] = {
    "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
}
_WITH_BODY = ("POST", "PUT", "PATCH")


def documented_errors(path: str, access: Access, *, takes_input: bool, takes_body: bool) -> set[int]:
    """The error statuses a route can answer, from its ``Access`` and its inputs (contract §1)."""
    statuses = {500, 503}  # 503: AWS still overloaded after retries (Retry-After)
    if access.public and not access.orgid_required and not takes_input:
        return statuses  # health, JWKS: nothing to refuse
    statuses.add(422)
    if takes_body or access.orgid_required or not access.public:
        statuses.add(400)
    if takes_input:
        statuses.add(404)  # a path, query or body that names something
    if not access.public:
        statuses |= {401, 403, 429}  # credentials, rights, the key's rate limit
        if not access.reads:
            statuses.add(409)
    else:
        for pattern, extra in PUBLIC_ROUTE_ERRORS:
            if pattern.search(path):
                statuses.update(extra)
    return statuses


def error_responses(statuses: Collection[int]) -> dict[int, OpenAPIResponse]:
    responses: dict[int, OpenAPIResponse] = {}
    for status in sorted(statuses):
        model = ValidationErrorBody if status == 422 else ErrorBody
        response: OpenAPIResponse = {
            "description": _ERROR_DESCRIPTIONS.get(status, "an error"),
            "content": {content_types.APPLICATION_JSON: {"model": model}},
        }
        if status in (429, 503):
            response["headers"] = _RETRY_AFTER
        responses[status] = response
    return responses


def security_of(access: Access) -> list[dict[str, list[str]]] | None:
    """The credentials a route takes, as OpenAPI security requirements (any one of them)."""
    if access.public:
        return None
    requirements: list[dict[str, list[str]]] = []
    if "jwt" in access.credentials:
        requirements += [{"bearerAuth": []}, {"clientAuthorization": []}]
    if "apikey" in access.credentials:
        requirements.append({"apiKey": []})
    return requirements


def _inputs(method: str, path: str, func: Callable[..., Any]) -> tuple[bool, bool]:
    """(takes any input, takes a body) from the handler's signature, without resolving annotations
    (cheap at import: no model is built here)."""
    path_names = set(re.findall(r"<(\w+)>", path))
    others = [p for name, p in inspect.signature(func).parameters.items() if name not in path_names]
    body = method in _WITH_BODY and any(not _is_query_or_header(p.annotation) for p in others)
    return bool(path_names or others), body


def _takes_array(func: Callable[..., Any]) -> bool:
    annotations = [p.annotation for p in inspect.signature(func).parameters.values()]
    return any(
        (a if isinstance(a, str) else repr(a))
        .removeprefix("typing.")
        .removeprefix("Annotated[")
        .startswith("list[")
        for a in annotations
    )


def _is_query_or_header(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return "Query(" in text or "Header(" in text


def _returns_response(func: Callable[..., Any]) -> bool:
    """A handler that returns a ``Response`` picks its status at run time (``created``: 201)."""
    annotation = inspect.signature(func).return_annotation
    if isinstance(annotation, str):
        return annotation.split("[", 1)[0].strip() == "Response"
    return (get_origin(annotation) or annotation) is Response


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
        self.app: DocumentedResolver = create_resolver(self.logger)
        self._access: dict[tuple[str, str], Access] = {}
        # Routes whose body is a JSON array (bulk delete); every other body is an object.
        self._array_bodies: set[tuple[str, str]] = set()
        self._usage_meter: UsageMeter | None = None

    def route(
        self,
        method: str,
        path: str,
        access: Access,
        *,
        errors: Collection[int] = (),
        answers: type[BaseModel] | None = None,
        **kwargs: Any,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Registers a route with its ``Access``; the OpenAPI document gets, from the same ``Access`` and
        the handler's signature, every error status the route can answer (``errors`` adds statuses its
        service decides), the credentials it takes and its ``orgid`` header. ``answers`` names the body's
        model where the handler returns a ``Response`` (to choose its status), which Powertools cannot
        read from the signature. ``responses`` and ``security`` given here win over the derived ones."""
        method = method.upper()
        # Powertools writes path parameters as <name>; API Gateway's resource (and the template) as {name}.
        resource = re.sub(r"<(\w+)>", r"{\1}", path)
        if access.reads is None:
            access = replace(access, reads=method == "GET")
        self._access[(method, resource)] = access
        if access.orgid_required or not access.public:
            self.app.orgid_operations.add((method, resource))

        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            takes_input, takes_body = _inputs(method, path, func)
            if takes_body and _takes_array(func):
                self._array_bodies.add((method, resource))
            status = kwargs.get("status_code")
            created_or_not = (200, 201) if method in _WITH_BODY and _returns_response(func) else (200,)
            statuses = documented_errors(resource, access, takes_input=takes_input, takes_body=takes_body)
            responses: dict[int, OpenAPIResponse] = {
                code: {"description": "Created" if code == 201 else kwargs.get("response_description", "OK")}
                for code in ((status,) if status else created_or_not)
            }  # no content: Powertools documents the handler's return type
            if answers is not None:
                for code in responses:
                    responses[code]["content"] = {"application/json": {"model": answers}}
            responses |= error_responses(statuses | set(errors))
            responses |= kwargs.get("responses") or {}
            options = kwargs | {
                "responses": responses,
                "security": kwargs.get("security") or security_of(access),
            }
            decorated: Callable[..., Any] = self.app.route(path, method, **options)(func)
            return decorated

        return register

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
        route = (str(event.get("httpMethod", "")).upper(), str(event.get("resource", "")))
        access = self._access.get(route)
        if access is None:
            return None  # no such route: the resolver answers 404
        context = self._admit(event, access)
        body = event.get("body")
        if isinstance(body, str) and body.lstrip().startswith("[") and route not in self._array_bodies:
            # Powertools would read the first element of an array as the object a route takes.
            raise invalid_field("body", "must be a JSON object")
        if isinstance(body, str) and _holds_lone_surrogate(body):
            # JSON can spell half of a UTF-16 pair ("\ud800"); no UTF-8 text holds one, so every later
            # encode (hashing a password, writing an item) would fail: refused before anything runs.
            raise invalid_field("body", "must be valid Unicode text (a lone surrogate escape)")
        return context

    def _admit(self, event: dict[str, Any], access: Access) -> RequestContext:
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
        self.logger.append_keys(
            orgid=orgid,
            principal=principal.principal_id,
            kind=principal.kind,
            # A person's call made through an application (AppEngine's clients): both are logged.
            application=_application_of(principal),
        )
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
                with calling_application(_application_of(caller.principal if caller else None)):
                    result = self.app.resolve(_as_json_request(event), context)
            return _with_request_id(result, request_id)

        return http_entrypoint_for(handle, self.logger, self.metrics)


def _application_of(principal: Principal | None) -> str | None:
    """The API key of the application a person's call came through (an app token beside the person's)."""
    if principal is None or principal.credential != "jwt":
        return None
    return principal.api_key_id


def _holds_lone_surrogate(body: str) -> bool:
    if "\\ud" not in body and "\\uD" not in body:
        return False  # the common case (JSON spells the escape \\u, the hex digits in either case)
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return False  # not JSON at all: answered by the resolver as such
    try:
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


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
