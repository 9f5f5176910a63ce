"""Contract §4 "Second factor" over HTTP, through the local gateway and its authorizer: setup, enable,
the sign-in that answers only the partial token, verify (and its alias), the emailed code, bad input,
and the race of one TOTP code used by two sign-ins at once (exactly one session).

The stack's clock is the real one: every sequence of codes starts in a step with time to spare
(``steady``) and uses the steps of the ±1 window in increasing order.
"""

from __future__ import annotations

import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyotp

from tests.contract.conftest import HttpResponse, LocalApi
from tests.contract.test_platform_http import assert_error
from tests.contract.test_storefront_security_http import own_address, send_from

ORG = "acme"
PASSWORD = "two-factor-pass-1234"
STEP = 30


def steady(margin: float = 12) -> None:
    """Wait, if need be, until at least ``margin`` seconds are left in the current TOTP step."""
    into = time.time() % STEP
    if into > STEP - margin:
        time.sleep(STEP - into + 0.3)


def code(secret: str, offset: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + offset * STEP)


@dataclass
class Customer:
    email: str
    headers: dict[str, str]
    secret: str = ""
    recovery_codes: tuple[str, ...] = ()


def new_customer(api: LocalApi) -> Customer:
    email = f"tfa-{uuid.uuid4().hex[:12]}@acme.test"
    response = api.post(
        "/profile/customer/signup", headers={"orgid": ORG}, body={"email": email, "password": PASSWORD}
    )
    assert response.status == 201, response.text
    return Customer(email, {"orgid": ORG, "authorization": f"Bearer {response.json()['token']}"})


def with_2fa(api: LocalApi) -> Customer:
    """A new customer with 2FA enabled (with the current step's code: the next step is the next use)."""
    customer = new_customer(api)
    setup = api.post("/profile/security/2fa/setup", headers=customer.headers)
    assert setup.status == 200, setup.text
    customer.secret = setup.json()["secret"]
    steady()
    enabled = api.post(
        "/profile/security/2fa/enable", headers=customer.headers, body={"code": code(customer.secret)}
    )
    assert enabled.status == 200, enabled.text
    customer.recovery_codes = tuple(enabled.json()["recoveryCodes"])
    return customer


def partial_token(api: LocalApi, customer: Customer) -> str:
    response = api.post(
        "/profile/customer/signin",
        headers={"orgid": ORG},
        body={"email": customer.email, "password": PASSWORD},
    )
    assert response.status == 200, response.text
    body = response.json()
    assert body["twoFactorRequired"] is True and "token" not in body and "refreshToken" not in body, body
    return str(body["partialToken"])


def verify(
    api: LocalApi, token: str, path: str = "/profile/security/2fa/verify", **proof: str
) -> HttpResponse:
    return api.post(path, headers={"orgid": ORG}, body={"partialToken": token, **proof})


def test_enable_then_sign_in_then_verify_over_http(api: LocalApi) -> None:
    # Given a customer who turned 2FA on
    customer = with_2fa(api)

    # When it signs in with its password
    response = api.post(
        "/profile/customer/signin",
        headers={"orgid": ORG},
        body={"email": customer.email, "password": PASSWORD},
    )

    # Then only the partial token comes back: the five fields at the top and under data
    assert response.status == 200, response.text
    body = response.json()
    fields = {"twoFactorRequired", "partialToken", "requiresTwoFactor", "challengeToken", "twoFactorMethod"}
    assert set(body) == fields | {"data"} and set(body["data"]) == fields
    token = body["partialToken"]
    # and the gateway's authorizer refuses it on any other route
    for method, path in (
        ("GET", "/profile/whoami"),
        ("GET", "/profile/customer/profile"),
        ("POST", "/profile/signout"),
    ):
        assert_error(
            api.request(method, path, headers={"orgid": ORG, "authorization": f"Bearer {token}"}),
            401,
            "unauthorized",
        )

    # When it verifies with the next step's code, at the alias
    verified = verify(api, token, path="/profile/security/challenge/verify", code=code(customer.secret, 1))

    # Then it is signed in: the §3 envelope, a session whose method ends "+2fa"
    assert verified.status == 200, verified.text
    envelope = verified.json()
    assert envelope["customer"]["data"]["email"] == customer.email
    assert envelope["data"]["refreshToken"] == envelope["refreshToken"]
    headers = {"orgid": ORG, "authorization": f"Bearer {envelope['token']}"}
    sessions = api.get("/profile/security/sessions", headers=headers)
    assert [s["method"] for s in sessions.json()["data"] if s["current"]] == ["password+2fa"]
    # and the secret is never shown again: a second setup is refused while 2FA is on
    assert_error(api.post("/profile/security/2fa/setup", headers=headers), 409, "conflict")


def test_one_totp_code_completes_exactly_one_of_two_parallel_sign_ins(api: LocalApi) -> None:
    # Given a customer with 2FA and two sign-ins waiting for their second factor, and one fresh code
    customer = with_2fa(api)
    tokens = [partial_token(api, customer), partial_token(api, customer)]
    fresh = code(customer.secret, 1)

    # When both sign-ins present that code at the same time
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda t: verify(api, t, code=fresh), tokens))

    # Then exactly one is a session and the other is 401 invalid_code (each step is accepted once)
    statuses = sorted(a.status for a in answers)
    assert statuses == [200, 401], [a.text for a in answers]
    loser = next(a for a in answers if a.status == 401)
    assert_error(loser, 401, "invalid_code")
    winner = next(a for a in answers if a.status == 200)
    assert winner.json()["token"]


def test_a_recovery_code_completes_one_sign_in(api: LocalApi) -> None:
    customer = with_2fa(api)
    first = verify(api, partial_token(api, customer), recoveryCode=customer.recovery_codes[3])
    assert first.status == 200, first.text
    again = send_from(
        api,
        own_address(),
        "POST",
        "/profile/security/2fa/verify",
        {"orgid": ORG},
        {"partialToken": partial_token(api, customer), "recoveryCode": customer.recovery_codes[3]},
    )
    assert_error(again, 401, "invalid_code")


def test_the_emailed_code_completes_the_sign_in(api: LocalApi) -> None:
    # Given a sign-in waiting for its second factor
    customer = with_2fa(api)
    token = partial_token(api, customer)

    # When the customer asks for a code by email
    sent = api.post(
        "/profile/security/challenge/send",
        headers={"orgid": ORG},
        body={"challengeToken": token, "method": "email"},
    )

    # Then a notification.requested event carries it to the customer's address, and verify takes it
    assert sent.status == 200 and sent.json() == {"sent": True, "twoFactorMethod": "email"}, sent.text
    mailed: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while not mailed and time.monotonic() < deadline:
        events = api.get("/_local/events?detailType=notification.requested").json()["data"]
        mailed = [e["detail"] for e in events if e["detail"].get("to") == customer.email]
        time.sleep(0.3)
    assert mailed and mailed[0]["purpose"] == "two_factor_code", mailed
    assert re.fullmatch(r"[0-9]{6}", mailed[0]["code"])
    verified = verify(api, token, code=mailed[0]["code"])
    assert verified.status == 200 and verified.json()["token"], verified.text


def test_bad_input_is_refused_with_the_contracts_errors(api: LocalApi) -> None:
    customer = with_2fa(api)
    token = partial_token(api, customer)
    source = own_address()
    for body in ({}, {"code": "12345"}, {"code": "abcdef"}, {"code": 123456}, {"code": "1234567"}):
        assert_error(
            api.post("/profile/security/2fa/recovery-codes", headers=customer.headers, body=body),
            422,
            "validation_error",
        )
    assert_error(
        api.post("/profile/security/2fa/disable", headers=customer.headers, body={}), 422, "validation_error"
    )
    for body in ({"partialToken": token}, {"partialToken": token, "code": "12a456"}, {"code": "123456"}):
        response = send_from(api, source, "POST", "/profile/security/2fa/verify", {"orgid": ORG}, body)
        assert_error(response, 422, "validation_error")
    garbage = send_from(
        api,
        source,
        "POST",
        "/profile/security/2fa/verify",
        {"orgid": ORG},
        {"partialToken": "x.y.z", "code": "123456"},
    )
    assert_error(garbage, 401, "unauthorized")
    no_org = api.post("/profile/security/2fa/verify", body={"partialToken": token, "code": "123456"})
    assert_error(no_org, 400, "orgid_required")
    not_json = api.post("/profile/security/2fa/verify", headers={"orgid": ORG}, raw=b"{nope")
    assert_error(not_json, 400, "invalid_json")
    # nothing was counted against the waiting sign-in: the right code still completes it
    steady(5)
    assert verify(api, token, code=code(customer.secret, 1)).status == 200
