"""boto3 clients, created lazily once per process (never at import time).

Endpoints come from boto3's own configuration, so ``AWS_ENDPOINT_URL`` points every client at the
local moto server without any code path of its own.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from mypy_boto3_dynamodb.service_resource import DynamoDBServiceResource
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_kms.client import KMSClient
    from mypy_boto3_secretsmanager.client import SecretsManagerClient
    from mypy_boto3_sesv2.client import SESV2Client

READ_TIMEOUT_VARIABLE = "APPENGINE_AWS_READ_TIMEOUT"


@lru_cache(maxsize=1)
def _config() -> Config:
    # Fail fast inside a Lambda's time budget instead of hanging on a slow dependency. The local stack
    # raises the read timeout: moto copies whole tables inside a transaction and can take seconds under
    # load, and a timed-out write that already committed would be retried into a false 409 (real
    # DynamoDB deduplicates such a retry by its ClientRequestToken; moto does not).
    read_timeout = float(os.environ.get(READ_TIMEOUT_VARIABLE) or 5)
    return Config(
        connect_timeout=2, read_timeout=read_timeout, retries={"max_attempts": 3, "mode": "standard"}
    )


_per_thread = threading.local()


def dynamodb() -> DynamoDBServiceResource:
    # boto3 resources are not thread-safe. Lambda runs one thread, so this is one resource per
    # container; the local stack serves requests on several threads and gets one each.
    resource: DynamoDBServiceResource | None = getattr(_per_thread, "dynamodb", None)
    if resource is None or getattr(_per_thread, "generation", None) != _generation[0]:
        resource = boto3.resource("dynamodb", config=_config())
        _per_thread.dynamodb = resource
        _per_thread.generation = _generation[0]
    return resource


_generation = [0]


@lru_cache(maxsize=1)
def events() -> EventBridgeClient:
    return boto3.client("events", config=_config())


@lru_cache(maxsize=1)
def secretsmanager() -> SecretsManagerClient:
    return boto3.client("secretsmanager", config=_config())


@lru_cache(maxsize=1)
def secrets_provider() -> SecretsProvider:
    """Powertools' Secrets Manager provider on this process's client: each caller says how long a value
    may be kept (``max_age``). Imported when first used: a function that reads no secret never loads it."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto3_client=secretsmanager())


@lru_cache(maxsize=1)
def kms() -> KMSClient:
    return boto3.client("kms", config=_config())


@lru_cache(maxsize=1)
def sesv2() -> SESV2Client:
    return boto3.client("sesv2", config=_config())


def reset_clients() -> None:
    """Forget cached clients (tests start a fresh emulator per test)."""
    _generation[0] += 1
    for getter in (events, secretsmanager, secrets_provider, kms, sesv2, _config):
        getter.cache_clear()


def client_error_code(error: Any) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


# What DynamoDB, KMS, Secrets Manager or EventBridge answer when they are briefly overloaded or out of
# reach. botocore already retried these (standard mode, bounded attempts); when they still fail, the
# caller gets 503 with Retry-After, never a 500.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "LimitExceededException",
        "KMSInternalException",
        "InternalServiceError",
    }
)


def is_transient(error: BaseException) -> bool:
    """True for an AWS failure worth retrying later: throttling, a service error, a network fault."""
    if isinstance(error, ClientError):
        return client_error_code(error) in TRANSIENT_ERROR_CODES
    return isinstance(error, ConnectionError | HTTPClientError)
