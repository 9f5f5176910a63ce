"""Scheduled jobs, one EventBridge schedule each; ``{"job": "<name>"}`` picks the job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from appengine_core.ops.jobs import JOBS

logger = Logger(service="jobs")
metrics = Metrics(namespace="AppEngine", service="jobs")


@metrics.log_metrics(raise_on_empty_metrics=False)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    name = str(event.get("job") or "")
    job: Callable[[], dict[str, Any]] | None = JOBS.get(name)
    if job is None:
        raise ValueError(f"unknown job {name!r}; known: {sorted(JOBS)}")
    result = job()
    logger.info("job finished", extra={"job": name, "result": result})
    return {"job": name, **result}
