"""The transactional outbox: an event is an item written in the same transaction as the change it
describes; the table stream relays it to the bus, so it is published if and only if its write committed."""

from __future__ import annotations

import time
from typing import Any

from appengine_core.infra.envelope import Record, new_id, utc_now_iso
from appengine_core.infra.events import DomainEvent, EventPublisher, with_application
from appengine_core.infra.store import Put, from_dynamo
from appengine_core.infra.tenancy import TenantKey

OUTBOX_COLLECTION = "#outbox"
OUTBOX_RECORD_TYPE = "outbox"
OUTBOX_RETENTION_SECONDS = 2 * 86400


def outbox_put(orgid: str, detail_type: str, detail: dict[str, Any]) -> Put:
    """The outbox item of one event; committed with the write it describes."""
    event_id = new_id()
    return Put(
        TenantKey(orgid, OUTBOX_COLLECTION, event_id),
        {
            "recordType": OUTBOX_RECORD_TYPE,
            "eventId": event_id,
            "orgid": orgid,
            "detailType": detail_type,
            "detail": with_application(detail),
            "createdAt": utc_now_iso(),
            "ttl": int(time.time()) + OUTBOX_RETENTION_SECONDS,
        },
    )


def record_event(record: Record, action: str, actor: str | None) -> Put:
    return outbox_put(
        record.orgid,
        f"record.{action}",
        {
            "datatype": record.datatype,
            "id": record.pk,
            "sk": record.sk,
            "version": record.version,
            "actor": actor,
        },
    )


def event_of(image: dict[str, Any]) -> DomainEvent:
    """The domain event an outbox item (a stream NewImage, deserialized) carries."""
    item = from_dynamo(image)
    if item.get("recordType") != OUTBOX_RECORD_TYPE:
        raise ValueError("not an outbox item")
    return DomainEvent(
        detail_type=str(item["detailType"]),
        orgid=str(item["orgid"]),
        detail={"eventId": item["eventId"], **(item.get("detail") or {})},
        time=str(item.get("createdAt") or ""),
    )


class OutboxRelay:
    def __init__(self, publisher: EventPublisher | None = None) -> None:
        self._publisher = publisher or EventPublisher()

    def relay(self, image: dict[str, Any]) -> DomainEvent:
        """Publish one outbox item; raises when the bus refuses it (the stream then retries)."""
        event = event_of(image)
        self._publisher.publish([event])
        return event
