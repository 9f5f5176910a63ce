"""The find query language of contract §6, checked and turned into a DynamoDB filter on ``data``.

``{"field": value}`` is equality; ``{"field": {"$in": [...]}}``, ``$gt``, ``$gte``, ``$lt``, ``$lte``,
``$ne`` and ``$exists`` compare; several fields are ANDed; ``a.b`` reaches into nested objects. No
regular expressions. The filter narrows what one Query returns; it never widens what is read, which is
always one org's one collection.
"""

from __future__ import annotations

import re
from decimal import Decimal, DecimalException
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase, ConditionExpressionBuilder, Key
from boto3.dynamodb.types import DYNAMODB_CONTEXT

from appengine_core.infra.errors import ValidationFailed, invalid_field
from appengine_core.infra.limits import MAX_EXPRESSION_BYTES, check_number

FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,7}$")
OPERATORS = ("$in", "$gt", "$gte", "$lt", "$lte", "$ne", "$exists")
MAX_CONDITIONS = 20
MAX_IN = 100  # DynamoDB's limit on the operands of one IN
# A comparison operand longer than this cannot be meant; it also keeps a query's values far below
# DynamoDB's 2 MB of substitution values, whatever the expression-size check lets through.
MAX_OPERAND_BYTES = 1024


def _invalid(field: str, problem: str) -> ValidationFailed:
    return invalid_field(f"query.{field}", problem)


def _scalar(field: str, value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        if len(value.encode()) > MAX_OPERAND_BYTES:
            raise _invalid(field, f"compare with at most {MAX_OPERAND_BYTES} bytes")
        return value
    if isinstance(value, int | float):
        return _number(field, value)
    raise _invalid(field, "compare with a string, number, boolean or null")


def _number(field: str, value: int | float) -> Decimal:
    """A number operand as the Decimal boto3 sends (it takes no floats), or 422 if DynamoDB refuses it.

    boto3 converts with DynamoDB's own context (38 digits, every inexact conversion an error), so a
    number it cannot take exactly is refused here rather than failing the Query.
    """
    check_number(value, f"query.{field}")
    try:
        return DYNAMODB_CONTEXT.create_decimal(repr(value) if isinstance(value, float) else value)
    except DecimalException as exc:
        raise _invalid(field, "numbers may have at most 38 digits") from exc


def build_filter(query: dict[str, Any] | None) -> ConditionBase | None:
    """A DynamoDB filter for ``query``, or None when it matches everything; 422 for anything else."""
    if not query:
        return None
    if not isinstance(query, dict):
        raise invalid_field("query", "must be an object")
    conditions: list[ConditionBase] = []
    for field, expected in query.items():
        if not FIELD.fullmatch(field):
            raise _invalid(field, "not a field name (letters, digits, _ and . for nesting)")
        attribute = Attr(f"data.{field}")
        if isinstance(expected, dict):
            if not expected:
                raise _invalid(field, "empty operator object")
            for operator, operand in expected.items():
                conditions.append(_operator(field, attribute, operator, operand))
        elif isinstance(expected, list):
            raise _invalid(field, "use {$in: [...]} to match one of several values")
        else:
            conditions.append(attribute.eq(_scalar(field, expected)))
        if len(conditions) > MAX_CONDITIONS:
            raise invalid_field("query", f"at most {MAX_CONDITIONS} conditions")
    combined = conditions[0]
    for condition in conditions[1:]:
        combined = combined & condition
    return combined


def expression_bytes(condition: ConditionBase) -> int:
    """The size of ``condition`` as the FilterExpression of a collection Query, placeholders included.

    Built the way boto3 builds the request (key condition first, sharing the placeholder numbering), so
    the figure is the one DynamoDB measures against its 4 KB limit.
    """
    builder = ConditionExpressionBuilder()
    builder.build_expression(Key("PK").eq(""), is_key_condition=True)
    return len(builder.build_expression(condition).condition_expression.encode())


def check_expression(condition: ConditionBase | None) -> ConditionBase | None:
    """``condition`` unchanged when DynamoDB would take it as a filter; 422 when it is over 4 KB."""
    if condition is not None and expression_bytes(condition) > MAX_EXPRESSION_BYTES:
        raise invalid_field(
            "query", f"the filter is over {MAX_EXPRESSION_BYTES} bytes; use fewer fields or $in values"
        )
    return condition


def _operator(field: str, attribute: Attr, operator: str, operand: Any) -> ConditionBase:
    if operator == "$in":
        if not isinstance(operand, list) or not 1 <= len(operand) <= MAX_IN:
            raise _invalid(field, f"$in takes a list of 1 to {MAX_IN} values")
        return attribute.is_in([_scalar(field, v) for v in operand])
    if operator == "$exists":
        if not isinstance(operand, bool):
            raise _invalid(field, "$exists takes true or false")
        return attribute.exists() if operand else attribute.not_exists()
    comparisons = {
        "$gt": attribute.gt,
        "$gte": attribute.gte,
        "$lt": attribute.lt,
        "$lte": attribute.lte,
        "$ne": attribute.ne,
    }
    if operator not in comparisons:
        raise _invalid(field, f"unknown operator {operator}; use one of {', '.join(OPERATORS)}")
    if operator != "$ne" and (isinstance(operand, bool) or operand is None):
        # DynamoDB orders strings and numbers only; it refuses the query for any other operand.
        raise _invalid(field, f"{operator} compares with a string or a number")
    return comparisons[operator](_scalar(field, operand))
