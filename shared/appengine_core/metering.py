"""Per-org usage metering: one atomic counter per org per UTC day, ``<org>:#usage:<yyyy-mm-dd>``."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from appengine_core.store import TenantStore, Update
from appengine_core.tenancy import TenantKey

USAGE_COLLECTION = "#usage"
RETENTION_DAYS = 400
log = logging.getLogger("appengine.metering")


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


class UsageMeter:
    def __init__(self, store: TenantStore | None = None) -> None:
        self._store = store or TenantStore()

    def count_request(self, orgid: str) -> None:
        """Count one request; a metering failure never fails the request it counts."""
        try:
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
