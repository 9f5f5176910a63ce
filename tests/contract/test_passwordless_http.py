"""Contract §4 "Passwordless sign-in" over HTTP, through the local gateway and its dev mailbox.

Every email is fresh. Requests and successful redeems come from 127.0.0.1; every request expected to
fail speaks from an address of its own in 127.0.0.0/8 (see ``test_lockout_http``), so the failures it
counts never block the address the other tests share.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from tests.contract.conftest import HttpResponse, LocalApi, sign_in
from tests.contract.test_platform_http import assert_error
from tests.contract.test_storefront_security_http import own_address, send_from

ORG = "acme"
PASSWORD = "passwordless-pass-1234"


def new_customer(api: LocalApi) -> str:
    email = f"pl-{uuid.uuid4().hex[:12]}@acme.test"
    response = api.post(
        "/profile/customer/signup", headers={"orgid": ORG}, body={"email": email, "password": PASSWORD}
    )
    assert response.status == 201, response.text
    return email


def new_user(api: LocalApi) -> str:
    email = f"pl-staff-{uuid.uuid4().hex[:12]}@acme.test"
    admin = sign_in(api, "admin@acme.test", "acme-admin-pass", ORG)["token"]
    response = api.post(
        "/user/create",
        headers={"orgid": ORG, "authorization": f"Bearer {admin}"},
        body={"email": email, "password": PASSWORD, "roles": ["User"], "permissions": ["read"]},
    )
    assert response.status == 201, response.text
    return email


def mail_to(api: LocalApi, email: str) -> list[dict[str, Any]]:
    """The messages to ``email``, newest first: from the dev mailbox, or the bus tap's recent events."""
    box = api.get(f"/_local/mailbox?to={quote(email)}")
    if box.status == 200:
        return list(box.json()["data"])
    events = api.get("/_local/events?detailType=notification.requested").json()["data"]
    return [e["detail"] for e in events if e["detail"].get("to") == email]


def next_mail(api: LocalApi, email: str, seen: int = 0) -> dict[str, Any]:
    """The newest message to ``email`` once more than ``seen`` have arrived (the tap drains every 0.5 s)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = mail_to(api, email)
        if len(found) > seen:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no message to {email}")


def token_of(link: str) -> str:
    return str(parse_qs(urlsplit(link).query)["token"][0])


def sessions_of(api: LocalApi, token: str) -> list[dict[str, Any]]:
    listed = api.get("/profile/security/sessions", headers={"orgid": ORG, "authorization": f"Bearer {token}"})
    assert listed.status == 200, listed.text
    return list(listed.json()["data"])


def fails(api: LocalApi, method: str, path: str, headers: dict[str, str], body: Any = None) -> HttpResponse:
    return send_from(api, own_address(), method, path, headers, body)


def test_a_customer_signs_in_by_opening_the_mailed_link(api: LocalApi) -> None:
    # Given a customer who asks for a link
    email = new_customer(api)
    asked = api.post("/profile/magic-link", headers={"orgid": ORG}, body={"email": email})
    assert asked.status == 200 and asked.json() == {"sent": True}, asked.text
    # Then the mailbox holds one message with a link to this gateway's redirect route, and a code
    message = next_mail(api, email)
    link = str(message["link"])
    assert link.startswith(f"{api.base_url}/profile/magic-link/redirect?token=") and "&orgid=acme" in link
    assert len(message["code"]) == 6 and message["code"].isdigit()
    # When the link is opened as a browser opens it: no orgid header, the link carries it
    opened = api.get(link.removeprefix(api.base_url))
    # Then it is the sign-in envelope, whose session was made by a magic link
    assert opened.status == 200, opened.text
    body = opened.json()
    assert body["customer"]["data"]["email"] == email and body["data"]["token"] == body["token"]
    assert [s["method"] for s in sessions_of(api, body["token"]) if s["current"]] == ["magic_link"]
    # And the link, opened again, is 401 invalid_code; so is its code
    assert_error(fails(api, "GET", link.removeprefix(api.base_url), {}), 401, "invalid_code")
    redeem = {"email": email, "code": message["code"]}
    assert_error(
        fails(api, "POST", "/profile/magic-link/redirect", {"orgid": ORG}, redeem), 401, "invalid_code"
    )


def test_a_user_signs_in_with_the_code_alone(api: LocalApi) -> None:
    email = new_user(api)
    asked = api.get(f"/profile/user/magic-link?email={quote(email)}&type=code", headers={"orgid": ORG})
    assert asked.status == 200 and asked.json() == {"sent": True}, asked.text
    message = next_mail(api, email)
    assert message["link"] is None and message["code"] in message["text"]
    signed_in = api.post(
        "/profile/user/magic-link/redirect",
        headers={"orgid": ORG},
        body={"email": email, "code": message["code"]},
    )
    assert signed_in.status == 200, signed_in.text
    assert signed_in.json()["user"]["data"]["email"] == email
    assert [s["method"] for s in sessions_of(api, signed_in.json()["token"]) if s["current"]] == ["code"]


def test_the_customer_code_routes(api: LocalApi) -> None:
    email = new_customer(api)
    path = f"/profile/code/{quote(email, safe='')}"
    assert api.post(path, headers={"orgid": ORG}).json() == {"sent": True}
    code = next_mail(api, email)["code"]
    verified = api.post(f"{path}/verify", headers={"orgid": ORG}, body={"code": code})
    assert verified.status == 200, verified.text
    assert verified.json()["customer"]["data"]["email"] == email


def test_an_unknown_email_gets_the_same_answer_and_no_message(api: LocalApi) -> None:
    # Given a known and an unknown email asking alike
    known, unknown = new_customer(api), f"nobody-{uuid.uuid4().hex[:12]}@acme.test"
    answers = [
        api.post("/profile/magic-link", headers={"orgid": ORG}, body={"email": e}) for e in (unknown, known)
    ]
    # Then both answers are the same 200 {"sent": true}
    assert [(a.status, a.json()) for a in answers] == [(200, {"sent": True})] * 2
    # And once the known email's message has arrived (asked after the unknown one), none went to the other
    next_mail(api, known)
    assert mail_to(api, unknown) == []


def test_two_parallel_redeems_of_one_code_sign_in_once(api: LocalApi) -> None:
    email = new_customer(api)
    for round_ in range(3):
        # Given a fresh code
        assert api.post("/profile/magic-link", headers={"orgid": ORG}, body={"email": email}).status == 200
        code = next_mail(api, email, seen=round_)["code"]

        # When it is redeemed twice at once, from two addresses
        def redeem(_: int, code: str = code) -> int:
            body = {"email": email, "code": code}
            return send_from(
                api, own_address(), "POST", "/profile/magic-link/redirect", {"orgid": ORG}, body
            ).status

        with ThreadPoolExecutor(max_workers=2) as pool:
            statuses = sorted(pool.map(redeem, range(2)))
        # Then exactly one signs in; the other is 401
        assert statuses == [200, 401], statuses


def test_bad_input_is_refused_never_500(api: LocalApi) -> None:
    email = new_customer(api)
    org = {"orgid": ORG}
    cases = [
        ("POST", "/profile/magic-link", org, {}, 422, "validation_error"),
        ("POST", "/profile/magic-link", org, {"email": "not-an-email"}, 422, "validation_error"),
        ("POST", "/profile/magic-link", {}, {"email": email}, 400, "orgid_required"),
        ("GET", "/profile/user/magic-link", org, None, 422, "validation_error"),
        ("POST", "/profile/code/not-an-email", org, None, 422, "validation_error"),
        ("POST", f"/profile/code/{email}/verify", org, {"code": "12345"}, 422, "validation_error"),
        ("POST", f"/profile/code/{email}/verify", org, {"code": "12a456"}, 422, "validation_error"),
        ("POST", "/profile/magic-link/redirect", org, {"email": email}, 422, "validation_error"),
        ("POST", "/profile/magic-link/redirect", org, {"token": "t" * 300}, 422, "validation_error"),
        (
            "POST",
            "/profile/magic-link/redirect",
            org,
            {"token": "0" * 32 + "." + "a" * 43},
            401,
            "invalid_code",
        ),
        ("GET", "/profile/magic-link/redirect?token=abc", {}, None, 400, "orgid_required"),
        ("GET", "/profile/user/magic-link/redirect?token=abc&orgid=acme", {}, None, 401, "invalid_code"),
    ]
    for method, path, headers, body, status, code in cases:
        assert_error(fails(api, method, path, headers, body), status, code)
    # Nothing was sent for any of them
    assert mail_to(api, email) == []
