"""The dev mailbox through the local stack (api.md §9): a notification.requested on the bus shows up at
GET /_local/mailbox, as JSON for programs and as a page for browsers, with no orgid and no credentials."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3

from appengine_core.infra.notifications import Notification
from appengine_local.resources import resolve
from appengine_local.template import load_template
from tests.contract.conftest import LocalApi

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def publish(api: LocalApi, notification: Notification) -> None:
    """Put the message on the local stack's bus, as ``Notifier`` does in a function."""
    template = load_template()
    bus = str(resolve(template.resources["EventBus"]["Properties"]["Name"], template))
    event = notification.event()
    events = boto3.client(
        "events",
        endpoint_url=api.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    result = events.put_events(
        Entries=[
            {
                "Source": "appengine",
                "DetailType": event.detail_type,
                "Detail": json.dumps({"orgid": event.orgid, "time": event.time, **event.detail}),
                "EventBusName": bus,
            }
        ]
    )
    assert result["FailedEntryCount"] == 0


def wait_for_mail(api: LocalApi, to: str, count: int = 1) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        response = api.get(f"/_local/mailbox?to={to}")
        assert response.status == 200, response.text
        body: dict[str, Any] = response.json()
        if len(body["data"]) >= count or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def test_a_message_on_the_bus_lands_in_the_dev_mailbox(api: LocalApi) -> None:
    # Given a magic-link message to a new recipient put on the bus
    to = f"mailbox-{uuid.uuid4().hex[:8]}@acme.test"
    link = f"http://127.0.0.1/profile/magic-link/redirect?token={uuid.uuid4().hex}&orgid=acme"
    publish(
        api,
        Notification.model_validate(
            {
                "orgid": "acme",
                "to": to,
                "subject": "Your sign-in link",
                "text": f"Sign in: {link}\n\nOr use the code 305917.",
                "link": link,
                "code": "305917",
                "purpose": "magic_link",
            }
        ),
    )

    # When the mailbox is read (no orgid, no credentials), filtered to the recipient in another case
    body = wait_for_mail(api, to.upper())

    # Then the message is there, in the contract's list shape
    assert body["total"] == 1 and body["page"] == 1 and body["hasNext"] is False and body["next"] is None
    (message,) = body["data"]
    assert {k: message[k] for k in ("to", "subject", "link", "code")} == {
        "to": to,
        "subject": "Your sign-in link",
        "link": link,
        "code": "305917",
    }
    assert message["text"].startswith("Sign in: ") and message["createdAt"]


def test_a_browser_gets_a_page_with_the_link_clickable_and_everything_escaped(api: LocalApi) -> None:
    # Given two messages to one recipient, the newer one trying to inject markup
    to = f"page-{uuid.uuid4().hex[:8]}@acme.test"
    for subject, code in (("First code", "111222"), ("<script>alert(1)</script>", "333444")):
        publish(
            api,
            Notification.model_validate(
                {"orgid": "acme", "to": to, "subject": subject, "text": f"Code {code}", "code": code}
            ),
        )
    assert len(wait_for_mail(api, to, count=2)["data"]) == 2

    # When a browser opens the mailbox
    page = api.get(f"/_local/mailbox?to={to}", headers=BROWSER)

    # Then it gets a page: newest first, the codes shown, nothing from the messages taken as markup
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert "<title>Dev mailbox" in page.text and "<h1>Dev mailbox</h1>" in page.text
    assert page.text.index("333444") < page.text.index("111222")
    assert "<script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_the_mailbox_is_not_a_route_of_the_deployed_api(api: LocalApi) -> None:
    # The template (what is deployed) has no such route: the mailbox exists only in the local gateway
    assert not any(route.path.startswith("/_local") for route in load_template().routes)
    # And the local stack answers only GET there
    assert api.post("/_local/mailbox", body={}).status == 404
