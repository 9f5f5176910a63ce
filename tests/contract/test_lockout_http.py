"""Contract §4 "Brute-force protection" over HTTP, through the local gateway.

Failed sign-ins are counted per (org, kind, email), known or not, and per source IP; after 5 for an
email every attempt for it is 429 ``rate_limited`` with ``Retry-After``; more than 30 from a source in a
minute block the source for a minute; an org's admin unlocks an email with a person's token.

The session's shared stack is reached from 127.0.0.1, whose allowance the other tests need: every
failing request here speaks from an address of its own in 127.0.0.0/8 (see
``test_storefront_security_http``), and every email is fresh.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.contract.conftest import HttpResponse, LocalApi, sign_in
from tests.contract.test_platform_http import assert_error
from tests.contract.test_storefront_security_http import one_window, own_address, send_from

ORG = "acme"
PASSWORD = "lockout-pass-1234"


def admin(api: LocalApi) -> dict[str, str]:
    return {"orgid": ORG, "authorization": sign_in(api, "admin@acme.test", "acme-admin-pass", ORG)["token"]}


def new_customer(api: LocalApi) -> str:
    email = f"lock-{uuid.uuid4().hex[:12]}@acme.test"
    response = api.post(
        "/profile/customer/signup", headers={"orgid": ORG}, body={"email": email, "password": PASSWORD}
    )
    assert response.status == 201, response.text
    return email


def new_user(api: LocalApi) -> str:
    email = f"lock-staff-{uuid.uuid4().hex[:12]}@acme.test"
    response = api.post(
        "/user/create",
        headers=admin(api),
        body={"email": email, "password": PASSWORD, "roles": ["User"], "permissions": ["read"]},
    )
    assert response.status == 201, response.text
    return email


def attempt(api: LocalApi, source: str, email: str, password: str, kind: str = "customer") -> HttpResponse:
    path = "/profile/customer/signin" if kind == "customer" else "/profile/signin"
    return send_from(api, source, "POST", path, {"orgid": ORG}, {"email": email, "password": password})


def assert_locked(response: HttpResponse, longest: int = 60) -> None:
    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response.headers["retry-after"]) <= longest


def test_five_wrong_passwords_then_the_right_one_is_429_with_retry_after(api: LocalApi) -> None:
    # Given a customer and a staff user, each with five wrong passwords, each answered 401
    source = own_address()
    for email, kind in ((new_customer(api), "customer"), (new_user(api), "user")):
        for _ in range(5):
            assert_error(attempt(api, source, email, "not-the-password", kind), 401, "invalid_credentials")
        # When the right password comes next, even from another address
        # Then it is refused: 429 rate_limited, with Retry-After (the first lock: at most a minute)
        assert_locked(attempt(api, own_address(), email, PASSWORD, kind))
        assert_locked(attempt(api, source, email, "not-the-password", kind))


def test_unknown_emails_lock_alike(api: LocalApi) -> None:
    ghost, source = f"ghost-{uuid.uuid4().hex[:12]}@acme.test", own_address()
    statuses = [attempt(api, source, ghost, "whatever-123").status for _ in range(5)]
    assert statuses == [401] * 5
    assert_locked(attempt(api, source, ghost, "whatever-123"))
    # The staff door keeps its own count for the same email
    assert_error(attempt(api, source, ghost, "whatever-123", kind="user"), 401, "invalid_credentials")


def test_a_success_resets_the_count(api: LocalApi) -> None:
    email, source = new_customer(api), own_address()
    for _ in range(2):
        assert [attempt(api, source, email, "nope-nope").status for _ in range(4)] == [401] * 4
        assert attempt(api, source, email, PASSWORD).status == 200
    assert [attempt(api, source, email, "nope-nope").status for _ in range(4)] == [401] * 4
    assert attempt(api, source, email, PASSWORD).status == 200


def test_unlock_needs_an_admins_own_token_and_then_works(api: LocalApi) -> None:
    email, source = new_customer(api), own_address()
    for _ in range(5):
        attempt(api, source, email, "wrong-wrong")
    assert_locked(attempt(api, source, email, PASSWORD))
    staff = new_user(api)
    buyer = sign_in(api, "buyer@acme.test", "acme-buyer-pass", ORG, kind="customer")["token"]
    reader = sign_in(api, staff, PASSWORD, ORG)["token"]
    key = api.post(
        "/api-key/create", headers=admin(api), body={"name": "unlocker", "scopes": ["read", "write"]}
    )
    assert key.status == 201, key.text
    refused = [
        {"orgid": ORG, "authorization": buyer},
        {"orgid": ORG, "authorization": reader},
        {"orgid": ORG, "x-api-key": key.json()["key"]},
    ]
    # When a customer, a read user and an admin's API key try to unlock it
    for headers in refused:
        assert_error(api.post("/customer/unlock", headers=headers, body={"email": email}), 403, "forbidden")
    # Then it is still locked; the admin's own token unlocks it (any case), and the right password works
    assert_locked(attempt(api, source, email, PASSWORD))
    unlocked = api.post("/customer/unlock", headers=admin(api), body={"email": email.upper()})
    assert unlocked.status == 200 and unlocked.json() == {"ok": True}
    assert attempt(api, source, email, PASSWORD).status == 200
    # And an email that never existed unlocks too; a body without an email is 422
    assert api.post("/user/unlock", headers=admin(api), body={"email": "never@acme.test"}).json() == {
        "ok": True
    }
    assert_error(api.post("/user/unlock", headers=admin(api), body={}), 422, "validation_error")


def test_a_staff_email_is_unlocked_at_the_user_route(api: LocalApi) -> None:
    email, source = new_user(api), own_address()
    for _ in range(5):
        attempt(api, source, email, "wrong-wrong", kind="user")
    # The customer route clears the customer count only
    assert api.post("/customer/unlock", headers=admin(api), body={"email": email}).status == 200
    assert_locked(attempt(api, source, email, PASSWORD, kind="user"))
    assert api.post("/user/unlock", headers=admin(api), body={"email": email}).status == 200
    assert attempt(api, source, email, PASSWORD, kind="user").status == 200


def test_more_than_30_failures_from_one_source_in_a_minute_block_it(api: LocalApi) -> None:
    email, source = new_customer(api), own_address()
    one_window()
    # Given 30 failures from one address, each for another unknown email (no email reaches its limit)
    statuses = [
        attempt(api, source, f"probe-{i}-{uuid.uuid4().hex[:6]}@acme.test", "guess-123").status
        for i in range(30)
    ]
    assert statuses == [401] * 30
    # When one more fails, it is answered 429, and so is the right password of anyone from that address
    assert_locked(attempt(api, source, f"probe-31-{uuid.uuid4().hex[:6]}@acme.test", "guess-123"))
    assert_locked(attempt(api, source, email, PASSWORD))
    # Then from another address the same customer signs in
    assert attempt(api, own_address(), email, PASSWORD).status == 200


def test_parallel_failures_around_the_threshold_lock_exactly_as_counted(api: LocalApi) -> None:
    # Given emails with 3 failures each (two left before the lock)
    for _ in range(3):
        email, source = new_customer(api), own_address()
        assert [attempt(api, source, email, "wrong-wrong").status for _ in range(3)] == [401] * 3

        # When a dozen wrong passwords arrive at once, from a dozen addresses
        def one(_: Any, email: str = email) -> int:
            return attempt(api, own_address(), email, "wrong-wrong").status

        with ThreadPoolExecutor(max_workers=12) as pool:
            statuses = list(pool.map(one, range(12)))

        # Then exactly two of them are counted as failures (401) and every other one is 429
        assert sorted(statuses) == [401, 401] + [429] * 10, statuses
        # And the lock holds for the right password too
        assert_locked(attempt(api, source, email, PASSWORD))
