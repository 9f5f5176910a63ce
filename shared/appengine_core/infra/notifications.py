"""Messages to people (magic links, sign-in codes, 2FA codes) as ``notification.requested`` events.

They go straight onto the bus, never through the outbox: a message may hold a one-time code or link,
and a code must never rest in a table item. This is the only event allowed to carry one, and only the
mailer (deployed) or the dev mailbox (local stack) subscribes to it. Nothing here logs a message body.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from appengine_core.infra.events import DomainEvent, EventPublisher

NOTIFICATION_REQUESTED = "notification.requested"


class Notification(BaseModel):
    orgid: str
    to: str = Field(min_length=3, max_length=320)
    subject: str = Field(min_length=1, max_length=200)
    text: SecretStr  # may quote the link or the code
    link: SecretStr | None = None
    code: SecretStr | None = None
    purpose: str = Field(default="message", max_length=64)  # e.g. magic_link, sign_in_code, two_factor_code

    def event(self) -> DomainEvent:
        return DomainEvent(
            detail_type=NOTIFICATION_REQUESTED,
            orgid=self.orgid,
            detail={
                "to": self.to,
                "subject": self.subject,
                "text": self.text.get_secret_value(),
                "link": self.link.get_secret_value() if self.link else None,
                "code": self.code.get_secret_value() if self.code else None,
                "purpose": self.purpose,
            },
        )


class Notifier:
    def __init__(self, events: EventPublisher | None = None) -> None:
        self._events = events or EventPublisher()

    def send(self, notification: Notification) -> None:
        """Put the message on the bus; raises when the bus refuses it. (Magic-link requests, which must
        not reveal whether a message was due, publish it best-effort with their other event instead.)"""
        self._events.publish([notification.event()])
