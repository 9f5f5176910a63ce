"""Mailer: ``notification.requested`` events (EventBridge rule) -> e-mail through SES.

Invoked asynchronously by EventBridge. A message SES refuses for good, or whose detail is invalid, is
logged (never its text, link or code) and dropped; a failure worth retrying raises, so Lambda retries
the invocation. With no sender configured (``MailSenderAddress`` empty) messages are skipped.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from appengine_core.infra import aws
from appengine_core.infra.notifications import NOTIFICATION_REQUESTED
from appengine_core.ops.mailer import MailerService

logger = Logger(service="mailer")
metrics = Metrics(namespace="AppEngine", service="mailer")
METRIC_OF_STATUS = {"sent": "MailSent", "skipped": "MailSkipped", "dropped": "MailDropped"}


@cache
def mailer() -> MailerService:
    return MailerService()


@metrics.log_metrics(raise_on_empty_metrics=False)
@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(eventId=event.get_id)
    if event.detail_type != NOTIFICATION_REQUESTED:
        logger.warning("not a notification; ignored", extra={"detailType": event.detail_type})
        return {"status": "ignored"}
    try:
        detail = event.get("detail")
        outcome = mailer().deliver(detail if isinstance(detail, dict) else {})
    except Exception as error:
        logger.warning(
            "mail not sent; the invocation will be retried",
            extra={"errorCode": aws.client_error_code(error) or type(error).__name__},
        )
        metrics.add_metric(name="MailRetried", unit=MetricUnit.Count, value=1)
        raise
    # The outcome holds no text, link, code or address: only ids, the purpose and the reason.
    logged = outcome.model_dump(by_alias=True, exclude_none=True)
    if outcome.status == "dropped":
        logger.error("mail dropped", extra=logged)
    else:
        logger.info(f"mail {outcome.status}", extra=logged)
    metrics.add_metric(name=METRIC_OF_STATUS[outcome.status], unit=MetricUnit.Count, value=1)
    return logged
