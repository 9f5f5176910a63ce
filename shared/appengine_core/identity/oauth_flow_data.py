"""Where a social or enterprise sign-in in progress keeps its data (contract §4 "Social sign-in and
enterprise SSO"): the state of a started flow and the one-time code handed back to the application,
with the DynamoDB operations that write and spend them. The rules are in ``oauth_flow``; only
``infra.store`` talks to DynamoDB.

Layout (all keys tenant-scoped, see ``tenancy``):
- flow state:     ``<org>:#oauth-state:<sha256(state) hex>`` (kind, provider, the application's
                  redirect URI, this API's callback URI, a random salt from which, with the state itself,
                  the PKCE verifier and the nonce are derived; expiry; TTL). Neither the state nor the
                  verifier rests anywhere: the item alone cannot rebuild the verifier.
- exchange code:  ``<org>:#oauth-code:<sha256(code) hex>`` (kind, the principal signed in, provider;
                  expiry; TTL), for the application's POST /profile/oauth/exchange.

Both are spent by a conditional delete (single use, race-safe) that also checks the expiry, because
DynamoDB's TTL removes items only eventually.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from appengine_core.infra.store import TTL_ATTRIBUTE, Delete, Put, TenantStore
from appengine_core.infra.tenancy import TenantKey

STATE_COLLECTION = "#oauth-state"
CODE_COLLECTION = "#oauth-code"
# TTL removes an item within days of its expiry; this margin only keeps the table tidy.
_TTL_MARGIN_SECONDS = 3600


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# -- keys ------------------------------------------------------------------------------------------
def state_key(orgid: str, state: str) -> TenantKey:
    """The flow started with ``state`` (the random part, as sent to the provider), keyed by its digest."""
    return TenantKey(orgid, STATE_COLLECTION, digest(state))


def code_key(orgid: str, code: str) -> TenantKey:
    """The one-time exchange code ``code``, keyed by its digest."""
    return TenantKey(orgid, CODE_COLLECTION, digest(code))


# -- operations ------------------------------------------------------------------------------------
def new_state(key: TenantKey, attributes: Mapping[str, Any], expires_at: int) -> Put:
    """A flow's state; a collision with an existing one (256 random bits: never) fails."""
    return Put(
        key,
        dict(attributes) | {"expiresAt": expires_at, TTL_ATTRIBUTE: expires_at + _TTL_MARGIN_SECONDS},
    )


def state_spent(key: TenantKey, *, provider: str, now: float) -> Delete:
    """The state used once: only while it exists, has not expired and belongs to ``provider`` (a
    callback at another provider's route leaves it for the right one)."""
    return Delete(
        key,
        "attribute_exists(PK) AND #expires > :now AND #provider = :provider",
        values={":now": int(now), ":provider": provider},
        names={"#expires": "expiresAt", "#provider": "provider"},
    )


def new_code(key: TenantKey, attributes: Mapping[str, Any], expires_at: int) -> Put:
    return Put(
        key,
        dict(attributes) | {"expiresAt": expires_at, TTL_ATTRIBUTE: expires_at + _TTL_MARGIN_SECONDS},
    )


def code_spent(key: TenantKey, *, principal_sk: str, now: float) -> Delete:
    """The exchange code used once: only while it exists, has not expired and still names the
    principal read before."""
    return Delete(
        key,
        "attribute_exists(PK) AND #expires > :now AND #principal = :principal",
        values={":now": int(now), ":principal": principal_sk},
        names={"#expires": "expiresAt", "#principal": "principal"},
    )


# -- reads and writes ------------------------------------------------------------------------------
class OAuthFlowData:
    """Flow states and exchange codes through the store; raises the store's ``ConditionFailed`` for the
    service to judge."""

    def __init__(self, store: TenantStore | None = None) -> None:
        self.store = store or TenantStore()

    def item(self, key: TenantKey) -> dict[str, Any] | None:
        """A state or code item as stored (digests and bindings only), strongly consistent."""
        return self.store.get(key, consistent=True)

    def save(self, operation: Put) -> None:
        self.store.put(operation)

    def spend(self, operation: Delete) -> None:
        self.store.delete(operation)
