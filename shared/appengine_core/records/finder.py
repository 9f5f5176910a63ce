"""Finds over one org's collection (contract §6): unsorted and sorted pages, cursors, visibility, totals.

Find filters run inside DynamoDB on the org's collection and at most ``MAX_EXAMINED`` items are examined
per request; the cost of a page grows with the page, never with the table or with other tenants.

Lists behave as if the records a caller may not read (``requiredRole``) did not exist: the visibility
rule is part of the DynamoDB filter, so pages, ``hasNext`` and ``total`` are computed over readable
records only and no query can learn anything about the others by counting.

The finder checks no permission: ``RepositoryService.find`` does, then calls it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from appengine_core.identity.principal import ADMIN_ROLES, Caller, Principal
from appengine_core.infra.envelope import Record
from appengine_core.infra.errors import invalid_field
from appengine_core.infra.paging import Page, decode_cursor, encode_cursor, examine
from appengine_core.records.data import RecordData, RecordFilter, find_filter
from appengine_core.records.models import FindOptions, FindRequest

MAX_EXAMINED = 1000  # items a find may examine per request
NATURAL_SORTS = frozenset({"createdate", "pk", "sk"})


def can_see(principal: Principal, required_role: str | None) -> bool:
    """Whether ``principal`` may read what needs ``required_role`` (a record's, or its collection's)."""
    return not required_role or principal.has_role(required_role, *ADMIN_ROLES)


def visible_roles(principal: Principal) -> tuple[str, ...] | None:
    """The roles whose records ``principal`` may read, or None when it may read every record."""
    return None if principal.has_role(*ADMIN_ROLES) else principal.roles


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


class RecordFinder:
    def __init__(self, data: RecordData | None = None) -> None:
        self._data = data or RecordData()

    def find(
        self, caller: Caller, datatype: str, request: FindRequest, *, collection_total: int
    ) -> Page[Record]:
        """One page of the records of ``datatype`` that match ``request`` and that the caller may read.
        ``collection_total``: the collection's counter (the ``total`` of an unfiltered list)."""
        options = request.options
        sort_field = options.sort if options.sort and options.sort not in NATURAL_SORTS else None
        newest_first = options.sortType == "desc"
        where = find_filter(request.query, visible_roles(caller.principal))
        query_id = query_identity(request.query, sort_field, newest_first)
        if sort_field is not None:
            return self._find_sorted(caller, datatype, where, options, sort_field, query_id)
        return self._find_unsorted(caller, datatype, where, options, newest_first, query_id, collection_total)

    def _find_unsorted(
        self,
        caller: Caller,
        datatype: str,
        where: RecordFilter | None,
        options: FindOptions,
        newest_first: bool,
        query_id: str,
        collection_total: int,
    ) -> Page[Record]:
        """The natural (sort-key) order: a cursor carries the last sort key returned."""
        orgid = caller.orgid
        after = decode_cursor(options.next, orgid, datatype, query_id) if options.next else None
        to_skip = 0 if options.next else ((options.page or 1) - 1) * options.pageSize
        wanted = options.pageSize + 1
        # An unfiltered list of every record has its total in a counter; once anything is filtered out
        # (by the query or by what the caller may read) the counter would tell too much, so the total
        # is counted here, when every match fits in one examination.
        count_all = where is not None and after is None and to_skip == 0

        def read(limit: int, after_sort_key: str | None) -> tuple[list[Record], int, str | None]:
            batch = self._data.query(
                orgid,
                datatype,
                limit=limit,
                after_sort_key=after_sort_key,
                newest_first=newest_first,
                where=where,
            )
            return batch.records, batch.examined, batch.last_sort_key

        # Unfiltered, read exactly what the page needs; filtered, read on (up to the cap) for matches.
        found = examine(
            read,
            after=after,
            to_skip=to_skip,
            wanted=wanted,
            cap=MAX_EXAMINED + to_skip,
            read_on=where is not None,
            count_all=count_all,
        )
        matches = found.matches
        # The filter already left out what the caller may not read; this re-check only guards the output.
        visible = [r for r in matches if can_see(caller.principal, r.requiredRole)]
        resume = found.resume_after(options.pageSize, lambda record: record.sk)
        next_cursor = encode_cursor(orgid, datatype, resume, query_id) if resume is not None else None
        if where is None:
            total: int | None = collection_total
        else:
            total = found.matched if count_all and found.exhausted else None
        return Page[Record](
            data=visible[: options.pageSize],
            total=total,
            page=options.page or 1,
            pageSize=options.pageSize,
            hasNext=next_cursor is not None,
            next=next_cursor,
        )

    def _find_sorted(
        self,
        caller: Caller,
        datatype: str,
        where: RecordFilter | None,
        options: FindOptions,
        field: str,
        query_id: str,
    ) -> Page[Record]:
        """Sort by a payload field: every match must fit in one examination (``MAX_EXAMINED``)."""
        orgid = caller.orgid
        batch = self._data.query(orgid, datatype, limit=MAX_EXAMINED, where=where)
        if batch.last_sort_key is not None:
            raise invalid_field(
                "options.sort",
                f"sorting by a field needs the matches to fit in {MAX_EXAMINED} records; narrow the query",
            )
        records = [r for r in batch.records if can_see(caller.principal, r.requiredRole)]

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
        more = offset + options.pageSize < len(records)
        next_cursor = (
            encode_cursor(orgid, datatype, f"{orgid}:{datatype}:{offset + options.pageSize}", query_id)
            if more
            else None
        )
        return Page[Record](
            data=records[offset : offset + options.pageSize],
            total=len(records),
            page=options.page or 1,
            pageSize=options.pageSize,
            hasNext=more,
            next=next_cursor,
        )
