"""The generic tenant-scoped repository (contract §6). Staff users and API keys; customers get 403."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from appengine_core.edge.http import OK_BODY, STAFF, Access, HttpFunction, created
from appengine_core.infra.paging import PageRequest
from appengine_core.records.service import (
    CreateRecord,
    FindOptions,
    FindRequest,
    RepositoryService,
    UpdateRecord,
)

STAFF_READING = Access(kinds=("user",), reads=True)  # a POST that only reads: `read` keys may call it
api = HttpFunction("repository")
app = api.app


@cache
def repository() -> RepositoryService:
    return RepositoryService()


@api.post("/repository/create", STAFF, summary="Create a record", tags=["repository"])
@api.route(
    "PUT",
    "/repository/create",
    STAFF,
    summary="Create a record (PUT, as AppEngine's clients send it)",
    tags=["repository"],
)
def create_record(request: CreateRecord) -> Response[Any]:
    principal, orgid = api.principal()
    return created(repository().create(principal, orgid, request).model_dump())


@api.post(
    "/repository/create/<datatype>",
    STAFF,
    summary="Create a record; the body is its data",
    tags=["repository"],
)
@api.route(
    "PUT",
    "/repository/create/<datatype>",
    STAFF,
    summary="Create a record; the body is its data",
    tags=["repository"],
)
def create_record_of(datatype: str, data: Annotated[dict[str, Any], Body()]) -> Response[Any]:
    principal, orgid = api.principal()
    payload = {k: v for k, v in data.items() if k != "isNew"}
    return created(
        repository().create(principal, orgid, CreateRecord(datatype=datatype, data=payload)).model_dump()
    )


@api.get(
    "/repository/get/<datatype>/<record_id>", STAFF, summary="One record by pk or sk", tags=["repository"]
)
def get_record(datatype: str, record_id: str) -> dict[str, Any]:
    principal, orgid = api.principal()
    return repository().get(principal, orgid, datatype, record_id).model_dump()


@api.post(
    "/repository/find/<datatype>",
    STAFF_READING,
    summary="Find records of this org by query",
    tags=["repository"],
)
def find_records(datatype: str, request: FindRequest) -> dict[str, Any]:
    principal, orgid = api.principal()
    return repository().find(principal, orgid, datatype, request)


@api.get(
    "/repository/find-by-attribute/<datatype>/<attribute>/<value>",
    STAFF,
    summary="Records whose data.<attribute> equals value",
    tags=["repository"],
)
def find_by_attribute(datatype: str, attribute: str, value: str) -> dict[str, Any]:
    principal, orgid = api.principal()
    page = PageRequest.from_query(app.current_event.query_string_parameters or {})
    options = FindOptions(pageSize=page.page_size, page=page.page, next=page.cursor)
    return repository().find(
        principal, orgid, datatype, FindRequest(query={attribute: value}, options=options)
    )


@api.post(
    "/repository/update/<datatype>/<record_id>",
    STAFF,
    summary="Merge into a record's data",
    tags=["repository"],
)
def update_record(datatype: str, record_id: str, request: UpdateRecord) -> dict[str, Any]:
    principal, orgid = api.principal()
    return repository().update(principal, orgid, datatype, record_id, request, deep=False).model_dump()


@api.post(
    "/repository/update-partial/<datatype>/<record_id>",
    STAFF,
    summary="Deep-merge into a record's data",
    tags=["repository"],
)
def update_record_partially(datatype: str, record_id: str, request: UpdateRecord) -> dict[str, Any]:
    principal, orgid = api.principal()
    return repository().update(principal, orgid, datatype, record_id, request, deep=True).model_dump()


@api.route(
    "DELETE",
    "/repository/delete/<datatype>/<record_id>",
    STAFF,
    summary="Delete a record",
    tags=["repository"],
)
def delete_record(datatype: str, record_id: str) -> dict[str, Any]:
    principal, orgid = api.principal()
    repository().delete(principal, orgid, datatype, [record_id])
    return OK_BODY


@api.post(
    "/repository/delete/<datatype>",
    STAFF,
    summary="Delete several records (all or none)",
    tags=["repository"],
)
def delete_records(datatype: str, ids: Annotated[list[str], Body()]) -> dict[str, Any]:
    principal, orgid = api.principal()
    repository().delete(principal, orgid, datatype, ids)
    return OK_BODY


lambda_handler = api.handler
