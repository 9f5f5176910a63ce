"""Usage metering off the request path: the functions' log group -> subscription filter (usage lines)
-> this function, which adds a batch up and writes one idempotent update per (org, day).

A failure raises, so CloudWatch Logs delivers the batch again; a batch already applied counts nothing
twice (its marker is written in the same transaction as the counter).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import CloudWatchLogsEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from appengine_core.edge.metering import UsageRecorder, usage_lines

logger = Logger(service="metering")
metrics = Metrics(namespace="AppEngine", service="metering")


@cache
def recorder() -> UsageRecorder:
    return UsageRecorder()


@metrics.log_metrics(raise_on_empty_metrics=False)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    batch = CloudWatchLogsEvent(event).parse_logs_data()
    lines = usage_lines((e.get_id, e.timestamp, e.message) for e in batch.log_events)
    recorded = recorder().record(lines)
    logger.info(
        "usage recorded",
        extra={
            "lines": len(lines),
            "applied": recorded.applied,
            "duplicates": recorded.duplicates,
            "unknownOrgs": recorded.unknown_orgs,
        },
    )
    metrics.add_metric(name="UsageLines", unit=MetricUnit.Count, value=len(lines))
    return {"lines": len(lines), "applied": recorded.applied, "duplicates": recorded.duplicates}
