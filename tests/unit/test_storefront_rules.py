"""Which coupons and gift cards apply (contract §7), and the storefront's filter building."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.conditions import Attr, ConditionExpressionBuilder

from appengine_core.commerce.data import all_of
from appengine_core.commerce.rules import is_active

NOW = datetime(2030, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("item", "applies"),
    [
        ({"data": {"code": "A"}}, True),
        ({"state": "new", "data": {}}, True),
        ({"state": "published", "data": {"active": True}}, True),
        ({"state": "draft", "data": {}}, False),
        ({"state": "disabled", "data": {}}, False),
        ({"state": "archived", "data": {}}, False),
        ({"data": {"active": False}}, False),
        ({"data": {"active": "false"}}, False),
        ({"data": {"expiresAt": "2030-05-31T23:59:59Z"}}, False),
        ({"data": {"expiresAt": "2030-06-01T00:00:01+00:00"}}, True),
        ({"data": {"expiresAt": "2030-06-02"}}, True),
        ({"data": {"expiresAt": Decimal(NOW.timestamp() - 1)}}, False),
        ({"data": {"expiresAt": int(NOW.timestamp()) + 60}}, True),
        ({"data": {"expiresAt": "next tuesday"}}, False),  # unreadable: fails closed
        ({"data": {"expiresAt": ""}}, True),
    ],
)
def test_a_code_applies_only_while_active(item: dict[str, Any], applies: bool) -> None:
    assert is_active(item.get("state"), item["data"], NOW) is applies


def test_many_filter_terms_build_a_shallow_expression() -> None:
    # Given far more terms than a left-deep chain could render without deep recursion
    conditions = [Attr("data.categories").contains(f"c{i}") for i in range(2000)]
    # When they are combined and rendered
    expression = ConditionExpressionBuilder().build_expression(all_of(conditions))
    # Then every term is in the expression
    assert expression.condition_expression.count("contains(") == 2000
    assert all_of([]) is None
