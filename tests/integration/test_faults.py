"""When AWS stays overloaded after botocore's retries, callers get 503 with Retry-After and the contract's
error body, never a 500 and never a partial write (issue 18, item 5: a first slice)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from appengine_core.infra import aws
from appengine_core.infra.envelope import Record
from tests.integration.conftest import bearer_for


@pytest.fixture
def failing() -> Iterator[Any]:
    """Makes the named DynamoDB operation fail as DynamoDB does when it throttles."""
    events = boto3._get_default_session()._session.get_component("event_emitter")
    registered: list[tuple[str, Any]] = []

    def fail(operation: str, code: str = "ProvisionedThroughputExceededException") -> None:
        def throttle(**_: Any) -> None:
            raise ClientError({"Error": {"Code": code, "Message": "slow down"}}, operation)

        name = f"before-call.dynamodb.{operation}"
        events.register(name, throttle)
        registered.append((name, throttle))
        aws.reset_clients()  # clients copy the session's handlers when they are created

    yield fail
    for name, handler in registered:
        events.unregister(name, handler)
    aws.reset_clients()


def test_a_throttled_read_is_503_with_retry_after(
    gateway: Any, tenants: dict[str, Record], failing: Any
) -> None:
    # Given a record, and DynamoDB throttling every Query past botocore's retries
    admin = bearer_for(tenants["acme_admin"])
    assert (
        gateway.post("/repository/create", headers=admin, json={"datatype": "note", "data": {}}).status_code
        == 201
    )
    failing("Query")
    # When a find runs
    response = gateway.post("/repository/find/note", headers=admin, json={"query": {}})
    # Then the caller is told to come back, in the contract's error shape
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json["error"] == response.json["code"] == "service_unavailable"
    assert response.headers.get("x-request-id") is not None


def test_a_throttled_transaction_writes_nothing(
    gateway: Any, tenants: dict[str, Record], failing: Any
) -> None:
    # Given DynamoDB throttling every transaction
    admin = bearer_for(tenants["acme_admin"])
    before = gateway.post("/repository/find/note", headers=admin, json={"query": {}}).json.get("total", 0)
    failing("TransactWriteItems")
    # When a record is created
    response = gateway.post("/repository/create", headers=admin, json={"datatype": "note", "data": {"x": 1}})
    # Then 503, and neither the record nor its counter changed
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    after = gateway.post("/repository/find/note", headers=admin, json={"query": {}})
    assert after.status_code == 200 and after.json.get("total", 0) == before


def test_a_defect_is_still_500(gateway: Any, tenants: dict[str, Record], failing: Any) -> None:
    # A refusal that retrying cannot mend (a validation error of our own making) stays a 500 with a request id
    admin = bearer_for(tenants["acme_admin"])
    failing("Query", code="ValidationException")
    response = gateway.post("/repository/find/note", headers=admin, json={"query": {}})
    assert response.status_code == 500 and response.json["error"] == "internal_error"
