"""Jobs run on a schedule (jobs function) or by hand (``appengine-admin run-job``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from appengine_core.identity.signing import KeyStore


def rotate_signing_keys() -> dict[str, Any]:
    """Create the first key, rotate one past its age, and drop keys past their retirement."""
    changed = KeyStore().rotate()
    return {"changed": changed}


def expire_api_keys() -> dict[str, Any]:
    """Mark API keys past their ``expiresAt`` expired and announce ``apikey.expired``.

    The authorizer already refuses an expired key by its ``expiresAt``; this makes the state visible."""
    from appengine_core.keys.service import ApiKeyService

    return {"expired": ApiKeyService().expire_due()}


JOBS: dict[str, Callable[[], dict[str, Any]]] = {
    "rotate-signing-keys": rotate_signing_keys,
    "expire-api-keys": expire_api_keys,
}
