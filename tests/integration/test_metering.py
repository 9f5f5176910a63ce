"""Issue 18 item 3: usage is counted off the request path. A request only logs a usage line; the
metering function receives the lines in batches (the log group's subscription) and writes one update per
(org, day) per batch, idempotently: a redelivered batch counts nothing twice, a made-up org nothing."""

from __future__ import annotations

import base64
import gzip
import json
import logging
from typing import Any

from appengine_core.edge.metering import USAGE_LOGGER, UsageMeter
from appengine_core.infra import aws
from appengine_core.infra.envelope import Record
from appengine_core.infra.settings import get_settings
from appengine_local.runtime import LocalLambda
from tests.conftest import load_event

JAN_1 = 1767225600000  # 2026-01-01T00:00:00Z, in ms


def usage_items() -> dict[str, int]:
    table = aws.dynamodb().Table(get_settings().table_name)
    items = table.scan()["Items"]
    return {str(i["SK"]): int(i["requests"]) for i in items if ":#usage:" in str(i["SK"])}


def batch(*lines: tuple[str, str, int]) -> dict[str, Any]:
    """A CloudWatch Logs delivery of usage lines (event id, orgid, timestamp in ms)."""
    body = {
        "messageType": "DATA_MESSAGE",
        "logGroup": "/aws/lambda/appengine-functions",
        "logEvents": [
            {"id": event_id, "timestamp": at, "message": json.dumps({"meter": "request", "orgid": orgid})}
            for event_id, orgid, at in lines
        ],
    }
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(body).encode())).decode()}}


def test_the_sample_delivery_counts_three_requests_once_even_when_delivered_again(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    # Given the sample delivery of three usage lines of acme on 1 January 2026
    event = load_event("metering-usage-lines")

    # When the metering function receives it, and then the same delivery again (a retry)
    first = functions.invoke("MeteringFunction", event)
    again = functions.invoke("MeteringFunction", event)

    # Then the day's counter holds 3: one update for the batch, the redelivery a no-op
    assert first == {"lines": 3, "applied": 1, "duplicates": 0}
    assert again == {"lines": 3, "applied": 0, "duplicates": 1}
    assert usage_items()["acme:#usage:2026-01-01"] == 3


def test_one_update_per_org_and_day_and_nothing_for_made_up_orgs(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    # Given a batch spanning two orgs, two days, a made-up org and a line that is not a usage line
    day = 86_400_000
    delivery = batch(
        ("1", "acme", JAN_1),
        ("2", "acme", JAN_1 + 5),
        ("3", "acme", JAN_1 + day),
        ("4", "globex", JAN_1),
        ("5", "no-such-org", JAN_1),
    )

    # When it is delivered
    result = functions.invoke("MeteringFunction", delivery)

    # Then three (org, day) counters were written, each once, and nothing for the made-up org
    assert result == {"lines": 5, "applied": 3, "duplicates": 0}
    counted = usage_items()
    assert counted["acme:#usage:2026-01-01"] == 2 and counted["acme:#usage:2026-01-02"] == 1
    assert counted["globex:#usage:2026-01-01"] == 1
    assert not [sk for sk in counted if sk.startswith("no-such-org:")]


def test_a_request_writes_nothing_it_only_logs_its_usage_line(
    gateway: Any, tenants: dict[str, Record]
) -> None:
    # Given every DynamoDB write of a request recorded, and the usage logger's records too
    writes: list[str] = []
    events = aws.dynamodb().meta.client.meta.events

    def record(model: Any, **_: Any) -> None:
        if model.name in {"UpdateItem", "PutItem", "TransactWriteItems"}:
            writes.append(model.name)

    lines: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, entry: logging.LogRecord) -> None:
            lines.append(entry)

    collector = Collect()
    logging.getLogger(USAGE_LOGGER).addHandler(collector)
    events.register("before-call.dynamodb.*", record)
    try:
        # When a reading route is called
        response = gateway.get("/storefront/products", headers={"orgid": "acme"})
    finally:
        events.unregister("before-call.dynamodb.*", record)
        logging.getLogger(USAGE_LOGGER).removeHandler(collector)

    # Then it wrote nothing, and logged one usage line for acme
    assert response.status_code == 200 and writes == []
    assert [(line.__dict__["meter"], line.__dict__["orgid"]) for line in lines] == [("request", "acme")]


def test_a_usage_line_never_fails_its_request(tenants: dict[str, Record], monkeypatch: Any) -> None:
    # Given a usage logger that fails
    from appengine_core.edge import metering

    class Broken:
        def info(self, *_: Any, **__: Any) -> None:
            raise OSError("stdout closed")

    monkeypatch.setattr(metering, "usage_logger", lambda: Broken())

    # When a request is counted, then nothing is raised (the failure is logged)
    UsageMeter().count_request("acme")
