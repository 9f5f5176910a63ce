"""Contract §6 over HTTP: records a caller may not read leave no trace in any list (issue 13, item 5).

A reader without a record's ``requiredRole`` must see exactly what it would see if the record did not
exist: the same items, ``total``, ``hasNext`` and pages, by cursor, by page number, sorted or not, and
through find-by-attribute; so no query (a binary search with ``$gt`` included) learns anything about it.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.contract.conftest import LocalApi, sign_in

HIDDEN_SALARY = 73_000


@pytest.fixture(scope="module")
def admin(api: LocalApi) -> dict[str, str]:
    return {
        "orgid": "acme",
        "authorization": sign_in(api, "admin@acme.test", "acme-admin-pass", "acme")["token"],
    }


@pytest.fixture(scope="module")
def reader(api: LocalApi) -> dict[str, str]:
    # reader@acme.test: role User, permission read; it does not hold the role "Finance".
    return {
        "orgid": "acme",
        "authorization": sign_in(api, "reader@acme.test", "acme-reader-pass", "acme")["token"],
    }


def create(api: LocalApi, admin: dict[str, str], datatype: str, data: dict[str, Any], **fields: Any) -> Any:
    response = api.post(
        "/repository/create", headers=admin, body={"datatype": datatype, "data": data, **fields}
    )
    assert response.status == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
def twins(api: LocalApi, admin: dict[str, str]) -> tuple[str, str]:
    """Two collections with the same five readable records; the second also holds hidden ones between
    and around them (``requiredRole: Finance``), with the same fields and values in range."""
    suffix = uuid.uuid4().hex[:8]
    plain, mixed = f"leakplain{suffix}", f"leakmixed{suffix}"
    for i in range(5):
        create(api, admin, plain, {"i": i, "salary": 1000 * i})
    create(api, admin, mixed, {"i": -1, "salary": HIDDEN_SALARY}, requiredRole="Finance")
    for i in range(5):
        create(api, admin, mixed, {"i": i, "salary": 1000 * i})
        create(api, admin, mixed, {"i": i, "salary": HIDDEN_SALARY + i}, requiredRole="Finance")
    return plain, mixed


def view(response: Any) -> dict[str, Any]:
    """What a list tells its caller, minus what differs between two collections (keys, cursors)."""
    assert response.status == 200, response.text
    body = response.json()
    return {
        "data": [r["data"] for r in body["data"]],
        "total": body.get("total", "absent"),
        "hasNext": body["hasNext"],
        "next": body["next"] is not None,
    }


def walk_by_cursor(api: LocalApi, headers: dict[str, str], datatype: str, body: dict[str, Any]) -> list[Any]:
    pages, cursor = [], None
    for _ in range(20):
        options = dict(body.get("options", {})) | ({"next": cursor} if cursor else {})
        response = api.post(f"/repository/find/{datatype}", headers=headers, body=body | {"options": options})
        pages.append(view(response))
        cursor = response.json()["next"]
        if not cursor:
            break
    return pages


FINDS = [
    pytest.param({}, id="unfiltered"),
    pytest.param({"options": {"pageSize": 2}}, id="unfiltered-paged"),
    pytest.param({"query": {"i": {"$gte": 0}}, "options": {"pageSize": 2}}, id="filtered"),
    pytest.param({"query": {"salary": {"$gt": 500}}, "options": {"pageSize": 3}}, id="filtered-gt"),
    pytest.param({"options": {"pageSize": 2, "sortType": "desc"}}, id="newest-first"),
    pytest.param({"options": {"pageSize": 2, "sort": "salary", "sortType": "desc"}}, id="sorted-by-field"),
]


@pytest.mark.parametrize("body", FINDS)
def test_a_reader_sees_the_same_pages_totals_and_has_next_with_or_without_hidden_records(
    api: LocalApi, reader: dict[str, str], twins: tuple[str, str], body: dict[str, Any]
) -> None:
    # Given two collections that differ only by records the reader may not read
    plain, mixed = twins
    # When the reader pages through both by cursor
    # Then every page, total and hasNext is the same
    assert walk_by_cursor(api, reader, mixed, body) == walk_by_cursor(api, reader, plain, body)
    # And page by page number too
    for page in (1, 2, 3):
        numbered = body | {"options": body.get("options", {}) | {"page": page}}
        assert view(api.post(f"/repository/find/{mixed}", headers=reader, body=numbered)) == view(
            api.post(f"/repository/find/{plain}", headers=reader, body=numbered)
        ), page


def test_find_by_attribute_does_not_count_hidden_records(
    api: LocalApi, reader: dict[str, str], twins: tuple[str, str]
) -> None:
    # Given records with i=1 that the reader may read (one in each collection) and one it may not
    plain, mixed = twins
    # When the reader looks them up by attribute, by page number and by cursor
    for query_string in ("", "?ps=1", "?ps=1&p=2"):
        mine = view(api.get(f"/repository/find-by-attribute/{mixed}/i/1{query_string}", headers=reader))
        # Then it sees what it would see without the hidden record
        assert mine == view(
            api.get(f"/repository/find-by-attribute/{plain}/i/1{query_string}", headers=reader)
        )
    assert view(api.get(f"/repository/find-by-attribute/{mixed}/salary/{HIDDEN_SALARY}", headers=reader)) == {
        "data": [],
        "total": 0,
        "hasNext": False,
        "next": False,
    }


def test_a_binary_search_with_gt_learns_nothing_about_a_hidden_value(
    api: LocalApi, admin: dict[str, str], reader: dict[str, str]
) -> None:
    # Given a collection holding one record only Finance may read, with a salary in it
    datatype = f"leakpayroll{uuid.uuid4().hex[:8]}"
    create(api, admin, datatype, {"salary": HIDDEN_SALARY}, requiredRole="Finance")
    # When the reader bisects on {"salary": {"$gt": x}}, unfiltered, sorted and by cursor
    answers = set()
    for threshold in (0, 50_000, 72_999, 73_000, 100_000):
        for options in ({}, {"sort": "salary"}, {"pageSize": 1}):
            response = api.post(
                f"/repository/find/{datatype}",
                headers=reader,
                body={"query": {"salary": {"$gt": threshold}}, "options": options},
            )
            answers.add(repr(view(response)))
    answers.add(repr(view(api.post(f"/repository/find/{datatype}", headers=reader, body={}))))
    # Then every answer is that of an empty collection
    assert answers == {repr({"data": [], "total": 0, "hasNext": False, "next": False})}
    # While its admin (RootAdmin) still finds and counts the record
    seen = api.post(
        f"/repository/find/{datatype}", headers=admin, body={"query": {"salary": {"$gt": 72_999}}}
    ).json()
    assert seen["total"] == 1 and seen["data"][0]["data"] == {"salary": HIDDEN_SALARY}
    assert api.post(f"/repository/find/{datatype}", headers=admin, body={}).json()["total"] == 1
