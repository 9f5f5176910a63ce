"""Data access of the records wing: reading records and building the DynamoDB side of a find.

Writes (record, counter and outbox in one transaction) are ``records.writer``'s. This module holds the
reads: one record together with its org's collection settings in one round trip, a page of an org's
collection under a filter, the collection's counter. It also turns a find into the DynamoDB filter it
runs as: the query language's conditions (``records.query_language``) and the visibility rule. The
services take what it returns (``Record`` models, ``RecordFilter`` as an opaque value) and never see a
DynamoDB expression or item.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase

from appengine_core.identity.directory import org_key
from appengine_core.infra.counters import counter_key
from appengine_core.infra.envelope import Record
from appengine_core.infra.store import TenantStore
from appengine_core.infra.tenancy import TenantKey
from appengine_core.records.query_language import MAX_IN, build_filter, check_expression

REQUIRED_ROLE = "requiredRole"


@dataclass(frozen=True)
class RecordFilter:
    """A filter on a collection Query, as DynamoDB runs it (opaque to the services)."""

    condition: ConditionBase


@dataclass(frozen=True)
class StoredRecord:
    """A record read with its collection's settings: ``record`` None when there is no such record."""

    record: Record | None
    collection_role: str | None


@dataclass(frozen=True)
class RecordBatch:
    """What one Query of a collection returned: the records that passed its filter, in sort-key order,
    where to continue (None: the collection is exhausted) and how many items it read before filtering."""

    records: list[Record]
    last_sort_key: str | None
    examined: int


def find_filter(query: dict[str, Any], visible_roles: Iterable[str] | None) -> RecordFilter | None:
    """The filter of a find: ``query`` (the query language) and, unless ``visible_roles`` is None (the
    caller may read every record), only records whose ``requiredRole`` is unset or one of those roles.

    None when nothing is filtered; 422 for a query the language refuses or a filter over DynamoDB's size.
    """
    matching = build_filter(query)
    visible = None if visible_roles is None else _visible_to(visible_roles)
    combined: ConditionBase | None = None
    for condition in (matching, visible):
        if condition is not None:
            combined = condition if combined is None else combined & condition
    checked = check_expression(combined)
    return RecordFilter(checked) if checked is not None else None


def _visible_to(roles: Iterable[str]) -> ConditionBase:
    """Records that need no role (absent, null or empty ``requiredRole``) or one of ``roles``.

    Filtering inside DynamoDB (not after the Query) is what keeps hidden records out of the counts:
    matches, pages, ``hasNext`` and ``total`` are all computed over what survives it.
    """
    role = Attr(REQUIRED_ROLE)
    readable: ConditionBase = role.not_exists() | role.attribute_type("NULL")
    held = ["", *sorted(set(roles))]
    for start in range(0, len(held), MAX_IN):
        readable = readable | role.is_in(held[start : start + MAX_IN])
    return readable


def _collection_role(org_item: dict[str, Any] | None, datatype: str) -> str | None:
    collections = ((org_item or {}).get("settings") or {}).get("collections") or {}
    role = (collections.get(datatype) or {}).get(REQUIRED_ROLE)
    return str(role) if role else None


class RecordData:
    """Reads of records and of what governs them, one org's collection at a time."""

    def __init__(self, store: TenantStore | None = None) -> None:
        self._store = store or TenantStore()

    def load(self, key: TenantKey, *, consistent: bool = False) -> StoredRecord:
        """The record at ``key`` and its collection's required role, in one round trip."""
        org = org_key(key.orgid)
        found = self._store.batch_get([key, org], consistent=consistent)
        item = found.get(key.sort)
        return StoredRecord(
            record=Record.from_item(item) if item is not None else None,
            collection_role=_collection_role(found.get(org.sort), key.collection),
        )

    def collection_role(self, orgid: str, datatype: str) -> str | None:
        """The role the org's settings require for the whole ``datatype`` collection, if any."""
        return _collection_role(self._store.get(org_key(orgid)), datatype)

    def query(
        self,
        orgid: str,
        datatype: str,
        *,
        limit: int,
        after_sort_key: str | None = None,
        newest_first: bool = False,
        where: RecordFilter | None = None,
    ) -> RecordBatch:
        """One Query of the org's ``datatype`` collection: at most ``limit`` items read, then filtered."""
        page = self._store.query(
            orgid,
            datatype,
            limit=limit,
            after_sort_key=after_sort_key,
            newest_first=newest_first,
            filter_condition=where.condition if where is not None else None,
        )
        return RecordBatch(
            records=[Record.from_item(item) for item in page.items],
            last_sort_key=page.last_sort_key,
            examined=page.examined,
        )

    def collection_facts(self, orgid: str, datatype: str) -> tuple[str | None, int]:
        """The collection's required role and its exact record count, in one round trip (a find needs
        both: the role before it reads, the count for an unfiltered list's ``total``)."""
        org, counter = org_key(orgid), counter_key(orgid, datatype)
        found = self._store.batch_get([org, counter])
        return _collection_role(found.get(org.sort), datatype), int(
            found.get(counter.sort, {}).get("total", 0)
        )
