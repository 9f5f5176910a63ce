"""Domain events on the EventBridge bus: the only module that publishes.

Events carry ids and facts, never secrets (no password, hash, token or key material).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pydantic import BaseModel, Field

from appengine_core.infra import aws
from appengine_core.infra.envelope import utc_now_iso
from appengine_core.infra.settings import get_settings

SOURCE = "appengine"
_BATCH = 10  # PutEvents accepts at most 10 entries per call


# The application (API key id) a person's call came through (AppEngine's clients send an app token beside
# the person's token): every event of that call names it, so the audit log shows application and person.
_CALLING_APPLICATION: ContextVar[str | None] = ContextVar("calling_application", default=None)


@contextmanager
def calling_application(api_key_id: str | None) -> Iterator[None]:
    """Within this block, events name ``api_key_id`` as the application the call came through."""
    token = _CALLING_APPLICATION.set(api_key_id)
    try:
        yield
    finally:
        _CALLING_APPLICATION.reset(token)


def with_application(detail: dict[str, Any]) -> dict[str, Any]:
    """``detail`` plus the calling application, when the call came through one."""
    application = _CALLING_APPLICATION.get()
    if application is None or "application" in detail:
        return detail
    return {**detail, "application": application}


class DomainEvent(BaseModel):
    detail_type: str
    orgid: str
    detail: dict[str, Any] = Field(default_factory=dict)
    time: str = Field(default_factory=utc_now_iso)


class EventPublishFailed(RuntimeError):
    def __init__(self, failed: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(failed)} event(s) were not accepted by the bus")
        self.failed = failed


class EventPublisher:
    def __init__(self, bus_name: str | None = None) -> None:
        self._bus_name = bus_name or get_settings().event_bus_name

    def publish(self, events: Sequence[DomainEvent]) -> None:
        """Put every event on the bus; raise ``EventPublishFailed`` if any entry was refused."""
        failed: list[dict[str, Any]] = []
        for start in range(0, len(events), _BATCH):
            batch = events[start : start + _BATCH]
            entries = [
                {
                    "Source": SOURCE,
                    "DetailType": event.detail_type,
                    "Detail": json.dumps(
                        {"orgid": event.orgid, "time": event.time, **with_application(event.detail)},
                        default=str,
                    ),
                    "EventBusName": self._bus_name,
                }
                for event in batch
            ]
            response = aws.events().put_events(Entries=entries)  # type: ignore[arg-type]
            if response.get("FailedEntryCount", 0):
                for entry, result in zip(batch, response["Entries"], strict=False):
                    if result.get("ErrorCode"):
                        failed.append({"detailType": entry.detail_type, "error": result.get("ErrorCode")})
        if failed:
            raise EventPublishFailed(failed)


def publish_best_effort(publisher: EventPublisher, detail_type: str, orgid: str, **detail: Any) -> None:
    """Publish one event; a failure is logged, never raised (for telemetry-grade events such as sign-ins,
    which must not fail the caller's request because the bus is down)."""
    try:
        publisher.publish([DomainEvent(detail_type=detail_type, orgid=orgid, detail=detail)])
    except Exception:
        logging.getLogger("appengine.events").exception(
            "event not published", extra={"detailType": detail_type}
        )
