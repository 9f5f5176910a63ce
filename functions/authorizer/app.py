"""REQUEST authorizer of the REST API: authenticates the caller and checks the org (contract §1).

REST-API semantics: raising ``Exception("Unauthorized")`` makes API Gateway answer 401, a Deny policy 403,
an Allow policy passes ``context`` to the function. Result caching is off in the template, so every
request is decided afresh and revocation holds from the next request.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from appengine_core.edge.authorizer import AuthorizerService
from appengine_core.infra.errors import Forbidden, Unauthorized

logger = Logger(service="authorizer")
metrics = Metrics(namespace="AppEngine", service="authorizer")


@cache
def authorizer_service() -> AuthorizerService:
    return AuthorizerService()


def _policy(
    principal_id: str, effect: str, method_arn: str, context: dict[str, str] | None = None
) -> dict[str, Any]:
    # The exact method ARN, not a wildcard: with caching off nothing reuses the policy, and a record id
    # such as an ``sk`` (``acme:product:1``) is outside the path alphabet of Powertools' policy helper.
    response: dict[str, Any] = {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn}],
        },
    }
    if context:
        response["context"] = context
    return response


@metrics.log_metrics(raise_on_empty_metrics=False)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The event read as the dict it is: Powertools' data classes package loads every event shape it knows
    # (a twentieth of the authorizer's cold start) for three fields.
    headers: dict[str, str] = event.get("headers") or {}
    path = str(event.get("path") or "")
    method_arn = str(event.get("methodArn") or "")
    try:
        principal = authorizer_service().decide(headers)
    except Unauthorized as refusal:
        logger.info("unauthorized", extra={"reason": refusal.message, "path": path})
        metrics.add_metric(name="AuthorizerUnauthorized", unit=MetricUnit.Count, value=1)
        raise Exception("Unauthorized") from None
    except Forbidden as refusal:
        logger.info("forbidden", extra={"reason": refusal.message, "path": path})
        metrics.add_metric(name="AuthorizerDenied", unit=MetricUnit.Count, value=1)
        return _policy("denied", "Deny", method_arn)
    logger.append_keys(principal=principal.principal_id, orgid=principal.orgid)
    logger.info("allowed", extra={"kind": principal.kind, "credential": principal.credential})
    return _policy(principal.principal_id, "Allow", method_arn, principal.to_context())
