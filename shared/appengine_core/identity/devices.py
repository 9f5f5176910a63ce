"""Sessions and devices (contract §4): a principal lists and revokes its own sessions; the org's
RootAdmin/ConfigAdmin lists and revokes those of the org's Users and Customers.

A session belongs to its principal, wherever it signed in: an admin of an org sees every session of a
User who is a member of that org. Anything that is not the caller's own session (another principal's,
an unknown id, a revoked or expired one), or a principal outside the org, is 404. Revocation holds from
the next request: the authorizer reads the session with the principal on every call, and a refresh of a
revoked session is refused.
"""

from __future__ import annotations

from pydantic import BaseModel

from appengine_core.identity.data import IdentityData, PrincipalKind
from appengine_core.identity.memberships import Membership, memberships_of
from appengine_core.identity.principal import Caller, Principal, require_role
from appengine_core.identity.profiles import USER_ADMIN_ROLES, resolve_user_id
from appengine_core.identity.sessions import Session, SessionStore
from appengine_core.infra.envelope import record_key_from_path_id
from appengine_core.infra.errors import Forbidden, NotFound
from appengine_core.infra.events import EventPublisher, publish_best_effort
from appengine_core.infra.paging import Page, PageRequest
from appengine_core.infra.store import TenantStore
from appengine_core.infra.tenancy import TenantKey


class SessionView(BaseModel):
    """A session as its principal and the org's admins see it (contract §4)."""

    id: str
    kind: PrincipalKind
    method: str
    userAgent: str | None = None  # noqa: N815
    sourceIp: str | None = None  # noqa: N815
    createdAt: int  # noqa: N815
    lastSeenAt: int  # noqa: N815
    current: bool

    @classmethod
    def of(cls, session: Session, current_id: str | None) -> SessionView:
        return cls(
            id=session.id,
            kind=session.kind,
            method=session.method,
            userAgent=session.userAgent,
            sourceIp=session.sourceIp,
            createdAt=session.createdAt,
            lastSeenAt=session.lastSeenAt,
            current=session.id == current_id,
        )


class SessionService:
    def __init__(
        self,
        store: TenantStore | None = None,
        sessions: SessionStore | None = None,
        events: EventPublisher | None = None,
    ) -> None:
        self._data = IdentityData(store)
        self._sessions = sessions or SessionStore(self._data.store)
        self._events = events or EventPublisher()

    # -- the caller's own ----------------------------------------------------------------------
    def own_sessions(self, caller: Caller, page: PageRequest) -> Page[SessionView]:
        principal = _person(caller)
        return self._page(principal.principal_id, page, principal.session_id)

    def revoke_own(self, caller: Caller, session_id: str) -> None:
        principal = _person(caller)
        self._revoke(caller, principal.principal_id, session_id, "revoked")

    def revoke_others(self, caller: Caller) -> int:
        """Revokes every active session of the caller but the one of this call; how many."""
        principal = _person(caller)
        revoked = 0
        for session_id in self._sessions.active_ids(principal.principal_id):
            if session_id != principal.session_id and self._sessions.revoke(
                _home(principal.principal_id),
                session_id,
                reason="revoked-others",
                principal_sk=principal.principal_id,
            ):
                revoked += 1
        if revoked:
            publish_best_effort(
                self._events,
                "session.revoked",
                caller.orgid,
                principal=principal.principal_id,
                actor=principal.principal_id,
                count=revoked,
            )
        return revoked

    # -- the org's admins ----------------------------------------------------------------------
    def user_sessions(self, caller: Caller, path_id: str, page: PageRequest) -> Page[SessionView]:
        _admin(caller)
        return self._page(self._member(caller, path_id), page, None)

    def revoke_user_session(self, caller: Caller, path_id: str, session_id: str) -> None:
        actor = _admin(caller)
        user_sk = self._member(caller, path_id)
        if user_sk != actor.principal_id and not actor.platform_root:
            record = self._data.principal(user_sk, consistent=True)
            target = memberships_of(record.record.data).of(caller.orgid) if record else None
            mine = Membership(roles=actor.roles, permissions=actor.permissions)
            if target is not None and target.rank > mine.rank:
                raise Forbidden(f"the user ranks above you in {caller.orgid}")
        self._revoke(caller, user_sk, session_id, "revoked-by-admin")

    def customer_sessions(self, caller: Caller, path_id: str, page: PageRequest) -> Page[SessionView]:
        _admin(caller)
        return self._page(self._customer(caller, path_id), page, None)

    def revoke_customer_session(self, caller: Caller, path_id: str, session_id: str) -> None:
        _admin(caller)
        self._revoke(caller, self._customer(caller, path_id), session_id, "revoked-by-admin")

    # -- helpers -------------------------------------------------------------------------------
    def _page(self, principal_sk: str, page: PageRequest, current: str | None) -> Page[SessionView]:
        result, sessions = self._sessions.listed(principal_sk, page)
        return Page[SessionView].of([SessionView.of(s, current) for s in sessions], result, total=None)

    def _revoke(self, caller: Caller, principal_sk: str, session_id: str, reason: str) -> None:
        home = _home(principal_sk)
        session = self._sessions.get(home, session_id)
        if session is None or session.principal != principal_sk or not session.is_active():
            raise NotFound("no such session")
        if not self._sessions.revoke(home, session_id, reason=reason, principal_sk=principal_sk):
            raise NotFound("no such session")
        publish_best_effort(
            self._events,
            "session.revoked",
            caller.orgid,
            principal=principal_sk,
            actor=caller.principal.principal_id,
            session=session_id,
            reason=reason,
        )

    def _member(self, caller: Caller, path_id: str) -> str:
        """The sk of the User ``path_id`` (its pk or sk) if it is a member of the org of the call."""
        user_id = resolve_user_id(path_id)
        user_sk = self._data.member_sk(caller.orgid, user_id) if user_id else None
        if user_sk is None or (":" in path_id and path_id != user_sk):
            raise NotFound("no such user in this org")
        return user_sk

    def _customer(self, caller: Caller, path_id: str) -> str:
        key = record_key_from_path_id(caller.orgid, "customer", path_id)
        if key is None or self._data.principal(key.sort) is None:
            raise NotFound("no such customer in this org")
        return key.sort


def _home(principal_sk: str) -> str:
    return TenantKey.parse(principal_sk).orgid


def _person(caller: Caller) -> Principal:
    """Sessions are a person's: a JWT of a User or a Customer, never an API key."""
    principal = caller.principal
    if principal.credential != "jwt":
        raise Forbidden("sessions are managed with a person's own token")
    return principal


def _admin(caller: Caller) -> Principal:
    actor = _person(caller)
    if not actor.is_user:
        raise Forbidden("needs a staff member's own token")
    require_role(actor, *USER_ADMIN_ROLES)
    return actor
