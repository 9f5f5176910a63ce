"""Writes of tenant-scoped records (``BaseModel`` envelopes) of any datatype, with their side effects.

Every write is one DynamoDB transaction holding the record change, the collection counter (so list
``total`` is exact without counting) and an outbox item carrying the ``record.*`` event. The table's
stream delivers outbox items to the publisher function, which puts them on the bus: an event is
published if and only if its write committed, and a bus outage delays events but loses none.
"""

from __future__ import annotations

from typing import Any

from appengine_core.infra.counters import counter_change, counter_key
from appengine_core.infra.envelope import Record, is_valid_datatype, utc_now_iso
from appengine_core.infra.errors import Conflict, NotFound, invalid_field
from appengine_core.infra.outbox import record_event
from appengine_core.infra.store import ConditionFailed, Delete, Operation, Put, TenantStore, Update
from appengine_core.infra.tenancy import TenantKey

# Collections that belong to the auth domain and are never reachable as generic records.
PROTECTED_DATATYPES = frozenset({"user", "customer", "apikey"})


def require_datatype(datatype: str) -> None:
    """422 unless ``datatype`` can name a collection."""
    if not is_valid_datatype(datatype):
        raise invalid_field("datatype", "must match [A-Za-z][A-Za-z0-9_]{0,63}")


class RecordWriter:
    def __init__(self, store: TenantStore | None = None) -> None:
        self._store = store or TenantStore()

    def create(
        self,
        orgid: str,
        datatype: str,
        data: dict[str, Any],
        *,
        name: str = "",
        state: str = "new",
        author: str | None = None,
        required_role: str | None = None,
        record_id: str | None = None,
    ) -> Record:
        require_datatype(datatype)
        record = Record.new(
            orgid=orgid,
            datatype=datatype,
            data=data,
            name=name or str(data.get("name") or ""),
            state=state,
            author=author,
            required_role=required_role,
            record_id=record_id,
        )
        try:
            self._store.transact(
                [
                    Put(record.key, record.to_item()),
                    counter_change(orgid, datatype, 1),
                    record_event(record, "created", author),
                ]
            )
        except ConditionFailed as exc:
            raise Conflict("a record with this id already exists") from exc
        return record

    def replace(self, current: Record, changes: dict[str, Any], actor: str | None) -> Record:
        """Write ``changes`` (envelope fields, ``data`` included) if the record is still at its version."""
        updated = current.model_copy(
            update=changes | {"version": current.version + 1, "modifydate": utc_now_iso()}
        )
        write = Update(
            current.key,
            "SET #data = :data, #name = :name, #state = :state, requiredRole = :role, #version = :next,"
            " modifydate = :now",
            values={
                ":data": updated.data,
                ":name": updated.name,
                ":state": updated.state,
                ":role": updated.requiredRole,
                ":next": updated.version,
                ":now": updated.modifydate,
                ":current": current.version,
            },
            names={"#data": "data", "#name": "name", "#state": "state", "#version": "version"},
            condition="attribute_exists(PK) AND #version = :current",
        )
        try:
            self._store.transact([write, record_event(updated, "updated", actor)])
        except ConditionFailed as exc:
            raise Conflict("the record changed since it was read (stale version)") from exc
        return updated

    def delete(self, records: list[Record], actor: str | None) -> None:
        """Delete all of ``records`` or none (each must still be at the version that was read)."""
        operations: list[Operation] = []
        per_datatype: dict[tuple[str, str], int] = {}
        for record in records:
            operations.append(
                Delete(
                    record.key, "#version = :v", values={":v": record.version}, names={"#version": "version"}
                )
            )
            operations.append(record_event(record, "deleted", actor))
            per_datatype[(record.orgid, record.datatype)] = (
                per_datatype.get((record.orgid, record.datatype), 0) - 1
            )
        operations.extend(
            counter_change(orgid, datatype, delta) for (orgid, datatype), delta in per_datatype.items()
        )
        try:
            self._store.transact(operations)
        except ConditionFailed as exc:
            raise Conflict("a record changed or disappeared while being deleted") from exc

    def get(self, key: TenantKey, *, consistent: bool = False) -> Record | None:
        item = self._store.get(key, consistent=consistent)
        return Record.from_item(item) if item else None

    def count(self, orgid: str, datatype: str) -> int:
        item = self._store.get(counter_key(orgid, datatype))
        return int((item or {}).get("total", 0))


def require_record(record: Record | None) -> Record:
    if record is None:
        raise NotFound("no such record")
    return record
