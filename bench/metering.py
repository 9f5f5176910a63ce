"""The usage meter's write model (issue 18 item 3), measured: one second of a busy org's traffic
(5,000 requests) delivered as CloudWatch Logs would, in batches per log stream (one stream per warm
container), applied by the metering function's ``UsageRecorder`` on moto. Printed: the writes on the
org's counter item, against one write per request (the meter before it left the request path), and
against the 1,000 writes a second a single DynamoDB item takes. A second delivery of every batch (a
retry) must add nothing.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

REQUESTS_PER_SECOND = 5_000
ITEM_WRITES_PER_SECOND = 1_000  # what one DynamoDB item (partition) takes


def measure(containers: int) -> dict[str, Any]:
    from appengine_core.edge.metering import UsageLine, UsageRecorder
    from appengine_core.identity.directory import DirectoryService
    from appengine_core.infra import aws
    from appengine_core.infra.settings import get_settings

    DirectoryService().create_org("busy", "Busy")
    day = time.strftime("%Y-%m-%d", time.gmtime())
    lines = [UsageLine(event_id=uuid.uuid4().hex, orgid="busy", day=day) for _ in range(REQUESTS_PER_SECOND)]
    batches = [lines[n::containers] for n in range(containers)]
    counter_writes = 0
    client = aws.dynamodb().meta.client

    def count(params: dict[str, Any], **_: Any) -> None:
        nonlocal counter_writes
        for entry in params.get("TransactItems", []):
            key = (entry.get("Update") or {}).get("Key", {})
            if str(key.get("SK", "")).startswith("busy:#usage:"):
                counter_writes += 1

    client.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", count)
    recorder = UsageRecorder()
    for batch in batches:
        recorder.record(batch)
    first_writes = counter_writes
    for batch in batches:  # every batch delivered again
        recorder.record(batch)
    table = aws.dynamodb().Table(get_settings().table_name)
    item = table.get_item(Key={"PK": "busy:#usage", "SK": f"busy:#usage:{day}"})["Item"]
    counted = int(str(item["requests"]))
    return {
        "containers": containers,
        "writes": first_writes,
        "retried": counter_writes - first_writes,
        "counted": counted,
    }


def main() -> None:
    from bench.emulated import emulated_stack

    containers = int(os.environ.get("BENCH_METERING_CONTAINERS", "100"))
    with emulated_stack():
        result = measure(containers)
    before, now = REQUESTS_PER_SECOND, result["writes"]
    rows = [
        ("writes on the org's counter, one per request (before)", before, _share(before)),
        ("writes on the org's counter, one per batch (now)", now, _share(now)),
        (
            "batches delivered again (a retry): transactions tried",
            result["retried"],
            "all refused by their markers",
        ),
        ("requests counted", result["counted"], f"(exact: {result['counted'] == REQUESTS_PER_SECOND})"),
    ]
    print(
        f"usage metering, one second of {REQUESTS_PER_SECOND:,} requests of one org, "
        f"delivered in {containers} batches (one per warm container's log stream)"
    )
    for label, value, note in rows:
        print(f"  {label:<56} {value:6,}   {note}")


def _share(writes: int) -> str:
    return f"x {writes / ITEM_WRITES_PER_SECOND:5.2f} of the 1,000 writes/s one item takes"


if __name__ == "__main__":
    main()
