"""A local stand-in for Lambda's DynamoDB-stream event source mapping.

Reads the emulated table's stream (moto), applies the template's filter criteria, invokes the
function with the batch as Lambda would, and honours ``ReportBatchItemFailures``: a failed record and
everything after it on the shard are delivered again on the next poll.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import boto3

from appengine_local.resources import LOCAL_REGION, physical_name
from appengine_local.runtime import LocalLambda
from appengine_local.template import Template

log = logging.getLogger("appengine.local.streams")


def matches(pattern: Any, value: Any) -> bool:
    """EventBridge-style matching as Lambda filter criteria use it: lists enumerate allowed values."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            k in value and matches(p, value[k]) for k, p in pattern.items()
        )
    if isinstance(pattern, list):
        return value in pattern
    return bool(pattern == value)


class StreamMapping:
    def __init__(
        self,
        template: Template,
        lambdas: LocalLambda,
        function: str,
        session: boto3.session.Session | None = None,
    ) -> None:
        session = session or boto3.session.Session(region_name=LOCAL_REGION)
        self._lambdas = lambdas
        self._function = function
        stream_event = next(
            e["Properties"]
            for e in template.resources[function]["Properties"]["Events"].values()
            if e["Type"] == "DynamoDB"
        )
        table_logical_id = stream_event["Stream"]["Fn::GetAtt"][0]
        self._patterns = [
            json.loads(f["Pattern"]) for f in stream_event.get("FilterCriteria", {}).get("Filters", [])
        ]
        self._batch_size = int(stream_event.get("BatchSize", 100))
        self._streams = session.client("dynamodbstreams")
        table = session.client("dynamodb").describe_table(TableName=physical_name(table_logical_id))["Table"]
        self._stream_arn = table["LatestStreamArn"]
        self._last_sequence: dict[str, str] = {}
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._stop = threading.Event()

    def _shards(self) -> list[str]:
        description = self._streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]
        return [shard["ShardId"] for shard in description.get("Shards", [])]

    def poll_once(self) -> int:
        """Deliver what is waiting; returns the number of records the function accepted."""
        accepted = 0
        for shard in self._shards():
            # A fresh iterator after the last record seen, every poll: moto replaces its table object
            # (and so the stream shard) when it rolls back a cancelled transaction, which strands any
            # iterator held across polls. Lambda's own iterators do not have that problem.
            last = self._last_sequence.get(shard)
            position = (
                {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": last}
                if last
                else {"ShardIteratorType": "TRIM_HORIZON"}
            )
            iterator = self._streams.get_shard_iterator(StreamArn=self._stream_arn, ShardId=shard, **position)
            records = self._streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000).get(
                "Records", []
            )
            if records:
                self._last_sequence[shard] = records[-1]["dynamodb"]["SequenceNumber"]
            pending = self._pending.setdefault(shard, [])
            pending.extend(
                r for r in records if not self._patterns or any(matches(p, r) for p in self._patterns)
            )
            while pending:
                batch = pending[: self._batch_size]
                failed_at = self._deliver(batch)
                if failed_at is None:
                    accepted += len(batch)
                    del pending[: len(batch)]
                    continue
                accepted += failed_at
                del pending[:failed_at]
                break  # retry from the failed record on the next poll
        return accepted

    def _deliver(self, batch: list[dict[str, Any]]) -> int | None:
        """Index of the first failed record, or None when the whole batch was accepted."""
        event = {
            "Records": [{**r, "eventSourceARN": self._stream_arn, "awsRegion": LOCAL_REGION} for r in batch]
        }
        try:
            result = self._lambdas.invoke(self._function, event) or {}
        except Exception:
            log.exception("%s failed; the batch will be retried", self._function)
            return 0
        failures = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        for index, record in enumerate(batch):
            if record["dynamodb"].get("SequenceNumber") in failures:
                return index
        return None

    def run_forever(self, interval: float = 0.5) -> threading.Thread:
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.poll_once()
                except Exception:
                    log.exception("stream poll failed")

        thread = threading.Thread(target=loop, daemon=True, name=f"stream-{self._function}")
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
