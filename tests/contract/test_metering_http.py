"""Issue 13 item 16 over HTTP: usage is metered only for orgs that exist, so no request, signed in or
not, can make the service write items for an org that does not exist.

Usage is counted off the request path (issue 18): the lines reach the metering function within about a
second, so each check first waits until a request of acme made after the one under test was counted."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from boto3.dynamodb.conditions import Key

from appengine_local.resources import physical_name
from tests.contract.conftest import LocalApi, sign_in


def table(api: LocalApi) -> Any:
    """The stack's application table, read directly in the emulated DynamoDB (not through the API)."""
    import boto3

    resource = boto3.resource(
        "dynamodb",
        endpoint_url=api.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    return resource.Table(physical_name("AppTable"))


def items_of_org(api: LocalApi, orgid: str) -> list[dict[str, Any]]:
    """Every item whose key belongs to ``orgid``. A Scan is fine here: a test reading the emulator,
    never a request path; it is what proves that no collection at all was written."""
    found: list[dict[str, Any]] = []
    arguments: dict[str, Any] = {"FilterExpression": Key("PK").begins_with(f"{orgid}:")}
    while True:
        page = table(api).scan(**arguments)
        found += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return found
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def requests_today(api: LocalApi, orgid: str) -> int:
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    item = table(api).get_item(Key={"PK": f"{orgid}:#usage", "SK": f"{orgid}:#usage:{day}"}).get("Item")
    return int(item["requests"]) if item else 0


def counted_since(api: LocalApi, before: int, timeout: float = 10.0) -> int:
    """acme's count once it has grown past ``before`` (the usage lines so far were delivered)."""
    deadline = time.monotonic() + timeout
    while (now := requests_today(api, "acme")) <= before:
        assert time.monotonic() < deadline, "acme's usage was never counted"
        time.sleep(0.2)
    return now


def delivered(api: LocalApi) -> None:
    """Wait until every usage line logged so far was delivered: one more request of acme is counted."""
    before = requests_today(api, "acme")
    assert api.get("/storefront/products", headers={"orgid": "acme"}).status == 200
    counted_since(api, before)


def test_public_requests_for_an_org_that_does_not_exist_write_nothing(api: LocalApi) -> None:
    # Given an orgid that names no org, and acme, which exists
    ghost = f"nosuchorg-{uuid.uuid4().hex[:12]}"
    acme_before = requests_today(api, "acme")

    # When anyone, without credentials, browses both storefronts
    for _ in range(3):
        assert api.get("/storefront/products", headers={"orgid": ghost}).status < 500
    assert api.get("/storefront/products", headers={"orgid": "acme"}).status == 200

    # Then the table holds no item at all for the made-up org, while acme's request was counted
    # (the meter works; it only refuses orgs that do not exist)
    counted_since(api, acme_before)
    assert items_of_org(api, ghost) == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/profile/signin", {"email": "nobody@example.test", "password": "not-a-password"}),
        ("POST", "/profile/customer/refresh", {"refreshToken": "not-a-token"}),
        ("GET", "/storefront/categories", None),
        ("POST", "/shipping/options", {"items": [], "toAddress": {"country": "US"}}),
    ],
)
def test_no_public_route_writes_usage_for_an_org_that_does_not_exist(
    api: LocalApi, method: str, path: str, body: Any
) -> None:
    # Given a made-up orgid
    ghost = f"nosuchorg-{uuid.uuid4().hex[:12]}"

    # When a public route is called with it
    response = api.request(method, path, headers={"orgid": ghost}, body=body)

    # Then it answers without a server error and no usage item (nor any other) exists for that org
    assert response.status < 500, response.text
    delivered(api)
    assert [i for i in items_of_org(api, ghost) if str(i["PK"]).endswith(":#usage")] == []


def test_a_platform_root_acting_on_an_org_that_does_not_exist_writes_no_usage(api: LocalApi) -> None:
    # Given the platform root, who may act on any org, and a made-up orgid
    token = sign_in(api, "root@platform.test", "platform-root-pass", "platform")["token"]
    ghost = f"nosuchorg-{uuid.uuid4().hex[:12]}"

    # When it calls an authenticated route with that orgid
    response = api.get("/profile/whoami", headers={"orgid": ghost, "authorization": token})

    # Then, whatever the answer, no usage counter was created for the org that does not exist
    assert response.status < 500, response.text
    delivered(api)
    assert [i for i in items_of_org(api, ghost) if str(i["PK"]).endswith(":#usage")] == []
