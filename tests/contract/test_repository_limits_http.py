"""Contract §1 (the 422 rule) on the repository routes: what DynamoDB would refuse is refused first with
422 and details, never a 500 and never accepted only because moto is lenient (issue 13, item 15)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.contract.conftest import LocalApi, sign_in
from tests.contract.test_platform_http import assert_error


@pytest.fixture(scope="module")
def admin(api: LocalApi) -> dict[str, str]:
    return {
        "orgid": "acme",
        "authorization": sign_in(api, "admin@acme.test", "acme-admin-pass", "acme")["token"],
    }


@pytest.fixture
def datatype() -> str:
    return f"limits{uuid.uuid4().hex[:8]}"


def raw_post(api: LocalApi, path: str, headers: dict[str, str], text: str) -> Any:
    return api.post(path, headers=headers | {"content-type": "application/json"}, raw=text.encode())


def count(api: LocalApi, admin: dict[str, str], datatype: str) -> int:
    return int(api.post(f"/repository/find/{datatype}", headers=admin, body={}).json()["total"])


FORTY_ONE_DIGITS = "1" + "0" * 40
BAD_NUMBERS = [
    pytest.param(FORTY_ONE_DIGITS, id="41-digits"),
    pytest.param("12345678901234567890123456789012345678901", id="41-significant-digits"),
    pytest.param("-123456789012345678901234567890123456789", id="39-digits-negative"),
    pytest.param("7" * 5000, id="5000-digits"),  # beyond what Python's JSON parser converts
    pytest.param("1e200", id="above-1e126"),
    pytest.param("-1e127", id="below-minus-1e126"),
    pytest.param("1e-200", id="below-1e-130"),
    pytest.param("NaN", id="nan"),
    pytest.param("Infinity", id="infinity"),
    pytest.param("-Infinity", id="minus-infinity"),
]


@pytest.mark.parametrize("number", BAD_NUMBERS)
def test_a_number_dynamodb_cannot_store_is_422_in_a_create_and_writes_nothing(
    api: LocalApi, admin: dict[str, str], datatype: str, number: str
) -> None:
    # Given a collection with one record
    assert api.post(f"/repository/create/{datatype}", headers=admin, body={"n": 1}).status == 201
    # When a create carries the number (sent raw: Python's json reads NaN and Infinity), at the top or nested
    for body in (
        f'{{"datatype": "{datatype}", "data": {{"n": {number}}}}}',
        f'{{"datatype": "{datatype}", "data": {{"a": {{"b": [1, {number}]}}}}}}',
    ):
        response = raw_post(api, "/repository/create", admin, body)
        # Then it is 422 with details, not 500 (and not accepted)
        assert_error(response, 422, "validation_error")
        # (a number too long for the JSON parser itself is refused as the body's)
        assert response.json()["details"][0]["field"].split(".")[0] in ("data", "body"), response.text
    assert_error(
        raw_post(api, f"/repository/create/{datatype}", admin, f'{{"n": {number}}}'), 422, "validation_error"
    )
    # And nothing was written
    assert count(api, admin, datatype) == 1


@pytest.mark.parametrize("number", BAD_NUMBERS)
def test_a_number_dynamodb_cannot_compare_is_422_in_a_find(
    api: LocalApi, admin: dict[str, str], datatype: str, number: str
) -> None:
    # Given a find whose operand is a number DynamoDB refuses, as an equality, a comparison or in $in
    for query in (
        f'{{"n": {number}}}',
        f'{{"n": {{"$gt": {number}}}}}',
        f'{{"n": {{"$in": [1, {number}]}}}}',
    ):
        response = raw_post(api, f"/repository/find/{datatype}", admin, f'{{"query": {query}}}')
        # Then it is 422 naming the query field
        assert_error(response, 422, "validation_error")
        assert response.json()["details"][0]["field"] in ("query.n", "body"), response.text


def test_an_update_with_a_number_dynamodb_cannot_store_is_422(
    api: LocalApi, admin: dict[str, str], datatype: str
) -> None:
    record = api.post(f"/repository/create/{datatype}", headers=admin, body={"n": 1}).json()
    response = raw_post(
        api,
        f"/repository/update/{datatype}/{record['sk']}",
        admin,
        f'{{"data": {{"n": {FORTY_ONE_DIGITS}}}}}',
    )
    assert_error(response, 422, "validation_error")
    assert api.get(f"/repository/get/{datatype}/{record['sk']}", headers=admin).json()["version"] == 1


@pytest.mark.parametrize("depth", [33, 40, 200, 5000])
def test_nesting_deeper_than_dynamodb_allows_is_422_in_a_create_and_a_find(
    api: LocalApi, admin: dict[str, str], datatype: str, depth: int
) -> None:
    nested = '{"a": ' * depth + "1" + "}" * depth
    listed = "[" * depth + "1" + "]" * depth
    # When a create's data, or a find's query, nests deeper than 32 levels
    for path, body in (
        ("/repository/create", f'{{"datatype": "{datatype}", "data": {{"deep": {nested}}}}}'),
        (f"/repository/create/{datatype}", f'{{"deep": {listed}}}'),
        (f"/repository/find/{datatype}", f'{{"query": {{"a": {nested}}}}}'),
        (f"/repository/find/{datatype}", f'{{"query": {{"a": {{"$in": [{listed}]}}}}}}'),
        (f"/repository/find/{datatype}", f'{{"query": {{}}, "options": {{"sort": {nested}}}}}'),
    ):
        # Then it is 422, never 500
        assert_error(raw_post(api, path, admin, body), 422, "validation_error")


def test_a_find_whose_filter_expression_exceeds_4_kb_is_422(
    api: LocalApi, admin: dict[str, str], datatype: str
) -> None:
    # Given a find with many $in values over many fields: each value is a placeholder in the expression
    query = {f"field{f}": {"$in": list(range(100))} for f in range(20)}
    # When it is sent
    response = api.post(f"/repository/find/{datatype}", headers=admin, body={"query": query})
    # Then it is refused before DynamoDB sees it (moto would run it; DynamoDB refuses > 4 KB)
    assert_error(response, 422, "validation_error")
    assert response.json()["details"][0]["field"] == "query"
    # While a modest $in still runs, and so do float operands (boto3 takes only Decimals)
    for operand in (1.5, 1e125, -2.5e-120, 10**37):
        fine = api.post(
            f"/repository/find/{datatype}", headers=admin, body={"query": {"a": {"$gt": operand}}}
        )
        assert fine.status == 200, fine.text
    small = api.post(f"/repository/find/{datatype}", headers=admin, body={"query": {"a": {"$in": [1, 2, 3]}}})
    assert small.status == 200, small.text


def test_oversized_query_operands_path_ids_and_cursors_are_422(
    api: LocalApi, admin: dict[str, str], datatype: str
) -> None:
    # A string operand of 64 KB, a key beyond the sort key's 1 KB, an $in of 101 values, a huge cursor
    for body in (
        {"query": {"a": "x" * 65536}},
        {"query": {"a": {"$in": ["x"] * 101}}},
        {"query": {f"f{i}": 1 for i in range(21)}},
        {"options": {"next": "x" * 5000}},
        {"query": {"a": {"$gt": None}}},  # DynamoDB orders strings and numbers only
        {"query": {"a": {"$lte": True}}},
    ):
        assert_error(
            api.post(f"/repository/find/{datatype}", headers=admin, body=body), 422, "validation_error"
        )
    long_id = f"acme:{datatype}:" + "x" * 2000
    assert_error(api.get(f"/repository/get/{datatype}/{long_id}", headers=admin), 422, "validation_error")
    assert_error(
        api.post(f"/repository/delete/{datatype}", headers=admin, body=[long_id]), 422, "validation_error"
    )
    assert_error(
        api.get(f"/repository/find-by-attribute/{datatype}/a/{'x' * 5000}", headers=admin),
        422,
        "validation_error",
    )
    assert_error(
        api.get(f"/repository/find-by-attribute/{datatype}/a/b?next={'x' * 5000}", headers=admin),
        422,
        "validation_error",
    )


def test_a_cursor_from_an_unsorted_find_is_422_in_a_sorted_find_and_the_reverse(
    api: LocalApi, admin: dict[str, str], datatype: str
) -> None:
    # Given a collection of three records and a cursor of each kind of find
    for i in range(3):
        api.post(f"/repository/create/{datatype}", headers=admin, body={"i": i})
    find = f"/repository/find/{datatype}"
    unsorted = api.post(find, headers=admin, body={"options": {"pageSize": 1}}).json()["next"]
    by_i = api.post(find, headers=admin, body={"options": {"pageSize": 1, "sort": "i"}}).json()["next"]
    assert unsorted and by_i
    # When each is given to a find of the other kind, or to another sort, direction or query
    for options, query in (
        ({"pageSize": 1, "sort": "i", "next": unsorted}, {}),
        ({"pageSize": 1, "next": by_i}, {}),
        ({"pageSize": 1, "sort": "i", "sortType": "desc", "next": by_i}, {}),
        ({"pageSize": 1, "sort": "other", "next": by_i}, {}),
        ({"pageSize": 1, "sortType": "desc", "next": unsorted}, {}),
        ({"pageSize": 1, "next": unsorted}, {"i": {"$gte": 0}}),
    ):
        # Then it is 422 "not a cursor of this list", never 500 or a page of another query
        response = api.post(find, headers=admin, body={"query": query, "options": options})
        assert_error(response, 422, "validation_error")
        assert response.json()["details"][0]["field"] == "next", response.text
    # While each cursor still serves its own query
    same = api.post(find, headers=admin, body={"options": {"pageSize": 1, "sort": "i", "next": by_i}}).json()
    assert [r["data"]["i"] for r in same["data"]] == [1]
    assert (
        len(api.post(find, headers=admin, body={"options": {"pageSize": 1, "next": unsorted}}).json()["data"])
        == 1
    )


def test_a_bulk_delete_naming_one_record_twice_is_422_and_deletes_nothing(
    api: LocalApi, admin: dict[str, str], datatype: str
) -> None:
    # Given two records
    first, second = (
        api.post(f"/repository/create/{datatype}", headers=admin, body={"i": i}).json() for i in range(2)
    )
    # When a bulk delete names the first by its pk and by its sk (or twice the same way)
    for ids in ([first["pk"], second["sk"], first["sk"]], [first["sk"], first["sk"]]):
        response = api.post(f"/repository/delete/{datatype}", headers=admin, body=ids)
        # Then it is 422 (duplicate ids in one bulk request), and nothing is deleted
        assert_error(response, 422, "validation_error")
        assert response.json()["details"][0]["field"].startswith("ids"), response.text
    assert count(api, admin, datatype) == 2
    assert api.post(
        f"/repository/delete/{datatype}", headers=admin, body=[first["pk"], second["sk"]]
    ).json() == {"ok": True}
    assert count(api, admin, datatype) == 0


def test_bulk_delete_ids_must_be_a_bounded_list_of_strings(
    api: LocalApi, admin: dict[str, str], datatype: str
) -> None:
    for body in ([], [f"{datatype}-x"] * 26, [1, 2], {"ids": []}):
        assert_error(
            api.post(f"/repository/delete/{datatype}", headers=admin, body=body), 422, "validation_error"
        )
