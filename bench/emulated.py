"""The emulated stack the benchmarks run on: moto in-process with the template's resources."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from moto import mock_aws


@contextmanager
def emulated_stack() -> Iterator[dict[str, str]]:
    """Template resources in moto, the functions' environment set, a first signing key; yields the
    physical names by logical id."""
    from appengine_core.infra import aws
    from appengine_core.infra.settings import get_settings
    from appengine_core.ops.jobs import JOBS
    from appengine_local.resources import LOCAL_REGION, merged_environment, provision
    from appengine_local.template import load_template

    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": LOCAL_REGION}
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.update(merged_environment())
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"  # the functions' request logs are not bench output
    get_settings.cache_clear()
    aws.reset_clients()
    with mock_aws():
        created = provision(load_template(), boto3.session.Session(region_name=LOCAL_REGION))
        JOBS["rotate-signing-keys"]()
        yield created
