"""Passwordless sign-in through the signin handler, in-process on moto (contract §4 "Passwordless
sign-in"): the message on the bus, link and code redeemed once, replaced by a new request, killed by 5
wrong codes, expired, the same answer and the same work for an unknown or disabled email, kinds that
never cross, and no code or link resting in any table item."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import boto3
import pytest

from appengine_core.identity import passwordless
from appengine_core.identity.data import signin_link_key
from appengine_core.identity.directory import DirectoryService, NewCustomer, NewUser
from appengine_core.identity.lockout import BruteForceGuard
from appengine_core.identity.passwordless import link_selector
from appengine_core.infra.envelope import Record
from appengine_core.infra.events import EventPublisher
from appengine_core.infra.settings import get_settings
from appengine_core.infra.store import TenantStore
from appengine_core.infra.tenancy import TenantKey
from appengine_local.resources import LOCAL_REGION
from appengine_local.runtime import LocalLambda
from tests.conftest import load_event
from tests.integration.conftest import body_of, header_of

Bus = Callable[[], list[dict[str, Any]]]
BUYER = "buyer@acme.test"
ADMIN = "admin@acme.test"


# -- calling the routes --------------------------------------------------------------------------------
def call(
    functions: LocalLambda,
    sample: str,
    *,
    body: Any = None,
    query: dict[str, str] | None = None,
    path_email: str | None = None,
    orgid: str | None = "acme",
    source_ip: str = "198.51.100.7",
) -> dict[str, Any]:
    event = load_event(sample)
    headers = {"user-agent": "pytest"} | ({"orgid": orgid} if orgid else {})
    if body is not None:
        headers["content-type"] = "application/json"
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    event["headers"] = headers
    event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    if query is not None:
        event["queryStringParameters"] = query or None
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    if path_email is not None:
        event["pathParameters"] = {"email": path_email}
        event["path"] = event["resource"].replace("{email}", path_email)
    event["requestContext"]["identity"]["sourceIp"] = source_ip
    response: dict[str, Any] = functions.invoke("SigninFunction", event)
    return response


def ask_link(functions: LocalLambda, email: str, kind: str = "customer", **body: str) -> dict[str, Any]:
    sample = "magic-link-customer" if kind == "customer" else "magic-link-user"
    return call(functions, sample, body={"email": email, **body})


def open_link(functions: LocalLambda, token: str, kind: str = "customer", **kwargs: Any) -> dict[str, Any]:
    sample = "magic-link-customer-open" if kind == "customer" else "magic-link-user-open"
    return call(functions, sample, query={"token": token, "orgid": "acme"}, orgid=None, **kwargs)


def redeem(
    functions: LocalLambda, body: dict[str, str], kind: str = "customer", **kwargs: Any
) -> dict[str, Any]:
    sample = "magic-link-customer-redeem" if kind == "customer" else "magic-link-user-redeem"
    return call(functions, sample, body=body, **kwargs)


def messages(events: list[dict[str, Any]], to: str | None = None) -> list[dict[str, Any]]:
    return [
        e["detail"]
        for e in events
        if e["detail-type"] == "notification.requested" and (to is None or e["detail"]["to"] == to)
    ]


def only_message(bus: Bus, to: str) -> dict[str, Any]:
    mail = messages(bus(), to)
    assert len(mail) == 1, mail
    return mail[0]


def token_of(message: dict[str, Any]) -> str:
    return str(parse_qs(urlsplit(message["link"]).query)["token"][0])


def assert_sent(response: dict[str, Any]) -> None:
    assert response["statusCode"] == 200, response["body"]
    assert body_of(response) == {"sent": True}


def assert_refused(response: dict[str, Any], status: int = 401, code: str = "invalid_code") -> None:
    assert response["statusCode"] == status, response["body"]
    body = body_of(response)
    assert body["error"] == body["code"] == body["reason"] == code
    assert "token" not in body or status != 401


def signed_in_methods(events: list[dict[str, Any]]) -> list[str]:
    return [e["detail"]["method"] for e in events if e["detail-type"] == "auth.signed_in"]


def link_items() -> list[dict[str, Any]]:
    """Every sign-in link item, read straight from the table (test-only)."""
    table = boto3.resource("dynamodb", region_name=LOCAL_REGION).Table(get_settings().table_name)
    items = table.scan()["Items"]
    return [i for i in items if ":#signin-link:" in str(i["SK"])]


def set_link_attribute(kind: str, email: str, **values: Any) -> None:
    key = signin_link_key("acme", kind, link_selector("acme", kind, email))  # type: ignore[arg-type]
    table = boto3.resource("dynamodb", region_name=LOCAL_REGION).Table(get_settings().table_name)
    names = {f"#n{i}": name for i, name in enumerate(values)}
    table.update_item(
        Key=key.as_item_key(),
        UpdateExpression="SET " + ", ".join(f"#n{i} = :v{i}" for i in range(len(values))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={f":v{i}": v for i, v in enumerate(values.values())},
    )


# -- a link and a code ---------------------------------------------------------------------------------
def test_a_customer_gets_one_message_with_link_and_code_and_the_link_signs_in_once(
    functions: LocalLambda, tenants: dict[str, Record], bus_messages: Bus
) -> None:
    # Given a customer asking for a link
    assert_sent(ask_link(functions, "Buyer@Acme.test"))
    # Then one message goes out, with a link to the API's redirect route and a 6-digit code in its text
    events = bus_messages()
    message = only_message(lambda: events, BUYER)
    assert message["purpose"] == "magic_link" and message["orgid"] == "acme"
    assert message["link"].startswith("http://localhost/profile/magic-link/redirect?token=")
    assert parse_qs(urlsplit(message["link"]).query)["orgid"] == ["acme"]
    assert len(message["code"]) == 6 and message["code"].isdigit()
    assert message["link"] in message["text"] and message["code"] in message["text"]
    # And the audit event names the request, never the secret
    (requested,) = [e["detail"] for e in events if e["detail-type"] == "auth.magic_link_requested"]
    assert requested["principal"] == tenants["acme_customer"].sk and requested["sent"] is True
    assert token_of(message) not in json.dumps(requested) and message["code"] not in json.dumps(requested)

    # When the link is opened (the orgid comes from the link: a browser sends no header)
    opened = open_link(functions, token_of(message))
    # Then it is the sign-in envelope of §3, and the session was made by a magic link
    assert opened["statusCode"] == 200, opened["body"]
    envelope = body_of(opened)
    assert envelope["customer"]["sk"] == tenants["acme_customer"].sk
    assert envelope["token"] and envelope["data"]["refreshToken"] == envelope["refreshToken"]
    assert signed_in_methods(bus_messages()) == ["magic_link"]
    # And it works once: the link again, or its code, is 401 invalid_code
    assert_refused(open_link(functions, token_of(message)))
    assert_refused(redeem(functions, {"email": BUYER, "code": message["code"]}))


def test_the_code_signs_in_once_with_method_code(
    functions: LocalLambda, tenants: dict[str, Record], bus_messages: Bus
) -> None:
    assert_sent(ask_link(functions, BUYER))
    message = only_message(bus_messages, BUYER)
    signed_in = redeem(functions, {"email": BUYER, "code": message["code"]})
    assert signed_in["statusCode"] == 200, signed_in["body"]
    assert body_of(signed_in)["customer"]["sk"] == tenants["acme_customer"].sk
    assert signed_in_methods(bus_messages()) == ["code"]
    # The code again, and the link that came with it, are spent
    assert_refused(redeem(functions, {"email": BUYER, "code": message["code"]}))
    assert_refused(redeem(functions, {"token": token_of(message)}))


def test_the_code_alone_and_the_customer_code_routes(
    functions: LocalLambda, tenants: dict[str, Record], bus_messages: Bus
) -> None:
    # type=code (query or body): the message holds the code alone
    assert_sent(call(functions, "magic-link-customer-query", query={"email": BUYER, "type": "code"}))
    by_query = only_message(bus_messages, BUYER)
    assert by_query["link"] is None and by_query["purpose"] == "sign_in_code"
    assert by_query["code"] in by_query["text"] and "http" not in by_query["text"]
    assert_sent(ask_link(functions, BUYER, type="code"))
    assert only_message(bus_messages, BUYER)["link"] is None
    # POST /profile/code/{email} (percent-encoded too) sends a code; .../verify redeems it once
    assert_sent(call(functions, "magic-code-customer", path_email=quote(BUYER, safe="")))
    code = only_message(bus_messages, BUYER)["code"]
    verified = call(functions, "magic-code-customer-verify", path_email=BUYER, body={"code": code})
    assert verified["statusCode"] == 200, verified["body"]
    assert body_of(verified)["customer"]["sk"] == tenants["acme_customer"].sk
    assert signed_in_methods(bus_messages()) == ["code"]
    assert_refused(call(functions, "magic-code-customer-verify", path_email=BUYER, body={"code": code}))


def test_a_user_signs_in_at_the_user_routes_only(
    functions: LocalLambda, tenants: dict[str, Record], bus_messages: Bus
) -> None:
    # Given a staff user's link: it points at the user redirect route
    assert_sent(call(functions, "magic-link-user-query", query={"email": ADMIN}))
    message = only_message(bus_messages, ADMIN)
    assert message["link"].startswith("http://localhost/profile/user/magic-link/redirect?token=")
    # When it is redeemed at the customer routes (link and code): 401
    assert_refused(open_link(functions, token_of(message), kind="customer"))
    assert_refused(redeem(functions, {"email": ADMIN, "code": message["code"]}, kind="customer"))
    # Then at the user route it still signs the user in (POST with the token)
    signed_in = redeem(functions, {"token": token_of(message)}, kind="user")
    assert signed_in["statusCode"] == 200, signed_in["body"]
    assert body_of(signed_in)["user"]["sk"] == tenants["acme_admin"].sk


def test_a_customer_and_a_user_with_one_email_have_links_of_their_own(
    functions: LocalLambda, tenants: dict[str, Record], bus_messages: Bus
) -> None:
    # Given a staff user with the customer's email
    DirectoryService().create_user("acme", NewUser(email=BUYER, password="staff-pass-1234"))
    assert_sent(ask_link(functions, BUYER, kind="customer"))
    customer_mail = only_message(bus_messages, BUYER)
    assert_sent(ask_link(functions, BUYER, kind="user"))
    user_mail = only_message(bus_messages, BUYER)
    # Then neither kind's link or code works at the other's route, and each works at its own
    assert_refused(redeem(functions, {"token": token_of(customer_mail)}, kind="user"))
    assert_refused(redeem(functions, {"email": BUYER, "code": user_mail["code"]}, kind="customer"))
    assert (
        body_of(redeem(functions, {"token": token_of(customer_mail)}))["customer"]["sk"]
        == tenants["acme_customer"].sk
    )
    assert "user" in body_of(redeem(functions, {"email": BUYER, "code": user_mail["code"]}, kind="user"))


def test_a_new_request_replaces_the_previous_link_and_code(
    functions: LocalLambda, tenants: dict[str, Record], bus_messages: Bus
) -> None:
    assert_sent(ask_link(functions, BUYER))
    first = only_message(bus_messages, BUYER)
    assert_sent(ask_link(functions, BUYER))
    second = only_message(bus_messages, BUYER)
    assert len(link_items()) == 1  # one item per (org, kind, email)
    assert_refused(open_link(functions, token_of(first)))
    if first["code"] != second["code"]:  # one chance in a million that they are the same
        assert_refused(redeem(functions, {"email": BUYER, "code": first["code"]}))
    assert open_link(functions, token_of(second))["statusCode"] == 200


def test_five_wrong_codes_kill_the_code_and_the_link(
    functions: LocalLambda, tenants: dict[str, Record], bus_messages: Bus
) -> None:
    assert_sent(ask_link(functions, BUYER))
    message = only_message(bus_messages, BUYER)
    wrong = f"{(int(message['code']) + 1) % 1_000_000:06d}"
    # Given 5 wrong codes, each 401 (the 5th also locks the email, as any 5 failed factors do)
    for _ in range(5):
        assert_refused(redeem(functions, {"email": BUYER, "code": wrong}))
    assert_refused(redeem(functions, {"email": BUYER, "code": message["code"]}), 429, "rate_limited")
    # When an admin unlocks the email
    BruteForceGuard().unlock("acme", "customer", BUYER, actor="test")
    # Then the right code and the link are still dead: 401
    assert_refused(redeem(functions, {"email": BUYER, "code": message["code"]}))
    BruteForceGuard().unlock("acme", "customer", BUYER, actor="test")
    assert_refused(open_link(functions, token_of(message)))
    # And a new request brings a working code
    BruteForceGuard().unlock("acme", "customer", BUYER, actor="test")
    assert_sent(ask_link(functions, BUYER))
    fresh = only_message(bus_messages, BUYER)
    assert redeem(functions, {"email": BUYER, "code": fresh["code"]})["statusCode"] == 200


def test_wrong_tokens_and_codes_count_as_failed_sign_ins(
    functions: LocalLambda, tenants: dict[str, Record], bus_messages: Bus
) -> None:
    # Given a link, and 5 redeems with its selector but another secret (the guard keys them by email)
    assert_sent(ask_link(functions, BUYER))
    message = only_message(bus_messages, BUYER)
    forged = token_of(message).split(".")[0] + "." + "A" * 43
    for _ in range(5):
        assert_refused(open_link(functions, forged))
    # Then the email is locked, for the right link and the right code alike
    assert_refused(open_link(functions, token_of(message)), 429, "rate_limited")
    locked = redeem(functions, {"email": BUYER, "code": message["code"]})
    assert_refused(locked, 429, "rate_limited")
    assert int(header_of(locked, "Retry-After") or 0) >= 1
    failed = [e["detail"] for e in bus_messages() if e["detail-type"] == "auth.sign_in_failed"]
    assert len(failed) == 5 and all(f["method"] == "magic_link" for f in failed)


def test_an_expired_link_and_code_are_refused(
    functions: LocalLambda, tenants: dict[str, Record], bus_messages: Bus
) -> None:
    # Given a link whose 15 minutes are over (TTL has not removed the item yet)
    assert_sent(ask_link(functions, BUYER))
    message = only_message(bus_messages, BUYER)
    set_link_attribute("customer", BUYER, expiresAt=int(time.time()) - 1)
    # Then link and code are 401 invalid_code
    assert_refused(open_link(functions, token_of(message)))
    assert_refused(redeem(functions, {"email": BUYER, "code": message["code"]}))
    assert signed_in_methods(bus_messages()) == []


def test_a_disabled_customer_gets_nothing_usable(
    functions: LocalLambda, tenants: dict[str, Record], bus_messages: Bus
) -> None:
    # Given a link sent while the customer was enabled, then the customer disabled
    assert_sent(ask_link(functions, BUYER))
    message = only_message(bus_messages, BUYER)
    disable(tenants["acme_customer"].sk)
    # Then the link signs nobody in, and a new request answers the same but sends nothing
    assert_refused(open_link(functions, token_of(message)))
    assert_sent(ask_link(functions, BUYER))
    events = bus_messages()
    assert messages(events, BUYER) == []
    (requested,) = [e["detail"] for e in events if e["detail-type"] == "auth.magic_link_requested"]
    assert requested["sent"] is False and "principal" not in requested
    assert signed_in_methods(events) == []


def disable(customer_sk: str) -> None:
    """The customer's ``data.disabled`` set, straight in the table (as an admin's update leaves it)."""
    table = boto3.resource("dynamodb", region_name=LOCAL_REGION).Table(get_settings().table_name)
    table.update_item(
        Key=TenantKey.parse(customer_sk).as_item_key(),
        UpdateExpression="SET #d.disabled = :yes",
        ExpressionAttributeNames={"#d": "data"},
        ExpressionAttributeValues={":yes": True},
    )


# -- the same answer and the same work whatever the email ------------------------------------------------
class Recorder:
    """Every store call (by operation and the collections it touches), every PutEvents call (by its
    detail types), and every secret drawn or hashed, while a request runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, ...]] = []
        for name in ("get", "batch_get", "query", "put", "update", "delete", "transact"):
            original = getattr(TenantStore, name)
            monkeypatch.setattr(TenantStore, name, self._store_call(name, original))
        publish = EventPublisher.publish

        def published(publisher: EventPublisher, events: Any) -> None:
            self.calls.append(("PutEvents", str(len(events))))
            publish(publisher, events)

        monkeypatch.setattr(EventPublisher, "publish", published)
        for name in ("new_code", "new_salt", "code_digest", "token_digest", "link_selector"):
            original = getattr(passwordless, name)
            monkeypatch.setattr(passwordless, name, self._hash_call(name, original))

    def _store_call(self, name: str, original: Any) -> Any:
        def recorded(store: TenantStore, first: Any, *args: Any, **kwargs: Any) -> Any:
            keys = first if isinstance(first, list | tuple) else [getattr(first, "key", first)]
            self.calls.append((name, *sorted(str(getattr(k, "collection", "?")) for k in keys)))
            return original(store, first, *args, **kwargs)

        return recorded

    def _hash_call(self, name: str, original: Any) -> Any:
        def recorded(*args: Any) -> Any:
            self.calls.append((name,))
            return original(*args)

        return recorded

    def take(self) -> list[tuple[str, ...]]:
        taken, self.calls = self.calls, []
        return taken


def test_known_unknown_and_disabled_emails_get_the_same_answer_after_the_same_work(
    functions: LocalLambda, tenants: dict[str, Record], bus_messages: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a known customer, an unknown email and a disabled customer (each asking a first time)
    directory = DirectoryService()
    gone = directory.create_customer("acme", NewCustomer(email="gone@acme.test", password="gone-pass-1234"))
    disable(gone.sk)
    assert_sent(ask_link(functions, "warm-up@acme.test"))  # the function's one-time reads (metering's org)
    recorder = Recorder(monkeypatch)
    work: dict[str, list[tuple[str, ...]]] = {}
    answers: dict[str, dict[str, Any]] = {}
    # When each asks for a link
    for email in (BUYER, "nobody@acme.test", "gone@acme.test"):
        response = ask_link(functions, email)
        work[email], answers[email] = recorder.take(), body_of(response)
        assert response["statusCode"] == 200
    # Then the answers are identical
    assert answers[BUYER] == answers["nobody@acme.test"] == answers["gone@acme.test"] == {"sent": True}
    # And so is the work: the same store operations on the same collections, the same draws and
    # hashes, one PutEvents call each (the message rides with the audit event only for the known one)
    shape = [c if c[0] != "PutEvents" else ("PutEvents",) for c in work[BUYER]]
    for email in ("nobody@acme.test", "gone@acme.test"):
        assert [c if c[0] != "PutEvents" else ("PutEvents",) for c in work[email]] == shape, email
    assert ("get", "#customer-email") in shape and ("get", "customer") in shape
    assert [c for c in work[BUYER] if c[0] == "PutEvents"] == [("PutEvents", "2")]
    assert [c for c in work["nobody@acme.test"] if c[0] == "PutEvents"] == [("PutEvents", "1")]
    # And only the known customer got a message; no event for the others carries a code or a link
    events = bus_messages()
    assert [m["to"] for m in messages(events)] == [BUYER]
    for event in events:
        if event["detail"].get("email") in ("nobody@acme.test", "gone@acme.test"):
            assert "code" not in event["detail"] and "link" not in event["detail"]


def test_no_code_or_link_rests_in_any_table_item(
    functions: LocalLambda, tenants: dict[str, Record], bus_messages: Bus
) -> None:
    assert_sent(ask_link(functions, BUYER))
    message = only_message(bus_messages, BUYER)
    token = token_of(message)
    secret = token.split(".")[1]
    table = boto3.resource("dynamodb", region_name=LOCAL_REGION).Table(get_settings().table_name)
    everything = json.dumps(table.scan()["Items"], default=str)
    # The code, the token's secret and the link appear nowhere; the item holds their hashes
    for plain in (message["code"], secret, token, message["link"]):
        assert plain not in everything
    (item,) = link_items()
    assert item["tokenHash"] == passwordless.token_digest(secret)
    assert item["codeHash"] == passwordless.code_digest(str(item["codeSalt"]), message["code"])
    assert item["email"] == BUYER and int(item["ttl"]) > int(item["expiresAt"]) > time.time()


def test_a_copy_of_the_table_cannot_test_a_code(
    functions: LocalLambda, tenants: dict[str, Record], bus_messages: Bus, aws_stack: dict[str, str]
) -> None:
    # Given a code sent, and what a copy of the table holds of it (its salt and digest)
    assert_sent(ask_link(functions, BUYER))
    code = only_message(bus_messages, BUYER)["code"]
    (item,) = link_items()
    salt, stored = bytes.fromhex(str(item["codeSalt"])), str(item["codeHash"])
    # When the code is keyed with what the item holds alone, it does not give the stored digest
    assert hmac.new(salt, code.encode(), hashlib.sha256).hexdigest() != stored
    assert hmac.new(salt, b"\n" + code.encode(), hashlib.sha256).hexdigest() != stored
    # Then the digest is keyed with the template's generated pepper, a secret no table item holds
    secrets = boto3.client("secretsmanager", region_name=LOCAL_REGION)
    pepper = secrets.get_secret_value(SecretId=aws_stack["CodePepperSecret"])["SecretString"]
    assert len(pepper) == 64
    assert hmac.new(pepper.encode(), salt + b"\n" + code.encode(), hashlib.sha256).hexdigest() == stored
    table = boto3.resource("dynamodb", region_name=LOCAL_REGION).Table(get_settings().table_name)
    assert pepper not in json.dumps(table.scan()["Items"], default=str)


def test_requests_for_one_email_are_capped_per_window_known_or_not(
    functions: LocalLambda, tenants: dict[str, Record], bus_messages: Bus
) -> None:
    for email in (BUYER, "ghost@acme.test"):
        for _ in range(passwordless.MAX_REQUESTS_PER_WINDOW):
            assert_sent(ask_link(functions, email))
        refused = ask_link(functions, email)
        assert_refused(refused, 429, "rate_limited")
        assert 1 <= int(header_of(refused, "Retry-After") or 0) <= passwordless.REQUEST_WINDOW_SECONDS + 1
    # The last link that was sent still works
    last = messages(bus_messages(), BUYER)[-1]
    assert open_link(functions, token_of(last))["statusCode"] == 200


def test_a_configured_link_url_is_used_with_the_kind_in_it(
    functions: LocalLambda, tenants: dict[str, Record], bus_messages: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAGIC_LINK_URL", "https://app.acme.test/{kind}/magic")
    get_settings.cache_clear()
    assert_sent(ask_link(functions, ADMIN, kind="user"))
    link = only_message(bus_messages, ADMIN)["link"]
    assert link.startswith("https://app.acme.test/user/magic?token=") and link.endswith("&orgid=acme")


# -- bad input ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sample", "kwargs", "status", "error"),
    [
        ("magic-link-customer", {"body": {}}, 422, "validation_error"),
        ("magic-link-customer", {"body": {"email": "not-an-email"}}, 422, "validation_error"),
        ("magic-link-customer", {"body": {"email": BUYER, "type": "x" * 40}}, 422, "validation_error"),
        ("magic-link-customer", {"body": "{not json"}, 400, "invalid_json"),
        ("magic-link-customer", {"body": [BUYER]}, 422, "validation_error"),
        ("magic-link-customer", {"body": {"email": BUYER}, "orgid": None}, 400, "orgid_required"),
        ("magic-link-customer-query", {"query": {}}, 422, "validation_error"),
        ("magic-link-user-query", {"query": {"email": "a@b"}}, 422, "validation_error"),
        ("magic-code-customer", {"path_email": "not-an-email"}, 422, "validation_error"),
        (
            "magic-code-customer-verify",
            {"path_email": BUYER, "body": {"code": "12345"}},
            422,
            "validation_error",
        ),
        (
            "magic-code-customer-verify",
            {"path_email": BUYER, "body": {"code": "12a456"}},
            422,
            "validation_error",
        ),
        (
            "magic-code-customer-verify",
            {"path_email": "x", "body": {"code": "123456"}},
            422,
            "validation_error",
        ),
        ("magic-link-customer-redeem", {"body": {}}, 422, "validation_error"),
        ("magic-link-customer-redeem", {"body": {"email": BUYER}}, 422, "validation_error"),
        (
            "magic-link-customer-redeem",
            {"body": {"email": BUYER, "code": "1234567"}},
            422,
            "validation_error",
        ),
        ("magic-link-customer-redeem", {"body": {"token": "t" * 300}}, 422, "validation_error"),
        ("magic-link-customer-redeem", {"body": {"token": "not-a-token"}}, 401, "invalid_code"),
        ("magic-link-customer-open", {"query": {"token": "t" * 300}, "orgid": None}, 422, "validation_error"),
        ("magic-link-customer-open", {"query": {"orgid": "acme"}, "orgid": None}, 422, "validation_error"),
        ("magic-link-customer-open", {"query": {"token": "x.y"}, "orgid": None}, 400, "orgid_required"),
        (
            "magic-link-user-open",
            {"query": {"token": "x.y", "orgid": "Not An Org"}, "orgid": None},
            400,
            "orgid_required",
        ),
        ("magic-link-user-open", {"query": {"token": "x.y"}, "orgid": "acme"}, 401, "invalid_code"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    functions: LocalLambda,
    tenants: dict[str, Record],
    bus_messages: Bus,
    sample: str,
    kwargs: dict[str, Any],
    status: int,
    error: str,
) -> None:
    response = call(functions, sample, **kwargs)
    assert_refused(response, status, error)
    assert link_items() == []
    assert messages(bus_messages()) == []


# -- a principal with 2FA enabled --------------------------------------------------------------------
def test_a_magic_link_of_a_principal_with_2fa_answers_only_the_challenge(
    gateway: Any, tenants: dict[str, Record], bus_messages: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    from appengine_core.identity import second_factor

    now = [float(second_factor.totp_step(time.time()) * 30 + 10)]
    monkeypatch.setattr(second_factor, "wall_clock", lambda: now[0])

    def send(method: str, path: str, headers: dict[str, str], body: Any = None) -> tuple[int, Any]:
        response = gateway.open(path, method=method, headers=headers, json=body)
        return response.status_code, response.get_json(silent=True)

    # Given a customer who enabled 2FA
    status, signed_in = send(
        "POST", "/profile/customer/signin", {"orgid": "acme"}, {"email": BUYER, "password": "acme-buyer-pass"}
    )
    assert status == 200, signed_in
    session = {"orgid": "acme", "authorization": f"Bearer {signed_in['token']}"}
    status, setup = send("POST", "/profile/security/2fa/setup", session)
    assert status == 200, setup
    code = second_factor.code_at_step(setup["secret"], second_factor.totp_step(now[0]))
    assert send("POST", "/profile/security/2fa/enable", session, {"code": code})[0] == 200
    bus_messages()
    # When a magic link is asked for and opened
    assert send("POST", "/profile/magic-link", {"orgid": "acme"}, {"email": BUYER}) == (200, {"sent": True})
    link = only_message(bus_messages, BUYER)["link"]
    status, answer = send("GET", link.removeprefix("http://localhost"), {})
    # Then the answer is the 2FA challenge alone: no access or refresh token
    assert status == 200, answer
    assert answer["twoFactorRequired"] is True and answer["partialToken"] == answer["challengeToken"]
    assert "token" not in answer and "refreshToken" not in answer
    # And the authenticator's next code completes it, in a session made by a magic link and 2FA
    now[0] += 30
    code = second_factor.code_at_step(setup["secret"], second_factor.totp_step(now[0]))
    status, envelope = send(
        "POST",
        "/profile/security/2fa/verify",
        {"orgid": "acme"},
        {"partialToken": answer["partialToken"], "code": code},
    )
    assert status == 200 and envelope["customer"]["sk"] == tenants["acme_customer"].sk, envelope
    assert signed_in_methods(bus_messages()) == ["magic_link+2fa"]
