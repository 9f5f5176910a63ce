"""Where social sign-in and enterprise SSO keep their data (contract §4 "Social sign-in and enterprise
SSO"): the per-org provider settings and the identities linked to principals, with the DynamoDB
operations that write them. Services (``oauth_providers``, ``oauth_links``) hold the rules; only
``infra.store`` talks to DynamoDB.

Layout (all keys tenant-scoped, see ``tenancy``):
- provider settings:   ``<org>:#oauth-provider:<provider>`` (client id, the client secret sealed with KMS,
                       kinds, redirect URIs, issuer and endpoint overrides, scopes, allowed domains,
                       auto-create; at most one per provider, so at most five per org)
- linked identity:     ``<org>:#oauth-link:<kind>:<provider>:<sha256(subject) hex>`` -> the principal's sk,
                       the subject, the email, when it was linked. Unique per (org, kind, provider,
                       subject) by a conditional put: one provider account signs in as one principal.
- a principal's links: ``<principal's home org>:#principal-identity:<kind>:<principal id>:<org>:<provider>``
                       (written and removed in the same transaction as the link), so that a principal's
                       identities are one Query (``begins_with``), never a Scan; one per (org, provider).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from appengine_core.identity.data import PASSWORD_HASH, PrincipalKind
from appengine_core.infra.store import Check, Delete, Operation, Put, TenantStore
from appengine_core.infra.tenancy import TenantKey, validate_orgid

PROVIDER_COLLECTION = "#oauth-provider"
LINK_COLLECTION = "#oauth-link"
PRINCIPAL_IDENTITY_COLLECTION = "#principal-identity"
SEALED_SECRET = "sealedClientSecret"
MAX_PROVIDERS = 5  # google, microsoft, github, facebook, oidc


# -- keys ------------------------------------------------------------------------------------------
def provider_key(orgid: str, provider: str) -> TenantKey:
    return TenantKey(orgid, PROVIDER_COLLECTION, provider)


def subject_digest(subject: str) -> str:
    """What a link's key holds of the provider's subject: its SHA-256 (a subject may be long and hold
    any character; the item keeps the subject itself)."""
    return hashlib.sha256(subject.encode()).hexdigest()


def link_key(orgid: str, kind: PrincipalKind, provider: str, subject: str) -> TenantKey:
    """The link of (provider, subject) to a principal of ``kind`` in ``orgid``."""
    return TenantKey(orgid, LINK_COLLECTION, f"{kind}:{provider}:{subject_digest(subject)}")


def principal_identity_prefix(principal_sk: str, orgid: str | None = None) -> str:
    """The sort-key prefix of ``principal_sk``'s identity index items (in its home org): every org's,
    or ``orgid``'s only."""
    principal = TenantKey.parse(principal_sk)
    base = TenantKey(
        principal.orgid, PRINCIPAL_IDENTITY_COLLECTION, f"{principal.collection}:{principal.item_id}:-"
    ).sort[:-1]
    return base if orgid is None else f"{base}{validate_orgid(orgid)}:"


def principal_identity_key(principal_sk: str, orgid: str, provider: str) -> TenantKey:
    """The index item that lists the identity of ``provider`` linked in ``orgid`` among the principal's."""
    principal = TenantKey.parse(principal_sk)
    return TenantKey(
        principal.orgid,
        PRINCIPAL_IDENTITY_COLLECTION,
        f"{principal.collection}:{principal.item_id}:{orgid}:{provider}",
    )


# -- operations: provider settings -----------------------------------------------------------------
def provider_settings_written(key: TenantKey, attributes: Mapping[str, Any]) -> Put:
    """The provider's settings with a new sealed secret: the whole item, replaced (or created)."""
    return Put(key, dict(attributes), must_not_exist=False)


def provider_settings_rewritten(key: TenantKey, attributes: Mapping[str, Any], sealed_secret: str) -> Put:
    """The provider's settings keeping the sealed secret read before: only if it is still the one
    stored (not deleted, not replaced meanwhile)."""
    return Put(
        key,
        {**attributes, SEALED_SECRET: sealed_secret},
        must_not_exist=False,
        condition="#secret = :sealed",
        values={":sealed": sealed_secret},
        names={"#secret": SEALED_SECRET},
    )


def provider_removal(key: TenantKey) -> Delete:
    return Delete(key, "attribute_exists(PK)")


# -- operations: linked identities -----------------------------------------------------------------
def link_writes(
    orgid: str,
    kind: PrincipalKind,
    provider: str,
    subject: str,
    principal_sk: str,
    email: str | None,
    linked_at: str,
) -> list[Operation]:
    """The link (operation 0: no other principal holds the subject), the principal's index item
    (operation 1: no other subject of that provider in that org), and the principal's existence
    (operation 2), in one transaction."""
    facts: dict[str, Any] = {
        "principal": principal_sk,
        "orgid": orgid,
        "kind": kind,
        "provider": provider,
        "subject": subject,
        "linkedAt": linked_at,
    }
    if email:
        facts["email"] = email
    return [
        Put(link_key(orgid, kind, provider, subject), facts),
        Put(principal_identity_key(principal_sk, orgid, provider), facts),
        Check(TenantKey.parse(principal_sk), "attribute_exists(PK)"),
    ]


def link_removals(
    orgid: str, kind: PrincipalKind, provider: str, subject: str, principal_sk: str
) -> list[Operation]:
    """The link and its index item (operations 0 and 1: both still the principal's)."""
    return [
        Delete(
            link_key(orgid, kind, provider, subject),
            "#principal = :sk",
            values={":sk": principal_sk},
            names={"#principal": "principal"},
        ),
        Delete(
            principal_identity_key(principal_sk, orgid, provider),
            "attribute_exists(PK) AND #subject = :subject",
            values={":subject": subject},
            names={"#subject": "subject"},
        ),
    ]


def other_identity_kept(principal_sk: str, orgid: str, provider: str) -> Check:
    """Another identity of the principal is still linked (what an unlink without a password relies on)."""
    return Check(principal_identity_key(principal_sk, orgid, provider), "attribute_exists(PK)")


def password_kept(principal_sk: str) -> Check:
    """The principal still has a password (what an unlink of its last identity relies on)."""
    return Check(
        TenantKey.parse(principal_sk),
        "attribute_exists(#hash) AND size(#hash) > :zero",
        values={":zero": 0},
        names={"#hash": PASSWORD_HASH},
    )


# -- reads and writes ------------------------------------------------------------------------------
class OAuthData:
    """Provider settings and linked identities through the store; raises the store's
    ``ConditionFailed`` and ``TransactionCollided`` for the services to judge."""

    def __init__(self, store: TenantStore | None = None) -> None:
        self.store = store or TenantStore()

    # -- provider settings ---------------------------------------------------------------------
    def provider(self, orgid: str, provider: str) -> dict[str, Any] | None:
        """A provider's settings as stored (the secret sealed), strongly consistent."""
        return self.store.get(provider_key(orgid, provider), consistent=True)

    def providers(self, orgid: str) -> list[dict[str, Any]]:
        """Every provider configured in ``orgid``, in name order (at most five: one Query)."""
        page = self.store.query(orgid, PROVIDER_COLLECTION, limit=MAX_PROVIDERS * 2, consistent=True)
        for item in page.items:
            item.pop("_sk", None)
        return page.items

    def write(self, operation: Put) -> None:
        self.store.put(operation)

    def remove(self, operation: Delete) -> None:
        self.store.delete(operation)

    # -- linked identities ---------------------------------------------------------------------
    def link(self, orgid: str, kind: PrincipalKind, provider: str, subject: str) -> dict[str, Any] | None:
        return self.store.get(link_key(orgid, kind, provider, subject), consistent=True)

    def principal_identity(self, principal_sk: str, orgid: str, provider: str) -> dict[str, Any] | None:
        return self.store.get(principal_identity_key(principal_sk, orgid, provider), consistent=True)

    def principal_identities(
        self, principal_sk: str, orgid: str | None = None, *, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The principal's identity index items (every org's, or ``orgid``'s), at most ``limit``."""
        home = TenantKey.parse(principal_sk).orgid
        prefix = principal_identity_prefix(principal_sk, orgid)
        found: list[dict[str, Any]] = []
        after: str | None = None
        while len(found) < limit:
            page = self.store.query(
                home,
                PRINCIPAL_IDENTITY_COLLECTION,
                limit=min(100, limit - len(found)),
                sort_prefix=prefix,
                after_sort_key=after,
                consistent=True,
            )
            for item in page.items:
                item.pop("_sk", None)
                found.append(item)
            after = page.last_sort_key
            if after is None:
                break
        return found

    def principal_item(self, principal_sk: str) -> dict[str, Any] | None:
        """The principal's item as stored (its password hash included: never leaves the wing)."""
        return self.store.get(TenantKey.parse(principal_sk), consistent=True)

    def commit(self, operations: list[Operation]) -> None:
        self.store.transact(operations)
