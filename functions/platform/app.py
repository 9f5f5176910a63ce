"""Platform endpoints (contract §8): health, JWKS, the OpenAPI document and its Swagger UI."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from pydantic import BaseModel, ConfigDict

from appengine_core.edge.http import PUBLIC_NO_ORG, HttpFunction
from appengine_core.identity.signing import KeyStore

api = HttpFunction("platform")
app = api.app

# Generated from every function's routes by `make openapi` (checked for freshness by the tests).
OPENAPI_DOCUMENT = Path(__file__).with_name("openapi.json")


class Health(BaseModel):
    status: str


class PublicKey(BaseModel):
    """A public Ed25519 signing key (RFC 8037)."""

    model_config = ConfigDict(extra="allow")

    kty: str
    crv: str
    x: str
    kid: str
    use: str
    alg: str


class KeySet(BaseModel):
    """The current key and every retired key whose tokens may still be alive."""

    keys: list[PublicKey]


@cache
def key_store() -> KeyStore:
    return KeyStore()


@cache
def openapi_document() -> str:
    return OPENAPI_DOCUMENT.read_text(encoding="utf-8")


@api.get("/monitoring/health", PUBLIC_NO_ORG, summary="Liveness check", tags=["platform"])
def health() -> Health:
    return Health(status="ok")


@api.get(
    "/.well-known/jwks.json",
    PUBLIC_NO_ORG,
    summary="Public signing keys (JWKS)",
    tags=["platform"],
    responses={200: {"description": "OK", "content": {content_types.APPLICATION_JSON: {"model": KeySet}}}},
)
def jwks() -> Response[Any]:
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=key_store().jwks(),
        headers={"Cache-Control": "public, max-age=300"},
    )


@api.get("/openapi.json", PUBLIC_NO_ORG, include_in_schema=False)
def openapi() -> Response[str]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi_document())


@api.get("/docs", PUBLIC_NO_ORG, include_in_schema=False)
def docs() -> Response[str]:
    # Imported here: Powertools' Swagger page pulls in its OpenAPI models, which no other route needs
    # (they cost a cold start about half of `import boto3` again).
    from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

    assets = Path(generate_swagger_html.__code__.co_filename).parent
    html = generate_swagger_html(
        openapi_document().replace("</", "<\\/"),
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        "",
        None,
    )
    return Response(status_code=200, content_type="text/html", body=html)


lambda_handler = api.handler
