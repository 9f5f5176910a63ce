"""Relays outbox items (written in the same transaction as the change they describe) to the bus."""

from __future__ import annotations

from typing import Any

from appengine_core.events import DomainEvent, EventPublisher
from appengine_core.repository import OUTBOX_RECORD_TYPE
from appengine_core.store import from_dynamo


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
