"""Platform function: health, JWKS, OpenAPI (contract §8), invoked with the events/ samples."""

from __future__ import annotations

import json

from appengine_local.openapi import DOCUMENT_PATH, generate, render
from appengine_local.runtime import LocalLambda
from appengine_local.template import load_template
from tests.conftest import load_event
from tests.integration.conftest import body_of, header_of


def test_health_answers_ok_with_a_request_id(functions: LocalLambda) -> None:
    # Given the sample health event
    event = load_event("platform-health")
    # When the platform function handles it
    response = functions.invoke("PlatformFunction", event)
    # Then it answers 200 {"status": "ok"} and echoes the gateway's request id
    assert response["statusCode"] == 200
    assert body_of(response) == {"status": "ok"}
    assert header_of(response, "x-request-id") == event["requestContext"]["requestId"]


def test_jwks_publishes_the_current_public_key_only(functions: LocalLambda) -> None:
    response = functions.invoke("PlatformFunction", load_event("platform-jwks"))
    assert response["statusCode"] == 200
    keys = body_of(response)["keys"]
    assert len(keys) == 1
    (key,) = keys
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["alg"] == "EdDSA" and key["kid"]
    assert "d" not in key, "the private part of the key must never be published"


def test_jwks_keeps_the_previous_key_through_a_rotation(functions: LocalLambda) -> None:
    from appengine_core.identity.signing import KeyStore

    before = body_of(functions.invoke("PlatformFunction", load_event("platform-jwks")))["keys"]
    # When an operator forces a rotation
    assert KeyStore().rotate(force=True) is True
    # Then (after the cache refresh a fresh container does) both keys are published, newest first
    after = body_of(LocalLambda(load_template()).invoke("PlatformFunction", load_event("platform-jwks")))[
        "keys"
    ]
    assert [k["kid"] for k in after][1:] == [k["kid"] for k in before]
    assert len(after) == 2


def test_unknown_route_inside_the_function_is_a_json_404(functions: LocalLambda) -> None:
    event = load_event("platform-health", path="/monitoring/nope", resource="/monitoring/nope")
    response = functions.invoke("PlatformFunction", event)
    assert response["statusCode"] == 404
    body = body_of(response)
    assert body["error"] == body["code"] == body["reason"] == "not_found"
    assert body["requestId"] == event["requestContext"]["requestId"]


def test_openapi_document_is_served_and_up_to_date(functions: LocalLambda) -> None:
    # The checked-in document must match what the code generates (run `make openapi` after adding routes).
    assert DOCUMENT_PATH.read_text(encoding="utf-8") == render(generate()), "run `make openapi`"
    response = functions.invoke("PlatformFunction", load_event("platform-openapi"))
    assert response["statusCode"] == 200
    document = json.loads(response["body"])
    assert "/monitoring/health" in document["paths"]
    assert "/.well-known/jwks.json" in document["paths"]


def test_every_template_route_is_a_resolver_route_and_back() -> None:
    # Given the routes the template deploys and the routes the functions' resolvers declare
    template = load_template()
    document = generate(template)
    documented = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    hidden = {("GET", "/openapi.json"), ("GET", "/docs")}
    deployed = {(route.method, route.path) for route in template.routes}
    # Then they are the same set: no deployed route without a handler, no handler without a route
    assert deployed - hidden == documented
