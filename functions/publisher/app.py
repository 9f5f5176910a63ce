"""Outbox publisher: DynamoDB stream (outbox inserts only) -> EventBridge, with partial-batch retries.

A record whose event the bus refuses is reported as a batch item failure, so Lambda retries it (and
what follows it on the shard) until the bus takes it: an outage delays events. A record still refused
at 6 hours old (the template's ``MaximumRecordAgeInSeconds``) is parked in the dead-letter queue.
Delivery is at least once; every event carries ``eventId`` for consumers that must deduplicate.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from appengine_core.infra.outbox import OutboxRelay

logger = Logger(service="publisher")
metrics = Metrics(namespace="AppEngine", service="publisher")
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


@cache
def relay() -> OutboxRelay:
    return OutboxRelay()


def publish_record(record: DynamoDBRecord) -> None:
    image = record.dynamodb.new_image if record.dynamodb else None
    if not image:
        return
    event = relay().relay(image)
    logger.info(
        "event published",
        extra={"detailType": event.detail_type, "orgid": event.orgid, "eventId": event.detail.get("eventId")},
    )
    metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=1)


@metrics.log_metrics(raise_on_empty_metrics=False)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=publish_record, processor=processor, context=context
    )
