"""What DynamoDB refuses is refused first (contract §1): the number and nesting rules of ``limits``."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appengine_core.infra.errors import ValidationFailed
from appengine_core.infra.limits import MAX_NESTING, check_storable, number_problem


@pytest.mark.parametrize(
    "number",
    [0, 1, -1, 0.5, 1e40, 10**37, 1e125, 1e-129, Decimal("12345678901234567890123456789012345678"), True],
)
def test_numbers_dynamodb_stores_pass(number: Any) -> None:
    assert number_problem(number) is None


@pytest.mark.parametrize(
    "number",
    [
        12345678901234567890123456789012345678901,  # 41 significant digits
        10**40,  # boto3 sends an int's every digit: 41 of them
        Decimal("1.2345678901234567890123456789012345678901"),
        1e126,
        -1e200,
        1e-131,
        math.nan,
        math.inf,
        -math.inf,
    ],
)
def test_numbers_dynamodb_refuses_fail(number: Any) -> None:
    assert number_problem(number) is not None


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_nesting_is_bounded_at_dynamodbs_limit() -> None:
    # Given a value exactly at the limit and one level beyond it
    check_storable(nested(MAX_NESTING), "data")
    with pytest.raises(ValidationFailed) as refused:
        check_storable(nested(MAX_NESTING + 1), "data")
    assert refused.value.details == [{"field": "data", "problem": f"nested deeper than {MAX_NESTING} levels"}]


def test_the_field_of_a_bad_number_is_named() -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_storable({"prices": [1, {"big": 10**45 + 1}]}, "data")
    assert refused.value.details and refused.value.details[0]["field"] == "data.prices[1].big"


def test_size_is_bounded() -> None:
    with pytest.raises(ValidationFailed):
        check_storable({"blob": "x" * 2048}, "metadata", max_bytes=1024)


@given(st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1))
def test_every_integer_of_38_digits_is_storable(number: int) -> None:
    assert number_problem(number) is None
