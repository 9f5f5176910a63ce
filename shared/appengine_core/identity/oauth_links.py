"""Identities of social sign-in and enterprise SSO providers linked to principals (contract §4 "Social
sign-in and enterprise SSO"): which principal a provider's account (its ``sub``) signs in as.

A link belongs to an org, a principal kind and a provider: ``(org, kind, provider, subject)`` names at
most one principal (a conditional put), and a principal holds at most one subject per provider in each
org. The sign-in flow links (``IdentityLinks.link``) and looks links up (``principal_for``); the
principal lists its own (GET ``/profile/security/identities``: the identities linked in the org of the
call) and unlinks one (DELETE ``/profile/security/identities/{provider}``), with a person's own token.

An unlink never leaves a principal without a way in: a principal without a password (a customer that
a provider's sign-in created) keeps at least one linked identity, in any org (a User's token works in
each of its orgs). The unlink commits only if the password, or the other identity it counted on, is
still there (a condition in the same transaction), so two parallel unlinks of a principal's last two
identities cannot both succeed: 409.

Events: ``auth.identity.linked`` and ``auth.identity.unlinked`` (principal, kind, provider; never the
subject's tokens).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from appengine_core.identity.data import PASSWORD_HASH, PrincipalKind
from appengine_core.identity.oauth_data import (
    OAuthData,
    link_removals,
    link_writes,
    other_identity_kept,
    password_kept,
)
from appengine_core.identity.oauth_providers import PROVIDER_NAMES, ProviderName, provider_name
from appengine_core.identity.principal import Caller, Principal
from appengine_core.infra.envelope import utc_now_iso
from appengine_core.infra.errors import Conflict, Forbidden, NotFound, ServiceUnavailable
from appengine_core.infra.events import EventPublisher, publish_best_effort
from appengine_core.infra.paging import Page
from appengine_core.infra.store import ConditionFailed, Operation, TenantStore, TransactionCollided
from appengine_core.infra.tenancy import TenantKey

MAX_SUBJECT_LENGTH = 1024
_ATTEMPTS = 3


class LinkedIdentity(BaseModel):
    """A provider's account linked to the caller (contract §4): never a token."""

    provider: ProviderName
    subject: str
    email: str | None = None
    linkedAt: str  # noqa: N815
    orgid: str

    @classmethod
    def of_item(cls, item: dict[str, Any]) -> LinkedIdentity:
        return cls(
            provider=item["provider"],
            subject=str(item["subject"]),
            email=item.get("email"),
            linkedAt=str(item["linkedAt"]),
            orgid=str(item["orgid"]),
        )


class IdentityLinks:
    """Links of provider accounts to principals: the flow's lookups and links, and the principal's own
    listing and unlinking."""

    def __init__(self, store: TenantStore | None = None, events: EventPublisher | None = None) -> None:
        self._data = OAuthData(store)
        self._events = events or EventPublisher()

    # -- the sign-in flow's ------------------------------------------------------------------------
    def principal_for(self, orgid: str, kind: PrincipalKind, provider: str, subject: str) -> str | None:
        """The sk of the principal of ``kind`` that (provider, subject) is linked to in ``orgid``."""
        if provider_name(provider) is None or not _subject_ok(subject):
            return None
        item = self._data.link(orgid, kind, provider, subject)
        return str(item["principal"]) if item else None

    def link(
        self,
        orgid: str,
        kind: PrincipalKind,
        provider: str,
        subject: str,
        principal_sk: str,
        email: str | None,
    ) -> None:
        """Links (provider, subject) to ``principal_sk`` in ``orgid``: nothing to do when it is already
        linked to that principal; ``Conflict`` when it is linked to another principal, or when the
        principal already holds another subject of ``provider`` in ``orgid``; ``NotFound`` when the
        principal does not exist (any more)."""
        name = provider_name(provider)
        if name is None:
            raise NotFound(f"no provider {provider[:64]!r}")
        if not _subject_ok(subject):
            raise Conflict("the provider's subject is not usable")
        if TenantKey.parse(principal_sk).collection != kind:
            raise Conflict("the principal is not of that kind")
        for _ in range(_ATTEMPTS):
            try:
                self._data.commit(
                    link_writes(orgid, kind, name, subject, principal_sk, email or None, utc_now_iso())
                )
            except ConditionFailed as refused:
                if refused.index == 2:
                    raise NotFound("no such principal") from refused
                linked = self._data.link(orgid, kind, name, subject)
                if linked is not None and linked.get("principal") == principal_sk:
                    return  # linked already, to this principal: nothing to do
                if linked is not None:
                    raise Conflict(f"this {name} account is linked to another account") from refused
                if refused.index == 1:
                    raise Conflict(f"another {name} account is linked to this account") from refused
                continue  # unlinked meanwhile: decide again
            except TransactionCollided:
                continue
            facts = {"email": email} if email else {}
            publish_best_effort(
                self._events,
                "auth.identity.linked",
                orgid,
                kind=kind,
                principal=principal_sk,
                provider=name,
                **facts,
            )
            return
        raise ServiceUnavailable("busy; try again", retry_after_seconds=1)

    # -- the principal's own -----------------------------------------------------------------------
    def listed(self, principal_sk: str, orgid: str | None = None) -> list[LinkedIdentity]:
        """The identities linked to ``principal_sk`` (in ``orgid`` only, when given)."""
        return [LinkedIdentity.of_item(item) for item in self._data.principal_identities(principal_sk, orgid)]

    def own(self, caller: Caller) -> Page[LinkedIdentity]:
        """The caller's identities linked in the org of the call (at most one per provider)."""
        principal = _person(caller)
        identities = self.listed(principal.principal_id, caller.orgid)
        return Page[LinkedIdentity](
            data=identities,
            total=len(identities),
            page=1,
            pageSize=len(PROVIDER_NAMES),
            hasNext=False,
            next=None,
        )

    def unlink(self, caller: Caller, provider: str) -> None:
        """Unlinks the caller's identity of ``provider`` in the org of the call: 404 when none is
        linked; 409 when it is the principal's last way in (no password, no other identity)."""
        principal = _person(caller)
        sk, orgid = principal.principal_id, caller.orgid
        name = provider_name(provider)
        if name is None:
            raise NotFound(f"no provider {provider[:64]!r}")
        for _ in range(_ATTEMPTS):
            identity = self._data.principal_identity(sk, orgid, name)
            if identity is None:
                raise NotFound(f"no {name} identity is linked to this account here")
            kind: PrincipalKind = principal.kind
            operations: list[Operation] = link_removals(orgid, kind, name, str(identity["subject"]), sk)
            operations.append(self._way_in_kept(sk, orgid, name))
            try:
                self._data.commit(operations)
            except (ConditionFailed, TransactionCollided):
                # Unlinked meanwhile (404 on the next read), or the password or the other identity
                # counted on went meanwhile (judged again): decide again from a fresh read.
                continue
            publish_best_effort(
                self._events,
                "auth.identity.unlinked",
                orgid,
                kind=kind,
                principal=sk,
                actor=sk,
                provider=name,
            )
            return
        raise ServiceUnavailable("busy; try again", retry_after_seconds=1)

    def _way_in_kept(self, principal_sk: str, orgid: str, provider: str) -> Operation:
        """The condition that keeps the principal a way in once this identity is gone: its password,
        or another identity (409 when it has neither)."""
        item = self._data.principal_item(principal_sk)
        if item is None:
            raise NotFound("no such principal")
        if item.get(PASSWORD_HASH):
            return password_kept(principal_sk)
        for other in self._data.principal_identities(principal_sk, limit=2 + 1):
            other_org, other_provider = str(other["orgid"]), str(other["provider"])
            if (other_org, other_provider) != (orgid, provider):
                return other_identity_kept(principal_sk, other_org, other_provider)
        raise Conflict("this is the account's only way to sign in: set a password or link another first")


def _subject_ok(subject: str) -> bool:
    return isinstance(subject, str) and 0 < len(subject) <= MAX_SUBJECT_LENGTH


def _person(caller: Caller) -> Principal:
    """Linked identities are a person's: its own token, never an API key or app token."""
    principal = caller.principal
    if principal.credential != "jwt":
        raise Forbidden("linked identities are managed with a person's own token")
    return principal
