"""Local only: shows what reached the event bus (a log line per event, and GET /_local/events).

A rule on the bus sends every event to an emulated SQS queue, as a real subscriber would receive them;
a thread drains the queue into a bounded, newest-first list and hands each event to the listeners
(the dev mailbox, the stand-in for the template's EventBridge rules).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import boto3
from werkzeug.wrappers import Request, Response

from appengine_local.resources import LOCAL_REGION

log = logging.getLogger("appengine.local.events")
KEEP = 500


class BusTap:
    def __init__(self, bus_name: str, session: boto3.session.Session | None = None) -> None:
        session = session or boto3.session.Session(region_name=LOCAL_REGION)
        self._sqs = session.client("sqs")
        events = session.client("events")
        self._queue_url = self._sqs.create_queue(QueueName="appengine-local-bus-tap")["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_rule(
            Name="local-bus-tap", EventBusName=bus_name, EventPattern=json.dumps({"source": [{"prefix": ""}]})
        )
        events.put_targets(Rule="local-bus-tap", EventBusName=bus_name, Targets=[{"Id": "tap", "Arn": arn}])
        self.received: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self._lock = threading.Lock()
        self._draining = threading.RLock()
        self._listeners: list[Callable[[dict[str, Any]], Any]] = []

    def subscribe(self, listener: Callable[[dict[str, Any]], Any]) -> None:
        """Hand every drained event to ``listener`` too (the dev mailbox, the rule dispatcher)."""
        self._listeners.append(listener)

    def _notify(self, event: dict[str, Any]) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("bus listener %r failed on %s", listener, event.get("detail-type"))

    def drain(self) -> int:
        """Takes every event waiting on the tap's queue and hands each to the listeners. One drain at a
        time: a drain that starts while another holds events it received but has not yet handed on
        waits for it, so whoever drains before reading (the local mailbox route) sees every event
        published before it."""
        with self._draining:
            return self._drain()

    def _drain(self) -> int:
        count = 0
        while True:
            messages = self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return count
            for message in messages:
                event = json.loads(message["Body"])
                with self._lock:
                    self.received.appendleft(event)
                log.info(
                    "event %s orgid=%s %s",
                    event.get("detail-type"),
                    event.get("detail", {}).get("orgid"),
                    json.dumps(event.get("detail", {}), default=str)[:300],
                )
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
                self._notify(event)
                count += 1

    def run_forever(self, interval: float = 0.5) -> None:
        def loop() -> None:
            stop = threading.Event()
            while not stop.wait(interval):
                try:
                    self.drain()
                except Exception:
                    log.exception("bus tap failed")

        threading.Thread(target=loop, daemon=True, name="bus-tap").start()

    def route(self, request: Request) -> Response:
        wanted = request.args.get("detailType")
        with self._lock:
            events = [e for e in self.received if not wanted or e.get("detail-type") == wanted]
        body = {
            "data": events,
            "total": len(events),
            "page": 1,
            "pageSize": len(events),
            "hasNext": False,
            "next": None,
        }
        return Response(json.dumps(body, default=str), status=200, content_type="application/json")
