"""The find query language of contract §6, checked and turned into a DynamoDB filter on ``data``.

``{"field": value}`` is equality; ``{"field": {"$in": [...]}}``, ``$gt``, ``$gte``, ``$lt``, ``$lte``,
``$ne`` and ``$exists`` compare; several fields are ANDed; ``a.b`` reaches into nested objects. No
regular expressions. The filter narrows what one Query returns; it never widens what is read, which is
always one org's one collection.
"""

from __future__ import annotations

import math
import re
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase

from appengine_core.errors import ValidationFailed, invalid_field

FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,7}$")
OPERATORS = ("$in", "$gt", "$gte", "$lt", "$lte", "$ne", "$exists")
MAX_CONDITIONS = 20
MAX_IN = 100


def _invalid(field: str, problem: str) -> ValidationFailed:
    return invalid_field(f"query.{field}", problem)


def _scalar(field: str, value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _invalid(field, "numbers must be finite")
        return value
    raise _invalid(field, "compare with a string, number, boolean or null")


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
    return comparisons[operator](_scalar(field, operand))
