"""Data access of the security audit log (issue 15): where an org's security events live, and the
DynamoDB operations that write and page them. Kept apart from ``identity.data`` because nothing else
of the wing touches these items; like it, this module is the only place that builds their operations.

Layout (tenant-scoped, see ``tenancy``):
- one event: ``<org>:#audit`` / ``<org>:#audit:<time>#<event id>`` — ``<time>`` is UTC ISO 8601 with
  milliseconds (fixed width, so the sort key orders by time and one Query with ``newest_first`` gives
  the newest first); the event id makes the key unique and a redelivery address the same item. The
  collection starts with ``#`` so no repository datatype can ever name it.
- attributes: ``eventId``, ``eventType``, ``time``, ``orgid``, ``principal``, ``actor`` (as the event
  named them), ``detail`` (the redacted facts), ``subjects`` (the pk forms of principal and actor, what
  the ``principal`` filter matches) and ``ttl`` (epoch seconds: DynamoDB removes the item then).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase

from appengine_core.infra.store import TTL_ATTRIBUTE, ConditionFailed, Put, TenantStore
from appengine_core.infra.tenancy import TenantKey

AUDIT_COLLECTION = "#audit"


def audit_key(orgid: str, time: str, event_id: str) -> TenantKey:
    """The key of one security event of ``orgid`` (``time``: fixed-width UTC ISO 8601)."""
    return TenantKey(orgid, AUDIT_COLLECTION, f"{time}#{event_id}")


@dataclass(frozen=True)
class AuditItem:
    """One event as stored: every value already redacted by the service."""

    orgid: str
    event_id: str
    event_type: str
    time: str
    principal: str | None
    actor: str | None
    detail: Mapping[str, Any]
    subjects: tuple[str, ...]
    expires_at: int


def audit_put(item: AuditItem) -> Put:
    """The event's item, only if it is not there yet (a redelivered event writes nothing)."""
    attributes: dict[str, Any] = {
        "eventId": item.event_id,
        "eventType": item.event_type,
        "time": item.time,
        "orgid": item.orgid,
        "detail": dict(item.detail),
        TTL_ATTRIBUTE: item.expires_at,
    }
    for name, value in (("principal", item.principal), ("actor", item.actor)):
        if value is not None:
            attributes[name] = value
    if item.subjects:
        attributes["subjects"] = list(item.subjects)
    return Put(audit_key(item.orgid, item.time, item.event_id), attributes)


def audit_filter(event_type: str | None, subject: str | None) -> ConditionBase | None:
    """The FilterExpression of a filtered page: events of ``event_type``, about or by ``subject`` (a
    principal's pk form); None when nothing is filtered."""
    condition: ConditionBase | None = None
    if event_type is not None:
        condition = Attr("eventType").eq(event_type)
    if subject is not None:
        about = Attr("subjects").contains(subject)
        condition = about if condition is None else condition & about
    return condition


@dataclass(frozen=True)
class AuditBatch:
    """What one Query of an org's audit log returned: the items that passed the filter (newest first,
    each with its sort key as ``_sk``), where to continue (None: the log is exhausted) and how many
    items it read before filtering."""

    items: list[dict[str, Any]]
    last_sort_key: str | None
    examined: int


class AuditData:
    def __init__(self, store: TenantStore | None = None) -> None:
        self._store = store or TenantStore()

    def store(self, item: AuditItem) -> bool:
        """Writes the event; False when it was stored before (a redelivery). Any other failure raises
        (a transient one is retried by the caller's invoker)."""
        try:
            self._store.put(audit_put(item))
        except ConditionFailed:
            return False
        return True

    def newest_first(
        self,
        orgid: str,
        *,
        limit: int,
        after_sort_key: str | None,
        event_type: str | None = None,
        subject: str | None = None,
    ) -> AuditBatch:
        """One Query of ``orgid``'s audit log, newest first: at most ``limit`` items read, then filtered."""
        page = self._store.query(
            orgid,
            AUDIT_COLLECTION,
            limit=limit,
            after_sort_key=after_sort_key,
            newest_first=True,
            filter_condition=audit_filter(event_type, subject),
        )
        return AuditBatch(items=page.items, last_sort_key=page.last_sort_key, examined=page.examined)
