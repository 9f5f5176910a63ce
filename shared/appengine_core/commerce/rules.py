"""Pure storefront rules shared by its services: which coupon or gift card applies, bounded lookups."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from appengine_core.infra.errors import invalid_field

INACTIVE_STATES = frozenset({"draft", "disabled", "archived"})


def _instant(value: Any) -> datetime | None:
    """An ``expiresAt`` as an aware datetime (ISO 8601 text or epoch seconds); None if unreadable."""
    try:
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return datetime.fromtimestamp(float(value), UTC)
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_active(state: str | None, data: Mapping[str, Any], now: datetime | None = None) -> bool:
    """Whether a coupon or gift card record (its ``state`` and ``data``) applies (contract §7). An
    unreadable expiry fails closed: a code nobody can tell is still valid is not honoured."""
    if str(state or "") in INACTIVE_STATES:
        return False
    if data.get("active") is False or str(data.get("active")).lower() == "false":
        return False
    expires = data.get("expiresAt")
    if expires is None or expires == "":
        return True
    moment = _instant(expires)
    return moment is not None and moment > (now or datetime.now(UTC))


def bounded(value: str, field: str, limit: int) -> str:
    """``value`` if it is at most ``limit`` characters, else 422 on ``field``."""
    if len(value) > limit:
        raise invalid_field(field, f"at most {limit} characters")
    return value
