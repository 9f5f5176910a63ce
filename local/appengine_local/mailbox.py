"""Local only: the dev mailbox (GET /_local/mailbox), never deployed.

Every ``notification.requested`` event the bus carries (magic links, sign-in and 2FA codes) is kept here,
bounded and newest first, and logged, so a developer can sign in by link or code without a mail server.
It answers JSON in the contract's list shape, or a page for a browser (``Accept: text/html``).
"""

from __future__ import annotations

import html
import json
import logging
import threading
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from werkzeug.wrappers import Request, Response

log = logging.getLogger("appengine.local.mailbox")
KEEP = 500
NOTIFICATION_REQUESTED = "notification.requested"
SOURCE = "appengine"
REFRESH_WHEN_EMPTY_SECONDS = 2
# The page is static HTML with inline styles: no script may run, nothing is loaded from elsewhere.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class DevMailbox:
    def __init__(self, keep: int = KEEP) -> None:
        self._messages: deque[dict[str, Any]] = deque(maxlen=keep)
        self._lock = threading.Lock()

    # -- receiving (a BusTap listener) ----------------------------------------------------------------
    def receive(self, event: Mapping[str, Any]) -> bool:
        """Keep ``event`` if it is a message to a person; returns whether it was one."""
        if event.get("detail-type") != NOTIFICATION_REQUESTED or event.get("source") != SOURCE:
            return False
        detail = event.get("detail")
        if not isinstance(detail, dict) or not isinstance(detail.get("to"), str):
            log.warning("notification without a recipient ignored (event %s)", event.get("id"))
            return False
        message = {
            "to": detail["to"],
            "subject": _text(detail.get("subject")) or "",
            "text": _text(detail.get("text")) or "",
            "link": _text(detail.get("link")),
            "code": _text(detail.get("code")),
            "createdAt": _text(detail.get("time") or event.get("time"))
            or datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "orgid": _text(detail.get("orgid")),
            "purpose": _text(detail.get("purpose")),
        }
        with self._lock:
            self._messages.appendleft(message)
        # Local only (api.md §9): the message in the log too, so a terminal is enough to sign in.
        log.info(
            "mail to %s (%s, orgid=%s): %r link=%s code=%s",
            message["to"],
            message["purpose"],
            message["orgid"],
            message["subject"],
            message["link"],
            message["code"],
        )
        return True

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        """Newest first; ``to`` filters by recipient, ignoring case and surrounding spaces."""
        wanted = (to or "").strip().lower()
        with self._lock:
            kept = list(self._messages)
        return [m for m in kept if not wanted or m["to"].strip().lower() == wanted]

    # -- GET /_local/mailbox -------------------------------------------------------------------------
    def route(self, request: Request) -> Response:
        to = request.args.get("to")
        found = self.messages(to)
        if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
            return Response(
                render_page(found, to), status=200, headers=PAGE_HEADERS, content_type="text/html"
            )
        body = {
            "data": found,
            "total": len(found),
            "page": 1,
            "pageSize": len(found),
            "hasNext": False,
            "next": None,
        }
        return Response(
            json.dumps(body),
            status=200,
            headers={"Cache-Control": "no-store"},
            content_type="application/json",
        )


# -- the page ------------------------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _is_web_link(link: str) -> bool:
    parts = urlsplit(link)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _message_html(message: Mapping[str, Any]) -> str:
    rows = [
        f'<h2 class="subject">{_e(message["subject"]) or "(no subject)"}</h2>',
        '<p class="meta">To <strong class="to">'
        f"{_e(message['to'])}</strong> · {_e(message['createdAt'])}"
        + (f" · org {_e(message['orgid'])}" if message.get("orgid") else "")
        + (f" · {_e(message['purpose'])}" if message.get("purpose") else "")
        + "</p>",
    ]
    link = message.get("link")
    if link:
        if _is_web_link(link):
            rows.append(
                '<p class="link"><a href="'
                f'{_e(link)}" rel="noopener noreferrer">Open the sign-in link</a>'
                f'<br><small class="url">{_e(link)}</small></p>'
            )
        else:
            rows.append(f'<p class="link">Link (not a web address): <code>{_e(link)}</code></p>')
    if message.get("code"):
        rows.append(f'<p>Code: <span class="code">{_e(message["code"])}</span></p>')
    rows.append(f'<pre class="text">{_e(message["text"])}</pre>')
    return '<article class="message">' + "".join(rows) + "</article>"


def render_page(messages: list[dict[str, Any]], to: str | None = None) -> str:
    """The mailbox as a page a person reads: newest message first, every value escaped."""
    title = f"Dev mailbox: {to}" if to else "Dev mailbox"
    refresh = f'<meta http-equiv="refresh" content="{REFRESH_WHEN_EMPTY_SECONDS}">' if not messages else ""
    if messages:
        listing = "".join(_message_html(m) for m in messages)
    else:
        listing = (
            '<p class="empty">No messages yet. This page checks again every '
            f"{REFRESH_WHEN_EMPTY_SECONDS} seconds.</p>"
        )
    shown = f"{len(messages)} message{'s' if len(messages) != 1 else ''}"
    clear = ' · <a href="?">all recipients</a>' if to else ""
    reload_href = "?" + urlencode({"to": to}) if to else "?"
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{refresh}<title>{_e(title)}</title>"
        "<style>"
        "body{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem;color:#222}"
        ".message{border:1px solid #ccc;border-radius:6px;padding:1rem;margin:1rem 0}"
        ".subject{margin:0 0 .25rem;font-size:1.15rem}.meta{color:#555;margin:0 0 .75rem}"
        ".code{font:bold 1.8rem monospace;letter-spacing:.2em;background:#f3f3f3;padding:.1em .4em}"
        ".url{color:#555;word-break:break-all}pre.text{white-space:pre-wrap;background:#fafafa;padding:.5rem}"
        "</style></head><body>"
        "<h1>Dev mailbox</h1>"
        "<p>Messages this local stack would have e-mailed (sign-in links and codes). "
        "Local only: deployed, the mailer sends them with SES, and there is no mailbox.</p>"
        '<form method="get" action=""><label>Recipient '
        f'<input type="email" name="to" value="{_e(to)}"></label> <button type="submit">Filter</button>'
        f'</form><p>{shown}{clear} · <a href="{_e(reload_href)}">refresh</a></p>'
        f"{listing}</body></html>"
    )
