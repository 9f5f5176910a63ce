"""Per-org usage metering: one counter per org per UTC day, ``<org>:#usage:<yyyy-mm-dd>``, kept off the
request path.

A request writes nothing: its function logs one line (``{"meter": "request", "orgid": ...}``) through
the usage logger. Deployed, every function logs into one log group whose subscription filter hands those
lines, in batches, to the metering function; on the local stack ``appengine_local.log_subscription``
does the same in-process. ``UsageRecorder`` adds a batch up and writes one update per (org, day) per
batch, together with a marker of the batch's log-event ids in one transaction, so a redelivered batch
counts nothing twice. The daily totals are exact up to the delivery delay (seconds).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger

from appengine_core.infra.store import ConditionFailed, Put, TenantStore, Update
from appengine_core.infra.tenancy import TenantKey, is_valid_orgid

USAGE_COLLECTION = "#usage"
USAGE_BATCH_COLLECTION = "#usage-batch"
USAGE_LOGGER = "appengine-usage"
RETENTION_DAYS = 400
# A batch marker outlives any redelivery of its batch (CloudWatch Logs retries for hours, not days).
BATCH_MARKER_SECONDS = 2 * 86400
# The org item's collection (directory.org_key); not imported from directory, which sits above this
# module (web -> metering must not pull in the directory and its models).
ORG_COLLECTION = "#org"
# An org rarely appears or disappears, so a minute of staleness is cheap; a missing org is re-read
# sooner so a newly created org is counted within seconds.
ORG_FOUND_TTL_SECONDS = 60.0
ORG_MISSING_TTL_SECONDS = 5.0
# Bounded: anyone can send any orgid on a public route, so the cache must not grow with what they send.
ORG_CACHE_SIZE = 1024
log = logging.getLogger("appengine.metering")


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


@cache
def usage_logger() -> Logger:
    """The one logger of usage lines (its records are what the metering function receives)."""
    return Logger(service=USAGE_LOGGER)


class UsageMeter:
    """Counts a request by logging one usage line: no write, no read on the request path."""

    def __init__(self, store: TenantStore | None = None) -> None:
        self._store = store or TenantStore()

    def count_request(self, orgid: str) -> None:
        """Log one request of ``orgid``; whether the org exists is the metering function's concern."""
        try:
            usage_logger().info("request metered", meter="request", orgid=orgid)
        except Exception:
            log.exception("usage not logged")

    def daily(self, orgid: str, days: int) -> list[dict[str, Any]]:
        """The last ``days`` days (today included), oldest first; days without requests count 0."""
        today = datetime.now(UTC)
        first = _day(today - timedelta(days=days - 1))
        since = TenantKey(orgid, USAGE_COLLECTION, first).sort
        page = self._store.query(orgid, USAGE_COLLECTION, limit=days, sort_from=since)
        counted = {str(item["_sk"]).rsplit(":", 1)[1]: int(item.get("requests", 0)) for item in page.items}
        return [
            {"date": day, "requests": counted.get(day, 0)}
            for day in (_day(today - timedelta(days=offset)) for offset in range(days - 1, -1, -1))
        ]


@dataclass(frozen=True)
class UsageLine:
    """One usage line of a delivered log batch."""

    event_id: str  # CloudWatch Logs' id of the log event: stable across redeliveries
    orgid: str
    day: str


def usage_lines(log_events: Iterable[tuple[str, int, str]]) -> list[UsageLine]:
    """The usage lines among (id, timestamp in ms, message) log events; anything else is skipped."""
    lines = []
    for event_id, timestamp, message in log_events:
        try:
            fields = json.loads(message)
        except ValueError:
            continue
        orgid = fields.get("orgid") if isinstance(fields, dict) and fields.get("meter") == "request" else None
        if isinstance(orgid, str) and is_valid_orgid(orgid):
            day = _day(datetime.fromtimestamp(timestamp / 1000, UTC))
            lines.append(UsageLine(event_id=event_id, orgid=orgid, day=day))
    return lines


@dataclass(frozen=True)
class RecordedUsage:
    applied: int  # (org, day) counts written
    duplicates: int  # (org, day) counts of a batch already applied
    unknown_orgs: int  # lines of orgs that do not exist (never written)


class UsageRecorder:
    """Adds up a batch of usage lines and writes one update per (org, day), idempotently."""

    def __init__(self, store: TenantStore | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store or TenantStore()
        self._clock = clock
        self._orgs: dict[str, tuple[bool, float]] = {}  # orgid -> (exists, valid until)

    def org_exists(self, orgid: str) -> bool:
        """Only orgs that exist are counted: anyone may send any orgid to a public route, and a counter
        written for a made-up org would let them fill the table. Cached per container, bounded."""
        now = self._clock()
        cached = self._orgs.get(orgid)
        if cached is not None and cached[1] > now:
            return cached[0]
        exists = self._store.get(TenantKey(orgid, ORG_COLLECTION, orgid)) is not None
        self._orgs.pop(orgid, None)
        if len(self._orgs) >= ORG_CACHE_SIZE:
            del self._orgs[next(iter(self._orgs))]  # the oldest entry (dicts keep insertion order)
        ttl = ORG_FOUND_TTL_SECONDS if exists else ORG_MISSING_TTL_SECONDS
        self._orgs[orgid] = (exists, now + ttl)
        return exists

    def record(self, lines: Iterable[UsageLine]) -> RecordedUsage:
        groups: dict[tuple[str, str], list[str]] = {}
        for line in lines:
            groups.setdefault((line.orgid, line.day), []).append(line.event_id)
        applied = duplicates = unknown = 0
        for (orgid, day), event_ids in sorted(groups.items()):
            if not self.org_exists(orgid):
                unknown += len(event_ids)
                continue
            if self._apply(orgid, day, event_ids):
                applied += 1
            else:
                duplicates += 1
        return RecordedUsage(applied=applied, duplicates=duplicates, unknown_orgs=unknown)

    def _apply(self, orgid: str, day: str, event_ids: list[str]) -> bool:
        """One transaction: the batch's marker (only if new) and the day's counter. False: seen before."""
        digest = hashlib.sha256("\n".join(sorted(event_ids)).encode()).hexdigest()
        now = int(time.time())
        try:
            self._store.transact(
                [
                    Put(
                        TenantKey(orgid, USAGE_BATCH_COLLECTION, f"{day}:{digest}"),
                        {"requests": len(event_ids), "ttl": now + BATCH_MARKER_SECONDS},
                    ),
                    Update(
                        TenantKey(orgid, USAGE_COLLECTION, day),
                        "ADD requests :n SET #ttl = if_not_exists(#ttl, :ttl)",
                        values={":n": len(event_ids), ":ttl": now + RETENTION_DAYS * 86400},
                        names={"#ttl": "ttl"},
                    ),
                ]
            )
        except ConditionFailed:
            return False
        return True
