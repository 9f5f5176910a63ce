"""boto3 clients, created lazily once per process (never at import time).

Endpoints come from boto3's own configuration, so ``AWS_ENDPOINT_URL`` points every client at the
local moto server without any code path of its own.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import DynamoDBServiceResource
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

# Fail fast inside a Lambda's time budget instead of hanging on a slow dependency.
_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"})


_per_thread = threading.local()


def dynamodb() -> DynamoDBServiceResource:
    # boto3 resources are not thread-safe. Lambda runs one thread, so this is one resource per
    # container; the local stack serves requests on several threads and gets one each.
    resource: DynamoDBServiceResource | None = getattr(_per_thread, "dynamodb", None)
    if resource is None or getattr(_per_thread, "generation", None) != _generation[0]:
        resource = boto3.resource("dynamodb", config=_CONFIG)
        _per_thread.dynamodb = resource
        _per_thread.generation = _generation[0]
    return resource


_generation = [0]


@lru_cache(maxsize=1)
def events() -> EventBridgeClient:
    return boto3.client("events", config=_CONFIG)


@lru_cache(maxsize=1)
def secretsmanager() -> SecretsManagerClient:
    return boto3.client("secretsmanager", config=_CONFIG)


def reset_clients() -> None:
    """Forget cached clients (tests start a fresh emulator per test)."""
    _generation[0] += 1
    for getter in (events, secretsmanager):
        getter.cache_clear()


def client_error_code(error: Any) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))
