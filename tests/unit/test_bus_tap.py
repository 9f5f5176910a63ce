"""The local stack's bus tap hands every event on to its listeners once, and a drain that starts while
another is handing events on waits for it: the dev mailbox route drains before it reads, so a message
sent by the request before is always there (a race the contract tests once lost under load)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from appengine_local.bus_tap import BusTap
from appengine_local.resources import LOCAL_REGION


@pytest.fixture
def tap(clean_env: pytest.MonkeyPatch) -> Iterator[BusTap]:
    for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}.items():
        clean_env.setenv(name, value)
    with mock_aws():
        boto3.client("events", region_name=LOCAL_REGION).create_event_bus(Name="bus")
        yield BusTap("bus")


def publish(detail_type: str) -> None:
    entry = {
        "Source": "appengine",
        "DetailType": detail_type,
        "Detail": "{}",
        "EventBusName": "bus",
    }
    boto3.client("events", region_name=LOCAL_REGION).put_events(Entries=[entry])


def test_a_drain_waits_for_the_events_another_drain_is_handing_on(tap: BusTap) -> None:
    # Given a listener that holds the first event it gets until released, as a slow rule target would
    handed: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def slow_listener(event: dict[str, object]) -> None:
        holding.set()
        release.wait(5)
        handed.append(str(event["detail-type"]))

    tap.subscribe(slow_listener)
    publish("notification.requested")
    background = threading.Thread(target=tap.drain)  # the tap's own poll
    background.start()
    assert holding.wait(5)

    # When the mailbox route drains while the poll still holds the event it received
    route_drain = threading.Thread(target=tap.drain)
    route_drain.start()
    route_drain.join(0.3)
    # Then that drain has not returned before the event was handed on
    assert route_drain.is_alive() and handed == []
    release.set()
    route_drain.join(5)
    background.join(5)
    assert not route_drain.is_alive() and handed == ["notification.requested"]
