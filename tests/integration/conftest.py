"""Integration fixtures: moto in-process (``mock_aws``) with the resources of ``template.yaml`` itself,
and the template's functions invoked in-process the way the local gateway invokes them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.models import botocore_stubber

from appengine_core.infra import aws
from appengine_core.infra.settings import get_settings
from appengine_core.ops.jobs import JOBS
from appengine_local.resources import LOCAL_REGION, merged_environment, provision
from appengine_local.runtime import LocalLambda
from appengine_local.template import load_template


@pytest.fixture
def aws_stack(clean_env: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Emulated AWS holding the template's table, bus and secret, with a first signing key."""
    environment = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_REGION": LOCAL_REGION,
        **merged_environment(),
        # As on the local stack: OAuth issuers and redirect URIs may be http on a loopback address.
        "APPENGINE_OAUTH_ALLOW_LOOPBACK_HTTP": "true",
    }
    for name, value in environment.items():
        clean_env.setenv(name, value)
    get_settings.cache_clear()
    aws.reset_clients()
    with mock_aws():
        created = provision(load_template())
        JOBS["rotate-signing-keys"]()
        yield created
    get_settings.cache_clear()
    aws.reset_clients()


@pytest.fixture
def functions(aws_stack: dict[str, str]) -> LocalLambda:
    """Freshly imported handlers (no warm state carried over from another test)."""
    return LocalLambda(load_template())


def body_of(response: dict[str, Any]) -> Any:
    import json

    return json.loads(response["body"])


def header_of(response: dict[str, Any], name: str) -> str | None:
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == name.lower():
            return str(value)
    for key, values in (response.get("multiValueHeaders") or {}).items():
        if key.lower() == name.lower():
            return str(values[0])
    return None


@pytest.fixture
def tenants(aws_stack: dict[str, str]) -> dict[str, Any]:
    """Two tenant orgs and the platform org, with a staff admin, a reader and a customer."""
    from appengine_core.identity.directory import DirectoryService, NewCustomer, NewUser

    directory = DirectoryService()
    for orgid in ("platform", "acme", "globex"):
        directory.create_org(orgid, orgid.title())
    everything = ["create", "read", "update", "delete", "review", "approve"]
    return {
        "acme_admin": directory.create_user(
            "acme",
            NewUser(
                email="admin@acme.test",
                password="acme-admin-pass",
                roles=["RootAdmin"],
                permissions=everything,
            ),
        ),
        "acme_reader": directory.create_user(
            "acme",
            NewUser(
                email="reader@acme.test", password="acme-reader-pass", roles=["User"], permissions=["read"]
            ),
        ),
        "platform_root": directory.create_user(
            "platform",
            NewUser(
                email="root@platform.test",
                password="platform-pass",
                roles=["RootAdmin"],
                permissions=everything,
            ),
        ),
        "globex_admin": directory.create_user(
            "globex",
            NewUser(
                email="admin@globex.test",
                password="globex-admin-pass",
                roles=["RootAdmin"],
                permissions=everything,
            ),
        ),
        "acme_customer": directory.create_customer(
            "acme", NewCustomer(email="buyer@acme.test", password="acme-buyer-pass", firstName="Bea")
        ),
    }


def access_token_for(record: Any, session_lifetime: int = 3600) -> str:
    """An access token of a real session of ``record`` (a User or Customer envelope)."""
    from appengine_core.identity.sessions import SessionStore
    from appengine_core.identity.tokens import TokenService

    kind = "customer" if record.datatype == "customer" else "user"
    session, _ = SessionStore().create(
        principal_sk=record.sk,
        kind=kind,
        method="password",
        lifetime_seconds=session_lifetime,
        user_agent="test",
        source_ip="127.0.0.1",
    )
    token, _ = TokenService().issue(subject=record.sk, kind=kind, session_id=session.id, orgid=record.orgid)
    return token


@pytest.fixture
def bus_messages(aws_stack: dict[str, str]) -> Any:
    """Every event put on the template's bus, captured through a rule -> SQS queue (as a subscriber would)."""
    import json

    import boto3

    from appengine_core.infra.settings import get_settings

    sqs = boto3.client("sqs", region_name=LOCAL_REGION)
    events = boto3.client("events", region_name=LOCAL_REGION)
    queue_url = sqs.create_queue(QueueName="bus-capture")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    bus = get_settings().event_bus_name
    events.put_rule(Name="capture-all", EventBusName=bus, EventPattern=json.dumps({"source": ["appengine"]}))
    events.put_targets(Rule="capture-all", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])

    def read() -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return received
            for message in batch:
                received.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    return read


@pytest.fixture
def gateway(functions: LocalLambda) -> Any:
    """The local gateway in-process (werkzeug test client) over emulated AWS."""
    from werkzeug.test import Client

    from appengine_local.gateway import LocalGateway

    return Client(LocalGateway(load_template(), functions))


def bearer_for(record: Any) -> dict[str, str]:
    return {"authorization": f"Bearer {access_token_for(record)}", "orgid": record.orgid}


@pytest.fixture
def one_call_at_a_time(aws_stack: dict[str, str]) -> Iterator[None]:
    """moto's DynamoDB does not lock: a conditional write or transaction racing another could interleave
    between its checks and its writes. DynamoDB makes each one atomic, so the emulator answers one call
    at a time here, as the local stack's does (``appengine_local.dev``)."""
    emitter = boto3._get_default_session()._session.get_component("event_emitter")
    lock = threading.Lock()

    def serialized(**kwargs: Any) -> Any:
        with lock:
            return botocore_stubber(**kwargs)

    emitter.unregister("before-send", botocore_stubber)
    emitter.register("before-send", serialized)
    aws.reset_clients()  # a client copies the session's handlers when it is created
    yield
    emitter.unregister("before-send", serialized)
    emitter.register("before-send", botocore_stubber)
    aws.reset_clients()
