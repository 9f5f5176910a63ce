"""The HTTP edge shared by every function: resolver factory, error mapping, envelopes, request ids.

This is the single place where domain errors become HTTP responses (contract §1) and where every
response gets its ``x-request-id``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from appengine_core.errors import DomainError, RateLimited, http_status_of

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


def list_envelope(
    items: Sequence[Any],
    *,
    page: int = 1,
    page_size: int,
    has_next: bool,
    next_cursor: str | None,
    total: int | None,
) -> dict[str, Any]:
    """The list shape of contract §2. ``total`` is omitted when it is not known exactly."""
    envelope: dict[str, Any] = {
        "data": list(items),
        "page": page,
        "pageSize": page_size,
        "hasNext": has_next,
        "next": next_cursor,
    }
    if total is not None:
        envelope["total"] = total
    return envelope


def validation_details(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    details = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part not in ("body",)]
        details.append({"field": ".".join(location) or "body", "problem": str(error.get("msg", "invalid"))})
    return details


def _request_id(app: APIGatewayRestResolver) -> str:
    try:
        return str(app.current_event.request_context.request_id or "")
    except (AttributeError, KeyError, TypeError):
        return ""


def create_resolver(logger: Logger) -> APIGatewayRestResolver:
    """A REST-API resolver with request validation and the contract's error mapping installed."""
    app = APIGatewayRestResolver(enable_validation=True)

    @app.exception_handler(DomainError)
    def _domain_error(error: DomainError) -> Response[Any]:
        status = http_status_of(error)
        headers = {}
        if isinstance(error, RateLimited):
            headers["Retry-After"] = str(error.retry_after_seconds)
        if status >= 500:
            logger.error("request failed", extra={"code": error.code})
        body = error_body(status, error.code, error.message, _request_id(app), error.details)
        return json_response(status, body, headers)

    @app.exception_handler(RequestValidationError)
    def _invalid_request(error: RequestValidationError) -> Response[Any]:
        errors = list(error.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            body = error_body(400, "invalid_json", "the request body is not valid JSON", _request_id(app))
            return json_response(400, body)
        details = validation_details(errors)
        body = error_body(422, "validation_error", "the request is invalid", _request_id(app), details)
        return json_response(422, body)

    @app.not_found
    def _no_route(_: NotFoundError) -> Response[Any]:
        return json_response(404, error_body(404, "not_found", "no such route", _request_id(app)))

    @app.exception_handler(Exception)
    def _unexpected(_: Exception) -> Response[Any]:
        # The stack trace goes to the log under the request id, never to the caller.
        logger.exception("unhandled error")
        body = error_body(500, "internal_error", "unexpected error", _request_id(app))
        return json_response(500, body)

    return app


def http_entrypoint(app: APIGatewayRestResolver, logger: Logger, metrics: Metrics) -> LambdaHandler:
    """The Lambda handler of an HTTP function: logging context, metrics flush, request id header."""

    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        result = app.resolve(event, context)
        request_id = (event.get("requestContext") or {}).get("requestId") or ""
        if "multiValueHeaders" in result:
            result["multiValueHeaders"][REQUEST_ID_HEADER] = [request_id]
        else:
            result.setdefault("headers", {})[REQUEST_ID_HEADER] = request_id
        return result

    with_logging = logger.inject_lambda_context(
        handler, correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
    )
    instrumented: LambdaHandler = metrics.log_metrics(with_logging, raise_on_empty_metrics=False)
    return instrumented
