"""The outbox under a bus outage: events are delayed, never lost, and none is invented."""

from __future__ import annotations

from typing import Any

import boto3

from appengine_core.infra.envelope import Record
from appengine_core.infra.settings import get_settings
from appengine_local.runtime import LocalLambda
from appengine_local.streams import StreamMapping
from appengine_local.template import load_template
from tests.integration.conftest import bearer_for


def test_every_event_arrives_after_the_bus_recovers(
    gateway: Any, functions: LocalLambda, tenants: dict[str, Record], bus_messages: Any
) -> None:
    admin = bearer_for(tenants["acme_admin"])
    relay = StreamMapping(load_template(), functions, "PublisherFunction")
    events = boto3.client("events", region_name="us-east-1")
    bus = get_settings().event_bus_name
    rules = {r["Name"]: r for r in events.list_rules(EventBusName=bus)["Rules"]}
    targets = events.list_targets_by_rule(Rule="capture-all", EventBusName=bus)["Targets"]

    # Given the bus is down (deleted: PutEvents fails)
    events.remove_targets(Rule="capture-all", EventBusName=bus, Ids=[t["Id"] for t in targets])
    events.delete_rule(Name="capture-all", EventBusName=bus)
    events.delete_event_bus(Name=bus)
    # When records are written, and the publisher runs (and fails) several times
    created = [
        gateway.post("/repository/create", headers=admin, json={"datatype": "note", "data": {"i": i}}).json
        for i in range(5)
    ]
    assert all(r["version"] == 1 for r in created), "writes do not depend on the bus"
    for _ in range(3):
        assert relay.poll_once() == 0
    # Then once the bus is back, every event arrives: once each, in order
    events.create_event_bus(Name=bus)
    events.put_rule(Name="capture-all", EventBusName=bus, EventPattern=rules["capture-all"]["EventPattern"])
    events.put_targets(Rule="capture-all", EventBusName=bus, Targets=targets)
    assert relay.poll_once() == 5
    received = [e for e in bus_messages() if e["detail-type"] == "record.created"]
    assert [e["detail"]["sk"] for e in received] == [r["sk"] for r in created]
    assert len({e["detail"]["eventId"] for e in received}) == 5
    assert relay.poll_once() == 0
