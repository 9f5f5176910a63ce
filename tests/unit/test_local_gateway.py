"""The local gateway's REST-API semantics, against a small template and scripted functions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from werkzeug.test import Client

from appengine_local.gateway import LocalGateway
from appengine_local.template import Template, load_template

ERROR_TEMPLATE = '{"statusCode": %d, "error": "%s", "requestId": "$context.requestId"}'


def small_template() -> Template:
    def response(status: int, word: str) -> dict[str, Any]:
        return {
            "StatusCode": status,
            "ResponseParameters": {"Headers": {"x-request-id": "context.requestId"}},
            "ResponseTemplates": {"application/json": ERROR_TEMPLATE % (status, word)},
        }

    api = {
        "Type": "AWS::Serverless::Api",
        "Properties": {
            "StageName": "v1",
            "Auth": {
                "DefaultAuthorizer": "Gate",
                "Authorizers": {
                    "Gate": {
                        "FunctionArn": {"Fn::GetAtt": ["Auth", "Arn"]},
                        "Identity": {"ReauthorizeEvery": 0},
                    }
                },
            },
            "GatewayResponses": {
                "UNAUTHORIZED": response(401, "unauthorized"),
                "ACCESS_DENIED": response(403, "forbidden"),
                "MISSING_AUTHENTICATION_TOKEN": response(404, "not_found"),
            },
        },
    }

    def api_event(path: str, method: str = "GET", public: bool = False) -> dict[str, Any]:
        props: dict[str, Any] = {"Path": path, "Method": method, "RestApiId": {"Ref": "Api"}}
        if public:
            props["Auth"] = {"Authorizer": "NONE"}
        return {"Type": "Api", "Properties": props}

    def function(events: dict[str, Any]) -> dict[str, Any]:
        return {
            "Type": "AWS::Serverless::Function",
            "Properties": {"CodeUri": "x/", "Handler": "app.handler", "Events": events},
        }

    return Template(
        resources={
            "Api": api,
            "Auth": function({}),
            "Items": function(
                {
                    "Get": api_event("/items/{id}"),
                    "List": api_event("/items/list"),
                    "Public": api_event("/public", public=True),
                }
            ),
        },
        globals={},
        parameters={},
    )


class ScriptedLambdas:
    def __init__(self, authorizer: Callable[[dict[str, Any]], Any]) -> None:
        self.authorizer = authorizer
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        self.calls.append((logical_id, event))
        if logical_id == "Auth":
            return self.authorizer(event)
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": json.dumps({"event": event}),
        }


def policy(effect: str, resource: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "principalId": "p1",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
        "context": context or {},
    }


def client_for(authorizer: Callable[[dict[str, Any]], Any]) -> tuple[Client, ScriptedLambdas]:
    lambdas = ScriptedLambdas(authorizer)
    return Client(LocalGateway(small_template(), lambdas=lambdas)), lambdas  # type: ignore[arg-type]


def unauthorized(_: dict[str, Any]) -> Any:
    raise Exception("Unauthorized")


def test_authorizer_raising_unauthorized_is_a_401_gateway_response() -> None:
    client, lambdas = client_for(unauthorized)
    response = client.get("/items/1")
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized"
    assert response.json["requestId"] == response.headers["x-request-id"]
    assert [name for name, _ in lambdas.calls] == ["Auth"], "the function must not run"


def test_deny_policy_is_a_403_gateway_response() -> None:
    client, lambdas = client_for(lambda event: policy("Deny", event["methodArn"]))
    response = client.get("/items/1")
    assert response.status_code == 403 and response.json["error"] == "forbidden"
    assert len(lambdas.calls) == 1


def test_allow_for_another_resource_is_a_403() -> None:
    client, _ = client_for(lambda event: policy("Allow", event["methodArn"] + "/other"))
    assert client.get("/items/1").status_code == 403


def test_allow_passes_the_context_as_strings_and_the_path_parameters() -> None:
    client, _ = client_for(
        lambda event: policy("Allow", event["methodArn"], {"orgid": "acme", "admin": True, "n": 2})
    )
    response = client.get("/items/acme:product:1?x=1&x=2", headers={"orgid": "acme"})
    assert response.status_code == 200
    event = response.json["event"]
    assert event["requestContext"]["authorizer"] == {
        "orgid": "acme",
        "admin": "true",
        "n": "2",
        "principalId": "p1",
    }
    assert event["pathParameters"] == {"id": "acme:product:1"}
    assert event["resource"] == "/items/{id}"
    assert event["queryStringParameters"] == {"x": "2"}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"]}


def test_a_literal_segment_wins_over_a_path_parameter() -> None:
    client, _ = client_for(lambda event: policy("Allow", event["methodArn"]))
    assert client.get("/items/list").json["event"]["resource"] == "/items/list"


def test_a_nested_context_value_is_an_authorizer_failure() -> None:
    client, _ = client_for(lambda event: policy("Allow", event["methodArn"], {"bad": {"nested": 1}}))
    assert client.get("/items/1").status_code == 500


def test_public_routes_skip_the_authorizer() -> None:
    client, lambdas = client_for(unauthorized)
    assert client.get("/public").status_code == 200
    assert [name for name, _ in lambdas.calls] == ["Items"]


def test_unknown_routes_get_the_missing_token_response() -> None:
    client, lambdas = client_for(unauthorized)
    response = client.get("/nope")
    assert response.status_code == 404 and response.json["error"] == "not_found"
    assert lambdas.calls == []


@pytest.mark.parametrize("route", load_template().routes, ids=lambda r: f"{r.method} {r.path}")
def test_every_route_of_the_real_template_routes_to_itself(route: Any) -> None:
    concrete = route.path.replace("{", "").replace("}", "").replace("+", "")
    gateway = LocalGateway(load_template(), lambdas=ScriptedLambdas(unauthorized))  # type: ignore[arg-type]
    matched, _ = gateway.match(route.method, concrete)
    assert matched is not None and (matched.method, matched.path) == (route.method, route.path)
