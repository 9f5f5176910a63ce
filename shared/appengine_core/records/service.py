"""The generic repository of contract §6: any datatype, one org at a time, with RBAC.

Reads are GetItem (one record) or Query on ``<org>:<datatype>`` (lists); nothing reads outside the
caller's org, so a record of another org is simply not found (404). Find filters run inside DynamoDB on
the org's collection and at most ``MAX_EXAMINED`` items are examined per request; the cost of a page
grows with the page, never with the table or with other tenants.

Lists behave as if the records a caller may not read (``requiredRole``) did not exist: the visibility
rule is part of the DynamoDB filter, so pages, ``hasNext`` and ``total`` are computed over readable
records only and no query can learn anything about the others by counting.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from boto3.dynamodb.conditions import Attr, ConditionBase
from pydantic import BaseModel, ConfigDict, Field, field_validator

from appengine_core.identity.directory import org_key
from appengine_core.identity.principal import Principal
from appengine_core.infra.envelope import Record, record_key_from_path_id
from appengine_core.infra.errors import Conflict, Forbidden, NotFound, ValidationFailed, invalid_field
from appengine_core.infra.limits import check_storable
from appengine_core.infra.paging import (
    MAX_CURSOR_LENGTH,
    MAX_PAGE_NUMBER,
    MAX_PAGE_SIZE,
    decode_cursor,
    encode_cursor,
    list_envelope,
)
from appengine_core.infra.store import TenantStore
from appengine_core.infra.tenancy import TenantKey
from appengine_core.records.query_language import MAX_IN, build_filter, check_expression
from appengine_core.records.writer import PROTECTED_DATATYPES, RecordWriter, require_datatype, require_record

MAX_DATA_BYTES = 100 * 1024  # a record's data, serialized (DynamoDB items stop at 400 KB)
MAX_DEPTH = 16
MAX_EXAMINED = 1000  # items a find may examine per request
MAX_BULK_DELETE = 25
# A path id is a pk (<datatype>-<id>) or an sk (<orgid>:<datatype>:<id>); DynamoDB refuses sort keys over
# 1 KB, and no id this service issues comes near this.
MAX_PATH_ID_LENGTH = 512
# System fields of the envelope that must not hide inside the payload. ``name`` and ``state`` are not
# among them: payloads commonly carry their own (a product's data.name), and the envelope's are separate.
RESERVED_DATA_FIELDS = frozenset(
    {
        "pk",
        "sk",
        "datatype",
        "version",
        "createdate",
        "modifydate",
        "author",
        "owner",
        "requiredRole",
        "PK",
        "SK",
        "passwordHash",
        "ttl",
    }
)
NATURAL_SORTS = frozenset({"createdate", "pk", "sk"})
STATE_PERMISSIONS = {"review": "review", "published": "approve"}
STATE_NAME = r"^[a-z][a-z0-9_-]{0,31}$"
ADMIN_ROLES = ("RootAdmin", "RootSystem")


def check_data(data: Any, field: str = "data") -> dict[str, Any]:
    """A payload that can be stored: an object, numbers DynamoDB takes, bounded depth and size, no system
    fields. Records keep a stricter depth and size than DynamoDB's own (``limits``)."""
    if not isinstance(data, dict):
        raise invalid_field(field, "must be an object")
    reserved = sorted(RESERVED_DATA_FIELDS & set(data))
    if reserved:
        raise ValidationFailed(
            details=[{"field": f"{field}.{k}", "problem": "a system field, not payload"} for k in reserved]
        )
    checked: dict[str, Any] = check_storable(data, field, max_depth=MAX_DEPTH, max_bytes=MAX_DATA_BYTES)
    return checked


def check_path_id(path_id: str, field: str = "id") -> str:
    if not path_id or len(path_id) > MAX_PATH_ID_LENGTH:
        raise invalid_field(field, f"give the record's pk or sk (at most {MAX_PATH_ID_LENGTH} characters)")
    return path_id


def query_identity(query: dict[str, Any], sort_field: str | None, descending: bool) -> str:
    """What a find's cursor must belong to: its filter, its sort (by a field, or the natural order) and
    direction. A cursor of another query names a position that means nothing here (422)."""
    canonical = json.dumps(
        {"query": query, "sort": sort_field, "desc": descending},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _all_of(*conditions: ConditionBase | None) -> ConditionBase | None:
    combined: ConditionBase | None = None
    for condition in conditions:
        if condition is not None:
            combined = condition if combined is None else combined & condition
    return combined


class RecordFields(BaseModel):
    model_config = ConfigDict(extra="ignore")  # AppEngine's clients send isNew, which means nothing here

    name: str | None = Field(default=None, max_length=500)
    state: str | None = Field(default=None, pattern=STATE_NAME)
    requiredRole: str | None = Field(default=None, max_length=64)  # noqa: N815


class CreateRecord(RecordFields):
    datatype: str
    data: dict[str, Any]


class UpdateRecord(RecordFields):
    data: dict[str, Any] | None = None
    version: int | None = Field(default=None, ge=1)


class FindOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    pageSize: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE)  # noqa: N815
    page: int | None = Field(default=None, ge=1, le=MAX_PAGE_NUMBER)
    next: str | None = Field(default=None, max_length=MAX_CURSOR_LENGTH)
    sort: str | None = Field(default=None, max_length=200)
    sortType: Literal["asc", "desc"] = "asc"  # noqa: N815

    @field_validator("sortType", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class FindRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    query: dict[str, Any] = Field(default_factory=dict)
    options: FindOptions = Field(default_factory=FindOptions)


def deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class RepositoryService:
    def __init__(self, store: TenantStore | None = None, writer: RecordWriter | None = None) -> None:
        self._store = store or TenantStore()
        self._writer = writer or RecordWriter(self._store)

    # -- authorization -------------------------------------------------------------------------
    @staticmethod
    def _check_datatype(datatype: str) -> None:
        require_datatype(datatype)
        if datatype in PROTECTED_DATATYPES:
            raise Forbidden(f"the {datatype} collection is not reachable through the repository")

    @staticmethod
    def _has_required_role(actor: Principal, required: str | None) -> bool:
        return not required or actor.has_role(required, *ADMIN_ROLES)

    @staticmethod
    def _readable_filter(actor: Principal) -> ConditionBase | None:
        """``_has_required_role`` as a DynamoDB filter, or None when the actor may read every record.

        Filtering inside DynamoDB (not after the Query) is what keeps hidden records out of the
        counts: matches, pages, ``hasNext`` and ``total`` are all computed over what survives it.
        """
        if actor.has_role(*ADMIN_ROLES):
            return None
        role = Attr("requiredRole")
        readable: ConditionBase = role.not_exists() | role.attribute_type("NULL")
        held = ["", *sorted(set(actor.roles))]
        for start in range(0, len(held), MAX_IN):
            readable = readable | role.is_in(held[start : start + MAX_IN])
        return readable

    def _collection_role(
        self, orgid: str, datatype: str, org_item: dict[str, Any] | None = None
    ) -> str | None:
        org = org_item if org_item is not None else (self._store.get(org_key(orgid)) or {})
        collections = (org.get("settings") or {}).get("collections") or {}
        role = (collections.get(datatype) or {}).get("requiredRole")
        return str(role) if role else None

    def _may_write_own(self, actor: Principal, record: Record) -> bool:
        return record.author == actor.principal_id

    def _check_state_change(self, actor: Principal, new_state: str | None, old_state: str | None) -> None:
        needed = STATE_PERMISSIONS.get(new_state or "")
        if needed and new_state != old_state and not actor.has_permission(needed):
            raise Forbidden(f"moving a record to {new_state} needs the {needed} permission")

    def _load(
        self, actor: Principal, orgid: str, datatype: str, path_id: str, *, consistent: bool = False
    ) -> Record:
        """The record a path names, with its collection's role checked, or 404/403."""
        self._check_datatype(datatype)
        key = record_key_from_path_id(orgid, datatype, check_path_id(path_id))
        if key is None:
            raise NotFound("no such record")
        found = self._store.batch_get([key, org_key(orgid)], consistent=consistent)
        record = require_record(Record.from_item(found[key.sort]) if key.sort in found else None)
        required = [
            self._collection_role(orgid, datatype, found.get(org_key(orgid).sort, {})),
            record.requiredRole,
        ]
        if not all(self._has_required_role(actor, role) for role in required):
            raise Forbidden("this record needs a role you do not have")
        return record

    # -- routes --------------------------------------------------------------------------------
    def create(self, actor: Principal, orgid: str, request: CreateRecord) -> Record:
        self._check_datatype(request.datatype)
        if not actor.has_permission("create"):
            raise Forbidden("needs the create permission")
        if not self._has_required_role(actor, self._collection_role(orgid, request.datatype)):
            raise Forbidden("this collection needs a role you do not have")
        self._check_state_change(actor, request.state, None)
        return self._writer.create(
            orgid,
            request.datatype,
            check_data(request.data),
            name=request.name or "",
            state=request.state or "new",
            author=actor.principal_id,
            required_role=request.requiredRole,
        )

    def get(self, actor: Principal, orgid: str, datatype: str, path_id: str) -> Record:
        if not actor.has_permission("read"):
            raise Forbidden("needs the read permission")
        return self._load(actor, orgid, datatype, path_id)

    def update(
        self, actor: Principal, orgid: str, datatype: str, path_id: str, request: UpdateRecord, *, deep: bool
    ) -> Record:
        if request.data is not None:
            check_data(request.data)
        for attempt in range(3):
            record = self._load(actor, orgid, datatype, path_id, consistent=True)
            if not (actor.has_permission("update") or self._may_write_own(actor, record)):
                raise Forbidden("needs the update permission")
            if request.version is not None and request.version != record.version:
                raise Conflict(f"stale version {request.version}; the record is at {record.version}")
            self._check_state_change(actor, request.state, record.state)
            data = record.data
            if request.data is not None:
                data = deep_merge(data, request.data) if deep else data | request.data
            changes: dict[str, Any] = {"data": check_data(data)}
            for field in ("name", "state", "requiredRole"):
                value = getattr(request, field)
                if value is not None:
                    changes[field] = value
            try:
                return self._writer.replace(record, changes, actor.principal_id)
            except Conflict:
                # Without a client version a lost race is retried on fresh data; with one, 409 is the answer.
                if request.version is not None or attempt == 2:
                    raise
        raise Conflict("the record keeps changing; try again")

    def delete(self, actor: Principal, orgid: str, datatype: str, path_ids: list[str]) -> None:
        if not 1 <= len(path_ids) <= MAX_BULK_DELETE:
            raise invalid_field("ids", f"give 1 to {MAX_BULK_DELETE} ids")
        self._check_datatype(datatype)
        # One transaction may not touch an item twice (DynamoDB refuses it), and a pk and an sk can name
        # the same record: duplicates are the caller's mistake, refused before anything is read.
        named: dict[str, int] = {}
        for index, path_id in enumerate(path_ids):
            key: TenantKey | None = record_key_from_path_id(
                orgid, datatype, check_path_id(path_id, f"ids[{index}]")
            )
            identity = key.sort if key is not None else path_id
            if identity in named:
                raise invalid_field(f"ids[{index}]", f"names the same record as ids[{named[identity]}]")
            named[identity] = index
        records = []
        for path_id in path_ids:
            record = self._load(actor, orgid, datatype, path_id, consistent=True)
            if not (actor.has_permission("delete") or self._may_write_own(actor, record)):
                raise Forbidden("needs the delete permission")
            records.append(record)
        self._writer.delete(records, actor.principal_id)

    def find(self, actor: Principal, orgid: str, datatype: str, request: FindRequest) -> dict[str, Any]:
        self._check_datatype(datatype)
        if not actor.has_permission("read"):
            raise Forbidden("needs the read permission")
        if not self._has_required_role(actor, self._collection_role(orgid, datatype)):
            raise Forbidden("this collection needs a role you do not have")
        options = request.options
        sort_field = options.sort if options.sort and options.sort not in NATURAL_SORTS else None
        newest_first = options.sortType == "desc"
        condition = check_expression(_all_of(build_filter(request.query), self._readable_filter(actor)))
        query_id = query_identity(request.query, sort_field, newest_first)
        if sort_field is not None:
            return self._find_sorted(actor, orgid, datatype, condition, options, sort_field, query_id)

        after = decode_cursor(options.next, orgid, datatype, query_id) if options.next else None
        to_skip = 0 if options.next else ((options.page or 1) - 1) * options.pageSize
        wanted = options.pageSize + 1
        matches: list[dict[str, Any]] = []
        examined = skipped = 0
        exhausted = False
        # An unfiltered list of every record has its total in a counter; once anything is filtered out
        # (by the query or by what the caller may read) the counter would tell too much, so the total
        # is counted here, when every match fits in one examination.
        count_all = condition is not None and after is None and to_skip == 0
        total_matches = 0
        # Page numbers pay for the pages they skip (hence their cap of 100); a cursor pays for its page only.
        cap = MAX_EXAMINED + to_skip
        while examined < cap:
            # Unfiltered, read exactly what the page needs; filtered, read on (up to the cap) for matches.
            needed = (
                cap - examined if condition is not None else (to_skip - skipped) + (wanted - len(matches))
            )
            page = self._store.query(
                orgid,
                datatype,
                limit=max(1, min(needed, cap - examined)),
                after_sort_key=after,
                newest_first=newest_first,
                filter_condition=condition,
            )
            examined += page.examined
            for item in page.items:
                total_matches += 1
                if skipped < to_skip:
                    skipped += 1
                elif len(matches) < wanted:
                    matches.append(item)
            after = page.last_sort_key
            if after is None:
                exhausted = True
                break
            if len(matches) >= wanted and not count_all:
                break
        # The filter already left out what the actor may not read; this re-check only guards the output.
        visible = [
            Record.from_item(i) for i in matches if self._has_required_role(actor, i.get("requiredRole"))
        ]
        has_more = len(matches) > options.pageSize
        page_items = visible[: options.pageSize]
        if has_more:
            next_cursor: str | None = encode_cursor(
                orgid, datatype, str(matches[options.pageSize - 1]["_sk"]), query_id
            )
        elif not exhausted and after is not None:
            # The examined cap was hit: continue from there.
            next_cursor = encode_cursor(orgid, datatype, after, query_id)
        else:
            next_cursor = None
        if condition is None:
            total: int | None = self._writer.count(orgid, datatype)
        else:
            total = total_matches if count_all and exhausted else None
        return list_envelope(
            [r.model_dump() for r in page_items],
            page=options.page or 1,
            page_size=options.pageSize,
            has_next=next_cursor is not None,
            next_cursor=next_cursor,
            total=total,
        )

    def _find_sorted(
        self,
        actor: Principal,
        orgid: str,
        datatype: str,
        condition: ConditionBase | None,
        options: FindOptions,
        field: str,
        query_id: str,
    ) -> dict[str, Any]:
        """Sort by a payload field: every match must fit in one examination (``MAX_EXAMINED``)."""
        page = self._store.query(orgid, datatype, limit=MAX_EXAMINED, filter_condition=condition)
        if page.last_sort_key is not None:
            raise invalid_field(
                "options.sort",
                f"sorting by a field needs the matches to fit in {MAX_EXAMINED} records; narrow the query",
            )
        records = [
            Record.from_item(i) for i in page.items if self._has_required_role(actor, i.get("requiredRole"))
        ]

        def sort_key(record: Record) -> tuple[int, Any]:
            value: Any = record.data
            for part in field.removeprefix("data.").split("."):
                value = value.get(part) if isinstance(value, dict) else None
            # Numbers, then strings, then anything else or missing; ties broken by sk (stable).
            if isinstance(value, int | float):
                return (0, float(value))
            if isinstance(value, str):
                return (1, value)
            return (2, "")

        records.sort(key=lambda r: (sort_key(r), r.sk), reverse=options.sortType == "desc")
        if options.next:
            # A sorted find's cursor holds an offset into the sorted matches, not a sort key.
            position = decode_cursor(options.next, orgid, datatype, query_id).rsplit(":", 1)[1]
            if not (position.isascii() and position.isdigit() and int(position) <= MAX_EXAMINED):
                raise invalid_field("next", "not a cursor of this list")
            offset = int(position)
        else:
            offset = ((options.page or 1) - 1) * options.pageSize
        chunk = records[offset : offset + options.pageSize]
        more = offset + options.pageSize < len(records)
        next_cursor = (
            encode_cursor(orgid, datatype, f"{orgid}:{datatype}:{offset + options.pageSize}", query_id)
            if more
            else None
        )
        return list_envelope(
            [r.model_dump() for r in chunk],
            page=options.page or 1,
            page_size=options.pageSize,
            has_next=more,
            next_cursor=next_cursor,
            total=len(records),
        )
