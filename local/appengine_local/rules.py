"""A local stand-in for EventBridge rules whose target is one of the template's functions.

Every function with an ``EventBridgeRule`` event (the mailer, the audit writer, ...) gets the events
drained from the bus (``BusTap``) that match its rule's pattern, as EventBridge delivers them: the
event envelope (``version``, ``id``, ``detail-type``, ``source``, ``account``, ``time``, ``region``,
``resources``, ``detail``), or what the rule's ``Input`` / ``InputPath`` make of it. EventBridge invokes
its targets asynchronously, so a target that fails is logged and never stops the other targets.
"""

from __future__ import annotations

import json
import logging
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from appengine_local.resources import resolve
from appengine_local.runtime import LocalLambda
from appengine_local.template import Template

log = logging.getLogger("appengine.local.rules")

# The fields of an event as EventBridge hands it to a target (moto adds e.g. ``ingestion-time``).
ENVELOPE_FIELDS = (
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
)

_MISSING = object()
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    ">=": operator.ge,
    ">": operator.gt,
}
_OPERATORS = {"prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "exists", "wildcard"}


class InvalidPattern(ValueError):
    """The template holds an event pattern EventBridge would refuse (or this stand-in cannot match)."""


# -- event patterns ------------------------------------------------------------------------------------
def validate_pattern(pattern: Any, path: str = "") -> None:
    """Refuse what EventBridge refuses: every value is an object or a non-empty array of filters."""
    if not isinstance(pattern, dict) or not pattern:
        raise InvalidPattern(f"{path or 'pattern'}: must be a non-empty object")
    for key, value in pattern.items():
        where = f"{path}.{key}" if path else key
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2:
                raise InvalidPattern(f"{where}: $or takes a list of at least two patterns")
            for option in value:
                validate_pattern(option, where)
        elif isinstance(value, dict):
            validate_pattern(value, where)
        elif isinstance(value, list):
            if not value:
                raise InvalidPattern(f"{where}: empty arrays are not allowed")
            for rule in value:
                if isinstance(rule, dict) and (len(rule) != 1 or next(iter(rule)) not in _OPERATORS):
                    raise InvalidPattern(f"{where}: unsupported filter {json.dumps(rule)}")
                if isinstance(rule, dict) and "numeric" in rule:
                    _validate_numeric(rule["numeric"], where)
        else:
            raise InvalidPattern(f"{where}: must be an object or an array")


def _validate_numeric(conditions: Any, where: str) -> None:
    if (
        not isinstance(conditions, list)
        or not conditions
        or len(conditions) % 2
        or any(op not in _COMPARISONS for op in conditions[::2])
        or any(isinstance(b, bool) or not isinstance(b, int | float) for b in conditions[1::2])
    ):
        raise InvalidPattern(f"{where}: numeric takes pairs of an operator and a number")


def matches_pattern(pattern: Mapping[str, Any], event: Any) -> bool:
    """EventBridge content matching: every field of the pattern matches; a list enumerates the values
    allowed; a field holding an array matches when any element does; filters ``prefix``, ``suffix``,
    ``equals-ignore-case``, ``anything-but``, ``numeric``, ``exists``, ``wildcard`` and ``$or``."""
    node = event if isinstance(event, dict) else {}
    for key, expected in pattern.items():
        if key == "$or":
            if not any(matches_pattern(option, node) for option in expected):
                return False
        elif isinstance(expected, dict):
            value = node.get(key, _MISSING)
            if not matches_pattern(expected, value if isinstance(value, dict) else {}):
                return False
        elif not _leaf_matches(expected, node.get(key, _MISSING)):
            return False
    return True


def _leaf_matches(rules: list[Any], value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    for rule in rules:
        if isinstance(rule, dict) and "exists" in rule:
            present = value is not _MISSING and not isinstance(value, dict)
            if present == bool(rule["exists"]):
                return True
            continue
        if isinstance(rule, dict) and "anything-but" in rule:
            # Anything but: the field is there and none of its values is one of those excluded.
            if value is not _MISSING and all(not _excluded(rule["anything-but"], v) for v in values):
                return True
            continue
        if value is not _MISSING and any(_value_matches(rule, v) for v in values):
            return True
    return False


def _same(expected: Any, value: Any) -> bool:
    """JSON equality: 1 and 1.0 are one number, but true is not 1 and "1" is not 1."""
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(expected, bool) and isinstance(value, bool) and expected == value
    if isinstance(expected, int | float) and isinstance(value, int | float):
        return float(expected) == float(value)
    return type(expected) is type(value) and bool(expected == value)


def _value_matches(rule: Any, value: Any) -> bool:
    if not isinstance(rule, dict):
        return _same(rule, value)
    ((operator, argument),) = rule.items()
    if operator == "numeric":
        return _numeric(argument, value)
    if not isinstance(value, str):
        return False
    if operator in ("prefix", "suffix"):
        ignore_case = isinstance(argument, dict)
        needle = str(argument["equals-ignore-case"] if ignore_case else argument)
        text = value.lower() if ignore_case else value
        needle = needle.lower() if ignore_case else needle
        return text.startswith(needle) if operator == "prefix" else text.endswith(needle)
    if operator == "equals-ignore-case":
        options = argument if isinstance(argument, list) else [argument]
        return any(value.lower() == str(o).lower() for o in options)
    if operator == "wildcard":
        regex = ".*".join(re.escape(part) for part in str(argument).split("*"))
        return re.fullmatch(regex, value, flags=re.DOTALL) is not None
    return False


def _excluded(argument: Any, value: Any) -> bool:
    if isinstance(argument, dict):
        return _value_matches(argument, value)
    options = argument if isinstance(argument, list) else [argument]
    return any(_same(o, value) for o in options)


def _numeric(conditions: list[Any], value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    pairs = zip(conditions[::2], conditions[1::2], strict=True)
    return all(_COMPARISONS[op](value, bound) for op, bound in pairs)


# -- the template's rules -----------------------------------------------------------------------------
@dataclass(frozen=True)
class RuleTarget:
    """One ``EventBridgeRule`` event of one function."""

    function: str  # logical id
    event_name: str  # the event's name under the function's Events
    bus_name: str | None  # None: the account's default bus
    pattern: dict[str, Any]
    enabled: bool = True
    input: str | None = None
    input_path: str | None = None

    def payload(self, event: Mapping[str, Any]) -> Any:
        delivered = {k: event[k] for k in ENVELOPE_FIELDS if k in event}
        if self.input is not None:
            return json.loads(self.input)
        if self.input_path:
            return _json_path(self.input_path, delivered)
        return delivered


def _json_path(path: str, document: Any) -> Any:
    """The simple JSONPath EventBridge takes for ``InputPath``: ``$`` or ``$.a.b``."""
    if path == "$":
        return document
    if not path.startswith("$."):
        raise InvalidPattern(f"unsupported InputPath {path!r}")
    value = document
    for part in path[2:].split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _resolved(value: Any, template: Template) -> Any:
    """``resolve`` applied through a whole structure (a pattern may hold intrinsics)."""
    if isinstance(value, dict):
        if len(value) == 1 and (next(iter(value)) == "Ref" or next(iter(value)).startswith("Fn::")):
            return resolve(value, template)
        return {k: _resolved(v, template) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, template) for v in value]
    return value


def rule_targets(template: Template) -> list[RuleTarget]:
    """Every function event of ``Type: EventBridgeRule`` in the template; a bad pattern raises."""
    targets = []
    for logical_id, resource in template.of_type("AWS::Serverless::Function").items():
        for event_name, event in (resource["Properties"].get("Events") or {}).items():
            if event.get("Type") != "EventBridgeRule":
                continue
            properties = event.get("Properties") or {}
            if "InputTransformer" in properties:
                raise InvalidPattern(f"{logical_id}.{event_name}: InputTransformer is not emulated locally")
            pattern = _resolved(properties.get("Pattern"), template)
            if isinstance(pattern, str):
                pattern = json.loads(pattern)
            validate_pattern(pattern, f"{logical_id}.{event_name}.Pattern")
            bus = properties.get("EventBusName")
            state = str(_resolved(properties.get("State", "ENABLED"), template)).upper()
            targets.append(
                RuleTarget(
                    function=logical_id,
                    event_name=event_name,
                    bus_name=str(_resolved(bus, template)) if bus is not None else None,
                    pattern=pattern,
                    enabled=state == "ENABLED",
                    input=properties.get("Input"),
                    input_path=properties.get("InputPath"),
                )
            )
    return targets


class RuleDispatcher:
    """Invokes each matching target function in-process for every event of one bus."""

    def __init__(self, template: Template, lambdas: LocalLambda, bus_name: str) -> None:
        self._lambdas = lambdas
        every = rule_targets(template)
        self.targets = [t for t in every if t.enabled and t.bus_name == bus_name]
        for target in every:
            if target.bus_name != bus_name:
                log.warning(
                    "%s.%s listens on bus %s, which the local stack does not tap",
                    target.function,
                    target.event_name,
                    target.bus_name or "default",
                )

    def dispatch(self, event: Mapping[str, Any]) -> list[str]:
        """Deliver ``event`` to every target whose pattern it matches; returns the functions that
        accepted it. A target's failure is logged (as Lambda logs a failed asynchronous invoke)."""
        accepted = []
        for target in self.targets:
            if not matches_pattern(target.pattern, event):
                continue
            try:
                self._lambdas.invoke(target.function, target.payload(event))
            except Exception:
                log.exception(
                    "%s failed on %s %s", target.function, event.get("detail-type"), event.get("id")
                )
                continue
            accepted.append(target.function)
        return accepted
