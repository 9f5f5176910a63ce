"""Collection counters: ``<org>:#count:<collection>`` holds an exact ``total`` kept in each write's own
transaction, so a list's total needs no counting."""

from __future__ import annotations

from appengine_core.infra.store import Update
from appengine_core.infra.tenancy import TenantKey

COUNTER_COLLECTION = "#count"


def counter_key(orgid: str, datatype: str) -> TenantKey:
    return TenantKey(orgid, COUNTER_COLLECTION, datatype)


def counter_change(orgid: str, datatype: str, delta: int) -> Update:
    return Update(
        counter_key(orgid, datatype), "ADD #total :delta", values={":delta": delta}, names={"#total": "total"}
    )
