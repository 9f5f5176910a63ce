"""The mailer: sends ``notification.requested`` messages (magic links, sign-in and 2FA codes) with SES.

An EventBridge rule hands each message to the mailer function, which sends it from the configured sender
(setting ``MAIL_SENDER_ADDRESS``, template parameter ``MailSenderAddress``); with no sender configured,
messages are skipped (the local stack shows them in its dev mailbox instead). A message's text, link
and code are secrets: they are held as ``SecretStr``, go to SES and nowhere else, and are never logged.

Failures: a refusal that a retry cannot change (a bad address, an unverified sender, a suspended
account) drops the message with its SES error code; anything else (throttling, an SES or network
fault, an unknown error) raises, so Lambda retries the asynchronous invocation.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from appengine_core.infra import aws
from appengine_core.infra.settings import get_settings

# One plain address: no display name, no list, nothing that could add a recipient or a header.
_ADDRESS = re.compile(r"^[^@\s<>,;\"'()\[\]\\]+@[^@\s<>,;\"'()\[\]\\]+\.[^@\s<>,;\"'()\[\]\\]+$")
_TAG_VALUE = re.compile(r"[^A-Za-z0-9_-]")


class MailRequest(BaseModel):
    """The detail of a ``notification.requested`` event (see ``infra.notifications.Notification``)."""

    # Validation errors must not echo the values: they may hold a code or a link.
    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)

    orgid: str = Field(min_length=1, max_length=63)
    to: str = Field(min_length=3, max_length=320)
    subject: str = Field(min_length=1, max_length=200)
    text: SecretStr = Field(min_length=1, max_length=20_000)
    link: SecretStr | None = Field(default=None, max_length=2048)
    code: SecretStr | None = Field(default=None, max_length=64)
    purpose: str = Field(default="message", min_length=1, max_length=64)

    @field_validator("to")
    @classmethod
    def _one_plain_address(cls, value: str) -> str:
        value = value.strip()
        if not _ADDRESS.fullmatch(value):
            raise ValueError("not a single e-mail address")
        return value

    @field_validator("subject")
    @classmethod
    def _one_line(cls, value: str) -> str:
        flattened = " ".join(value.split())  # no line break may reach a mail header
        if not flattened:
            raise ValueError("empty subject")
        return flattened


class MailOutcome(BaseModel):
    """What became of one message; safe to log (no text, link, code or address)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    status: Literal["sent", "skipped", "dropped"]
    orgid: str | None = None
    purpose: str | None = None
    reason: str | None = None  # why skipped or dropped: no_sender, invalid_detail, or SES's error code
    invalid_fields: list[str] | None = None
    message_id: str | None = None
    recipient_domain: str | None = None


# -- content ---------------------------------------------------------------------------------------
def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def render_text(request: MailRequest) -> str:
    """The plain-text body: the message's text, plus its link and code where the text does not quote them."""
    text = request.text.get_secret_value()
    parts = [text]
    link, code = _secret(request.link), _secret(request.code)
    if link and link not in text:
        parts.append(link)
    if code and code not in text:
        parts.append(f"Code: {code}")
    return "\n\n".join(parts)


def _is_web_link(link: str) -> bool:
    parts = urlsplit(link)
    return parts.scheme in ("https", "http") and bool(parts.netloc)


def render_html(request: MailRequest) -> str:
    """The HTML body: the text escaped, the link as a button a person can click, the code set apart."""
    paragraphs = [
        "<p>" + "<br>".join(html.escape(line) for line in block.splitlines()) + "</p>"
        for block in re.split(r"\n\s*\n", request.text.get_secret_value())
        if block.strip()
    ]
    link, code = _secret(request.link), _secret(request.code)
    if link and _is_web_link(link):
        href = html.escape(link, quote=True)
        paragraphs.append(
            f'<p><a href="{href}" style="display:inline-block;padding:10px 18px;background:#1a56db;'
            'color:#ffffff;text-decoration:none;border-radius:4px">Sign in</a></p>'
            f'<p style="color:#555555;font-size:12px;word-break:break-all">{href}</p>'
        )
    if code:
        paragraphs.append(
            '<p style="font-family:monospace;font-size:28px;font-weight:bold;letter-spacing:4px">'
            f"{html.escape(code)}</p>"
        )
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(request.subject)}</title></head>"
        '<body style="font-family:Arial,Helvetica,sans-serif;color:#222222">'
        + "".join(paragraphs)
        + "</body></html>"
    )


# -- the SES adapter (the only code that calls SES) ------------------------------------------------------
class MailSender(Protocol):
    def send(self, from_address: str, request: MailRequest) -> str: ...


class SesMailSender:
    def send(self, from_address: str, request: MailRequest) -> str:
        """Send one message with SES v2; returns SES's message id. SES's errors propagate."""
        charset = "UTF-8"
        response = aws.sesv2().send_email(
            FromEmailAddress=from_address,
            Destination={"ToAddresses": [request.to]},
            Content={
                "Simple": {
                    "Subject": {"Data": request.subject, "Charset": charset},
                    "Body": {
                        "Text": {"Data": render_text(request), "Charset": charset},
                        "Html": {"Data": render_html(request), "Charset": charset},
                    },
                }
            },
            # For SES's event publishing (bounces, complaints per org and purpose); never content.
            EmailTags=[
                {"Name": "orgid", "Value": _TAG_VALUE.sub("_", request.orgid)},
                {"Name": "purpose", "Value": _TAG_VALUE.sub("_", request.purpose)},
            ],
        )
        return str(response["MessageId"])


# -- the service -----------------------------------------------------------------------------------------
def _retryable(error: BaseException) -> bool:
    """Anything but SES refusing this very message (a 4xx answer that is not throttling)."""
    code = aws.client_error_code(error)
    status = getattr(error, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return not code or aws.is_transient(error) or int(status) >= 500


def _short_string(value: Any) -> str | None:
    return value[:64] if isinstance(value, str) else None


class MailerService:
    def __init__(self, sender: MailSender | None = None, from_address: str | None = None) -> None:
        self._sender = sender or SesMailSender()
        self._from_address = from_address

    def deliver(self, detail: Mapping[str, Any]) -> MailOutcome:
        """Send one message; returns what became of it, or raises when a retry may succeed."""
        try:
            request = MailRequest.model_validate(dict(detail))
        except ValidationError as error:
            return MailOutcome(
                status="dropped",
                orgid=_short_string(detail.get("orgid")),
                purpose=_short_string(detail.get("purpose")),
                reason="invalid_detail",
                invalid_fields=sorted({".".join(str(p) for p in e["loc"]) for e in error.errors()}),
            )
        known = {
            "orgid": request.orgid,
            "purpose": request.purpose,
            "recipient_domain": request.to.rsplit("@", 1)[-1].lower(),
        }
        from_address = self._from_address if self._from_address is not None else get_settings().mail_sender
        if not from_address:
            return MailOutcome(status="skipped", reason="no_sender", **known)
        try:
            message_id = self._sender.send(from_address, request)
        except Exception as error:
            if _retryable(error):
                raise  # throttled, SES or the network failing, or unknown: worth another attempt
            return MailOutcome(status="dropped", reason=aws.client_error_code(error), **known)
        return MailOutcome(status="sent", message_id=message_id, **known)
