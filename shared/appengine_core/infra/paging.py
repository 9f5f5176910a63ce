"""Paging of collection queries: opaque cursors bound to (org, collection), or 1-based page numbers.

A cursor carries the last sort key it returned plus the org and collection it belongs to, and, for a
find, which query it pages (its filter, sort and direction), so it cannot be replayed against another
org, collection or query (422): a sort key means nothing to a sorted find, an offset nothing to an
unsorted one. Page numbers cost a Query per skipped page, so they are capped at ``MAX_PAGE_NUMBER``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from appengine_core.infra.errors import invalid_field
from appengine_core.infra.store import QueryPage

ItemT = TypeVar("ItemT")
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_NUMBER = 100
MAX_CURSOR_LENGTH = 2048
MAX_SORT_KEY_BYTES = 1024  # DynamoDB's limit on a sort key value


def encode_cursor(orgid: str, collection: str, last_sort_key: str, query: str | None = None) -> str:
    """An opaque cursor; ``query`` names the query it pages (see ``decode_cursor``)."""
    payload = {"o": orgid, "c": collection, "k": last_sort_key} | ({"q": query} if query else {})
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, orgid: str, collection: str, query: str | None = None) -> str:
    """The sort key a cursor of this org, collection and query carries; 422 for any other cursor."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise invalid_field("next", "not a cursor of this list")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError) as exc:
        raise invalid_field("next", "not a cursor of this list") from exc
    if (
        not isinstance(payload, dict)
        or payload.get("o") != orgid
        or payload.get("c") != collection
        or payload.get("q") != (query or None)
    ):
        raise invalid_field("next", "not a cursor of this list")
    key = payload.get("k")
    if (
        not isinstance(key, str)
        or not key.startswith(f"{orgid}:{collection}:")
        or len(key.encode()) > MAX_SORT_KEY_BYTES
    ):
        raise invalid_field("next", "not a cursor of this list")
    return key


@dataclass(frozen=True)
class PageRequest:
    page_size: int = DEFAULT_PAGE_SIZE
    page: int = 1
    cursor: str | None = None

    @classmethod
    def from_query(cls, params: dict[str, str]) -> PageRequest:
        def number(name: str, *aliases: str) -> int | None:
            for key in (name, *aliases):
                if params.get(key) not in (None, ""):
                    try:
                        return int(params[key])
                    except ValueError as exc:
                        raise invalid_field(key, "must be a whole number") from exc
            return None

        size = number("pageSize", "ps") or DEFAULT_PAGE_SIZE
        page = number("page", "p") or 1
        return cls.checked(size, page, params.get("next") or None)

    @classmethod
    def checked(cls, page_size: int, page: int, cursor: str | None) -> PageRequest:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise invalid_field("pageSize", f"must be between 1 and {MAX_PAGE_SIZE}")
        if not 1 <= page <= MAX_PAGE_NUMBER:
            raise invalid_field("page", f"must be between 1 and {MAX_PAGE_NUMBER}")
        if cursor is not None and len(cursor) > MAX_CURSOR_LENGTH:
            raise invalid_field("next", "not a cursor of this list")
        return cls(page_size=page_size, page=page, cursor=cursor)


@dataclass(frozen=True)
class PageResult:
    items: list[dict[str, Any]]
    page: int
    page_size: int
    next_cursor: str | None

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None


def fetch_page(
    request: PageRequest, orgid: str, collection: str, query: Callable[[int, str | None], QueryPage]
) -> PageResult:
    """One page of ``query(limit, after_sort_key)``, by cursor or by page number.

    Each Query asks for one item more than the page, so ``hasNext`` is exact without a further read.
    """
    after = decode_cursor(request.cursor, orgid, collection) if request.cursor else None
    pages_to_skip = 0 if request.cursor else request.page - 1
    while True:
        fetched = query(request.page_size + 1, after).items
        has_more = len(fetched) > request.page_size
        items = fetched[: request.page_size]
        after = str(items[-1]["_sk"]) if has_more else None
        if pages_to_skip == 0 or after is None:
            break
        pages_to_skip -= 1
    if pages_to_skip:
        items, after = [], None
    for item in items:
        item.pop("_sk", None)
    next_cursor = encode_cursor(orgid, collection, after) if after is not None else None
    return PageResult(items=items, page=request.page, page_size=request.page_size, next_cursor=next_cursor)


@dataclass(frozen=True)
class Examined(Generic[ItemT]):
    """What a bounded, filtered examination of a partition found."""

    matches: list[ItemT]  # at most ``wanted``, after the skipped ones
    matched: int  # every match seen, skipped ones included (a total when ``exhausted``)
    exhausted: bool  # the partition's end was reached
    after: str | None  # the sort key the examination stopped at (None at the end)

    def resume_after(self, page_size: int, sort_key_of: Callable[[ItemT], str]) -> str | None:
        """Where the next page starts (the sort key to read after), or None when this page is the last:
        after the page's last match when more matches were found, else where the examined cap stopped."""
        if len(self.matches) > page_size:
            return sort_key_of(self.matches[page_size - 1])
        if not self.exhausted and self.after is not None:
            return self.after
        return None


# (limit, after_sort_key) -> (the matches of one Query, how many items it examined, its last sort key)
FilteredRead = Callable[[int, str | None], tuple[Sequence[ItemT], int, str | None]]


def examine(
    read: FilteredRead[ItemT],
    *,
    after: str | None,
    to_skip: int,
    wanted: int,
    cap: int,
    read_on: bool,
    count_all: bool,
) -> Examined[ItemT]:
    """Read a partition in order through ``read`` until ``wanted`` matches follow ``to_skip`` ones, or
    ``cap`` items were examined. ``read_on``: read up to the cap (a filter may match sparsely, or the
    first page counts every match for ``total``); otherwise exactly what the page needs. ``count_all``
    keeps reading past the page to count. Page numbers pay for the pages they skip; a cursor for its
    page only."""
    matches: list[ItemT] = []
    examined = skipped = matched = 0
    while examined < cap:
        needed = cap - examined if read_on else (to_skip - skipped) + (wanted - len(matches))
        items, examined_now, after = read(max(1, min(needed, cap - examined)), after)
        examined += examined_now
        for item in items:
            matched += 1
            if skipped < to_skip:
                skipped += 1
            elif len(matches) < wanted:
                matches.append(item)
        if after is None:
            return Examined(matches, matched, exhausted=True, after=None)
        if len(matches) >= wanted and not count_all:
            break
    return Examined(matches, matched, exhausted=False, after=after)


class Page(BaseModel, Generic[ItemT]):
    """One page of a list, as services return it, in the list shape of contract §2.

    ``total`` is left out of the JSON when it is not known exactly (a filtered list whose matches were
    not all examined), rather than shown as null.
    """

    data: list[ItemT]
    page: int = 1
    pageSize: int  # noqa: N815 (the contract's field names)
    hasNext: bool  # noqa: N815
    next: str | None = None
    total: int | None = Field(default=None, exclude_if=lambda value: value is None)

    @classmethod
    def of(cls, items: Sequence[ItemT], result: PageResult, total: int | None) -> Page[ItemT]:
        """A page of ``items`` fetched as ``result`` says (cursor, page number, whether more follow)."""
        return cls(
            data=list(items),
            total=total,
            page=result.page,
            pageSize=result.page_size,
            hasNext=result.has_next,
            next=result.next_cursor,
        )
