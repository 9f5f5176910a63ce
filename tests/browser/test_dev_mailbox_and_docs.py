"""What a person sees in a real browser (Debian's Chromium, driven by Playwright) on the local stack:
the dev mailbox with a magic-link message, the link signing them in, and Swagger UI listing the API.

Run by ``make test-browser`` (``.ci/run`` installs Chromium first); not part of the default ``make test``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.contract.conftest import LocalApi, local_stack

pytestmark = pytest.mark.browser
CHROMIUM = Path(os.environ.get("APPENGINE_CHROMIUM", "/usr/bin/chromium"))
# The machine's network is closed: keep Chromium from reaching out at start (see the env notes).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalApi]:
    with local_stack("browser") as local:
        yield local


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make test-browser` installs Debian's chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    yield opened
    context.close()


def test_a_person_signs_in_by_magic_link_from_the_dev_mailbox(stack: LocalApi, page: Page) -> None:
    # Given a magic link requested for the demo customer
    requested = stack.post(
        "/profile/magic-link", headers={"orgid": "acme"}, body={"email": "buyer@acme.test"}
    )
    assert requested.status == 200, requested.text

    # When the person opens the dev mailbox in a browser
    page.goto(f"{stack.base_url}/_local/mailbox")

    # Then they see the message to them, with its sign-in link and its 6-digit code
    expect(page.get_by_text("buyer@acme.test").first).to_be_visible(timeout=10_000)
    link = page.locator("a[href*='token=']").first
    expect(link).to_be_visible()
    assert re.search(r"\b\d{6}\b", page.inner_text("body"))

    # And following the link signs them in: the sign-in envelope with an access token
    link.click()
    page.wait_for_load_state()
    envelope = json.loads(page.inner_text("body"))
    assert envelope["token"] and envelope["customer"]["data"]["email"] == "buyer@acme.test"


def test_swagger_ui_lists_the_operations(stack: LocalApi, page: Page) -> None:
    # When a person opens the API docs
    page.goto(f"{stack.base_url}/docs")

    # Then Swagger UI renders the operations of the contract, sign-in and the 2FA routes among them
    expect(page.locator(".opblock").first).to_be_visible(timeout=15_000)
    listed = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/profile/signin" in listed
    assert "/profile/security/2fa/setup" in listed
    assert "/profile/magic-link" in listed
