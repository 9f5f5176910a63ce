"""The dev mailbox of the local stack: what it keeps, the list it answers, and the page a browser gets."""

from __future__ import annotations

import re
from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request

from appengine_local.mailbox import DevMailbox

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


def message_event(to: str = "buyer@acme.test", **detail: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "e-1",
        "detail-type": "notification.requested",
        "source": "appengine",
        "time": "2026-01-01T00:00:00Z",
        "detail": {
            "orgid": "acme",
            "time": "2026-01-01T00:00:00.123Z",
            "to": to,
            "subject": "Your sign-in link",
            "text": "Use the link or the code.",
            "link": "http://127.0.0.1:3000/profile/magic-link/redirect?token=abc&orgid=acme",
            "code": "482913",
            "purpose": "magic_link",
            **detail,
        },
    }


def client_of(mailbox: DevMailbox) -> Client:
    return Client(lambda environ, start: mailbox.route(Request(environ))(environ, start))


def test_only_messages_to_people_are_kept() -> None:
    mailbox = DevMailbox()
    assert mailbox.receive(message_event()) is True
    assert mailbox.receive({**message_event(), "detail-type": "auth.signed_in"}) is False
    assert mailbox.receive({**message_event(), "source": "elsewhere"}) is False
    assert mailbox.receive({**message_event(), "detail": {"subject": "no recipient"}}) is False
    assert len(mailbox.messages()) == 1


def test_the_list_is_newest_first_in_the_contract_shape_and_filters_by_recipient() -> None:
    # Given three messages to two people
    mailbox = DevMailbox()
    mailbox.receive(message_event("buyer@acme.test", subject="first"))
    mailbox.receive(message_event("admin@acme.test", subject="second"))
    mailbox.receive(message_event("Buyer@ACME.test", subject="third"))
    client = client_of(mailbox)

    # When the list is asked for (no orgid, no credentials), Then it is the contract's list, newest first
    everything = client.get("/_local/mailbox")
    assert everything.status_code == 200 and everything.content_type == "application/json"
    body: Any = everything.json
    assert [m["subject"] for m in body["data"]] == ["third", "second", "first"]
    assert body["total"] == 3 and body["page"] == 1 and body["pageSize"] == 3
    assert body["hasNext"] is False and body["next"] is None
    assert body["data"][0] == {
        "to": "Buyer@ACME.test",
        "subject": "third",
        "text": "Use the link or the code.",
        "link": "http://127.0.0.1:3000/profile/magic-link/redirect?token=abc&orgid=acme",
        "code": "482913",
        "createdAt": "2026-01-01T00:00:00.123Z",
        "orgid": "acme",
        "purpose": "magic_link",
    }
    # And ?to= filters by recipient, whatever the case
    mine: Any = client.get("/_local/mailbox", query_string={"to": " BUYER@acme.test "}).json
    assert [m["subject"] for m in mine["data"]] == ["third", "first"] and mine["total"] == 2
    nobody: Any = client.get("/_local/mailbox", query_string={"to": "nobody@acme.test"}).json
    assert nobody["data"] == []


def test_the_mailbox_keeps_a_bounded_number_of_messages() -> None:
    mailbox = DevMailbox(keep=3)
    for index in range(5):
        mailbox.receive(message_event(subject=f"m{index}"))
    assert [m["subject"] for m in mailbox.messages()] == ["m4", "m3", "m2"]


@pytest.mark.parametrize(("accept", "html"), [(BROWSER_ACCEPT, True), ("*/*", False), (None, False)])
def test_a_browser_gets_a_page_and_other_clients_json(accept: str | None, html: bool) -> None:
    mailbox = DevMailbox()
    mailbox.receive(message_event())
    headers = {"Accept": accept} if accept else {}
    response = client_of(mailbox).get("/_local/mailbox", headers=headers)
    assert response.status_code == 200
    assert response.content_type.startswith("text/html" if html else "application/json")


def test_the_page_shows_the_link_and_the_code_and_escapes_everything() -> None:
    # Given a message whose fields try to inject markup
    mailbox = DevMailbox()
    mailbox.receive(
        message_event(
            to="buyer@acme.test",
            subject="<script>alert(1)</script>",
            text='Hello <img src=x onerror="alert(2)">',
            link='https://app.acme.test/magic?token=a"b<c&orgid=acme',
            code="<b>1</b>",
        )
    )
    mailbox.receive(message_event(to="other@acme.test", link="javascript:alert(3)", code="771205"))

    # When a browser opens the mailbox filtered to one recipient
    response = client_of(mailbox).get(
        "/_local/mailbox", query_string={"to": "buyer@acme.test"}, headers={"Accept": BROWSER_ACCEPT}
    )
    page = response.get_data(as_text=True)

    # Then it is a page a person understands: a title, a heading, the message with its link and code
    assert "<title>Dev mailbox: buyer@acme.test</title>" in page and "<h1>Dev mailbox</h1>" in page
    assert '<a href="https://app.acme.test/magic?token=a&quot;b&lt;c&amp;orgid=acme"' in page
    assert "&lt;b&gt;1&lt;/b&gt;" in page
    # And nothing in it is markup from the message; no script may run
    assert "<script" not in page and "<img" not in page and "<b>1" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "other@acme.test" not in page

    # And a link that is not a web address is never clickable
    other = client_of(mailbox).get(
        "/_local/mailbox", query_string={"to": "other@acme.test"}, headers={"Accept": BROWSER_ACCEPT}
    )
    text = other.get_data(as_text=True)
    assert "771205" in text and "javascript:alert(3)" in text
    assert not re.search(r'href="javascript', text)


def test_an_empty_page_checks_again_by_itself() -> None:
    page = client_of(DevMailbox()).get("/_local/mailbox", headers={"Accept": BROWSER_ACCEPT})
    assert 'http-equiv="refresh"' in page.get_data(as_text=True)
    assert "No messages yet" in page.get_data(as_text=True)
