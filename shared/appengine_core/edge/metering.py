"""Per-org usage metering: one atomic counter per org per UTC day, ``<org>:#usage:<yyyy-mm-dd>``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from appengine_core.infra.store import TenantStore, Update
from appengine_core.infra.tenancy import TenantKey

USAGE_COLLECTION = "#usage"
RETENTION_DAYS = 400
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


class UsageMeter:
    """Counts requests of orgs that exist: anyone may send any orgid to a public route, and a counter
    written for an org that does not exist would let them fill the table with items of made-up orgs.

    One meter lives as long as its container, and so does its cache of org lookups.
    """

    def __init__(self, store: TenantStore | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store or TenantStore()
        self._clock = clock
        self._orgs: dict[str, tuple[bool, float]] = {}  # orgid -> (exists, valid until)

    def org_exists(self, orgid: str) -> bool:
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

    def count_request(self, orgid: str) -> None:
        """Count one request of an existing org; a metering failure never fails the request it counts."""
        try:
            if not self.org_exists(orgid):
                return
            self._store.update(
                Update(
                    TenantKey(orgid, USAGE_COLLECTION, _day(datetime.now(UTC))),
                    "ADD requests :one SET #ttl = if_not_exists(#ttl, :ttl)",
                    values={":one": 1, ":ttl": int(time.time()) + RETENTION_DAYS * 86400},
                    names={"#ttl": "ttl"},
                ),
                return_new=False,
            )
        except Exception:
            log.exception("usage not counted")

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
