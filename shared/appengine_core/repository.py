"""Tenant-scoped records (``BaseModel`` envelopes) of any datatype.

A record and its collection counter are written in one transaction, so ``total`` in list envelopes is
exact without ever counting items.
"""

from __future__ import annotations

from typing import Any

from appengine_core.errors import Conflict, ValidationFailed
from appengine_core.records import Record, is_valid_datatype
from appengine_core.store import ConditionFailed, Put, TenantStore, Update
from appengine_core.tenancy import TenantKey

COUNTER_COLLECTION = "#count"
# Collections that belong to the auth domain and are never reachable as generic records.
PROTECTED_DATATYPES = frozenset({"user", "customer", "apikey"})


def counter_key(orgid: str, datatype: str) -> TenantKey:
    return TenantKey(orgid, COUNTER_COLLECTION, datatype)


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
        if not is_valid_datatype(datatype):
            raise ValidationFailed(
                details=[{"field": "datatype", "problem": "must match [A-Za-z][A-Za-z0-9_]{0,63}"}]
            )
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
                    Update(
                        counter_key(orgid, datatype),
                        "ADD #total :one",
                        values={":one": 1},
                        names={"#total": "total"},
                    ),
                ]
            )
        except ConditionFailed as exc:
            raise Conflict("a record with this id already exists") from exc
        return record

    def count(self, orgid: str, datatype: str) -> int:
        item = self._store.get(counter_key(orgid, datatype))
        return int((item or {}).get("total", 0))
