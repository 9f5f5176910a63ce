"""Contract §4 "Second factor" through the local gateway in-process (authorizer included), on moto:
setup, enable, the sign-in that answers only the partial token, verify with a TOTP, recovery or emailed
code, regeneration, disable, and the limits (replay, five wrong codes, five minutes), for Users and
Customers alike.

The service's clock is frozen (``second_factor.wall_clock``) so that each TOTP step is chosen, never
waited for: ``Authenticator.code`` is the code an authenticator app shows at that clock.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from appengine_core.identity import second_factor
from appengine_core.identity.data import second_factor_key
from appengine_core.identity.second_factor import CHALLENGE_TTL_SECONDS, code_at_step, totp_step
from appengine_core.infra import aws
from appengine_core.infra.envelope import Record
from appengine_core.infra.settings import get_settings
from appengine_core.infra.store import TenantStore, Update

RECOVERY_CODE = re.compile(r"^[23456789abcdefghjkmnpqrstuvwxyz]{5}-[23456789abcdefghjkmnpqrstuvwxyz]{5}$")
CHALLENGE_FIELDS = {
    "twoFactorRequired",
    "partialToken",
    "requiresTwoFactor",
    "challengeToken",
    "twoFactorMethod",
}


@dataclass(frozen=True)
class Person:
    kind: str
    email: str
    password: str
    signin_path: str

    def sign_in(self, gateway: Any) -> tuple[int, Any]:
        return call(
            gateway,
            "POST",
            self.signin_path,
            {"orgid": "acme"},
            {"email": self.email, "password": self.password},
        )


PEOPLE = {
    "user": Person("user", "admin@acme.test", "acme-admin-pass", "/profile/signin"),
    "customer": Person("customer", "buyer@acme.test", "acme-buyer-pass", "/profile/customer/signin"),
}


@dataclass
class Authenticator:
    """What an authenticator app holding ``secret`` shows at the service's (frozen) clock."""

    secret: str
    clock: list[float]
    used: list[int] = field(default_factory=list)

    def code(self, offset_steps: int = 0) -> str:
        return code_at_step(self.secret, totp_step(self.clock[0]) + offset_steps)

    def next_step(self) -> str:
        """The code of the next step: the clock moves 30 seconds on."""
        self.clock[0] += 30
        return self.code()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    # 10 s into the current step, frozen: the test moves it.
    now = [float(totp_step(time.time()) * 30 + 10)]
    monkeypatch.setattr(second_factor, "wall_clock", lambda: now[0])
    return now


def call(gateway: Any, method: str, path: str, headers: dict[str, str], body: Any = None) -> tuple[int, Any]:
    response = gateway.open(path, method=method, headers=headers, json=body)
    return response.status_code, response.get_json(silent=True)


def session_of(gateway: Any, person: Person) -> dict[str, str]:
    status, body = person.sign_in(gateway)
    assert status == 200 and body.get("token"), body
    return {"orgid": "acme", "authorization": f"Bearer {body['token']}"}


def enabled(
    gateway: Any, person: Person, clock: list[float]
) -> tuple[dict[str, str], Authenticator, list[str]]:
    """``person`` with 2FA enabled: its session headers, its authenticator and its recovery codes."""
    headers = session_of(gateway, person)
    status, setup = call(gateway, "POST", "/profile/security/2fa/setup", headers)
    assert status == 200, setup
    authenticator = Authenticator(setup["secret"], clock)
    status, body = call(
        gateway, "POST", "/profile/security/2fa/enable", headers, {"code": authenticator.code()}
    )
    assert status == 200, body
    return headers, authenticator, body["recoveryCodes"]


def partial_token(gateway: Any, person: Person) -> str:
    status, body = person.sign_in(gateway)
    assert status == 200 and body.get("twoFactorRequired") is True, body
    return str(body["partialToken"])


def verify(
    gateway: Any, token: str, path: str = "/profile/security/2fa/verify", **proof: str
) -> tuple[int, Any]:
    return call(gateway, "POST", path, {"orgid": "acme"}, {"partialToken": token, **proof})


def table_items() -> list[dict[str, Any]]:
    table = aws.dynamodb().Table(get_settings().table_name)
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = table.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def second_factor_item(record: Record) -> dict[str, Any] | None:
    return TenantStore().get(second_factor_key(record.sk), consistent=True)


def assert_error(status: int, body: Any, expected_status: int, code: str) -> None:
    assert status == expected_status, body
    assert body["error"] == body["code"] == body["reason"] == code, body


# -- the whole path, for both kinds -------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["user", "customer"])
def test_setup_enable_then_sign_in_answers_only_the_partial_token_and_verify_starts_the_session(
    gateway: Any, tenants: dict[str, Record], bus_messages: Any, clock: list[float], kind: str
) -> None:
    person = PEOPLE[kind]
    record = tenants["acme_admin" if kind == "user" else "acme_customer"]
    headers = session_of(gateway, person)

    # When the person sets 2FA up
    status, setup = call(gateway, "POST", "/profile/security/2fa/setup", headers)

    # Then it gets a base32 secret, its otpauth URI (with the email and an issuer) and an SVG QR code,
    # and the secret rests nowhere in the clear
    assert status == 200, setup
    assert set(setup) == {"secret", "otpauthUri", "qrSvg"}
    assert re.fullmatch(r"[A-Z2-7]{32}", setup["secret"])
    assert (
        setup["otpauthUri"].startswith("otpauth://totp/")
        and f"secret={setup['secret']}" in setup["otpauthUri"]
    )
    assert "issuer=" in setup["otpauthUri"] and person.email.split("@")[0] in setup["otpauthUri"]
    assert setup["qrSvg"].startswith("<svg") and setup["qrSvg"].rstrip().endswith("</svg>")
    assert setup["secret"] not in json.dumps(table_items(), default=str)
    # a second setup replaces the pending secret: the first one no longer enables
    status, again = call(gateway, "POST", "/profile/security/2fa/setup", headers)
    assert status == 200 and again["secret"] != setup["secret"]
    stale = Authenticator(setup["secret"], clock)
    status, body = call(gateway, "POST", "/profile/security/2fa/enable", headers, {"code": stale.code()})
    assert_error(status, body, 422, "validation_error")
    authenticator = Authenticator(again["secret"], clock)

    # When it enables 2FA with a code of the new secret
    status, enabling = call(
        gateway, "POST", "/profile/security/2fa/enable", headers, {"code": authenticator.code()}
    )

    # Then 2FA is on, with 10 recovery codes shown this once, and enabling again is a conflict
    assert status == 200, enabling
    assert enabling["enabled"] is True and len(enabling["recoveryCodes"]) == 10
    assert all(RECOVERY_CODE.fullmatch(c) for c in enabling["recoveryCodes"])
    assert len(set(enabling["recoveryCodes"])) == 10
    status, body = call(
        gateway, "POST", "/profile/security/2fa/enable", headers, {"code": authenticator.next_step()}
    )
    assert_error(status, body, 409, "conflict")
    status, body = call(gateway, "POST", "/profile/security/2fa/setup", headers)
    assert_error(status, body, 409, "conflict")

    # When it signs in with its password
    status, challenge = person.sign_in(gateway)

    # Then it gets only the partial token: the five fields at the top and under data, no token
    assert status == 200, challenge
    assert set(challenge) == CHALLENGE_FIELDS | {"data"}
    assert challenge["data"] == {name: challenge[name] for name in CHALLENGE_FIELDS}
    assert challenge["twoFactorRequired"] is challenge["requiresTwoFactor"] is True
    assert challenge["partialToken"] == challenge["challengeToken"]
    assert challenge["twoFactorMethod"] == "authenticator"
    token = challenge["partialToken"]
    # and the partial token is refused by the authorizer everywhere else
    partial = {"orgid": "acme", "authorization": f"Bearer {token}"}
    for method, path in (
        ("GET", "/profile/whoami"),
        ("GET", "/profile/security/sessions"),
        ("POST", "/profile/security/2fa/setup"),
        ("POST", "/profile/signout"),
    ):
        assert_error(*call(gateway, method, path, partial), 401, "unauthorized")
    assert_error(
        *call(gateway, "GET", "/profile/whoami", {"orgid": "acme", "x-client-authorization": token}),
        401,
        "unauthorized",
    )

    # When it verifies with the step used to enable (a replay), then with the next step's code
    replayed = verify(gateway, token, code=authenticator.code(-1))
    verified = verify(
        gateway, token, path="/profile/security/challenge/verify", code=authenticator.next_step()
    )

    # Then the replay is 401 invalid_code, and the fresh code gives the §3 envelope of a new session
    # whose method ends "+2fa"
    assert_error(*replayed, 401, "invalid_code")
    status, envelope = verified
    assert status == 200, envelope
    assert envelope["token"] and envelope["refreshToken"] and envelope[kind]["sk"] == record.sk
    assert (
        envelope["data"]["token"] == envelope["token"]
        and envelope["data"]["refresh_token"] == envelope["refreshToken"]
    )
    signed_in = {"orgid": "acme", "authorization": f"Bearer {envelope['token']}"}
    status, me = call(gateway, "GET", "/profile/whoami", signed_in)
    assert status == 200 and me["principal"]["sk"] == record.sk
    status, sessions = call(gateway, "GET", "/profile/security/sessions", signed_in)
    assert status == 200
    assert [s["method"] for s in sessions["data"] if s["current"]] == ["password+2fa"]
    # the challenge completed once: its token is spent
    assert_error(*verify(gateway, token, code=authenticator.next_step()), 401, "unauthorized")

    # And no item holds the secret or a recovery code in the clear, and no event carries them
    stored = json.dumps(table_items(), default=str)
    secrets_shown = [again["secret"], *enabling["recoveryCodes"]]
    assert not [s for s in secrets_shown if s in stored]
    item = second_factor_item(record) or {}
    assert item["enabled"] is True and "pendingSecret" not in item and len(item["recoveryHashes"]) == 10
    events = bus_messages()
    published = json.dumps(events)
    assert not [s for s in secrets_shown if s in published]
    types = [e["detail-type"] for e in events]
    assert "auth.second_factor_enabled" in types and "auth.second_factor_failed" in types
    methods = [e["detail"].get("method") for e in events if e["detail-type"] == "auth.signed_in"]
    assert methods[-1] == "password+2fa"


# -- recovery codes ------------------------------------------------------------------------------------
def test_a_recovery_code_works_once_and_regeneration_kills_the_old_set(
    gateway: Any, tenants: dict[str, Record], bus_messages: Any, clock: list[float]
) -> None:
    # Given a user with 2FA enabled
    person = PEOPLE["user"]
    headers, authenticator, codes = enabled(gateway, person, clock)

    # When a sign-in is completed with a recovery code (as typed: upper case, without its hyphen)
    status, envelope = verify(
        gateway, partial_token(gateway, person), recoveryCode=codes[0].replace("-", "").upper()
    )

    # Then it is a session, and the same code a second time is refused
    assert status == 200 and envelope["token"], envelope
    assert_error(*verify(gateway, partial_token(gateway, person), recoveryCode=codes[0]), 401, "invalid_code")

    # When the recovery codes are regenerated (with a fresh authenticator code)
    status, fresh = call(
        gateway, "POST", "/profile/security/2fa/recovery-codes", headers, {"code": authenticator.next_step()}
    )

    # Then a new set is shown, an unused code of the old set is dead, and a new one works
    assert status == 200 and fresh["enabled"] is True and len(fresh["recoveryCodes"]) == 10, fresh
    assert not set(fresh["recoveryCodes"]) & set(codes)
    assert_error(*verify(gateway, partial_token(gateway, person), recoveryCode=codes[1]), 401, "invalid_code")
    status, envelope = verify(gateway, partial_token(gateway, person), recoveryCode=fresh["recoveryCodes"][5])
    assert status == 200, envelope
    # a replayed authenticator code does not regenerate
    status, body = call(
        gateway, "POST", "/profile/security/2fa/recovery-codes", headers, {"code": authenticator.code()}
    )
    assert_error(status, body, 401, "invalid_code")

    # And the events say what happened, without a code
    events = bus_messages()
    types = [e["detail-type"] for e in events]
    assert types.count("auth.recovery_code_used") == 2 and "auth.recovery_codes_regenerated" in types
    published = json.dumps(events)
    assert not [
        c for c in codes + fresh["recoveryCodes"] if c in published or c.replace("-", "") in published
    ]


# -- disable -------------------------------------------------------------------------------------------
def test_disable_takes_the_authenticator_code_or_the_password(
    gateway: Any, tenants: dict[str, Record], bus_messages: Any, clock: list[float]
) -> None:
    # Given a customer with 2FA enabled
    person, record = PEOPLE["customer"], tenants["acme_customer"]
    headers, authenticator, _ = enabled(gateway, person, clock)

    # When it tries to disable with a wrong code, then a wrong password
    wrong_code = call(
        gateway, "POST", "/profile/security/2fa/disable", headers, {"code": authenticator.code(5)}
    )
    wrong_password = call(
        gateway, "POST", "/profile/security/2fa/disable", headers, {"password": "not-it-at-all"}
    )

    # Then both are refused and 2FA stays on
    assert_error(*wrong_code, 401, "invalid_code")
    assert_error(*wrong_password, 401, "invalid_credentials")
    assert (second_factor_item(record) or {}).get("enabled") is True

    # When it disables with its password
    status, body = call(
        gateway, "POST", "/profile/security/2fa/disable", headers, {"password": person.password}
    )

    # Then 2FA is off: a sign-in gives a session again, and disabling again is a conflict
    assert status == 200 and body == {"enabled": False}, body
    assert second_factor_item(record) is None
    status, signed_in = person.sign_in(gateway)
    assert status == 200 and signed_in["token"], signed_in
    assert_error(
        *call(gateway, "POST", "/profile/security/2fa/disable", headers, {"password": person.password}),
        409,
        "conflict",
    )
    assert_error(
        *call(gateway, "POST", "/profile/security/2fa/recovery-codes", headers, {"code": "123456"}),
        409,
        "conflict",
    )

    # When it enables again and disables with an authenticator code
    headers, authenticator, _ = enabled(gateway, person, clock)
    status, body = call(
        gateway, "POST", "/profile/security/2fa/disable", headers, {"code": authenticator.next_step()}
    )

    # Then that works too, and the events tell how
    assert status == 200 and body == {"enabled": False}, body
    disabled = [e["detail"] for e in bus_messages() if e["detail-type"] == "auth.second_factor_disabled"]
    assert [d["via"] for d in disabled] == ["password", "code"]
    assert all(d["principal"] == record.sk for d in disabled)


# -- limits --------------------------------------------------------------------------------------------
def test_five_wrong_codes_kill_the_challenge_even_for_the_right_code(
    gateway: Any, tenants: dict[str, Record], clock: list[float]
) -> None:
    # Given a user with 2FA enabled and a sign-in waiting for its second factor
    person = PEOPLE["user"]
    _, authenticator, _ = enabled(gateway, person, clock)
    token = partial_token(gateway, person)

    # When five wrong codes are sent
    wrong = [verify(gateway, token, code=authenticator.code(3 + n)) for n in range(5)]

    # Then each is 401 invalid_code, and the right code afterwards is refused (401): the challenge is dead
    for status, body in wrong:
        assert_error(status, body, 401, "invalid_code")
    assert_error(*verify(gateway, token, code=authenticator.next_step()), 401, "unauthorized")
    # and the email is locked by the brute-force protection (five failed factors): 429 at sign-in
    status, body = person.sign_in(gateway)
    assert_error(status, body, 429, "rate_limited")


def test_the_challenge_lives_five_minutes(
    gateway: Any, tenants: dict[str, Record], clock: list[float]
) -> None:
    # Given a sign-in waiting for its second factor
    person = PEOPLE["customer"]
    _, authenticator, _ = enabled(gateway, person, clock)
    token = partial_token(gateway, person)

    # When the right code comes more than five minutes later (the token itself is still within its leeway)
    clock[0] += CHALLENGE_TTL_SECONDS + 1

    # Then it is refused
    assert_error(*verify(gateway, token, code=authenticator.code()), 401, "unauthorized")


def test_the_partial_token_belongs_to_the_org_of_its_sign_in(
    gateway: Any, tenants: dict[str, Record], clock: list[float]
) -> None:
    # Given a User who is a member of acme and globex (one account, one second factor), with 2FA on
    from appengine_core.identity.directory import DirectoryService, NewUser

    DirectoryService().create_user(
        "acme",
        NewUser(
            email="both@acme.test",
            password="both-orgs-pass",
            roles=["User"],
            permissions=["read"],
            orgs=["acme", "globex"],
        ),
    )
    both = Person("user", "both@acme.test", "both-orgs-pass", "/profile/signin")
    _, authenticator, _ = enabled(gateway, both, clock)
    # a sign-in to globex asks for the second factor too
    status, body = call(
        gateway,
        "POST",
        "/profile/signin",
        {"orgid": "globex"},
        {"email": both.email, "password": both.password},
    )
    assert status == 200 and body["twoFactorRequired"] is True, body
    token = partial_token(gateway, both)  # signed in to acme

    # When the partial token of the acme sign-in is presented with globex
    elsewhere = call(
        gateway,
        "POST",
        "/profile/security/2fa/verify",
        {"orgid": "globex"},
        {"challengeToken": token, "code": authenticator.next_step()},
    )

    # Then it is refused, and with acme it works
    assert_error(*elsewhere, 401, "unauthorized")
    status, envelope = verify(gateway, token, code=authenticator.next_step())
    assert status == 200 and envelope["token"], envelope


# -- the emailed code ----------------------------------------------------------------------------------
def test_challenge_send_mails_a_code_that_verify_accepts_once(
    gateway: Any, tenants: dict[str, Record], bus_messages: Any, clock: list[float]
) -> None:
    # Given a customer with 2FA and a sign-in waiting for its second factor
    person = PEOPLE["customer"]
    enabled(gateway, person, clock)
    token = partial_token(gateway, person)
    bus_messages()  # what came before

    # When it asks for the code by email
    status, sent = call(
        gateway,
        "POST",
        "/profile/security/challenge/send",
        {"orgid": "acme"},
        {"challengeToken": token, "method": "email"},
    )

    # Then the answer says so and one notification.requested event carries a 6-digit code to its address
    assert status == 200 and sent == {"sent": True, "twoFactorMethod": "email"}, sent
    events = bus_messages()
    mails = [e["detail"] for e in events if e["detail-type"] == "notification.requested"]
    assert len(mails) == 1 and mails[0]["to"] == person.email and mails[0]["purpose"] == "two_factor_code"
    code = mails[0]["code"]
    assert re.fullmatch(r"[0-9]{6}", code) and code in mails[0]["text"]
    # and the code rests nowhere in the clear
    assert not any(code in json.dumps(i, default=str) for i in table_items() if "emailCodeHash" in i)

    # When verify gets that code
    status, envelope = verify(gateway, token, code=code)

    # Then the sign-in completes; the code does not complete another sign-in
    assert status == 200 and envelope["token"], envelope
    assert_error(*verify(gateway, partial_token(gateway, person), code=code), 401, "invalid_code")
    assert_error(*verify(gateway, token, code=code), 401, "unauthorized")


def test_challenge_send_refuses_other_methods_and_dead_tokens(
    gateway: Any, tenants: dict[str, Record], clock: list[float]
) -> None:
    person = PEOPLE["user"]
    enabled(gateway, person, clock)
    token = partial_token(gateway, person)
    send = "/profile/security/challenge/send"
    assert_error(
        *call(gateway, "POST", send, {"orgid": "acme"}, {"challengeToken": token, "method": "sms"}),
        422,
        "validation_error",
    )
    assert_error(
        *call(gateway, "POST", send, {"orgid": "acme"}, {"challengeToken": "not.a.token", "method": "email"}),
        401,
        "unauthorized",
    )
    assert_error(
        *call(gateway, "POST", send, {"orgid": "globex"}, {"challengeToken": token, "method": "email"}),
        401,
        "unauthorized",
    )
    # at most three codes per sign-in
    for _ in range(3):
        assert (
            call(gateway, "POST", send, {"orgid": "acme"}, {"challengeToken": token, "method": "email"})[0]
            == 200
        )
    assert_error(
        *call(gateway, "POST", send, {"orgid": "acme"}, {"challengeToken": token, "method": "email"}),
        429,
        "rate_limited",
    )


# -- bad input -----------------------------------------------------------------------------------------
def test_bad_input_is_422_or_400_never_500_and_changes_nothing(
    gateway: Any, tenants: dict[str, Record], clock: list[float]
) -> None:
    # Given a user with a pending setup, and a customer with 2FA enabled and a sign-in waiting
    user, customer = PEOPLE["user"], PEOPLE["customer"]
    user_headers = session_of(gateway, user)
    assert call(gateway, "POST", "/profile/security/2fa/setup", user_headers)[0] == 200
    pending = second_factor_item(tenants["acme_admin"])
    customer_headers, authenticator, _ = enabled(gateway, customer, clock)
    enabled_item = second_factor_item(tenants["acme_customer"])
    token = partial_token(gateway, customer)

    bad_codes: list[Any] = [
        {},
        {"code": ""},
        {"code": "12345"},
        {"code": "1234567"},
        {"code": "12a456"},
        {"code": 123456},
        {"code": None},
        {"code": "x" * 5000},
    ]
    for body in bad_codes:
        for path in ("/profile/security/2fa/enable", "/profile/security/2fa/recovery-codes"):
            assert_error(
                *call(gateway, "POST", path, user_headers if "enable" in path else customer_headers, body),
                422,
                "validation_error",
            )
    for body in [
        {},
        {"code": "123456", "password": "both-given"},
        {"password": ""},
        {"code": "12 34"},
        [{"code": "123456"}],
    ]:
        assert_error(
            *call(gateway, "POST", "/profile/security/2fa/disable", customer_headers, body),
            422,
            "validation_error",
        )
    for body in [
        {},
        {"partialToken": token},
        {"code": authenticator.code(1)},
        {"partialToken": token, "code": "12a456"},
        {"partialToken": token, "code": "123456", "recoveryCode": "abcde-fghjk"},
        {"partialToken": token, "recoveryCode": "not a code!"},
        {"partialToken": token, "challengeToken": "another", "code": "123456"},
        {"partialToken": 12, "code": "123456"},
        {"partialToken": "", "code": "123456"},
        [{"partialToken": token, "code": "123456"}],
    ]:
        answer = call(gateway, "POST", "/profile/security/2fa/verify", {"orgid": "acme"}, body)
        assert_error(*answer, 422, "validation_error")
    for path, raw in (
        ("/profile/security/2fa/verify", '{"partialToken": "\\ud800", "code": "123456"}'),
        ("/profile/security/challenge/send", '{"challengeToken": "a\\ud800", "method": "email"}'),
    ):
        lone = gateway.post(path, headers={"orgid": "acme", "content-type": "application/json"}, data=raw)
        assert lone.status_code == 422 and lone.get_json()["error"] == "validation_error", lone.get_json()
    lone = gateway.post(
        "/profile/security/2fa/disable",
        headers=customer_headers | {"content-type": "application/json"},
        data='{"password": "\\ud800-not-text"}',
    )
    assert lone.status_code == 422 and lone.get_json()["error"] == "validation_error", lone.get_json()
    not_json = gateway.post(
        "/profile/security/2fa/verify",
        headers={"orgid": "acme", "content-type": "application/json"},
        data="{not json",
    )
    assert not_json.status_code == 400 and not_json.get_json()["error"] == "invalid_json"
    no_org = call(
        gateway, "POST", "/profile/security/2fa/verify", {}, {"partialToken": token, "code": "123456"}
    )
    assert_error(*no_org, 400, "orgid_required")

    # Then nothing changed: the pending setup and the enabled 2FA are as they were, and the waiting
    # sign-in still completes with the right code (no failure was counted against it)
    assert second_factor_item(tenants["acme_admin"]) == pending
    assert second_factor_item(tenants["acme_customer"]) == enabled_item
    status, envelope = verify(gateway, token, code=authenticator.next_step())
    assert status == 200 and envelope["token"], envelope


def test_an_api_key_never_manages_2fa(gateway: Any, tenants: dict[str, Record], clock: list[float]) -> None:
    admin_headers = session_of(gateway, PEOPLE["user"])
    created = call(
        gateway, "POST", "/api-key/create", admin_headers, {"name": "2fa", "scopes": ["read", "write"]}
    )
    assert created[0] == 201, created
    key = {"orgid": "acme", "x-api-key": created[1]["key"]}
    for path, body in (
        ("/profile/security/2fa/setup", None),
        ("/profile/security/2fa/enable", {"code": "123456"}),
        ("/profile/security/2fa/recovery-codes", {"code": "123456"}),
        ("/profile/security/2fa/disable", {"password": "acme-admin-pass"}),
    ):
        assert_error(*call(gateway, "POST", path, key, body), 403, "forbidden")
    assert second_factor_item(tenants["acme_admin"]) is None


def test_a_sealed_secret_does_not_open_for_another_principal(
    gateway: Any, tenants: dict[str, Record], clock: list[float]
) -> None:
    # Given two principals with 2FA, and the sealed secret of the first copied onto the second's item
    _, victim, _ = enabled(gateway, PEOPLE["user"], clock)
    enabled(gateway, PEOPLE["customer"], clock)
    store = TenantStore()
    stolen = (second_factor_item(tenants["acme_admin"]) or {})["secret"]
    store.update(
        Update(second_factor_key(tenants["acme_customer"].sk), "SET secret = :s", values={":s": stolen})
    )

    # When the second signs in with a code of the first's secret
    token = partial_token(gateway, PEOPLE["customer"])

    # Then KMS refuses the seal under the second's context: the code is wrong
    assert_error(*verify(gateway, token, code=victim.next_step()), 401, "invalid_code")
