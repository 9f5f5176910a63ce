"""API keys: create, list, get, regenerate, revoke (contract §5). Staff users' tokens only: never an API
key. Key admins see and revoke every key of the org, others their own; only the owner regenerates."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from appengine_core.edge.http import OK_BODY, Access, HttpFunction, Ok, created
from appengine_core.infra.paging import Page, PageRequest
from appengine_core.keys.format import KEY_ADMIN_ROLES
from appengine_core.keys.models import ApiKeyCreate, CreatedKey, KeyMetadata
from appengine_core.keys.service import ApiKeyService

api = HttpFunction("api_keys")
app = api.app
KeyIdParam = Annotated[str, Path(min_length=1, max_length=64)]
KEY_MANAGER = Access(kinds=("user",), credentials=("jwt",), roles=KEY_ADMIN_ROLES, or_permission="create")


@cache
def api_key_service() -> ApiKeyService:
    return ApiKeyService()


@api.post(
    "/api-key/create",
    KEY_MANAGER,
    summary="Create a key; its plaintext is in this answer only",
    tags=["api keys"],
    status_code=201,
    answers=CreatedKey,
)
def create_key(request: ApiKeyCreate) -> Response[Any]:
    return created(api_key_service().create(api.caller(), request).model_dump(mode="json"))


@api.get("/api-key/list", KEY_MANAGER, summary="This org's keys (metadata only)", tags=["api keys"])
def list_keys() -> Page[KeyMetadata]:
    page = PageRequest.from_query(app.current_event.query_string_parameters or {})
    return api_key_service().list_keys(api.caller(), page)


@api.get("/api-key/<key_id>", KEY_MANAGER, summary="One key's metadata", tags=["api keys"])
def get_key(key_id: KeyIdParam) -> KeyMetadata:
    return api_key_service().get(api.caller(), key_id)


@api.post(
    "/api-key/regenerate/<key_id>",
    KEY_MANAGER,
    summary="New plaintext; the old one stops at once",
    tags=["api keys"],
)
def regenerate_key(key_id: KeyIdParam) -> CreatedKey:
    return api_key_service().regenerate(api.caller(), key_id)


@api.route("DELETE", "/api-key/<key_id>", KEY_MANAGER, summary="Revoke a key at once", tags=["api keys"])
def revoke_key(key_id: KeyIdParam) -> Ok:
    api_key_service().revoke(api.caller(), key_id)
    return OK_BODY


lambda_handler = api.handler
