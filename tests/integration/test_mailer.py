"""The mailer: notification.requested -> SES (moto), and bus -> rule -> mailer as the local stack runs it."""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from pydantic import SecretStr

from appengine_core.infra import aws
from appengine_core.infra.notifications import Notification, Notifier
from appengine_core.infra.settings import get_settings
from appengine_local.bus_tap import BusTap
from appengine_local.mailbox import DevMailbox
from appengine_local.resources import LOCAL_ACCOUNT, LOCAL_REGION
from appengine_local.rules import RuleDispatcher
from appengine_local.runtime import LocalLambda
from appengine_local.template import load_template
from tests.conftest import load_event

SENDER = "no-reply@acme.test"
CODE = "864209"
LINK = "https://app.acme.test/magic?token=tk-9f8e7d&orgid=acme"
TEXT = f"Sign in to Acme with this link:\n{LINK}\n\nOr enter the code {CODE}."


def notification_event(**detail: Any) -> dict[str, Any]:
    """The sample event (events/mailer-notification.json) with a recognisable text, link and code."""
    event = load_event("mailer-notification")
    event["detail"].update({"text": TEXT, "link": LINK, "code": CODE, **detail})
    return event


def sent_messages() -> list[Any]:
    from moto.ses.models import ses_backends

    return list(ses_backends[LOCAL_ACCOUNT][LOCAL_REGION].sent_messages)


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every log record of the test with all its fields (Powertools' extra keys) and tracebacks."""
    lines = []
    for record in caplog.records:
        lines.append(json.dumps({**vars(record), "message": record.getMessage()}, default=str))
        if record.exc_info:
            lines.append("".join(traceback.format_exception(*record.exc_info)))
    return "\n".join(lines)


def records_of(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == message]


def assert_no_secret_in(output: str) -> None:
    for secret in (CODE, "tk-9f8e7d", "Sign in to Acme", "buyer@acme.test"):
        assert secret not in output, f"{secret!r} was logged"


@pytest.fixture
def sender(aws_stack: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """A configured sender address (template parameter MailSenderAddress), verified in SES."""
    monkeypatch.setenv("MAIL_SENDER_ADDRESS", SENDER)
    get_settings.cache_clear()
    boto3.client("sesv2", region_name=LOCAL_REGION).create_email_identity(EmailIdentity=SENDER)
    return SENDER


def test_a_message_is_sent_from_the_configured_sender(
    functions: LocalLambda, sender: str, caplog: pytest.LogCaptureFixture
) -> None:
    # When the mailer gets a magic-link message from its rule
    result = functions.invoke("MailerFunction", notification_event())

    # Then SES sent it from the sender to the recipient, the link clickable and the code in the body
    assert result["status"] == "sent" and result["messageId"]
    (message,) = sent_messages()
    assert message.source == SENDER
    assert message.destinations == {"ToAddresses": ["buyer@acme.test"]}
    assert message.subject == "Your sign-in link"
    assert f'<a href="{LINK.replace("&", "&amp;")}"' in message.body
    assert CODE in message.body
    # And the log tells it was sent, for which org and purpose, without the text, link, code or address
    (record,) = records_of(caplog, "mail sent")
    assert vars(record)["purpose"] == "magic_link" and vars(record)["orgid"] == "acme"
    assert_no_secret_in(logged(caplog))


def test_without_a_sender_the_message_is_skipped_and_only_that_is_logged(
    functions: LocalLambda, caplog: pytest.LogCaptureFixture
) -> None:
    # Given no sender configured (the template's default)
    assert get_settings().mail_sender == ""

    # When a message arrives
    result = functions.invoke("MailerFunction", notification_event())

    # Then nothing is sent, and the log says it was skipped, without the message
    assert result == {
        "status": "skipped",
        "orgid": "acme",
        "purpose": "magic_link",
        "reason": "no_sender",
        "recipientDomain": "acme.test",
    }
    assert sent_messages() == []
    assert records_of(caplog, "mail skipped")
    assert_no_secret_in(logged(caplog))


@pytest.mark.parametrize(
    ("detail", "field"),
    [
        ({"to": None}, "to"),
        ({"to": "buyer@acme.test, thief@evil.test"}, "to"),
        ({"to": "Buyer <buyer@acme.test>"}, "to"),
        ({"subject": ""}, "subject"),
        ({"text": ""}, "text"),
        ({"code": "9" * 65}, "code"),
    ],
)
def test_an_invalid_message_is_dropped_without_a_traceback(
    functions: LocalLambda,
    sender: str,
    caplog: pytest.LogCaptureFixture,
    detail: dict[str, Any],
    field: str,
) -> None:
    # When the mailer gets a message it cannot send as it is
    result = functions.invoke("MailerFunction", notification_event(**detail))

    # Then it is dropped (a retry would not help), naming the field but not its value
    assert result["status"] == "dropped" and result["reason"] == "invalid_detail"
    assert result["invalidFields"] == [field]
    assert sent_messages() == []
    (record,) = records_of(caplog, "mail dropped")
    assert vars(record)["invalidFields"] == [field] and not any(r.exc_info for r in caplog.records)
    output = logged(caplog)
    assert "thief@evil.test" not in output and "9" * 65 not in output
    assert_no_secret_in(output)


def test_an_event_without_a_detail_is_dropped(functions: LocalLambda, sender: str) -> None:
    event = notification_event()
    del event["detail"]
    result = functions.invoke("MailerFunction", event)
    assert result["status"] == "dropped" and result["invalidFields"] == ["orgid", "subject", "text", "to"]


def test_a_message_ses_refuses_for_good_is_dropped(
    functions: LocalLambda, aws_stack: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a sender SES has not verified
    monkeypatch.setenv("MAIL_SENDER_ADDRESS", "unverified@elsewhere.test")
    get_settings.cache_clear()

    # When a message arrives, Then SES's refusal drops it (a retry would be refused the same way)
    result = functions.invoke("MailerFunction", notification_event())
    assert result["status"] == "dropped" and result["reason"] == "MessageRejected"
    assert sent_messages() == []


def test_a_throttled_send_raises_so_that_lambda_retries(
    functions: LocalLambda, sender: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given SES throttling the account
    with Stubber(aws.sesv2()) as ses:
        ses.add_client_error("send_email", "TooManyRequestsException", "Too many requests", 429)

        # When a message arrives, Then the invocation fails (EventBridge's async invoke retries it)
        with pytest.raises(ClientError):
            functions.invoke("MailerFunction", notification_event())

    (record,) = records_of(caplog, "mail not sent; the invocation will be retried")
    assert vars(record)["errorCode"] == "TooManyRequestsException"
    assert_no_secret_in(logged(caplog))


def test_another_event_type_is_ignored(functions: LocalLambda, sender: str) -> None:
    # When an event the rule would not deliver reaches the function anyway
    event = notification_event()
    event["detail-type"] = "auth.signed_in"

    # Then nothing is sent
    assert functions.invoke("MailerFunction", event) == {"status": "ignored"}
    assert sent_messages() == []


def test_a_published_notification_reaches_the_mailer_and_the_dev_mailbox(
    functions: LocalLambda, sender: str
) -> None:
    # Given the local stack's wiring: the bus tap, the dev mailbox and the template's rules
    bus = get_settings().event_bus_name
    tap = BusTap(bus)
    mailbox = DevMailbox()
    dispatcher = RuleDispatcher(load_template(), functions, bus)
    delivered: list[list[str]] = []
    tap.subscribe(mailbox.receive)
    tap.subscribe(lambda event: delivered.append(dispatcher.dispatch(event)))

    # When a service sends a message through the Notifier, and the tap drains the bus
    Notifier().send(
        Notification(
            orgid="acme",
            to="Buyer@Acme.test",
            subject="Your sign-in code",
            text=SecretStr(f"Your code is {CODE}."),
            code=SecretStr(CODE),
            purpose="sign_in_code",
        )
    )
    assert tap.drain() == 1

    # Then the mailer's rule delivered it and SES sent it
    assert ["MailerFunction"] in delivered
    (message,) = sent_messages()
    assert message.destinations == {"ToAddresses": ["Buyer@Acme.test"]}
    assert CODE in message.body
    # And the dev mailbox holds it, found by its recipient whatever the case
    (kept,) = mailbox.messages(to="buyer@acme.test")
    assert kept["code"] == CODE and kept["subject"] == "Your sign-in code" and kept["link"] is None
