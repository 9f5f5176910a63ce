"""The generic repository of contract §6: any datatype, one org at a time, with RBAC.

Reads are GetItem (one record) or Query on ``<org>:<datatype>`` (lists); nothing reads outside the
caller's org, so a record of another org is simply not found (404). This module holds the rules: which
datatypes are reachable, who may create, read, change or delete what, what a payload may hold. The
finds are ``records.finder``'s; the reads and writes are ``records.data``'s and ``records.writer``'s.
"""

from __future__ import annotations

from typing import Any

from appengine_core.identity.principal import Caller, Principal
from appengine_core.infra.envelope import Record, record_key_from_path_id
from appengine_core.infra.errors import Conflict, Forbidden, NotFound, ValidationFailed, invalid_field
from appengine_core.infra.limits import check_storable
from appengine_core.infra.paging import Page, PageRequest
from appengine_core.infra.store import TenantStore
from appengine_core.infra.tenancy import TenantKey
from appengine_core.records.data import RecordData
from appengine_core.records.finder import RecordFinder, can_see
from appengine_core.records.models import CreateRecord, FindOptions, FindRequest, UpdateRecord
from appengine_core.records.writer import PROTECTED_DATATYPES, RecordWriter, require_datatype, require_record

MAX_DATA_BYTES = 100 * 1024  # a record's data, serialized (DynamoDB items stop at 400 KB)
MAX_DEPTH = 16
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
STATE_PERMISSIONS = {"review": "review", "published": "approve"}


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


def deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class RepositoryService:
    def __init__(
        self,
        store: TenantStore | None = None,
        writer: RecordWriter | None = None,
        data: RecordData | None = None,
    ) -> None:
        store = store or TenantStore()
        self._writer = writer or RecordWriter(store)
        self._data = data or RecordData(store)
        self._finder = RecordFinder(self._data)

    # -- rules ---------------------------------------------------------------------------------
    @staticmethod
    def _check_datatype(datatype: str) -> None:
        require_datatype(datatype)
        if datatype in PROTECTED_DATATYPES:
            raise Forbidden(f"the {datatype} collection is not reachable through the repository")

    @staticmethod
    def _may_write_own(actor: Principal, record: Record) -> bool:
        return record.author == actor.principal_id

    @staticmethod
    def _check_state_change(actor: Principal, new_state: str | None, old_state: str | None) -> None:
        needed = STATE_PERMISSIONS.get(new_state or "")
        if needed and new_state != old_state and not actor.has_permission(needed):
            raise Forbidden(f"moving a record to {new_state} needs the {needed} permission")

    def _check_collection(self, caller: Caller, datatype: str) -> None:
        """403 unless the caller holds the role the org's settings require for the whole collection."""
        _require_collection_role(caller, self._data.collection_role(caller.orgid, datatype))

    def _load(self, caller: Caller, datatype: str, path_id: str, *, consistent: bool = False) -> Record:
        """The record a path names, with its collection's role checked, or 404/403."""
        self._check_datatype(datatype)
        key = record_key_from_path_id(caller.orgid, datatype, check_path_id(path_id))
        if key is None:
            raise NotFound("no such record")
        stored = self._data.load(key, consistent=consistent)
        record = require_record(stored.record)
        if not all(can_see(caller.principal, role) for role in (stored.collection_role, record.requiredRole)):
            raise Forbidden("this record needs a role you do not have")
        return record

    # -- routes --------------------------------------------------------------------------------
    def create(self, caller: Caller, request: CreateRecord) -> Record:
        actor = caller.principal
        self._check_datatype(request.datatype)
        if not actor.has_permission("create"):
            raise Forbidden("needs the create permission")
        self._check_collection(caller, request.datatype)
        self._check_state_change(actor, request.state, None)
        return self._writer.create(
            caller.orgid,
            request.datatype,
            check_data(request.data),
            name=request.name or "",
            state=request.state or "new",
            author=actor.principal_id,
            required_role=request.requiredRole,
        )

    def get(self, caller: Caller, datatype: str, path_id: str) -> Record:
        if not caller.principal.has_permission("read"):
            raise Forbidden("needs the read permission")
        return self._load(caller, datatype, path_id)

    def update(
        self, caller: Caller, datatype: str, path_id: str, request: UpdateRecord, *, deep: bool
    ) -> Record:
        actor = caller.principal
        if request.data is not None:
            check_data(request.data)
        for attempt in range(3):
            record = self._load(caller, datatype, path_id, consistent=True)
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

    def delete(self, caller: Caller, datatype: str, path_ids: list[str]) -> None:
        """Delete every record ``path_ids`` names, or none."""
        actor = caller.principal
        if not 1 <= len(path_ids) <= MAX_BULK_DELETE:
            raise invalid_field("ids", f"give 1 to {MAX_BULK_DELETE} ids")
        self._check_datatype(datatype)
        # One transaction may not touch an item twice (DynamoDB refuses it), and a pk and an sk can name
        # the same record: duplicates are the caller's mistake, refused before anything is read.
        named: dict[str, int] = {}
        for index, path_id in enumerate(path_ids):
            key: TenantKey | None = record_key_from_path_id(
                caller.orgid, datatype, check_path_id(path_id, f"ids[{index}]")
            )
            identity = key.sort if key is not None else path_id
            if identity in named:
                raise invalid_field(f"ids[{index}]", f"names the same record as ids[{named[identity]}]")
            named[identity] = index
        records = []
        for path_id in path_ids:
            record = self._load(caller, datatype, path_id, consistent=True)
            if not (actor.has_permission("delete") or self._may_write_own(actor, record)):
                raise Forbidden("needs the delete permission")
            records.append(record)
        self._writer.delete(records, actor.principal_id)

    def find(self, caller: Caller, datatype: str, request: FindRequest) -> Page[Record]:
        self._check_datatype(datatype)
        if not caller.principal.has_permission("read"):
            raise Forbidden("needs the read permission")
        role, total = self._data.collection_facts(caller.orgid, datatype)
        _require_collection_role(caller, role)
        return self._finder.find(caller, datatype, request, collection_total=total)

    def find_by_attribute(
        self, caller: Caller, datatype: str, attribute: str, value: str, page: PageRequest
    ) -> Page[Record]:
        """Records whose ``data.<attribute>`` equals ``value``: a find with that one equality."""
        options = FindOptions(pageSize=page.page_size, page=page.page, next=page.cursor)
        return self.find(caller, datatype, FindRequest(query={attribute: value}, options=options))


def _require_collection_role(caller: Caller, role: str | None) -> None:
    if not can_see(caller.principal, role):
        raise Forbidden("this collection needs a role you do not have")
