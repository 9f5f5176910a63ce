"""No secret at rest, in a log line or in an event (issue 15), after one full run of the sign-in flows.

In one in-process run on moto (the local gateway, authorizer included), every flow a client can take
with a secret is walked, and every secret value the client sees or sends is collected: passwords (those
of the seeded principals, of a created user and of a sign-up, and the wrong ones typed: a typo'd
password is often the real one), refresh tokens, the 2FA setup secrets (and the otpauth URI's), recovery
codes, authenticator codes, the emailed 2FA code, magic-link tokens (and their secret part) and codes,
the customers' code-only route, API keys (created, regenerated, and wrong ones) and an app token.
Access, partial and app tokens (JWTs) are not secrets at rest, but must never be logged or published.

Everything the run leaves behind is captured: every table item (a Scan), every log record (all loggers
at DEBUG, with their ``extra`` fields and tracebacks) and every line written to stdout/stderr (the
Powertools JSON lines), and every event put on the bus (a catch-all rule into an SQS queue), which is
then handed to the template's rule targets as EventBridge would: the audit function (its items and
log lines) and the mailer (its log lines). Only ``notification.requested`` events may carry a code or
link (they go to the mailer alone); every other place is searched for every secret in the clear.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import boto3
import pytest

from appengine_core.identity import second_factor
from appengine_core.identity.second_factor import totp_step
from appengine_core.infra.envelope import Record
from appengine_core.infra.settings import get_settings
from appengine_local.resources import LOCAL_ACCOUNT, LOCAL_REGION, merged_environment
from appengine_local.rules import RuleDispatcher
from appengine_local.runtime import LocalLambda
from appengine_local.streams import StreamMapping
from appengine_local.template import load_template
from tests.integration.test_second_factor import Authenticator, table_items

ORG = "acme"
SENDER = "no-reply@acme.test"
NOTIFICATION = "notification.requested"
# The seeded principals' passwords (tests/integration/conftest.py ``tenants``).
SEEDED_PASSWORDS = (
    "acme-admin-pass",
    "acme-reader-pass",
    "platform-pass",
    "globex-admin-pass",
    "acme-buyer-pass",
)
ADMIN, READER, BUYER = "admin@acme.test", "reader@acme.test", "buyer@acme.test"
STAFF_2FA, STAFF_2FA_PASSWORD = "second@acme.test", "Second-Factor-Pass-731"
NEWCOMER, NEWCOMER_PASSWORD = "newcomer@acme.test", "Signup-Pass-5820"
DIGITS = re.compile(r"[0-9]{6}")
# A run of hex digits and hyphens this long is an id (uuid, request id, sha-256 digest), not a code.
ID_RUN = re.compile(r"[0-9a-f-]{16,}")


# -- what the client saw -----------------------------------------------------------------------------
@dataclass
class Secrets:
    """Every secret value of the run, by category."""

    clear: dict[str, set[str]] = field(default_factory=dict)  # searched in items, logs and events
    codes: dict[str, set[str]] = field(default_factory=dict)  # 6-digit codes: searched on digit bounds
    jwts: dict[str, set[str]] = field(default_factory=dict)  # searched in logs and events

    def add(self, category: str, *values: str) -> None:
        for value in values:
            assert isinstance(value, str) and len(value) >= 8, (category, value)
            self.clear.setdefault(category, set()).add(value)

    def add_code(self, category: str, code: str) -> None:
        assert DIGITS.fullmatch(code), (category, code)
        self.codes.setdefault(category, set()).add(code)

    def add_jwt(self, category: str, token: str) -> None:
        assert token.count(".") == 2, (category, token)
        self.jwts.setdefault(category, set()).add(token)

    def add_envelope(self, category: str, envelope: dict[str, Any]) -> None:
        """A sign-in envelope: its refresh token (and the token's secret part) and its access token."""
        refresh = envelope["refreshToken"]
        self.add(f"{category} refresh token", refresh, refresh.rsplit(".", 1)[-1])
        self.add_jwt(f"{category} access token", envelope["token"])

    def add_recovery_codes(self, category: str, codes: list[str]) -> None:
        assert len(codes) == 10
        for code in codes:
            self.add(category, code, code.replace("-", ""))

    def count(self) -> int:
        return sum(len(v) for group in (self.clear, self.codes, self.jwts) for v in group.values())


def leaks(haystack: list[str], secrets: Secrets, *, jwts: bool = True) -> list[tuple[str, str, str]]:
    """``(category, secret, context)`` for every secret found in the clear in ``haystack``'s texts.
    Case-insensitive (a recovery code is accepted in any case, a key or token copied in any case is
    still that key). A 6-digit code counts only as a whole number (not inside a longer digit run such
    as a timestamp, nor as the fraction of a time ``hh:mm:ss.ffffff``, nor inside an id's hex run)."""
    text = "\n".join(haystack).lower()  # no secret holds a newline

    def context(start: int, end: int) -> str:
        return text[max(0, start - 100) : end + 100]

    found: list[tuple[str, str, str]] = []
    for category, values in (secrets.clear | (secrets.jwts if jwts else {})).items():
        for value in values:
            at = text.find(value.lower())
            if at >= 0:
                found.append((category, value, context(at, at + len(value))))
    categories_of: dict[str, list[str]] = {}
    for category, codes in secrets.codes.items():
        for code in codes:
            categories_of.setdefault(code, []).append(category)
    if categories_of:
        alternatives = "|".join(sorted(categories_of))
        whole = re.compile(rf"(?<![0-9])(?<!:[0-9][0-9][.,])(?:{alternatives})(?![0-9])")
        for match in whole.finditer(text):
            if not _inside_an_id(text, match.start(), match.end()):
                code, around = match.group(), context(match.start(), match.end())
                found += [(category, code, around) for category in categories_of[code]]
    return found


def _inside_an_id(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] lies inside a long run of hex digits and hyphens (an id, a digest)."""
    for run in ID_RUN.finditer(text, max(0, start - 80), min(len(text), end + 80)):
        if run.start() <= start and end <= run.end() and run.group().strip("-") != text[start:end]:
            return True
    return False


# -- capture ------------------------------------------------------------------------------------------
@dataclass
class LogCapture:
    caplog: pytest.LogCaptureFixture
    capfd: pytest.CaptureFixture[str]
    earlier_loggers: io.StringIO = field(default_factory=io.StringIO)
    stdout: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Every log record with all its fields (``extra`` included) and traceback, and every line
        written to stdout or stderr (the Powertools JSON lines among them)."""
        captured = self.capfd.readouterr()
        self.stdout += (captured.out + captured.err).splitlines()
        self.stdout += self.earlier_loggers.getvalue().splitlines()
        self.earlier_loggers.seek(0)
        self.earlier_loggers.truncate()
        lines = []
        for record in self.caplog.records:
            if is_the_wire_of_a_notification(record) or is_the_wire_of_a_secret_read(record):
                continue
            lines.append(json.dumps({**vars(record), "message": record.getMessage()}, default=str))
            if record.exc_info:
                lines.append("".join(traceback.format_exception(*record.exc_info)))
        return lines + self.stdout


def is_the_wire_of_a_secret_read(record: logging.LogRecord) -> bool:
    """botocore's DEBUG trace of a Secrets Manager answer: reading a secret (the signing keys, the code
    pepper) returns it, so its response body holds it by nature. The template never turns botocore's
    DEBUG trace on (``LogLevel`` sets the Powertools loggers only; docs/decisions.md)."""
    return (
        record.name.startswith("botocore.")
        and record.levelno <= logging.DEBUG
        and '"SecretString"' in record.getMessage()
    )


def is_the_wire_of_a_notification(record: logging.LogRecord) -> bool:
    """botocore's DEBUG trace of the calls that carry a message to the mailer: the PutEvents request
    publishing a ``notification.requested`` event, this test's capture queue handing it back, and SES
    sending it (the mail itself). botocore logs every request and response body at DEBUG, so these hold
    the code and link the mailer's event is allowed to carry; every other botocore record (the table's
    writes and reads among them) is searched like any log line."""
    if not record.name.startswith("botocore.") or record.levelno > logging.DEBUG:
        return False
    message = record.getMessage()
    return NOTIFICATION in message or "OperationModel(name=SendEmail)" in message


@pytest.fixture
def logs(
    aws_stack: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> Iterator[LogCapture]:
    """Every log record of every logger at DEBUG, and what the functions write to stdout: the
    Powertools loggers the run creates write to this test's stdout; those an earlier test of this
    process created (the handlers reuse them) keep the stream of that test, so they write to the
    capture's own buffer for the run. Everything is back as it was afterwards."""
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")  # the handlers are imported during the run
    caplog.set_level(logging.DEBUG)
    capture = LogCapture(caplog, capfd)
    before = set(logging.root.manager.loggerDict)
    restore: list[Callable[[], object]] = []
    for logger in powertools_or_leveled_loggers():
        if logger.level > logging.DEBUG:
            restore.append(partial(logger.setLevel, logger.level))
            logger.setLevel(logging.DEBUG)
        handler = getattr(logger, "powertools_handler", None)
        if isinstance(handler, logging.StreamHandler):
            # swapped without ``setStream``, whose flush fails on an earlier test's closed stream
            restore.append(partial(setattr, handler, "stream", handler.stream))
            handler.stream = capture.earlier_loggers
    yield capture
    for undo in reversed(restore):
        undo()
    # The Powertools loggers the run created outlive it: back to the template's level and to the
    # process's stdout (this test's capture closes).
    level = merged_environment().get("POWERTOOLS_LOG_LEVEL", "INFO")
    for logger in powertools_or_leveled_loggers():
        handler = getattr(logger, "powertools_handler", None)
        if logger.name not in before and isinstance(handler, logging.StreamHandler):
            logger.setLevel(level)
            handler.stream = sys.__stdout__


def powertools_or_leveled_loggers() -> list[logging.Logger]:
    return [
        logger
        for logger in list(logging.root.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
        and (logger.level != logging.NOTSET or hasattr(logger, "powertools_handler"))
    ]


class Bus:
    """Every event put on the bus, through a catch-all rule (every event of the account) into SQS."""

    def __init__(self) -> None:
        sqs = boto3.client("sqs", region_name=LOCAL_REGION)
        events = boto3.client("events", region_name=LOCAL_REGION)
        self._sqs = sqs
        self._url = sqs.create_queue(QueueName="secret-search-capture")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        bus = get_settings().event_bus_name
        everything = json.dumps({"account": [LOCAL_ACCOUNT]})
        events.put_rule(Name="secret-search-all", EventBusName=bus, EventPattern=everything)
        events.put_targets(Rule="secret-search-all", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
        self.events: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        """The events published since the last drain (all of them are kept in ``events``)."""
        fresh: list[dict[str, Any]] = []
        while True:
            batch = self._sqs.receive_message(QueueUrl=self._url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                self.events += fresh
                return fresh
            for message in batch:
                fresh.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])

    def mail_to(self, email: str) -> dict[str, Any]:
        """The one message to ``email`` published since the last drain."""
        mails = [
            e["detail"]
            for e in self.drain()
            if e["detail-type"] == NOTIFICATION and e["detail"]["to"] == email
        ]
        assert len(mails) == 1, mails
        return dict(mails[0])


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The 2FA service's clock, frozen 10 s into a step (the test moves it a step at a time)."""
    now = [float(totp_step(time.time()) * 30 + 10)]
    monkeypatch.setattr(second_factor, "wall_clock", lambda: now[0])
    return now


@pytest.fixture
def sender(aws_stack: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """A configured, SES-verified sender: the mailer really sends (and logs that it did)."""
    monkeypatch.setenv("MAIL_SENDER_ADDRESS", SENDER)
    get_settings.cache_clear()
    boto3.client("sesv2", region_name=LOCAL_REGION).create_email_identity(EmailIdentity=SENDER)
    return SENDER


# -- calling the API ----------------------------------------------------------------------------------
@dataclass
class Client:
    gateway: Any
    secrets: Secrets

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        response = self.gateway.open(path, method=method, headers={"orgid": ORG} | (headers or {}), json=body)
        return response.status_code, response.get_json(silent=True)

    def expect(
        self, status: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        got, answer = self.call(method, path, body, headers)
        assert got == status, (method, path, got, answer)
        return answer

    def sign_in(self, path: str, email: str, password: str, status: int = 200) -> Any:
        self.secrets.add("password", password)
        return self.expect(status, "POST", path, {"email": email, "password": password})

    def session(self, path: str, email: str, password: str) -> dict[str, str]:
        """Signs in (no 2FA): the bearer headers of the new session."""
        envelope = self.sign_in(path, email, password)
        self.secrets.add_envelope("sign-in", envelope)
        return bearer(envelope)

    def partial_token(self, path: str, email: str, password: str) -> str:
        challenge = self.sign_in(path, email, password)
        assert challenge["twoFactorRequired"] is True and "token" not in challenge, challenge
        self.secrets.add_jwt("partial token", challenge["partialToken"])
        return str(challenge["partialToken"])

    def verify(self, partial: str, status: int = 200, **proof: str) -> Any:
        answer = self.expect(
            status, "POST", "/profile/security/2fa/verify", {"partialToken": partial, **proof}
        )
        if status == 200:
            self.secrets.add_envelope("2fa verify", answer)
        return answer

    def totp(self, authenticator: Authenticator, offset: int | None = None) -> str:
        """The authenticator's code of the next step (or of ``offset`` steps away: a wrong code)."""
        code = authenticator.next_step() if offset is None else authenticator.code(offset)
        self.secrets.add_code("authenticator code", code)
        return code


def bearer(envelope: dict[str, Any]) -> dict[str, str]:
    return {"authorization": f"Bearer {envelope['token']}"}


def link_token(message: dict[str, Any]) -> str:
    return str(parse_qs(urlsplit(message["link"]).query)["token"][0])


def wrong_code(right: str) -> str:
    return f"{(int(right) + 500_001) % 1_000_000:06d}"


# -- the flows ----------------------------------------------------------------------------------------
def passwords_refresh_and_locks(client: Client, bus: Bus) -> dict[str, str]:
    """Sign-in, sign-up, user creation, refresh (right and forged), wrong passwords, a lock and its
    unlock. Returns the admin's headers."""
    secrets = client.secrets
    secrets.add("password", *SEEDED_PASSWORDS)
    admin = client.session("/profile/signin", ADMIN, "acme-admin-pass")
    # refresh: a right one (rotates), and a forged one naming the same session
    envelope = client.sign_in("/profile/user/signin", ADMIN, "acme-admin-pass")
    secrets.add_envelope("sign-in", envelope)
    rotated = client.expect(200, "POST", "/profile/user/refresh", {"refreshToken": envelope["refreshToken"]})
    secrets.add_envelope("refresh", rotated)
    forged = rotated["refreshToken"][:-6] + "AbCdEf"
    secrets.add("forged refresh token", forged)
    client.expect(401, "POST", "/profile/user/refresh", {"refreshToken": forged})
    # a customer's sign-in and refresh
    buyer = client.sign_in("/profile/customer/signin", BUYER, "acme-buyer-pass")
    secrets.add_envelope("customer sign-in", buyer)
    rotated = client.expect(
        200, "POST", "/profile/customer/refresh", {"refresh_token": buyer["refreshToken"]}
    )
    secrets.add_envelope("customer refresh", rotated)
    client.expect(200, "POST", "/profile/signout", headers=bearer(rotated))
    # a staff user created by the admin (with a password), and a customer's sign-up
    secrets.add("password", STAFF_2FA_PASSWORD, NEWCOMER_PASSWORD)
    client.expect(
        201,
        "POST",
        "/user/create",
        {"email": STAFF_2FA, "password": STAFF_2FA_PASSWORD, "roles": ["User"], "permissions": ["read"]},
        admin,
    )
    signed_up = client.expect(
        201,
        "POST",
        "/profile/customer/signup",
        {"email": NEWCOMER, "password": NEWCOMER_PASSWORD, "firstName": "Nia"},
    )
    secrets.add_envelope("sign-up", signed_up)
    # wrong passwords (typos of the right ones): five lock the reader, then an admin unlocks
    for typo in (
        "acme-reader-pas",
        "acme-reader-passs",
        "Acme-Reader-Pass",
        "acme-raeder-pass",
        "acmereaderpass",
    ):
        client.sign_in("/profile/signin", READER, typo, status=401)
    client.sign_in("/profile/signin", READER, "acme-reader-pass", status=429)
    assert client.expect(200, "POST", "/user/unlock", {"email": READER}, admin) == {"ok": True}
    client.session("/profile/signin", READER, "acme-reader-pass")
    for typo in ("acme-buyer-pas", "acme-buyer-p4ss"):
        client.sign_in("/profile/customer/signin", BUYER, typo, status=401)
    client.sign_in("/profile/signin", BUYER, "acme-buyer-pass", status=401)  # a customer at the staff route
    assert client.expect(200, "POST", "/customer/unlock", {"email": BUYER}, admin) == {"ok": True}
    bus.drain()
    types = [e["detail-type"] for e in bus.events]
    assert {"auth.locked", "auth.unlocked", "auth.sign_in_failed", "auth.signed_in"} <= set(types), types
    return admin


def second_factor_of_a_user(client: Client, bus: Bus, clock: list[float]) -> None:
    """Setup (twice), enable (a wrong code first), every way to verify, regeneration, disable."""
    secrets = client.secrets
    signin = "/profile/signin"
    headers = client.session(signin, STAFF_2FA, STAFF_2FA_PASSWORD)
    first = client.expect(200, "POST", "/profile/security/2fa/setup", headers=headers)
    setup = client.expect(200, "POST", "/profile/security/2fa/setup", headers=headers)
    for shown in (first, setup):
        uri_secret = parse_qs(urlsplit(shown["otpauthUri"]).query)["secret"][0]
        assert uri_secret == shown["secret"]
        secrets.add("2fa secret", shown["secret"], uri_secret)
    authenticator = Authenticator(setup["secret"], clock)
    client.expect(
        422, "POST", "/profile/security/2fa/enable", {"code": client.totp(authenticator, 4)}, headers
    )
    enabled = client.expect(
        200, "POST", "/profile/security/2fa/enable", {"code": client.totp(authenticator)}, headers
    )
    codes = enabled["recoveryCodes"]
    secrets.add_recovery_codes("recovery code", codes)

    # verify: a wrong code, then the authenticator's
    partial = client.partial_token(signin, STAFF_2FA, STAFF_2FA_PASSWORD)
    client.verify(partial, 401, code=client.totp(authenticator, 3))
    client.verify(partial, code=client.totp(authenticator))
    # verify with the emailed code (read from the mailer's event)
    partial = client.partial_token(signin, STAFF_2FA, STAFF_2FA_PASSWORD)
    assert client.expect(
        200, "POST", "/profile/security/challenge/send", {"challengeToken": partial, "method": "email"}
    ) == {"sent": True, "twoFactorMethod": "email"}
    mailed = bus.mail_to(STAFF_2FA)
    assert mailed["purpose"] == "two_factor_code"
    secrets.add_code("emailed 2fa code", mailed["code"])
    client.verify(partial, 401, code=wrong_code(mailed["code"]))
    secrets.add_code("wrong emailed 2fa code", wrong_code(mailed["code"]))
    client.expect(
        200,
        "POST",
        "/profile/security/challenge/verify",
        {"challengeToken": partial, "code": mailed["code"]},
    )
    # verify with a recovery code as typed (upper case, no hyphen)
    partial = client.partial_token(signin, STAFF_2FA, STAFF_2FA_PASSWORD)
    client.verify(partial, recoveryCode=codes[0].replace("-", "").upper())
    # regenerate: a new set, one of which completes a sign-in
    regenerated = client.expect(
        200, "POST", "/profile/security/2fa/recovery-codes", {"code": client.totp(authenticator)}, headers
    )
    secrets.add_recovery_codes("regenerated recovery code", regenerated["recoveryCodes"])
    partial = client.partial_token(signin, STAFF_2FA, STAFF_2FA_PASSWORD)
    client.verify(partial, recoveryCode=regenerated["recoveryCodes"][3])
    # disable: a wrong password (a typo), then the authenticator's code
    secrets.add("password", "Second-Factor-Pass-713")
    client.expect(
        401, "POST", "/profile/security/2fa/disable", {"password": "Second-Factor-Pass-713"}, headers
    )
    disabled = client.expect(
        200, "POST", "/profile/security/2fa/disable", {"code": client.totp(authenticator)}, headers
    )
    assert disabled == {"enabled": False}
    bus.drain()
    types = [e["detail-type"] for e in bus.events]
    for expected in (
        "auth.second_factor_enabled",
        "auth.second_factor_failed",
        "auth.recovery_code_used",
        "auth.recovery_codes_regenerated",
        "auth.second_factor_disabled",
    ):
        assert expected in types, (expected, types)


def second_factor_of_a_customer(client: Client, bus: Bus, clock: list[float]) -> None:
    """A customer with 2FA: a magic link answers the challenge; disable with the password."""
    secrets = client.secrets
    headers = client.session("/profile/customer/signin", NEWCOMER, NEWCOMER_PASSWORD)
    setup = client.expect(200, "POST", "/profile/security/2fa/setup", headers=headers)
    secrets.add("2fa secret", setup["secret"])
    authenticator = Authenticator(setup["secret"], clock)
    enabled = client.expect(
        200, "POST", "/profile/security/2fa/enable", {"code": client.totp(authenticator)}, headers
    )
    secrets.add_recovery_codes("recovery code", enabled["recoveryCodes"])
    assert client.expect(200, "POST", "/profile/magic-link", {"email": NEWCOMER}) == {"sent": True}
    message = bus.mail_to(NEWCOMER)
    token = link_token(message)
    secrets.add("magic-link token", token, token.split(".", 1)[1])
    secrets.add_code("magic-link code", message["code"])
    challenge = client.expect(200, "GET", f"/profile/magic-link/redirect?token={quote(token)}")
    assert challenge["twoFactorRequired"] is True, challenge
    secrets.add_jwt("partial token", challenge["partialToken"])
    client.verify(challenge["partialToken"], code=client.totp(authenticator))
    assert client.expect(
        200, "POST", "/profile/security/2fa/disable", {"password": NEWCOMER_PASSWORD}, headers
    ) == {"enabled": False}


def passwordless(client: Client, bus: Bus) -> None:
    """Magic links and codes, for a customer and a user; wrong tokens and codes; the code-only route."""
    secrets = client.secrets

    def ask(path: str, email: str, **extra: str) -> dict[str, Any]:
        assert client.expect(200, "POST", path, {"email": email, **extra}) == {"sent": True}
        message = bus.mail_to(email)
        if message.get("link"):
            token = link_token(message)
            secrets.add("magic-link token", token, token.split(".", 1)[1])
        secrets.add_code("magic-link code", message["code"])
        return message

    # a customer: a wrong token (the right selector, a guessed secret), then the link, by GET
    message = ask("/profile/magic-link", BUYER)
    selector, _ = link_token(message).split(".", 1)
    guessed = f"{selector}.{'Zq9' * 14}"
    secrets.add("wrong magic-link token", guessed, "Zq9" * 14)
    client.expect(401, "POST", "/profile/magic-link/redirect", {"token": guessed})
    opened = client.expect(
        200, "GET", f"/profile/magic-link/redirect?token={quote(link_token(message))}&orgid={ORG}"
    )
    secrets.add_envelope("magic link", opened)
    # a customer: a wrong code, then the code
    message = ask("/profile/magic-link", BUYER)
    client.expect(
        401, "POST", "/profile/magic-link/redirect", {"email": BUYER, "code": wrong_code(message["code"])}
    )
    secrets.add_code("wrong magic-link code", wrong_code(message["code"]))
    redeemed = client.expect(
        200, "POST", "/profile/magic-link/redirect", {"email": BUYER, "code": message["code"]}
    )
    secrets.add_envelope("magic code", redeemed)
    # a user: the code, then (a new request) the link by POST
    message = ask("/profile/user/magic-link", ADMIN)
    secrets.add_envelope(
        "user magic code",
        client.expect(
            200, "POST", "/profile/user/magic-link/redirect", {"email": ADMIN, "code": message["code"]}
        ),
    )
    message = ask("/profile/user/magic-link", ADMIN, type="code")
    assert message["link"] is None
    message = ask("/profile/user/magic-link", ADMIN)
    secrets.add_envelope(
        "user magic link",
        client.expect(200, "POST", "/profile/user/magic-link/redirect", {"token": link_token(message)}),
    )
    # the customers' code-only route: a wrong code, then the code
    path = f"/profile/code/{quote(BUYER)}"
    assert client.expect(200, "POST", path) == {"sent": True}
    code = bus.mail_to(BUYER)["code"]
    secrets.add_code("sign-in code", code)
    secrets.add_code("wrong sign-in code", wrong_code(code))
    client.expect(401, "POST", f"{path}/verify", {"code": wrong_code(code)})
    secrets.add_envelope("sign-in code", client.expect(200, "POST", f"{path}/verify", {"code": code}))
    # an unknown email gets the same answer (and no message)
    assert client.expect(200, "POST", "/profile/magic-link", {"email": "nobody@acme.test"}) == {"sent": True}
    assert not [
        e for e in bus.drain() if e["detail-type"] == NOTIFICATION and e["detail"]["to"] == "nobody@acme.test"
    ]


def api_keys_and_app_tokens(client: Client, admin: dict[str, str]) -> None:
    """An API key created, used, traded for an app token (used), regenerated; wrong keys and secrets."""
    secrets = client.secrets
    created = client.expect(
        201, "POST", "/api-key/create", {"name": "integration", "scopes": ["read", "write"]}, admin
    )
    key = created["key"]
    secrets.add("api key", key, key[len(created["prefix"]) :])
    assert client.expect(200, "GET", "/profile/whoami", headers={"x-api-key": key})["kind"] == "user"
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
    secrets.add("wrong api key", wrong)
    client.expect(401, "GET", "/profile/whoami", headers={"x-api-key": wrong})
    credentials = {"appId": created["id"], "key": created["prefix"], "secret": key}
    issued = client.expect(200, "POST", "/profile/app/key", credentials)
    secrets.add_jwt("app token", issued["token"])
    me = client.expect(200, "GET", "/profile/whoami", headers={"authorization": f"Bearer {issued['token']}"})
    assert me["principal"]["data"]["email"] == ADMIN
    client.expect(401, "POST", "/profile/app/key", credentials | {"secret": wrong})
    regenerated = client.expect(200, "POST", f"/api-key/regenerate/{created['id']}", None, admin)
    secrets.add("api key", regenerated["key"], regenerated["key"][len(regenerated["prefix"]) :])
    client.expect(200, "GET", "/profile/whoami", headers={"x-api-key": regenerated["key"]})
    client.expect(401, "GET", "/profile/whoami", headers={"x-api-key": key})


# -- the test -----------------------------------------------------------------------------------------
def bearer_for_admin(client: Client) -> dict[str, str]:
    return client.session("/profile/signin", ADMIN, "acme-admin-pass")


def test_no_secret_rests_in_an_item_a_log_line_or_an_event(
    gateway: Any,
    functions: LocalLambda,
    tenants: dict[str, Record],
    sender: str,
    clock: list[float],
    logs: LogCapture,
) -> None:
    # Given everything captured: the bus (catch-all), every log record and the functions' stdout
    bus = Bus()
    client = Client(gateway, Secrets())

    # When every flow that handles a secret runs
    admin = passwords_refresh_and_locks(client, bus)
    second_factor_of_a_user(client, bus, clock)
    second_factor_of_a_customer(client, bus, clock)
    passwordless(client, bus)
    api_keys_and_app_tokens(client, admin)
    client.expect(200, "POST", "/profile/signout", headers=admin)
    # and the outbox is relayed to the bus, and every event reaches the template's rule targets (the
    # audit function and the mailer) as EventBridge delivers it
    StreamMapping(load_template(), functions, "PublisherFunction").poll_once()
    bus.drain()
    dispatcher = RuleDispatcher(load_template(), functions, get_settings().event_bus_name)
    delivered = {e["id"]: dispatcher.dispatch(e) for e in bus.events}
    audit_page = client.expect(200, "GET", "/profile/security/audit?ps=100", headers=bearer_for_admin(client))

    # Then the capture saw the run: every event type, the audit items, the functions' JSON log lines
    secrets = client.secrets
    assert secrets.count() > 100, secrets.count()
    mails = [e for e in bus.events if e["detail-type"] == NOTIFICATION]
    others = [e for e in bus.events if e["detail-type"] != NOTIFICATION]
    assert {delivered[e["id"]] == ["MailerFunction"] for e in mails} == {True}
    audited = [e for e in others if delivered[e["id"]] == ["AuditFunction"]]
    assert len(audited) >= 40, [e["detail-type"] for e in others]
    items = table_items()
    audit_items = [i for i in items if ":#audit:" in str(i.get("SK", ""))]
    assert len(audit_items) == len(audited), (len(audit_items), len(audited))
    assert audit_page["total"] == len([e for e in audited if e["detail"]["orgid"] == ORG])
    lines = logs.lines()
    powertools = [json.loads(line) for line in logs.stdout if line.startswith("{")]
    services = {line.get("service") for line in powertools}
    assert {"mailer", "audit", "authorizer"} <= services, services
    assert [line for line in powertools if line.get("message") == "mail sent"]
    assert len(lines) > 100
    # And the search finds the codes where they are allowed: in the mailer's own events
    in_mails = {(category, value) for category, value, _ in leaks([json.dumps(e) for e in mails], secrets)}
    assert {c for c, _ in in_mails} >= {
        "emailed 2fa code",
        "magic-link code",
        "magic-link token",
        "sign-in code",
    }, in_mails

    # And no item, log line, other event or audit answer holds any secret in the clear (the code pepper,
    # which keys how the codes are stored, included)
    pepper_secret = str(get_settings().code_pepper_secret)
    manager = boto3.client("secretsmanager", region_name=LOCAL_REGION)
    secrets.add("code pepper", manager.get_secret_value(SecretId=pepper_secret)["SecretString"])
    found = {
        "table item": leaks([json.dumps(i, default=str, sort_keys=True) for i in items], secrets, jwts=False),
        "log line": leaks(lines, secrets),
        "bus event": leaks([json.dumps(e) for e in others], secrets),
        "audit answer": leaks([json.dumps(audit_page)], secrets),
    }
    assert found == {place: [] for place in found}, json.dumps(found, indent=1)
