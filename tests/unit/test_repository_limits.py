"""The repository's own input limits (contract §1, the 422 rule): query operands, filter size, cursors of
one query only, payload numbers and path ids."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from appengine_core.infra.errors import ValidationFailed
from appengine_core.infra.limits import MAX_EXPRESSION_BYTES
from appengine_core.infra.paging import decode_cursor, encode_cursor
from appengine_core.records.finder import query_identity
from appengine_core.records.query_language import build_filter, check_expression, expression_bytes
from appengine_core.records.service import check_data, check_path_id


def problem_field(error: pytest.ExceptionInfo[ValidationFailed]) -> str:
    return str(error.value.details[0]["field"])


@pytest.mark.parametrize(
    ("operand", "expected"),
    [(1.5, Decimal("1.5")), (10**37, Decimal(10**37)), (-2.5e-120, Decimal("-2.5E-120")), (True, True)],
)
def test_number_operands_become_the_decimals_boto3_sends(operand: Any, expected: Any) -> None:
    condition = build_filter({"n": operand})
    assert condition is not None
    assert condition.get_expression()["values"][1] == expected


@pytest.mark.parametrize(
    "operand", [10**40, 12345678901234567890123456789012345678901, 1e200, 1e-200, float("nan"), float("inf")]
)
def test_numbers_dynamodb_refuses_are_422_in_every_operator(operand: Any) -> None:
    for query in ({"n": operand}, {"n": {"$lte": operand}}, {"n": {"$in": [1, operand]}}):
        with pytest.raises(ValidationFailed) as error:
            build_filter(query)
        assert problem_field(error) == "query.n"


def test_string_operands_are_bounded() -> None:
    assert build_filter({"s": "x" * 1024}) is not None
    with pytest.raises(ValidationFailed):
        build_filter({"s": "x" * 1025})
    with pytest.raises(ValidationFailed):
        build_filter({"s": "é" * 600})  # 1200 bytes


def test_the_filter_size_is_measured_as_boto3_builds_it_and_refused_over_4_kb() -> None:
    # Given the smallest filter: the key condition takes #n0 and :v0, the filter what follows
    small = build_filter({"a": 1})
    assert small is not None
    assert expression_bytes(small) == len("#n1.#n2 = :v1")
    # When many fields each take many $in values
    wide = build_filter({f"field{f}": {"$in": list(range(100))} for f in range(20)})
    narrow = build_filter({f"field{f}": {"$in": list(range(10))} for f in range(20)})
    assert wide is not None and narrow is not None
    # Then the wide one is over DynamoDB's limit and refused, the narrow one passes
    assert expression_bytes(wide) > MAX_EXPRESSION_BYTES
    with pytest.raises(ValidationFailed) as error:
        check_expression(wide)
    assert problem_field(error) == "query"
    assert check_expression(narrow) is narrow
    assert check_expression(None) is None


def test_a_cursor_belongs_to_one_query_sort_and_direction() -> None:
    unsorted = query_identity({"a": 1, "b": 2}, None, descending=False)
    assert unsorted == query_identity({"b": 2, "a": 1}, None, descending=False), "key order is irrelevant"
    others = {
        query_identity({"a": 1}, None, descending=False),
        query_identity({"a": 1, "b": 2}, None, descending=True),
        query_identity({"a": 1, "b": 2}, "price", descending=False),
        query_identity({"a": 1, "b": 2}, "price", descending=True),
    }
    assert unsorted not in others and len(others) == 4
    cursor = encode_cursor("acme", "note", "acme:note:0001", unsorted)
    assert decode_cursor(cursor, "acme", "note", unsorted) == "acme:note:0001"
    for query in (None, query_identity({}, None, descending=False)):
        with pytest.raises(ValidationFailed):
            decode_cursor(cursor, "acme", "note", query)
    with pytest.raises(ValidationFailed):  # a cursor of a plain list is no cursor of a find
        decode_cursor(encode_cursor("acme", "note", "acme:note:0001"), "acme", "note", unsorted)


def test_cursors_and_their_keys_are_bounded() -> None:
    with pytest.raises(ValidationFailed):
        decode_cursor("x" * 2049, "acme", "note")
    with pytest.raises(ValidationFailed):  # a sort key DynamoDB would refuse as ExclusiveStartKey
        decode_cursor(encode_cursor("acme", "note", "acme:note:" + "x" * 1100), "acme", "note")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"n": 10**40}, "data.n"),  # 1 followed by 40 zeros: boto3 sends every digit
        ({"n": 12345678901234567890123456789012345678901}, "data.n"),
        ({"a": {"n": 1e200}}, "data.a.n"),
        ({"a": [1e-200]}, "data.a[0]"),
        ({"n": float("nan")}, "data.n"),
        ({"deep": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}, "data"),
    ],
)
def test_payloads_dynamodb_cannot_store_are_422(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as error:
        check_data(data)
    assert problem_field(error) == field


def test_payloads_within_the_limits_pass_unchanged() -> None:
    data = {"n": 10**37, "f": 1.5, "tiny": 1e-129, "s": "x", "deep": [[[1]]]}
    assert check_data(data) is data


def test_path_ids_are_bounded() -> None:
    assert check_path_id("note-1") == "note-1"
    for bad in ("", "x" * 513):
        with pytest.raises(ValidationFailed):
            check_path_id(bad)
