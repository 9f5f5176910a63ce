"""Every write path under injected faults (issue 18, item 5): DynamoDB still throttling after botocore's
retries answers 503 ``service_unavailable`` with ``Retry-After`` and writes nothing; a transaction cancelled
by a concurrent one is sent again (bounded) and then commits, or is answered 503 (409 where the service
says so), never 500 and never half written; the publisher hands back exactly the records the bus refused.

Faults are injected below botocore (a ``before-send`` hook answers the chosen calls as DynamoDB or
EventBridge would), so botocore parses each answer and retries it as it would a real one: standard mode,
4 attempts in all. Its backoff and the store's collision pause are set to 0 to keep the file fast. Each
case snapshots the table (a Scan, tests only; metering counters aside) before and after the call and
names precisely what may differ.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.retries import standard
from moto.core.models import botocore_stubber
from passlib.hash import argon2

from appengine_core.identity import second_factor
from appengine_core.identity.data import PrincipalKind, second_factor_key
from appengine_core.identity.second_factor import code_at_step, totp_step
from appengine_core.identity.sessions import SessionStore
from appengine_core.identity.tokens import TokenService
from appengine_core.infra import aws, store
from appengine_core.infra.envelope import Record
from appengine_core.infra.settings import get_settings
from appengine_core.infra.store import TenantStore, Update
from appengine_core.infra.tenancy import TenantKey
from appengine_core.records.writer import RecordWriter
from appengine_local.runtime import LocalLambda
from appengine_local.template import load_template
from tests.integration.conftest import bearer_for

WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
METERING = "#usage"  # request counters (metering), written or not whatever the request's outcome
# appengine_core.infra.aws: standard mode, retries={"max_attempts": 3}, which botocore reads as 3 retries
# after the first attempt (``total_max_attempts`` 4).
BOTOCORE_ATTEMPTS = 4
_DYNAMODB_ERROR = "com.amazonaws.dynamodb.v20120810#"


# -- the service's answers ------------------------------------------------------------------------------
def throttled(_: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """DynamoDB over its throughput: a throttling error, which botocore retries."""
    return 400, {
        "__type": _DYNAMODB_ERROR + "ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded.",
    }


def collided(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A transaction cancelled because another transaction holds one of its items (no retry by botocore)."""
    reasons: list[dict[str, str]] = [{"Code": "None"} for _ in request.get("TransactItems") or [{}]]
    reasons[-1] = {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
    listed = ", ".join(r["Code"] for r in reasons)
    return 400, {
        "__type": _DYNAMODB_ERROR + "TransactionCanceledException",
        "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons "
        f"[{listed}]",
        "CancellationReasons": reasons,
    }


def write_collided(_: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A single write refused because a transaction holds its item."""
    return 400, {
        "__type": _DYNAMODB_ERROR + "TransactionConflictException",
        "message": "Transaction is ongoing for the item",
    }


def bus_refused(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """EventBridge refusing every entry of a PutEvents call (a partial failure: HTTP 200)."""
    entries = request.get("Entries") or []
    refused = {"ErrorCode": "InternalFailure", "ErrorMessage": "internal failure"}
    return 200, {"FailedEntryCount": len(entries), "Entries": [refused for _ in entries]}


Answer = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


@dataclass
class Fault:
    """Answers the calls of one operation whose request names ``touching`` (the first ``times``, or all)."""

    answer: Answer
    touching: str | None
    times: int | None
    content_type: str
    sent: int = 0  # matching calls sent (each botocore attempt is one)
    failed: int = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        body = json.loads(request.body or b"{}")
        text = json.dumps(body)
        if METERING in text or (self.touching is not None and self.touching not in text):
            return None
        self.sent += 1
        if self.times is not None and self.failed >= self.times:
            return None  # the emulator answers
        self.failed += 1
        status, answer = self.answer(body)
        payload = json.dumps(answer).encode()
        headers = HTTPHeaders()
        headers["Content-Type"] = self.content_type
        headers["x-amzn-RequestId"] = "injected"
        return AWSResponse(request.url, status, headers, _Raw(payload))


@dataclass
class Faults:
    """Stands in front of the emulator's own ``before-send`` handler: an armed fault answers a call
    instead of the emulator (which then never sees it, so nothing is written), else the emulator does."""

    armed: list[tuple[str, Fault]] = field(default_factory=list)

    @staticmethod
    def _emitter() -> Any:
        return boto3._get_default_session()._session.get_component("event_emitter")

    def __post_init__(self) -> None:
        self._dispatch = self._answer  # one bound method, registered and unregistered as such

    def install(self) -> None:
        self._emitter().unregister("before-send", botocore_stubber)
        self._emitter().register("before-send", self._dispatch)
        aws.reset_clients()  # a client copies the session's handlers when it is created

    def uninstall(self) -> None:
        self._emitter().unregister("before-send", self._dispatch)
        self._emitter().register("before-send", botocore_stubber)
        aws.reset_clients()

    def _answer(self, request: Any, event_name: str, **kwargs: Any) -> Any:
        call = event_name.split(".", 1)[1]  # <service>.<operation>
        for armed, fault in self.armed:
            if armed == call and (answer := fault(request)) is not None:
                return answer
        return botocore_stubber(request=request, event_name=event_name, **kwargs)

    def fail(
        self,
        operation: str,
        answer: Answer = throttled,
        *,
        touching: str | None = None,
        times: int | None = None,
        service: str = "dynamodb",
    ) -> Fault:
        json_version = "1.1" if service == "eventbridge" else "1.0"
        fault = Fault(answer, touching, times, f"application/x-amz-json-{json_version}")
        self.armed.append((f"{service}.{operation}", fault))
        return fault

    def clear(self) -> None:
        self.armed.clear()


@pytest.fixture
def faults(aws_stack: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Faults]:
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    monkeypatch.setattr(store, "COLLISION_PAUSE_SECONDS", 0.0)
    armed = Faults()
    armed.install()
    yield armed
    armed.uninstall()


# -- the table, before and after ------------------------------------------------------------------------
Snapshot = dict[tuple[str, str], dict[str, Any]]


def snapshot() -> Snapshot:
    table = boto3.resource("dynamodb").Table(get_settings().table_name)
    items: Snapshot = {}
    kwargs: dict[str, Any] = {}
    while True:
        page = table.scan(ConsistentRead=True, **kwargs)
        items |= {(str(i["PK"]), str(i["SK"])): i for i in page["Items"] if METERING not in str(i["PK"])}
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def changes(before: Snapshot, after: Snapshot) -> dict[str, str]:
    """Sort key -> added, removed or changed."""
    found: dict[str, str] = {}
    for key in before.keys() | after.keys():
        if key not in before:
            found[key[1]] = "added"
        elif key not in after:
            found[key[1]] = "removed"
        elif before[key] != after[key]:
            found[key[1]] = "changed"
    return found


def kinds(found: dict[str, str]) -> dict[str, str]:
    """``changes`` by the kind of item (the collection in the sort key): ``{"#session": "added"}``."""
    by_kind: dict[str, str] = {}
    for sk, change in found.items():
        collection = TenantKey.parse(sk).collection if sk.count(":") >= 2 else sk
        by_kind[collection] = ",".join(sorted({*by_kind.get(collection, "").split(","), change} - {""}))
    return by_kind


@dataclass
class Outcome:
    response: Any
    fault: Fault
    changed: dict[str, str]


def under_fault(
    faults: Faults,
    operation: str,
    act: Callable[[], Any],
    answer: Answer = throttled,
    *,
    touching: str | None = None,
    times: int | None = None,
    also: tuple[tuple[str, Answer, str | None], ...] = (),
) -> Outcome:
    """``act`` with ``operation`` failing (and ``also``'s faults), and what it changed in the table."""
    before = snapshot()
    fault = faults.fail(operation, answer, touching=touching, times=times)
    for other, other_answer, other_touching in also:
        faults.fail(other, other_answer, touching=other_touching)
    response = act()
    faults.clear()
    return Outcome(response, fault, changes(before, snapshot()))


def assert_unavailable(outcome: Outcome, *, sends: int = BOTOCORE_ATTEMPTS) -> None:
    """503 in the contract's shape, after exactly ``sends`` calls of the failing kind."""
    response = outcome.response
    body = response.json
    assert response.status_code == 503, body
    assert response.headers["Retry-After"] == "1"
    assert (
        body["statusCode"] == 503 and body["error"] == body["code"] == body["reason"] == "service_unavailable"
    )
    assert body["message"] and body["requestId"] and response.headers["x-request-id"] == body["requestId"]
    assert outcome.fault.sent == sends, outcome.fault


def assert_unchanged(outcome: Outcome) -> None:
    assert outcome.changed == {}, outcome.changed


# -- callers ----------------------------------------------------------------------------------------------
ACME = {"orgid": "acme"}


Call = Callable[[], Any]


def call(gateway: Any, method: str, path: str, headers: dict[str, str], body: Any = None) -> Call:
    """A request to send (again) later; ``body`` may be a function giving it at sending time."""

    def send() -> Any:
        return gateway.open(path, method=method, headers=headers, json=body() if callable(body) else body)

    return send


def signing_in(gateway: Any, email: str, password: str, path: str = "/profile/signin") -> Call:
    return call(gateway, "POST", path, ACME, {"email": email, "password": password})


def sign_in(gateway: Any, email: str, password: str, path: str = "/profile/signin") -> Any:
    return signing_in(gateway, email, password, path)()


def session_for(record: Record) -> tuple[dict[str, str], str]:
    """Headers with an access token of a new session of ``record``, and the session's id."""
    kind: PrincipalKind = "customer" if record.datatype == "customer" else "user"
    session, _ = SessionStore().create(
        principal_sk=record.sk,
        kind=kind,
        method="password",
        lifetime_seconds=3600,
        user_agent=None,
        source_ip=None,
    )
    token, _ = TokenService().issue(subject=record.sk, kind=kind, session_id=session.id, orgid=record.orgid)
    return {"orgid": record.orgid, "authorization": f"Bearer {token}"}, session.id


def test_retries_are_configured_once_and_a_throttle_they_outlast_is_retried_then_commits(
    gateway: Any, tenants: dict[str, Record], faults: Faults
) -> None:
    # Every client shares one Config: standard mode, 4 attempts in all
    for client in (aws.dynamodb().meta.client, aws.events(), aws.secretsmanager(), aws.kms()):
        config: Any = client.meta.config
        assert config.retries == {"mode": "standard", "total_max_attempts": BOTOCORE_ATTEMPTS}
    admin = bearer_for(tenants["acme_admin"])
    create = call(gateway, "POST", "/repository/create", admin, {"datatype": "note", "data": {}})

    # When DynamoDB throttles a record's transaction 3 times, botocore's 4th attempt commits it, once
    outcome = under_fault(faults, "TransactWriteItems", create, times=BOTOCORE_ATTEMPTS - 1)
    assert outcome.response.status_code == 201 and outcome.fault.sent == BOTOCORE_ATTEMPTS
    assert kinds(outcome.changed) == {"note": "added", "#count": "added", "#outbox": "added"}

    # When it throttles every attempt, the client gets 503 and nothing is written
    outcome = under_fault(faults, "TransactWriteItems", create)
    assert_unavailable(outcome)
    assert_unchanged(outcome)


# -- sign-in, sign-up ---------------------------------------------------------------------------------------
def test_sign_in_writes_throttled_past_retries_answer_503_and_write_nothing(
    gateway: Any, tenants: dict[str, Record], faults: Faults
) -> None:
    def admin(password: str) -> Call:
        return signing_in(gateway, "admin@acme.test", password)

    # The session's transaction (a right password, an email with no failures: the only write)
    outcome = under_fault(faults, "TransactWriteItems", admin("acme-admin-pass"), touching="#session:")
    assert_unavailable(outcome)
    assert_unchanged(outcome)

    # A wrong password: the source's counter is the first write, then the email's
    outcome = under_fault(faults, "UpdateItem", admin("wrong-password"), touching="#signin-source:")
    assert_unavailable(outcome)
    assert_unchanged(outcome)
    outcome = under_fault(faults, "UpdateItem", admin("wrong-password"), touching="#signin-failures:")
    assert_unavailable(outcome)
    # the source's counter, written before, counts the failure; the email's count did not move
    assert kinds(outcome.changed) == {"#signin-source": "added"}

    # The right password after a failure: the email's count is reset first
    assert sign_in(gateway, "admin@acme.test", "wrong-password").status_code == 401
    outcome = under_fault(faults, "UpdateItem", admin("acme-admin-pass"), touching="#signin-failures:")
    assert_unavailable(outcome)
    assert_unchanged(outcome)
    assert admin("acme-admin-pass")().status_code == 200

    # A stored hash of outdated parameters is replaced at sign-in: the replacement throttled is 503
    reader = tenants["acme_reader"]
    weak = "$argon2id$v=19$m=8192,t=1,p=1$"
    outdated = argon2.using(type="ID", memory_cost=8192, rounds=1, parallelism=1).hash("acme-reader-pass")
    assert outdated.startswith(weak)
    TenantStore().update(Update(reader.key, "SET passwordHash = :h", values={":h": outdated}))
    outcome = under_fault(
        faults,
        "UpdateItem",
        signing_in(gateway, "reader@acme.test", "acme-reader-pass"),
        touching=reader.sk,
    )
    assert_unavailable(outcome)
    assert_unchanged(outcome)
    # and once DynamoDB recovers the same sign-in succeeds and stores the stronger hash
    assert sign_in(gateway, "reader@acme.test", "acme-reader-pass").status_code == 200
    stored = TenantStore().get(reader.key, consistent=True) or {}
    assert not str(stored["passwordHash"]).startswith(weak)


def test_sign_in_writes_that_collide_are_sent_again_then_answered_503(
    gateway: Any, tenants: dict[str, Record], faults: Faults
) -> None:
    admin = signing_in(gateway, "admin@acme.test", "acme-admin-pass")
    # A session's transaction cancelled once by a concurrent one is sent again and commits: one session
    outcome = under_fault(faults, "TransactWriteItems", admin, collided, touching="#session:", times=1)
    assert outcome.response.status_code == 200 and outcome.fault.sent == 2
    assert kinds(outcome.changed) == {"#session": "added", "#principal-session": "added"}
    assert len(outcome.changed) == 2
    # Cancelled every time: 503 after the store's bounded attempts, nothing written
    outcome = under_fault(faults, "TransactWriteItems", admin, collided, touching="#session:")
    assert_unavailable(outcome, sends=store.COLLISION_ATTEMPTS)
    assert_unchanged(outcome)


def test_sign_up_throttled_answers_503_and_creates_no_account(
    gateway: Any, tenants: dict[str, Record], faults: Faults
) -> None:
    new = {"email": "new@acme.test", "password": "new-buyer-pass-1"}
    sign_up = call(gateway, "POST", "/profile/customer/signup", ACME, new)
    # The account's transaction (principal, email index, org check, counter) is the first write
    outcome = under_fault(faults, "TransactWriteItems", sign_up, touching="#customer-email:")
    assert_unavailable(outcome)
    assert_unchanged(outcome)
    outcome = under_fault(faults, "TransactWriteItems", sign_up, collided, touching="#customer-email:")
    assert_unavailable(outcome, sends=store.COLLISION_ATTEMPTS)
    assert_unchanged(outcome)

    # Known limit: the first session is a second transaction. Throttled, the account exists without it
    # (each item whole); the person signs in with the password, and signing up again is 409.
    outcome = under_fault(faults, "TransactWriteItems", sign_up, touching="#session:")
    assert_unavailable(outcome)
    assert kinds(outcome.changed) == {"customer": "added", "#customer-email": "added", "#count": "changed"}
    assert sign_up().status_code == 409
    assert sign_in(gateway, new["email"], new["password"], "/profile/customer/signin").status_code == 200


# -- refresh, sign-out, revocation --------------------------------------------------------------------------
def test_refresh_rotation_throttled_or_colliding_answers_503_and_the_token_still_works(
    gateway: Any, tenants: dict[str, Record], faults: Faults
) -> None:
    signed_in = sign_in(gateway, "admin@acme.test", "acme-admin-pass").json
    token = signed_in["refreshToken"]
    refresh = call(gateway, "POST", "/profile/user/refresh", ACME, {"refreshToken": token})

    outcome = under_fault(faults, "TransactWriteItems", refresh, touching="#refresh-spent:")
    assert_unavailable(outcome)
    assert_unchanged(outcome)
    # Colliding every time (a concurrent refresh of the session holding it): 503, never "invalid token"
    # (401 would sign the person out): each of the 3 fresh decisions is sent the store's 3 times
    outcome = under_fault(faults, "TransactWriteItems", refresh, collided, touching="#refresh-spent:")
    assert_unavailable(outcome, sends=3 * store.COLLISION_ATTEMPTS)
    assert_unchanged(outcome)
    # Colliding once: sent again, rotated once
    outcome = under_fault(
        faults, "TransactWriteItems", refresh, collided, touching="#refresh-spent:", times=1
    )
    assert outcome.response.status_code == 200 and outcome.fault.sent == 2
    assert kinds(outcome.changed) == {"#session": "changed", "#refresh-spent": "added"}


def test_sign_out_and_revocation_throttled_or_colliding_answer_503_and_revoke_nothing(
    gateway: Any, tenants: dict[str, Record], faults: Faults
) -> None:
    admin = tenants["acme_admin"]
    headers, _ = session_for(admin)
    whoami = call(gateway, "GET", "/profile/whoami", headers)
    sign_out = call(gateway, "POST", "/profile/signout", headers)

    outcome = under_fault(faults, "UpdateItem", sign_out, touching="#session:")
    assert_unavailable(outcome)
    assert_unchanged(outcome)
    # The revocation held by a transaction on the session (a refresh) every time it is sent: the store's
    # attempts, for each of the revocation's 3 tries and its fallback; then 503
    outcome = under_fault(faults, "UpdateItem", sign_out, write_collided, touching="#session:")
    assert_unavailable(outcome, sends=4 * store.COLLISION_ATTEMPTS)
    assert_unchanged(outcome)
    assert whoami().status_code == 200

    # Revoking one of its sessions (the session and its index item in one transaction), when every
    # transaction and then the fallback write (the session alone) keep colliding: 503, nothing revoked
    _, other = session_for(admin)
    revoke = call(gateway, "DELETE", f"/profile/security/sessions/{other}", headers)
    outcome = under_fault(
        faults,
        "TransactWriteItems",
        revoke,
        collided,
        touching="#session:",
        also=(("UpdateItem", write_collided, "#session:"),),
    )
    assert_unavailable(outcome, sends=3 * store.COLLISION_ATTEMPTS)
    assert_unchanged(outcome)
    # When only the transaction keeps colliding, the fallback revokes the session (its index item
    # goes with its TTL)
    outcome = under_fault(faults, "TransactWriteItems", revoke, collided, touching="#session:")
    assert outcome.response.status_code == 200, outcome.response.json
    assert outcome.changed == {f"acme:#session:{other}": "changed"}
    assert whoami().status_code == 200


# -- API keys: the authorizer's admission, and key management ----------------------------------------------
def test_api_key_use_throttled_in_the_authorizer_is_503_from_the_gateway(
    gateway: Any, tenants: dict[str, Record], faults: Faults
) -> None:
    admin = bearer_for(tenants["acme_admin"])
    created = gateway.post(
        "/api-key/create", headers=admin, json={"name": "k", "scopes": ["read", "write"]}
    ).json
    use = call(gateway, "GET", "/profile/whoami", {"orgid": "acme", "x-api-key": created["key"]})

    # The admission write (rate-limit windows, usage) throttled past the retries: the authorizer raises,
    # and the gateway answers 503 in the contract's shape instead of its 500
    outcome = under_fault(faults, "TransactWriteItems", use, touching="#apikey-")
    assert_unavailable(outcome)
    assert_unchanged(outcome)
    # Colliding once (another request of the same key): sent again, counted once
    outcome = under_fault(faults, "TransactWriteItems", use, collided, touching="#apikey-", times=1)
    assert outcome.response.status_code == 200 and outcome.fault.sent == 2
    assert list(outcome.changed.values()) == ["changed"], outcome.changed
    counted = next(iter(outcome.changed))
    assert ":#apikey-" in counted
    assert (TenantStore().get(TenantKey.parse(counted), consistent=True) or {})["usageCount"] == 1
    # Colliding every time: 503, nothing counted
    outcome = under_fault(faults, "TransactWriteItems", use, collided, touching="#apikey-")
    assert_unavailable(outcome, sends=store.COLLISION_ATTEMPTS)
    assert_unchanged(outcome)
    # A person's token whose principal and session cannot be read: 503 as well
    outcome = under_fault(faults, "BatchGetItem", call(gateway, "GET", "/profile/whoami", admin))
    assert_unavailable(outcome)


def test_api_key_management_throttled_or_colliding_changes_no_key(
    gateway: Any, tenants: dict[str, Record], faults: Faults
) -> None:
    admin = bearer_for(tenants["acme_admin"])
    body = {"name": "k", "scopes": ["read"]}
    create = call(gateway, "POST", "/api-key/create", admin, body)
    for answer, sends in ((throttled, BOTOCORE_ATTEMPTS), (collided, store.COLLISION_ATTEMPTS)):
        outcome = under_fault(faults, "TransactWriteItems", create, answer, touching="#apikey")
        assert_unavailable(outcome, sends=sends)
        assert_unchanged(outcome)
    key = create().json
    regenerate = call(gateway, "POST", f"/api-key/regenerate/{key['id']}", admin)
    revoke = call(gateway, "DELETE", f"/api-key/{key['id']}", admin)
    for act in (regenerate, revoke):
        outcome = under_fault(faults, "TransactWriteItems", act, touching="#apikey")
        assert_unavailable(outcome)
        assert_unchanged(outcome)
        # still colliding after the store's attempts: the services answer 409 (regenerate at once,
        # revoke after its own re-reads), never 500
        outcome = under_fault(faults, "TransactWriteItems", act, collided, touching="#apikey")
        assert outcome.response.status_code == 409, outcome.response.json
        assert outcome.response.json["error"] == "conflict"
        assert_unchanged(outcome)
    assert (
        gateway.get("/profile/whoami", headers={"orgid": "acme", "x-api-key": key["key"]}).status_code == 200
    )


# -- repository writes --------------------------------------------------------------------------------------
def test_repository_writes_throttled_or_colliding_write_nothing(
    gateway: Any, tenants: dict[str, Record], faults: Faults
) -> None:
    admin = bearer_for(tenants["acme_admin"])
    first, second = (
        gateway.post("/repository/create", headers=admin, json={"datatype": "note", "data": {"i": i}}).json
        for i in range(2)
    )
    writes = {
        "create": call(gateway, "POST", "/repository/create", admin, {"datatype": "note", "data": {}}),
        "update": call(
            gateway, "POST", f"/repository/update/note/{first['sk']}", admin, {"data": {"i": 9}, "version": 1}
        ),
        "delete": call(gateway, "DELETE", f"/repository/delete/note/{first['sk']}", admin),
        "bulk delete": call(gateway, "POST", "/repository/delete/note", admin, [first["sk"], second["sk"]]),
    }
    for name, act in writes.items():
        for answer, sends in ((throttled, BOTOCORE_ATTEMPTS), (collided, store.COLLISION_ATTEMPTS)):
            outcome = under_fault(faults, "TransactWriteItems", act, answer)
            assert_unavailable(outcome, sends=sends)
            assert outcome.changed == {}, (name, outcome.changed)
    # Colliding once: sent again, committed once (the record, its counter and its event together)
    outcome = under_fault(faults, "TransactWriteItems", writes["bulk delete"], collided, times=1)
    assert outcome.response.status_code == 200 and outcome.fault.sent == 2
    assert kinds(outcome.changed) == {"note": "removed", "#count": "changed", "#outbox": "added"}
    assert [change for change in outcome.changed.values()].count("added") == 2


# -- checkout ---------------------------------------------------------------------------------------------
def test_checkout_throttled_or_colliding_places_no_order(
    gateway: Any, tenants: dict[str, Record], faults: Faults
) -> None:
    RecordWriter().create(
        "acme",
        "product",
        {"name": "Mug", "sku": "MUG-1", "slug": "mug", "price": 12.5, "stock": 3},
        state="published",
    )
    buyer = bearer_for(tenants["acme_customer"])
    cart = gateway.post("/storefront/cart/add", headers=buyer, json={"sku": "MUG-1", "quantity": 2}).json
    once = buyer | {"Idempotency-Key": "fault-1"}
    checkout = call(gateway, "POST", "/storefront/checkout-cart", once, {"cartId": cart["cartId"]})
    # The order number's sequence is the first write
    outcome = under_fault(faults, "UpdateItem", checkout, touching="#sequence:order")
    assert_unavailable(outcome)
    assert_unchanged(outcome)
    # The order's transaction (stock, cart, order, number, index, events, idempotency record)
    for answer, sends in ((throttled, BOTOCORE_ATTEMPTS), (collided, store.COLLISION_ATTEMPTS)):
        outcome = under_fault(faults, "TransactWriteItems", checkout, answer)
        assert_unavailable(outcome, sends=sends)
        # only the number drawn before is spent (numbers may have gaps; nothing else moved)
        assert list(outcome.changed) == ["acme:#sequence:order"], outcome.changed
    # Colliding once: sent again, one order, the stock down once
    outcome = under_fault(faults, "TransactWriteItems", checkout, collided, times=1)
    assert outcome.response.status_code == 201 and outcome.fault.sent == 2
    assert kinds(outcome.changed) == {
        "#sequence": "changed",
        "product": "changed",
        "#cart": "changed",
        "order": "added",
        "#count": "added",
        "#order-number": "added",
        "#customer-order": "added",
        "#outbox": "added",
        "#idempotency": "added",
    }, kinds(outcome.changed)
    assert gateway.get("/storefront/product/mug", headers=ACME).json["data"]["stock"] == 1


# -- second factor, magic links -----------------------------------------------------------------------------
def test_second_factor_writes_throttled_or_colliding_answer_503_and_the_code_still_works(
    gateway: Any, tenants: dict[str, Record], faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [float(totp_step(time.time()) * 30 + 10)]
    monkeypatch.setattr(second_factor, "wall_clock", lambda: clock[0])
    admin = tenants["acme_admin"]
    headers, _ = session_for(admin)
    secret = gateway.post("/profile/security/2fa/setup", headers=headers).json["secret"]

    def code() -> str:
        return code_at_step(secret, totp_step(clock[0]))

    enable = call(gateway, "POST", "/profile/security/2fa/enable", headers, lambda: {"code": code()})

    outcome = under_fault(faults, "UpdateItem", enable, touching="#2fa:")
    assert_unavailable(outcome)
    assert_unchanged(outcome)
    assert enable().status_code == 200  # the same code: nothing was spent

    partial = sign_in(gateway, "admin@acme.test", "acme-admin-pass").json["partialToken"]
    clock[0] += 30
    verify = call(
        gateway,
        "POST",
        "/profile/security/2fa/verify",
        ACME,
        lambda: {"partialToken": partial, "code": code()},
    )
    # The challenge's completion with the step spent, one transaction
    outcome = under_fault(faults, "TransactWriteItems", verify, touching="#2fa-challenge:")
    assert_unavailable(outcome)
    assert_unchanged(outcome)
    outcome = under_fault(faults, "TransactWriteItems", verify, collided, touching="#2fa-challenge:")
    assert_unavailable(outcome, sends=3 * store.COLLISION_ATTEMPTS)
    assert_unchanged(outcome)
    # Known limit: the session is a second transaction. Throttled, the challenge is completed and the
    # step spent (each item whole): the person signs in again.
    outcome = under_fault(faults, "TransactWriteItems", verify, touching="#session:")
    assert_unavailable(outcome)
    assert kinds(outcome.changed) == {"#2fa": "changed", "#2fa-challenge": "removed"}
    assert (TenantStore().get(second_factor_key(admin.sk), consistent=True) or {}).get(
        "lastStep"
    ) == totp_step(clock[0])


def test_magic_link_redeem_throttled_answers_503_and_the_code_still_works(
    gateway: Any, tenants: dict[str, Record], faults: Faults, bus_messages: Any
) -> None:
    assert (
        gateway.post("/profile/magic-link", headers=ACME, json={"email": "buyer@acme.test"}).status_code
        == 200
    )
    code = next(e["detail"]["code"] for e in bus_messages() if e["detail-type"] == "notification.requested")
    redeem = call(
        gateway, "POST", "/profile/magic-link/redirect", ACME, {"email": "buyer@acme.test", "code": code}
    )
    # Spending the link (a conditional delete) is the first write
    outcome = under_fault(faults, "DeleteItem", redeem, touching="#signin-link:")
    assert_unavailable(outcome)
    assert_unchanged(outcome)
    outcome = under_fault(faults, "DeleteItem", redeem, write_collided, touching="#signin-link:")
    assert_unavailable(outcome, sends=store.COLLISION_ATTEMPTS)
    assert_unchanged(outcome)
    # Known limit: the session is the next write. Throttled, the link is spent: the person asks again.
    outcome = under_fault(faults, "TransactWriteItems", redeem, touching="#session:")
    assert_unavailable(outcome)
    assert kinds(outcome.changed) == {"#signin-link": "removed"}
    assert redeem().status_code == 401


# -- the publisher ------------------------------------------------------------------------------------------
def test_the_publisher_reports_exactly_the_records_the_bus_refused(
    functions: LocalLambda, tenants: dict[str, Record], faults: Faults, bus_messages: Any
) -> None:
    writer = RecordWriter()
    notes = [writer.create("acme", "note", {"i": i}) for i in range(4)]
    streams = boto3.client("dynamodbstreams")
    arn = boto3.client("dynamodb").describe_table(TableName=get_settings().table_name)["Table"][
        "LatestStreamArn"
    ]
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )
        records += streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    outbox = [
        r | {"eventSourceARN": arn}
        for r in records
        if r["eventName"] == "INSERT" and r["dynamodb"]["NewImage"].get("recordType", {}).get("S") == "outbox"
    ]
    assert len(outbox) == 4

    def of(note: Record) -> dict[str, Any]:
        return next(r for r in outbox if note.sk in json.dumps(r, default=str))

    # When the bus refuses the entries of the 2nd and 4th records (FailedEntryCount > 0, HTTP 200)
    refused = (notes[1], notes[3])
    for note in refused:
        faults.fail("PutEvents", bus_refused, touching=note.sk, service="eventbridge")
    result = functions.invoke("PublisherFunction", {"Records": [of(n) for n in notes]})
    faults.clear()

    # Then exactly those records are reported, for Lambda to retry from the first of them
    assert result == {
        "batchItemFailures": [{"itemIdentifier": of(n)["dynamodb"]["SequenceNumber"]} for n in refused]
    }
    published = [e["detail"]["sk"] for e in bus_messages() if e["detail-type"] == "record.created"]
    assert published == [notes[0].sk, notes[2].sk]
    # and once the bus takes them, the retried records are published (at least once: consumers
    # deduplicate on eventId)
    assert functions.invoke("PublisherFunction", {"Records": [of(n) for n in refused]}) == {
        "batchItemFailures": []
    }
    assert [e["detail"]["sk"] for e in bus_messages() if e["detail-type"] == "record.created"] == [
        n.sk for n in refused
    ]


def test_the_stream_retries_a_refused_record_until_a_limit_then_parks_it_in_the_dead_letter_queue() -> None:
    publisher = load_template().resources["PublisherFunction"]["Properties"]
    mapping = next(e["Properties"] for e in publisher["Events"].values() if e["Type"] == "DynamoDB")
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    # A finite limit: records are discarded (to the queue) once 6 hours old, well inside the stream's 24 h
    assert 0 < int(mapping["MaximumRecordAgeInSeconds"]) < 86400
    assert mapping["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["PublisherDeadLetterQueue", "Arn"]},
    }
    queue = load_template().resources["PublisherDeadLetterQueue"]
    assert queue["Type"] == "AWS::SQS::Queue"
    statements = [s for p in publisher["Policies"] for s in p["Statement"]]
    assert any(s["Action"] == "sqs:SendMessage" for s in statements)


def test_the_gateway_answers_an_authorizer_failure_with_503_in_the_contract_shape() -> None:
    responses = load_template().gateway_responses
    for kind in ("AUTHORIZER_FAILURE", "AUTHORIZER_CONFIGURATION_ERROR"):
        response = responses[kind]
        body, headers = response.render("req-1", kind, {})
        assert response.status == 503 and headers == {"Retry-After": "1", "x-request-id": "req-1"}
        assert json.loads(body) == {
            "statusCode": 503,
            "error": "service_unavailable",
            "code": "service_unavailable",
            "reason": "service_unavailable",
            "message": "a backing service is briefly unavailable; retry",
            "requestId": "req-1",
        }
