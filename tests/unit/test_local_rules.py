"""The local stand-in for EventBridge rules: pattern matching as EventBridge does it, and dispatch."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from appengine_local.rules import (
    InvalidPattern,
    RuleDispatcher,
    matches_pattern,
    rule_targets,
    validate_pattern,
)
from appengine_local.template import Template, load_template

EVENT: dict[str, Any] = {
    "version": "0",
    "id": "e-1",
    "detail-type": "notification.requested",
    "source": "appengine",
    "account": "123456789012",
    "time": "2026-01-01T00:00:00Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {
        "orgid": "acme",
        "to": "Buyer@Acme.test",
        "purpose": "magic_link",
        "attempts": 3,
        "tags": ["a", "b"],
        "flag": True,
        "nothing": None,
    },
    "ingestion-time": 1767225600,  # moto's, not EventBridge's
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"source": ["appengine"]}, True),
        ({"source": ["other", "appengine"], "detail-type": ["notification.requested"]}, True),
        ({"source": ["appengine"], "detail-type": ["auth.signed_in"]}, False),
        ({"detail": {"orgid": ["acme"], "purpose": ["magic_link"]}}, True),
        ({"detail": {"orgid": ["globex"]}}, False),
        ({"detail": {"missing": ["x"]}}, False),
        ({"detail": {"tags": ["b"]}}, True),  # an array matches when any element does
        ({"detail": {"tags": ["c"]}}, False),
        ({"detail": {"attempts": [3.0]}}, True),
        ({"detail": {"attempts": ["3"]}}, False),
        ({"detail": {"flag": [True]}}, True),
        ({"detail": {"attempts": [True]}}, False),
        ({"detail": {"nothing": [None]}}, True),
        ({"detail": {"missing": [None]}}, False),
        ({"detail-type": [{"prefix": "notification."}]}, True),
        ({"detail-type": [{"prefix": "auth."}]}, False),
        ({"detail": {"to": [{"suffix": "@Acme.test"}]}}, True),
        ({"detail": {"to": [{"suffix": {"equals-ignore-case": "@acme.TEST"}}]}}, True),
        ({"detail": {"to": [{"prefix": {"equals-ignore-case": "buyer@"}}]}}, True),
        ({"detail": {"to": [{"equals-ignore-case": "buyer@acme.test"}]}}, True),
        ({"detail": {"to": ["buyer@acme.test"]}}, False),  # exact values are case-sensitive
        ({"detail-type": [{"anything-but": ["auth.signed_in"]}]}, True),
        ({"detail-type": [{"anything-but": "notification.requested"}]}, False),
        ({"detail-type": [{"anything-but": {"prefix": "notification."}}]}, False),
        ({"detail": {"missing": [{"anything-but": "x"}]}}, False),
        ({"detail": {"attempts": [{"numeric": [">", 2, "<=", 3]}]}}, True),
        ({"detail": {"attempts": [{"numeric": ["<", 3]}]}}, False),
        ({"detail": {"purpose": [{"numeric": [">", 0]}]}}, False),
        ({"detail": {"purpose": [{"exists": True}]}}, True),
        ({"detail": {"missing": [{"exists": False}]}}, True),
        ({"detail": {"purpose": [{"exists": False}]}}, False),
        ({"detail": {"purpose": [{"wildcard": "magic*"}]}}, True),
        ({"detail": {"purpose": [{"wildcard": "*code"}]}}, False),
        ({"detail": [{"exists": True}]}, False),  # exists looks at leaves only
        ({"$or": [{"source": ["nope"]}, {"detail": {"orgid": ["acme"]}}]}, True),
        ({"$or": [{"source": ["nope"]}, {"detail": {"orgid": ["nope"]}}]}, False),
    ],
)
def test_patterns_match_as_eventbridge_matches_them(pattern: dict[str, Any], expected: bool) -> None:
    # Given a valid pattern, When the event is matched against it, Then the verdict is EventBridge's
    validate_pattern(pattern)
    assert matches_pattern(pattern, EVENT) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        {},
        {"source": "appengine"},
        {"source": []},
        {"detail": {"x": [{"regex": "a.*"}]}},
        {"$or": [{"source": ["a"]}]},
        {"detail": {"n": [{"numeric": [">", 1, "<"]}]}},
        {"detail": {"n": [{"numeric": ["~", 1]}]}},
    ],
)
def test_patterns_eventbridge_refuses_are_refused(pattern: dict[str, Any]) -> None:
    with pytest.raises(InvalidPattern):
        validate_pattern(pattern)


def template_with(events: dict[str, dict[str, Any]]) -> Template:
    """A template of one function per entry, each with the given events."""
    resources: dict[str, Any] = {
        "EventBus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "local-bus"}},
    }
    for name, function_events in events.items():
        resources[name] = {
            "Type": "AWS::Serverless::Function",
            "Properties": {"CodeUri": "functions/x/", "Handler": "app.handler", "Events": function_events},
        }
    return Template(resources=resources, globals={}, parameters={})


def rule(pattern: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return {
        "Type": "EventBridgeRule",
        "Properties": {"EventBusName": {"Ref": "EventBus"}, "Pattern": pattern, **properties},
    }


class ScriptedLambdas:
    """Records invocations; the functions named in ``failing`` raise."""

    def __init__(self, failing: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.failing = failing

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        self.calls.append((logical_id, event))
        if logical_id in self.failing:
            raise RuntimeError(f"{logical_id} is broken")
        return None


def dispatcher(template: Template, lambdas: ScriptedLambdas) -> RuleDispatcher:
    return RuleDispatcher(template, lambdas, "local-bus")  # type: ignore[arg-type]


def test_each_matching_function_gets_the_event_as_eventbridge_delivers_it() -> None:
    # Given two functions subscribed to the event and one to another type
    template = template_with(
        {
            "Mailer": {"Mail": rule({"source": ["appengine"], "detail-type": ["notification.requested"]})},
            "Audit": {"Security": rule({"detail-type": [{"prefix": "notification"}]})},
            "Other": {"Signins": rule({"detail-type": ["auth.signed_in"]}), "Api": {"Type": "Api"}},
        }
    )
    lambdas = ScriptedLambdas()

    # When the event is dispatched
    accepted = dispatcher(template, lambdas).dispatch(EVENT)

    # Then the two subscribers got the EventBridge envelope (without moto's extra fields)
    assert accepted == ["Mailer", "Audit"]
    assert [name for name, _ in lambdas.calls] == ["Mailer", "Audit"]
    delivered = lambdas.calls[0][1]
    assert set(delivered) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert delivered["detail"] == EVENT["detail"]


def test_a_failing_target_is_logged_and_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    # Given the first of two subscribers failing
    pattern = {"source": ["appengine"]}
    template = template_with({"Broken": {"E": rule(pattern)}, "Healthy": {"E": rule(pattern)}})
    lambdas = ScriptedLambdas(failing=("Broken",))

    # When the event is dispatched
    with caplog.at_level(logging.ERROR, logger="appengine.local.rules"):
        accepted = dispatcher(template, lambdas).dispatch(EVENT)

    # Then the healthy one still got it, and the failure was logged
    assert accepted == ["Healthy"]
    assert [name for name, _ in lambdas.calls] == ["Broken", "Healthy"]
    assert any("Broken failed on notification.requested" in r.getMessage() for r in caplog.records)


def test_input_and_input_path_shape_what_the_function_gets() -> None:
    pattern = {"source": ["appengine"]}
    template = template_with(
        {
            "Constant": {"E": rule(pattern, Input='{"job": "x"}')},
            "DetailOnly": {"E": rule(pattern, InputPath="$.detail")},
        }
    )
    lambdas = ScriptedLambdas()
    dispatcher(template, lambdas).dispatch(EVENT)
    assert lambdas.calls == [("Constant", {"job": "x"}), ("DetailOnly", EVENT["detail"])]


def test_disabled_rules_and_rules_on_other_buses_get_nothing() -> None:
    pattern = {"source": ["appengine"]}
    template = template_with(
        {
            "Disabled": {"E": rule(pattern, State="DISABLED")},
            "DefaultBus": {"E": {"Type": "EventBridgeRule", "Properties": {"Pattern": pattern}}},
        }
    )
    lambdas = ScriptedLambdas()
    assert dispatcher(template, lambdas).dispatch(EVENT) == []
    assert lambdas.calls == []


def test_a_pattern_eventbridge_would_refuse_fails_at_start() -> None:
    template = template_with({"Bad": {"E": rule({"source": "appengine"})}})
    with pytest.raises(InvalidPattern, match=r"Bad\.E\.Pattern\.source"):
        rule_targets(template)


def test_the_template_routes_notifications_to_the_mailer_only() -> None:
    # Given the project's template
    targets = rule_targets(load_template())

    # Then every rule's pattern is valid, and notification.requested reaches the mailer and nothing else
    receivers = {t.function for t in targets if matches_pattern(t.pattern, EVENT)}
    assert receivers == {"MailerFunction"}
    assert all(t.bus_name == "appengine-local-events" for t in targets)
