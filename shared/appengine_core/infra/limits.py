"""What DynamoDB would refuse, refused first with 422 (contract §1): no input may cause a 500.

moto lets some of these through where real DynamoDB does not, so the service checks them itself before
any write or query: numbers beyond 38 significant digits or outside 1e-130..1e126 (in magnitude),
NaN/Infinity, nesting deeper than 32 levels, items over 400 KB, expressions over 4 KB.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal, InvalidOperation
from typing import Any

from appengine_core.infra.errors import invalid_field

MAX_NESTING = 32  # DynamoDB's limit on nested attribute levels
MAX_ITEM_BYTES = 400 * 1024
MAX_EXPRESSION_BYTES = 4 * 1024
MAX_SIGNIFICANT_DIGITS = 38
MAX_ATTRIBUTE_NAME_BYTES = 65535
_SMALLEST = Decimal("1e-130")
_LARGEST = Decimal("1e126")


def number_problem(value: int | float | Decimal) -> str | None:
    """Why DynamoDB would refuse this number, or None when it can store it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "numbers must be finite (no NaN or Infinity)"
    try:
        # The Decimal the store hands boto3: ints keep every digit, floats go through repr (store.to_dynamo).
        number = (
            value if isinstance(value, Decimal) else Decimal(value if isinstance(value, int) else repr(value))
        )
    except (InvalidOperation, ValueError):
        return "not a number"
    if not number.is_finite():
        return "numbers must be finite (no NaN or Infinity)"
    if number == 0:
        return None
    magnitude = abs(number)
    if magnitude < _SMALLEST or magnitude >= _LARGEST:
        return "numbers must lie within 1e-130 and 1e126 in magnitude"
    # boto3 refuses any number it would have to round to 38 digits, trailing zeros of the coefficient
    # included (10**40 as an int is 41 digits to it); count by hand, as normalize() rounds to 28 first.
    digits = "".join(map(str, number.as_tuple().digits)).lstrip("0")
    if len(digits) > MAX_SIGNIFICANT_DIGITS:
        return f"numbers may have at most {MAX_SIGNIFICANT_DIGITS} significant digits"
    return None


def check_storable(
    value: Any, field: str, *, max_depth: int = MAX_NESTING, max_bytes: int | None = None
) -> Any:
    """``value`` unchanged when DynamoDB can store it under ``field``; else 422 naming the field."""

    def walk(node: Any, depth: int, path: str) -> None:
        if depth > max_depth:
            raise invalid_field(field, f"nested deeper than {max_depth} levels")
        if isinstance(node, int | float | Decimal) and not isinstance(node, bool):
            problem = number_problem(node)
            if problem:
                raise invalid_field(path, problem)
        elif isinstance(node, dict):
            for key, child in node.items():
                if len(str(key).encode()) > MAX_ATTRIBUTE_NAME_BYTES:
                    raise invalid_field(
                        path, f"attribute names are limited to {MAX_ATTRIBUTE_NAME_BYTES} bytes"
                    )
                walk(child, depth + 1, f"{path}.{key}")
        elif isinstance(node, list | tuple):
            for index, child in enumerate(node):
                walk(child, depth + 1, f"{path}[{index}]")

    walk(value, 1, field)
    limit = max_bytes if max_bytes is not None else MAX_ITEM_BYTES
    if len(json.dumps(value, separators=(",", ":"), default=str).encode()) > limit:
        raise invalid_field(field, f"larger than {limit // 1024} KiB")
    return value


def check_number(value: Any, field: str) -> Any:
    """One scalar query operand or parameter: a number DynamoDB can compare, else 422."""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        problem = number_problem(value)
        if problem:
            raise invalid_field(field, problem)
    return value
