"""Security audit: an EventBridge rule delivers each security event here; it is kept in its org's audit
log (``GET /profile/security/audit``) for ``AUDIT_RETENTION_DAYS``.

EventBridge invokes the function with one event at a time. A malformed or foreign event is dropped
with a log line (retrying it would not help); a failure of DynamoDB raises, so that Lambda retries the
event and, past its retries, parks it in the dead-letter queue. A redelivered event is stored once.
Only the event's type, org and id are logged, never its detail.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from appengine_core.identity.audit import AuditRecorder

logger = Logger(service="audit")
metrics = Metrics(namespace="AppEngine", service="audit")
METRIC_NAMES = {
    "stored": "AuditEventsStored",
    "duplicate": "AuditEventsDuplicate",
    "dropped": "AuditEventsDropped",
}


@cache
def recorder() -> AuditRecorder:
    return AuditRecorder()


@metrics.log_metrics(raise_on_empty_metrics=False)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    recorded = recorder().record(event if isinstance(event, dict) else {})
    facts = {
        "detailType": recorded.detail_type,
        "orgid": recorded.orgid,
        "eventId": recorded.event_id,
        "reason": recorded.reason,
    }
    if recorded.result == "dropped":
        logger.warning("security event dropped", extra=facts)
    else:
        logger.info(f"security event {recorded.result}", extra=facts)
    metrics.add_metric(name=METRIC_NAMES[recorded.result], unit=MetricUnit.Count, value=1)
    return {"result": recorded.result}
