"""The authorizer's key path on a warm container (issue #18, item 4): one TransactWriteItems per request,
the credential item taken from the container's cache and proven still true by that write's conditions.
Every change to a key or its owner is still refused from the very next request, and the rate limit stays
exact across requests, threads and containers (each ``KeyAuthenticator`` here is one container)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from appengine_core.identity.principal import Caller, Principal
from appengine_core.infra import aws
from appengine_core.infra.envelope import Record
from appengine_core.infra.errors import Forbidden, Unauthorized
from appengine_core.infra.store import TenantStore, Update
from appengine_core.keys.authenticator import CredentialCache, KeyAuthenticator
from appengine_core.keys.format import credential_key, key_hash
from appengine_local.runtime import LocalLambda
from tests.integration.conftest import bearer_for
from tests.integration.test_authorizer import app_token_of, authorizer_event

EVERYTHING = ["create", "read", "update", "delete", "review", "approve"]
# Twenty seconds into a minute well inside an hour and a day: nothing rolls unless a test moves on.
MINUTE = (int(time.time()) // 86_400 + 1) * 86_400 + 7_200 + 600
AT = MINUTE + 20.0


def admin_caller(admin: Record) -> Caller:
    actor = Principal(
        kind="user",
        principal_id=admin.sk,
        orgid="acme",
        roles=("RootAdmin",),
        permissions=tuple(EVERYTHING),
    )
    return Caller(principal=actor, orgid="acme")


def new_key(admin: Record, **request: Any) -> tuple[str, str]:
    """A key of acme's admin: its plaintext and its id."""
    from appengine_core.keys.models import ApiKeyCreate
    from appengine_core.keys.service import ApiKeyService

    body = {"name": "warm", "scopes": ["read", "write"]} | request
    created = ApiKeyService().create(admin_caller(admin), ApiKeyCreate.model_validate(body))
    return created.key, created.id


def stored(key: str) -> dict[str, Any]:
    return TenantStore().get(credential_key(key_hash(key)), consistent=True) or {}


def bump_owner(owner: Record, expression: str, values: dict[str, Any], names: dict[str, str]) -> None:
    """A change of the owner's membership in acme, as every path writes one: its version moves."""
    TenantStore().update(
        Update(
            owner.key,
            f"{expression}, #v = #v + :one",
            values=values | {":one": 1},
            names=names | {"#d": "data", "#m": "memberships", "#o": "acme", "#v": "version"},
        )
    )


@pytest.fixture
def calls(aws_stack: dict[str, str]) -> list[str]:
    """The DynamoDB operations this thread sends from now on."""
    sent: list[str] = []
    aws.dynamodb().meta.client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: sent.append(model.name)
    )
    return sent


# -- one call per warm request ------------------------------------------------------------------------
def test_a_warm_request_is_one_transactional_write(tenants: dict[str, Record], calls: list[str]) -> None:
    # Given a key and a container that has not seen it
    key, key_id = new_key(tenants["acme_admin"])
    container = KeyAuthenticator()
    calls.clear()

    # When it is used twice / Then the first reads the item and admits it; the second only admits it
    first = container.authenticate(key, "acme", now=AT)
    assert calls == ["GetItem", "TransactWriteItems"]
    calls.clear()
    second = container.authenticate(key, "acme", now=AT + 1)
    assert calls == ["TransactWriteItems"]
    # And both are the same principal, both counted
    assert first == second and second.api_key_id == key_id and second.roles == ("RootAdmin",)
    assert stored(key)["usageCount"] == 2 and stored(key)["windowperMinuteCount"] == 2


def test_the_authorizer_function_admits_a_warm_key_and_app_token_in_one_call(
    functions: LocalLambda, gateway: Any, tenants: dict[str, Record], calls: list[str]
) -> None:
    # Given a key and an app token of it, each used once through the authorizer (its container warms)
    key, token = app_token_of(gateway, tenants["acme_admin"], scopes=["read"])
    with_key = authorizer_event(orgid="acme", **{"x-api-key": key["key"]})
    with_token = authorizer_event(orgid="acme", Authorization=token)
    for event in (with_key, with_token):
        assert functions.invoke("AuthorizerFunction", event)["context"]["apiKeyId"] == key["id"]

    # When each is used again / Then each decision is one TransactWriteItems
    for event in (with_key, with_token):
        calls.clear()
        context = functions.invoke("AuthorizerFunction", event)["context"]
        assert calls == ["TransactWriteItems"]
        assert context["apiKeyId"] == key["id"] and context["scopes"] == "read"

    # When the key is regenerated / Then neither the old value nor the token is admitted on its next use
    regenerated = gateway.post(f"/api-key/regenerate/{key['id']}", headers=bearer_for(tenants["acme_admin"]))
    assert regenerated.status_code == 200
    for event in (with_key, with_token):
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            functions.invoke("AuthorizerFunction", event)


# -- every change seen from the very next request, with a warm cache ------------------------------------
def test_revoke_and_regenerate_are_seen_by_a_warm_container_at_once(tenants: dict[str, Record]) -> None:
    from appengine_core.keys.service import ApiKeyService

    admin = tenants["acme_admin"]
    caller = admin_caller(admin)
    container = KeyAuthenticator()
    # Given a key warm in the container
    key, key_id = new_key(admin)
    container.authenticate(key, "acme", now=AT)

    # When it is regenerated / Then the old value is refused on its next use, the new one admitted
    fresh = ApiKeyService().regenerate(caller, key_id).key
    with pytest.raises(Unauthorized, match="unknown or revoked"):
        container.authenticate(key, "acme", now=AT + 1)
    assert container.authenticate(fresh, "acme", now=AT + 2).api_key_id == key_id
    assert container.authenticate(fresh, "acme", now=AT + 3).api_key_id == key_id  # warm again

    # When it is revoked / Then the next use is refused, and so is every one after
    ApiKeyService().revoke(caller, key_id)
    for second in (4, 5):
        with pytest.raises(Unauthorized, match="unknown or revoked"):
            container.authenticate(fresh, "acme", now=AT + second)


def test_an_owner_disabled_or_lowered_in_the_org_is_seen_by_a_warm_container_at_once(
    tenants: dict[str, Record],
) -> None:
    admin = tenants["acme_admin"]
    container = KeyAuthenticator()
    # Given a key of a RootAdmin, warm in the container
    key, _ = new_key(admin)
    assert container.authenticate(key, "acme", now=AT).roles == ("RootAdmin",)
    assert container.authenticate(key, "acme", now=AT + 1).roles == ("RootAdmin",)

    # When the owner's role in acme is lowered / Then the very next request acts with the lowered role
    bump_owner(admin, "SET #d.#m.#o.#r = :user", {":user": ["User"]}, {"#r": "roles"})
    assert container.authenticate(key, "acme", now=AT + 2).roles == ("User",)
    assert container.authenticate(key, "acme", now=AT + 3).roles == ("User",)

    # When the owner is disabled in acme / Then the very next request is refused
    bump_owner(admin, "SET #d.#m.#o.#x = :t", {":t": True}, {"#x": "disabled"})
    with pytest.raises(Unauthorized, match="owner is disabled"):
        container.authenticate(key, "acme", now=AT + 4)


def test_a_key_expiring_while_cached_is_refused_from_its_expiry(
    tenants: dict[str, Record], calls: list[str]
) -> None:
    from appengine_core.keys.service import ApiKeyService

    # Given a key expiring at AT + 30, warm in a container
    expires = datetime.fromtimestamp(AT + 30, UTC)
    key, _ = new_key(tenants["acme_admin"], expiresAt=expires.isoformat())
    container = KeyAuthenticator()
    container.authenticate(key, "acme", now=AT)
    container.authenticate(key, "acme", now=AT + 29)

    # When its expiry passes / Then the next request is refused without a write (today's reason)
    calls.clear()
    with pytest.raises(Unauthorized, match="expired"):
        container.authenticate(key, "acme", now=AT + 30)
    assert calls == ["GetItem"]

    # And a key the expiry job marked expired is refused too, even by a container whose clock is behind
    other, _ = new_key(tenants["acme_admin"], expiresAt=expires.isoformat())
    container.authenticate(other, "acme", now=AT)
    assert ApiKeyService().expire_due(now=AT + 31) == 2
    with pytest.raises(Unauthorized, match="unknown or revoked"):
        container.authenticate(other, "acme", now=AT + 1)


def test_a_warm_item_is_never_used_for_another_org_or_another_key_s_app_token(
    tenants: dict[str, Record],
) -> None:
    # Given a key warm in a container
    key, key_id = new_key(tenants["acme_admin"])
    container = KeyAuthenticator()
    container.authenticate(key, "acme", now=AT)
    reference = key_hash(key)

    # When it is presented for another org / Then 403 as on a cold container
    with pytest.raises(Forbidden):
        container.authenticate(key, "globex", now=AT + 1)
    # When an app token names another key with this key's hash / Then 401
    with pytest.raises(Unauthorized, match="another key"):
        container.authenticate_app("not-" + key_id, reference, "acme", now=AT + 2)
    # And the right app token acts as the key
    assert container.authenticate_app(key_id, reference, "acme", now=AT + 3).api_key_id == key_id


def test_the_cache_is_bounded_and_forgets_an_item_after_its_time(
    tenants: dict[str, Record], calls: list[str]
) -> None:
    # Given a container caching at most two items for ten seconds
    container = KeyAuthenticator(cache=CredentialCache(size=2, seconds=10))
    keys = [new_key(tenants["acme_admin"])[0] for _ in range(3)]
    for key in keys:
        container.authenticate(key, "acme", now=AT)

    # When the first key is used again / Then it was evicted (least recently used): read again
    calls.clear()
    container.authenticate(keys[0], "acme", now=AT + 1)
    assert calls == ["GetItem", "TransactWriteItems"]
    # When the last one is used again within ten seconds of its read / Then it is warm
    calls.clear()
    container.authenticate(keys[2], "acme", now=AT + 9)
    assert calls == ["TransactWriteItems"]
    # When ten seconds have passed since it was read / Then it is read again, however often it was used
    calls.clear()
    container.authenticate(keys[2], "acme", now=AT + 10)
    assert calls == ["GetItem", "TransactWriteItems"]


# -- the rate limit stays exact ----------------------------------------------------------------------------
def test_parallel_requests_on_warm_containers_admit_exactly_the_limit(
    tenants: dict[str, Record], one_call_at_a_time: None
) -> None:
    # Given a key of 10 requests a minute, warm in three containers (3 requests counted)
    limit, attempts = 10, 30
    key, _ = new_key(tenants["acme_admin"], rateLimits={"perMinute": limit})
    containers = [KeyAuthenticator() for _ in range(3)]
    for container in containers:
        assert container.authenticate(key, "acme", now=AT).retry_after is None

    # When 30 requests arrive at once, spread over the containers (threads sharing each one's cache)
    def request(n: int) -> int | None:
        return containers[n % 3].authenticate(key, "acme", now=AT + 1).retry_after

    with ThreadPoolExecutor(max_workers=12) as pool:
        retry_afters = list(pool.map(request, range(attempts)))

    # Then exactly the 7 left under the limit are admitted, every other one refused with today's
    # retry_after (to the end of the minute, and a second), and exactly the admitted ones are counted
    admitted = [r for r in retry_afters if r is None]
    assert len(admitted) == limit - 3
    assert retry_afters.count(int(MINUTE + 60 - (AT + 1)) + 1) == attempts - len(admitted)
    assert stored(key)["usageCount"] == limit and stored(key)["windowperMinuteCount"] == limit


def test_two_containers_keep_the_count_exact_across_a_window_roll(
    tenants: dict[str, Record], calls: list[str]
) -> None:
    # Given a key of 4 requests a minute used twice by each of two containers late in a minute
    key, _ = new_key(tenants["acme_admin"], rateLimits={"perMinute": 4, "perHour": 1000})
    first, second = KeyAuthenticator(), KeyAuthenticator()
    late = MINUTE + 50.0
    for container in (first, second, first, second):
        assert container.authenticate(key, "acme", now=late).retry_after is None
    # And a fifth request of that minute (a third container) is refused until the minute ends
    assert KeyAuthenticator().authenticate(key, "acme", now=late + 1).retry_after == 10

    # When the minute rolls / Then the first warm container opens the new window in one call
    rolled = MINUTE + 62.0
    assert second.authenticate(key, "acme", now=rolled).retry_after is None
    calls.clear()
    # And the other, whose cache still has the old window, loses the roll and counts in the new window
    assert first.authenticate(key, "acme", now=rolled).retry_after is None
    assert calls == ["TransactWriteItems", "GetItem", "TransactWriteItems"]
    calls.clear()
    assert second.authenticate(key, "acme", now=rolled + 1).retry_after is None
    assert first.authenticate(key, "acme", now=rolled + 1).retry_after is None
    assert calls == ["TransactWriteItems", "TransactWriteItems"]
    # Then the new minute admits exactly 4, and refuses the fifth with today's retry_after
    assert second.authenticate(key, "acme", now=rolled + 2).retry_after == int(MINUTE + 120 - rolled - 2) + 1
    item = stored(key)
    assert item["windowperMinuteStart"] == MINUTE + 60 and item["windowperMinuteCount"] == 4
    assert item["windowperHourCount"] == 8 and item["usageCount"] == 8


def test_a_container_whose_clock_is_behind_counts_in_the_window_another_opened(
    tenants: dict[str, Record],
) -> None:
    # Given a key whose minute window a container with a clock ahead has already moved on
    key, _ = new_key(tenants["acme_admin"], rateLimits={"perMinute": 2})
    ahead, behind = KeyAuthenticator(), KeyAuthenticator()
    behind.authenticate(key, "acme", now=MINUTE + 59.5)
    ahead.authenticate(key, "acme", now=MINUTE + 60.2)

    # When the container behind is used just before its minute ends / Then it counts in the new window,
    # warm or not, and the limit holds there
    assert behind.authenticate(key, "acme", now=MINUTE + 59.9).retry_after is None
    refused = behind.authenticate(key, "acme", now=MINUTE + 59.9).retry_after
    assert refused == int(MINUTE + 120 - (MINUTE + 59.9)) + 1
    item = stored(key)
    assert item["windowperMinuteStart"] == MINUTE + 60 and item["windowperMinuteCount"] == 2
