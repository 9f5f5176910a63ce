"""The generic tenant-scoped repository (contract §6). Staff users and API keys; customers get 403."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from appengine_core.edge.http import OK_BODY, STAFF, Access, HttpFunction, Ok, created
from appengine_core.infra.envelope import Record
from appengine_core.infra.paging import Page, PageRequest
from appengine_core.infra.tenancy import DATATYPE_PATTERN
from appengine_core.records.models import CreateRecord, FindRequest, UpdateRecord
from appengine_core.records.query_language import FIELD, MAX_OPERAND_BYTES
from appengine_core.records.service import MAX_PATH_ID_LENGTH, RepositoryService

# The limits the service enforces on path parameters, declared so the OpenAPI document shows them.
DatatypeParam = Annotated[str, Path(pattern=DATATYPE_PATTERN.pattern, max_length=64)]
RecordIdParam = Annotated[str, Path(min_length=1, max_length=MAX_PATH_ID_LENGTH)]
AttributeParam = Annotated[str, Path(pattern=FIELD.pattern, max_length=600)]
ValueParam = Annotated[str, Path(max_length=MAX_OPERAND_BYTES)]
STAFF_READING = Access(kinds=("user",), reads=True)  # a POST that only reads: `read` keys may call it
api = HttpFunction("repository")
app = api.app


@cache
def repository() -> RepositoryService:
    return RepositoryService()


@api.post(
    "/repository/create",
    STAFF,
    summary="Create a record",
    tags=["repository"],
    status_code=201,
    answers=Record,
)
@api.route(
    "PUT",
    "/repository/create",
    STAFF,
    summary="Create a record (PUT, as AppEngine's clients send it)",
    tags=["repository"],
    status_code=201,
    answers=Record,
)
def create_record(request: CreateRecord) -> Response[Any]:
    return created(repository().create(api.caller(), request).model_dump(mode="json"))


@api.post(
    "/repository/create/<datatype>",
    STAFF,
    summary="Create a record; the body is its data",
    tags=["repository"],
    status_code=201,
    answers=Record,
)
@api.route(
    "PUT",
    "/repository/create/<datatype>",
    STAFF,
    summary="Create a record; the body is its data",
    tags=["repository"],
    status_code=201,
    answers=Record,
)
def create_record_of(datatype: DatatypeParam, data: Annotated[dict[str, Any], Body()]) -> Response[Any]:
    payload = {k: v for k, v in data.items() if k != "isNew"}
    record = repository().create(api.caller(), CreateRecord(datatype=datatype, data=payload))
    return created(record.model_dump(mode="json"))


@api.get(
    "/repository/get/<datatype>/<record_id>", STAFF, summary="One record by pk or sk", tags=["repository"]
)
def get_record(datatype: DatatypeParam, record_id: RecordIdParam) -> Record:
    return repository().get(api.caller(), datatype, record_id)


@api.post(
    "/repository/find/<datatype>",
    STAFF_READING,
    summary="Find records of this org by query",
    tags=["repository"],
)
def find_records(datatype: DatatypeParam, request: FindRequest) -> Page[Record]:
    return repository().find(api.caller(), datatype, request)


@api.get(
    "/repository/find-by-attribute/<datatype>/<attribute>/<value>",
    STAFF,
    summary="Records whose data.<attribute> equals value",
    tags=["repository"],
)
def find_by_attribute(datatype: DatatypeParam, attribute: AttributeParam, value: ValueParam) -> Page[Record]:
    page = PageRequest.from_query(app.current_event.query_string_parameters or {})
    return repository().find_by_attribute(api.caller(), datatype, attribute, value, page)


@api.post(
    "/repository/update/<datatype>/<record_id>",
    STAFF,
    summary="Merge into a record's data",
    tags=["repository"],
)
def update_record(datatype: DatatypeParam, record_id: RecordIdParam, request: UpdateRecord) -> Record:
    return repository().update(api.caller(), datatype, record_id, request, deep=False)


@api.post(
    "/repository/update-partial/<datatype>/<record_id>",
    STAFF,
    summary="Deep-merge into a record's data",
    tags=["repository"],
)
def update_record_partially(
    datatype: DatatypeParam, record_id: RecordIdParam, request: UpdateRecord
) -> Record:
    return repository().update(api.caller(), datatype, record_id, request, deep=True)


@api.route(
    "DELETE",
    "/repository/delete/<datatype>/<record_id>",
    STAFF,
    summary="Delete a record",
    tags=["repository"],
)
def delete_record(datatype: DatatypeParam, record_id: RecordIdParam) -> Ok:
    repository().delete(api.caller(), datatype, [record_id])
    return OK_BODY


@api.post(
    "/repository/delete/<datatype>",
    STAFF,
    summary="Delete several records (all or none)",
    tags=["repository"],
)
def delete_records(datatype: DatatypeParam, ids: Annotated[list[str], Body()]) -> Ok:
    repository().delete(api.caller(), datatype, ids)
    return OK_BODY


lambda_handler = api.handler
