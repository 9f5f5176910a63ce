"""A thin local stand-in for API Gateway (REST API, Lambda proxy integration), built on Werkzeug.

It does only what the deployed gateway does: route by the template's ``Api`` events, run the REQUEST
authorizer with REST-API semantics (raise "Unauthorized" -> 401, Deny -> 403, Allow -> context passed to
the function), answer with the template's Gateway Responses, and invoke handlers with real API Gateway
proxy events. Local-only helpers live under ``/_local/``.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from appengine_local.resources import LOCAL_ACCOUNT, LOCAL_REGION
from appengine_local.runtime import LocalLambda
from appengine_local.template import Route, Template

API_ID = "localapi"
log = logging.getLogger("appengine.local.gateway")
LocalRoute = Callable[[Request], Response]


class LocalGateway:
    def __init__(self, template: Template, lambdas: LocalLambda | None = None) -> None:
        self.template = template
        self.lambdas = lambdas or LocalLambda(template)
        self.routes = template.routes
        self.authorizer = template.authorizer
        self.responses = template.gateway_responses
        self.stage = template.stage
        self.local_routes: dict[tuple[str, str], LocalRoute] = {}

    # -- WSGI -------------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        started = time.perf_counter()
        response = self.handle(request)
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.info("%s %s %s %.1fms", request.method, request.path, response.status_code, elapsed_ms)
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        local = self.local_routes.get((request.method, request.path))
        if local is not None:
            return local(request)
        route, path_parameters = self.match(request.method, request.path)
        if route is None:
            return self._gateway_response("MISSING_AUTHENTICATION_TOKEN", 403, request_id)
        event = self.proxy_event(request, route, path_parameters or {}, request_id)
        if route.authorized:
            outcome = self._authorize(event)
            if isinstance(outcome, Response):
                return outcome
            event["requestContext"]["authorizer"] = outcome
        try:
            result = self.lambdas.invoke(route.function, event)
        except Exception:
            log.exception("function %s failed", route.function)
            return self._gateway_response("DEFAULT_5XX", 502, request_id)
        return self._to_response(result, request_id)

    # -- routing ----------------------------------------------------------------------------------
    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str] | None]:
        for route in self.routes:
            if route.method not in (method, "ANY"):
                continue
            parameters = route.path_parameters(path)
            if parameters is not None:
                return route, parameters
        return None, None

    # -- events -----------------------------------------------------------------------------------
    def proxy_event(
        self, request: Request, route: Route, path_parameters: dict[str, str], request_id: str
    ) -> dict[str, Any]:
        headers = {k: v for k, v in request.headers.items()}
        multi_headers: dict[str, list[str]] = {}
        for key, value in request.headers.items():
            multi_headers.setdefault(key, []).append(value)
        query = {k: request.args.getlist(k)[-1] for k in request.args}
        multi_query = {k: request.args.getlist(k) for k in request.args}
        raw = request.get_data()
        body: str | None
        encoded = False
        try:
            body = raw.decode("utf-8") if raw else None
        except UnicodeDecodeError:
            body, encoded = base64.b64encode(raw).decode(), True
        now = datetime.now(UTC)
        source_ip = request.remote_addr or "127.0.0.1"
        return {
            "resource": route.path,
            "path": request.path,
            "httpMethod": request.method,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_parameters or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": "local",
                "resourcePath": route.path,
                "httpMethod": request.method,
                "extendedRequestId": request_id,
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "path": f"/{self.stage}{request.path}",
                "accountId": LOCAL_ACCOUNT,
                "protocol": "HTTP/1.1",
                "stage": self.stage,
                "domainPrefix": "localhost",
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "requestId": request_id,
                "identity": {"sourceIp": source_ip, "userAgent": request.headers.get("User-Agent")},
                "domainName": request.host,
                "apiId": API_ID,
            },
            "body": body,
            "isBase64Encoded": encoded,
        }

    def _method_arn(self, event: dict[str, Any]) -> str:
        return (
            f"arn:aws:execute-api:{LOCAL_REGION}:{LOCAL_ACCOUNT}:{API_ID}/{self.stage}/"
            f"{event['httpMethod']}{event['path']}"
        )

    def authorizer_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """The REQUEST authorizer's input for a proxy event (REST API, payload 1.0)."""
        return {
            "type": "REQUEST",
            "methodArn": self._method_arn(event),
            **{k: event[k] for k in ("resource", "path", "httpMethod", "headers", "multiValueHeaders")},
            **{k: event[k] for k in ("queryStringParameters", "multiValueQueryStringParameters")},
            "pathParameters": event["pathParameters"],
            "stageVariables": None,
            "requestContext": event["requestContext"],
        }

    # -- the REQUEST authorizer with REST-API semantics ---------------------------------------------
    def _authorize(self, event: dict[str, Any]) -> dict[str, Any] | Response:
        request_id = event["requestContext"]["requestId"]
        headers = {k.lower(): v for k, v in (event["headers"] or {}).items()}
        if self.authorizer.cache_seconds > 0 and not all(
            h.lower() in headers for h in self.authorizer.identity_headers
        ):
            # With caching on, API Gateway refuses a request missing an identity source without a call.
            return self._gateway_response("UNAUTHORIZED", 401, request_id)
        authorizer_event = self.authorizer_event(event)
        try:
            result = self.lambdas.invoke(self.authorizer.function, authorizer_event)
        except Exception as error:
            if str(error) == "Unauthorized":
                return self._gateway_response("UNAUTHORIZED", 401, request_id)
            log.exception("authorizer failed")
            return self._gateway_response("AUTHORIZER_FAILURE", 500, request_id)
        context = result.get("context") or {}
        if "principalId" not in result or any(isinstance(v, dict | list) for v in context.values()):
            return self._gateway_response("AUTHORIZER_FAILURE", 500, request_id)
        if not _policy_allows(result.get("policyDocument") or {}, authorizer_event["methodArn"]):
            return self._gateway_response("ACCESS_DENIED", 403, request_id)
        # API Gateway hands context values to the function as strings.
        flat = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in context.items()}
        return {**flat, "principalId": result["principalId"]}

    # -- responses --------------------------------------------------------------------------------
    def _gateway_response(
        self, kind: str, default_status: int, request_id: str, request: Request | None = None
    ) -> Response:
        """A response API Gateway produces itself, shaped by the template's Gateway Responses."""
        configured = self.responses.get(kind)
        template = configured or self.responses.get("DEFAULT_5XX" if default_status >= 500 else "DEFAULT_4XX")
        status = (configured.status if configured else None) or default_status
        request_headers = {k.lower(): v for k, v in request.headers.items()} if request is not None else {}
        mapped: dict[str, str]
        if template is None:
            body, mapped = json.dumps({"message": kind}), {}
        else:
            body, mapped = template.render(request_id, kind, request_headers)
        headers = Headers(mapped)
        headers["x-amzn-RequestId"] = request_id
        return Response(body, status=status, headers=headers, content_type="application/json")

    @staticmethod
    def _to_response(result: dict[str, Any], request_id: str) -> Response:
        headers = Headers()
        for key, value in (result.get("headers") or {}).items():
            headers[key] = str(value)
        for key, values in (result.get("multiValueHeaders") or {}).items():
            headers.remove(key)
            for value in values:
                headers.add(key, str(value))
        headers.setdefault("x-amzn-RequestId", request_id)
        body = result.get("body") or ""
        payload = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        return Response(payload, status=int(result.get("statusCode", 200)), headers=headers)


def _policy_allows(policy: dict[str, Any], method_arn: str) -> bool:
    allowed = False
    for statement in policy.get("Statement", []):
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not any(fnmatch.fnmatchcase("execute-api:Invoke", a) for a in actions):
            continue
        if any(fnmatch.fnmatchcase(method_arn, r) for r in resources):
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed
