"""Revocation holds from the very next request on real DynamoDB too: the authorizer's one read of the
principal and its session is strongly consistent (moto is always consistent, so the request itself is
what a test can check)."""

from __future__ import annotations

from typing import Any

from appengine_core.infra import aws
from appengine_core.infra.envelope import Record
from appengine_local.runtime import LocalLambda
from tests.integration.conftest import access_token_for
from tests.integration.test_authorizer import authorizer_event


def test_the_authorizer_reads_principal_and_session_consistently_in_one_call(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    # Given a signed-in admin, and every DynamoDB request of the next decision recorded
    admin = tenants["acme_admin"]
    event = authorizer_event(orgid="acme", Authorization=f"Bearer {access_token_for(admin)}")
    sent: list[tuple[str, dict[str, Any]]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        sent.append((model.name, params))

    events = aws.dynamodb().meta.client.meta.events
    events.register("provide-client-params.dynamodb.*", record)
    try:
        # When the authorizer decides
        functions.invoke("AuthorizerFunction", event)
    finally:
        events.unregister("provide-client-params.dynamodb.*", record)

    # Then it made one BatchGetItem, and that read is strongly consistent
    reads = [params for name, params in sent if name != "UpdateItem"]
    assert [name for name, _ in sent if name != "UpdateItem"] == ["BatchGetItem"]
    (request,) = reads[0]["RequestItems"].values()
    assert request["ConsistentRead"] is True
