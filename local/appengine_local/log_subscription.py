"""A local stand-in for a CloudWatch Logs subscription filter whose destination is a template function.

Deployed, every function logs into one log group, and the metering function's ``CloudWatchLogs`` event
(a subscription filter) receives the usage lines in batches. Here the functions run in this process:
a logging handler on the usage logger takes each usage record formatted exactly as the function prints
it, keeps what the filter pattern selects, and a thread delivers the batch every second in the shape
CloudWatch Logs uses (``{"awslogs": {"data": base64(gzip(json))}}``), with a unique id per log event.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from appengine_core.edge.metering import USAGE_LOGGER, usage_logger
from appengine_local.resources import LOCAL_ACCOUNT, resolve
from appengine_local.runtime import LocalLambda
from appengine_local.template import Template

log = logging.getLogger("appengine.local.logs")
# The one shape of filter pattern the template uses: { $.field = "value" }.
_EQUALS = re.compile(r'^\{\s*\$\.([A-Za-z0-9_]+)\s*=\s*"([^"]*)"\s*\}$')


@dataclass(frozen=True)
class Subscription:
    function: str
    log_group: str
    field: str
    value: str

    def selects(self, message: str) -> bool:
        try:
            fields = json.loads(message)
        except ValueError:
            return False
        return isinstance(fields, dict) and fields.get(self.field) == self.value


def subscriptions(template: Template) -> list[Subscription]:
    found = []
    for logical_id, resource in template.of_type("AWS::Serverless::Function").items():
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            if event.get("Type") != "CloudWatchLogs":
                continue
            properties = event["Properties"]
            pattern = _EQUALS.match(str(properties.get("FilterPattern", "")))
            if pattern is None:
                raise ValueError(f'{logical_id}: the local stack knows only {{ $.field = "value" }} patterns')
            log_group = str(resolve(properties["LogGroupName"], template))
            found.append(Subscription(logical_id, log_group, pattern.group(1), pattern.group(2)))
    return found


class LogSubscription(logging.Handler):
    """Collects the usage logger's records and delivers them to the subscribed functions."""

    def __init__(self, template: Template, lambdas: LocalLambda, interval: float = 1.0) -> None:
        super().__init__(level=logging.INFO)
        self._lambdas = lambdas
        self._interval = interval
        self.subscriptions = subscriptions(template)
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._delivering = threading.Lock()
        source = usage_logger()
        self.setFormatter(source.registered_formatter)
        logging.getLogger(USAGE_LOGGER).addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        message = self.format(record)
        event = {"id": uuid.uuid4().hex, "timestamp": int(record.created * 1000), "message": message}
        with self._lock:
            self._pending.append(event)

    def flush(self) -> None:
        """Deliver what is pending now (one batch per subscription), as CloudWatch Logs would."""
        with self._delivering:
            with self._lock:
                events, self._pending = self._pending, []
            for subscription in self.subscriptions:
                selected = [e for e in events if subscription.selects(e["message"])]
                if not selected:
                    continue
                try:
                    self._lambdas.invoke(subscription.function, _payload(subscription, selected))
                except Exception:
                    log.exception(
                        "%s failed on a batch of %d log events", subscription.function, len(selected)
                    )

    def run_forever(self) -> None:
        def loop() -> None:
            stop = threading.Event()
            while not stop.wait(self._interval):
                self.flush()

        threading.Thread(target=loop, daemon=True, name="log-subscription").start()

    def close(self) -> None:
        logging.getLogger(USAGE_LOGGER).removeHandler(self)
        super().close()


def _payload(subscription: Subscription, events: list[dict[str, Any]]) -> dict[str, Any]:
    body = {
        "messageType": "DATA_MESSAGE",
        "owner": LOCAL_ACCOUNT,
        "logGroup": subscription.log_group,
        "logStream": f"{time.strftime('%Y/%m/%d')}/[$LATEST]local",
        "subscriptionFilters": [f"{subscription.function}-subscription"],
        "logEvents": events,
    }
    data = base64.b64encode(gzip.compress(json.dumps(body).encode())).decode()
    return {"awslogs": {"data": data}}
