"""What the mailer sends: the message validated, the text and HTML bodies, and which SES errors retry."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from pydantic import SecretStr, ValidationError

from appengine_core.ops.mailer import MailerService, MailRequest, render_html, render_text

LINK = "https://app.acme.test/magic?token=t1&orgid=acme"


def request(**overrides: Any) -> MailRequest:
    fields: dict[str, Any] = {
        "orgid": "acme",
        "to": "buyer@acme.test",
        "subject": "Your sign-in link",
        "text": "Hello <friend>,\nsign in below.\n\nThanks",
        "link": LINK,
        "code": "482913",
        "purpose": "magic_link",
    }
    return MailRequest.model_validate({**fields, **overrides})


def test_the_text_body_carries_the_link_and_the_code_once() -> None:
    assert render_text(request()) == f"Hello <friend>,\nsign in below.\n\nThanks\n\n{LINK}\n\nCode: 482913"
    quoted = request(text=f"Open {LINK} or type 482913.")
    assert render_text(quoted) == f"Open {LINK} or type 482913."


def test_the_html_body_escapes_the_text_and_makes_the_link_clickable() -> None:
    page = render_html(request())
    assert "<p>Hello &lt;friend&gt;,<br>sign in below.</p><p>Thanks</p>" in page
    assert f'<a href="{LINK.replace("&", "&amp;")}"' in page
    assert ">482913</p>" in page
    assert "<title>Your sign-in link</title>" in page


def test_a_link_that_is_not_a_web_address_is_not_clickable() -> None:
    assert "href" not in render_html(request(link="javascript:alert(1)"))


def test_the_subject_is_one_line_and_secrets_stay_hidden() -> None:
    message = request(subject="Your\r\nBcc: thief@evil.test code")
    assert message.subject == "Your Bcc: thief@evil.test code"
    assert "482913" not in repr(message) and LINK not in repr(message)


@pytest.mark.parametrize(
    "to", ["a@b.test, c@d.test", "Name <a@b.test>", "a@b.test\nBcc: c@d.test", "no-at-sign", "a@b"]
)
def test_only_one_plain_address_is_a_recipient(to: str) -> None:
    with pytest.raises(ValidationError) as raised:
        request(to=to)
    assert to not in str(raised.value), "validation errors must not echo the input"


class ScriptedSender:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.sent: list[tuple[str, MailRequest]] = []

    def send(self, from_address: str, message: MailRequest) -> str:
        if self.error is not None:
            raise self.error
        self.sent.append((from_address, message))
        return "m-1"


def ses_error(code: str, status: int) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "SendEmail")


DETAIL = {
    "orgid": "acme",
    "to": "buyer@acme.test",
    "subject": "s",
    "text": SecretStr("t").get_secret_value(),
    "purpose": "sign_in_code",
}


@pytest.mark.parametrize(
    ("code", "status"),
    [("MessageRejected", 400), ("BadRequestException", 400), ("AccountSuspendedException", 400)],
)
def test_a_refusal_for_good_drops_the_message(code: str, status: int) -> None:
    service = MailerService(ScriptedSender(ses_error(code, status)), from_address="no-reply@acme.test")
    outcome = service.deliver(DETAIL)
    assert outcome.status == "dropped" and outcome.reason == code


@pytest.mark.parametrize(
    "error",
    [
        ses_error("TooManyRequestsException", 429),
        ses_error("Throttling", 400),
        ses_error("InternalFailure", 500),
        ses_error("SomethingNew", 503),
        EndpointConnectionError(endpoint_url="https://email.us-east-1.amazonaws.com"),
        RuntimeError("unexpected"),
    ],
)
def test_a_failure_worth_retrying_raises(error: BaseException) -> None:
    service = MailerService(ScriptedSender(error), from_address="no-reply@acme.test")
    with pytest.raises(type(error)):
        service.deliver(DETAIL)


def test_the_configured_sender_sends_and_no_sender_skips() -> None:
    sender = ScriptedSender()
    sent = MailerService(sender, from_address="no-reply@acme.test").deliver(DETAIL)
    assert sent.status == "sent" and sent.message_id == "m-1" and sender.sent[0][0] == "no-reply@acme.test"
    skipped = MailerService(sender, from_address="").deliver(DETAIL)
    assert skipped.status == "skipped" and skipped.reason == "no_sender" and len(sender.sent) == 1
