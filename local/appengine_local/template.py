"""Reads ``template.yaml``: the one source of routes, authorizer settings, environment and resources.

The local gateway, the provisioning of emulated resources and the tests all read the template through
this module, so that what runs locally is what the template deploys.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form tags (``!Ref X`` -> ``{"Ref": "X"}``)."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node {node!r}")
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _construct_tag)


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway resource path, e.g. /repository/get/{datatype}/{id}
    function: str  # logical id
    authorized: bool

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\\\{[^}/]+\\\+\\\}", "(?P<proxy>.+)", re.escape(self.path))
        regex = re.sub(r"\\\{([^}/]+)\\\}", r"(?P<\1>[^/]+)", regex)
        return re.compile(f"^{regex}$")

    def path_parameters(self, path: str) -> dict[str, str] | None:
        match = self.pattern.fullmatch(path)
        return match.groupdict() if match else None


@dataclass(frozen=True)
class Function:
    logical_id: str
    code_uri: Path
    handler: str
    environment: dict[str, Any]
    timeout: int
    memory: int

    @property
    def module_file(self) -> Path:
        return self.code_uri / (self.handler.rsplit(".", 1)[0] + ".py")

    @property
    def handler_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]


@dataclass(frozen=True)
class Authorizer:
    function: str
    identity_headers: tuple[str, ...]
    cache_seconds: int


@dataclass(frozen=True)
class GatewayResponse:
    status: int | None
    body: str
    headers: dict[str, str] = field(default_factory=dict)  # name -> mapping expression

    def render(
        self, request_id: str, message: str, request_headers: dict[str, str]
    ) -> tuple[str, dict[str, str]]:
        """(body, headers) with the template's ``$context`` variables and header mappings applied."""
        body = self.body.replace("$context.requestId", request_id)
        body = body.replace("$context.error.messageString", json.dumps(message))
        headers = {}
        for name, expression in self.headers.items():
            if expression.startswith("'") and expression.endswith("'"):
                headers[name] = expression[1:-1]
            elif expression == "context.requestId":
                headers[name] = request_id
            elif expression.startswith("method.request.header."):
                value = request_headers.get(expression.removeprefix("method.request.header.").lower())
                if value is not None:
                    headers[name] = value
        return body, headers


@dataclass(frozen=True)
class Template:
    resources: dict[str, Any]
    globals: dict[str, Any]
    parameters: dict[str, Any]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == resource_type}

    def parameter_default(self, name: str) -> Any:
        return self.parameters.get(name, {}).get("Default")

    @property
    def api(self) -> dict[str, Any]:
        apis = self.of_type("AWS::Serverless::Api")
        if len(apis) != 1:
            raise ValueError("the template must define exactly one AWS::Serverless::Api")
        properties: dict[str, Any] = next(iter(apis.values()))["Properties"]
        return properties

    @property
    def stage(self) -> str:
        stage = self.api.get("StageName")
        return str(self.parameter_default(stage["Ref"]) if isinstance(stage, dict) else stage)

    @property
    def functions(self) -> dict[str, Function]:
        defaults = self.globals.get("Function", {})
        result = {}
        for logical_id, resource in self.of_type("AWS::Serverless::Function").items():
            props = resource["Properties"]
            env = dict(defaults.get("Environment", {}).get("Variables", {}))
            env.update(props.get("Environment", {}).get("Variables", {}))
            result[logical_id] = Function(
                logical_id=logical_id,
                code_uri=REPO_ROOT / props["CodeUri"],
                handler=props.get("Handler", defaults.get("Handler")),
                environment=env,
                timeout=int(props.get("Timeout", defaults.get("Timeout", 3))),
                memory=int(props.get("MemorySize", defaults.get("MemorySize", 128))),
            )
        return result

    @property
    def routes(self) -> list[Route]:
        default_authorizer = self.api.get("Auth", {}).get("DefaultAuthorizer")
        routes = []
        for logical_id, resource in self.of_type("AWS::Serverless::Function").items():
            for event in resource["Properties"].get("Events", {}).values():
                if event.get("Type") != "Api":
                    continue
                props = event["Properties"]
                authorizer = props.get("Auth", {}).get("Authorizer", default_authorizer)
                routes.append(
                    Route(
                        method=str(props["Method"]).upper(),
                        path=str(props["Path"]),
                        function=logical_id,
                        authorized=bool(authorizer) and authorizer != "NONE",
                    )
                )
        # Literal segments beat parameters, as in API Gateway: /a/list before /a/{id}.
        return sorted(routes, key=lambda r: [(s.startswith("{"), s) for s in r.path.split("/")])

    @property
    def authorizer(self) -> Authorizer:
        auth = self.api["Auth"]
        config = auth["Authorizers"][auth["DefaultAuthorizer"]]
        identity = config.get("Identity", {})
        return Authorizer(
            function=config["FunctionArn"]["Fn::GetAtt"][0],
            identity_headers=tuple(identity.get("Headers", ())),
            cache_seconds=int(identity.get("ReauthorizeEvery", 300)),
        )

    @property
    def gateway_responses(self) -> dict[str, GatewayResponse]:
        responses = {}
        for kind, config in self.api.get("GatewayResponses", {}).items():
            headers = {
                name: str(value)
                for name, value in config.get("ResponseParameters", {}).get("Headers", {}).items()
            }
            responses[kind] = GatewayResponse(
                status=int(config["StatusCode"]) if "StatusCode" in config else None,
                body=config.get("ResponseTemplates", {}).get("application/json", ""),
                headers=headers,
            )
        return responses


@cache
def load_template(path: Path = TEMPLATE_PATH) -> Template:
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass
    return Template(
        resources=document.get("Resources", {}),
        globals=document.get("Globals", {}),
        parameters=document.get("Parameters", {}),
    )
