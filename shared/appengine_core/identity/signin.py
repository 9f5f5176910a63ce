"""Sign-in, sign-up, refresh and sign-out for staff Users and Customers (contract §3).

Wrong password, unknown email and wrong principal kind all give the same 401 ``invalid_credentials``
after the same amount of work (an unknown email is verified against a dummy argon2id hash). Every
password attempt goes through the brute-force guard (``lockout``): admitted first (429 while the email
is locked or the source blocked), then counted as a failure or a success.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from appengine_core.identity.data import IdentityData, PrincipalKind
from appengine_core.identity.directory import DirectoryService, NewCustomer, NewUser, shown_to_self
from appengine_core.identity.lockout import BruteForceGuard
from appengine_core.identity.memberships import effective_membership
from appengine_core.identity.passwords import MAX_PASSWORD_LENGTH, verify_password
from appengine_core.identity.principal import Caller
from appengine_core.identity.second_factor import (
    UNREAD,
    SecondFactorService,
    SecondFactorVerification,
    Unread,
)
from appengine_core.identity.sessions import RefreshToken, SessionStore
from appengine_core.identity.tokens import TokenService
from appengine_core.infra.envelope import Record
from appengine_core.infra.errors import Forbidden, InvalidCredentials, NotFound, Unauthorized
from appengine_core.infra.events import EventPublisher, publish_best_effort
from appengine_core.infra.settings import get_settings
from appengine_core.infra.store import TenantStore
from appengine_core.infra.tenancy import TenantKey


class Credentials(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email: str = Field(min_length=1, max_length=320)
    password: SecretStr = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class RefreshRequest(BaseModel):
    """``refreshToken`` or ``refresh_token`` (both appear in AppEngine's clients)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    refreshToken: SecretStr | None = Field(default=None, max_length=512)  # noqa: N815
    refresh_token: SecretStr | None = Field(default=None, max_length=512)

    @model_validator(mode="after")
    def _one_token(self) -> RefreshRequest:
        if not (self.refreshToken or self.refresh_token):
            raise ValueError("refreshToken is required")
        return self

    @property
    def token(self) -> str:
        secret = self.refreshToken or self.refresh_token
        return secret.get_secret_value() if secret else ""


class ClientInfo(BaseModel):
    user_agent: str | None = None
    source_ip: str | None = None


def _absent(value: Any) -> bool:
    return value is None


class SignedInData(BaseModel):
    """The envelope's fields again, under ``data``, with ``refresh_token`` besides ``refreshToken``."""

    token: str
    refreshToken: str  # noqa: N815 (the contract's field names)
    user: Record | None = Field(default=None, exclude_if=_absent)
    customer: Record | None = Field(default=None, exclude_if=_absent)
    refresh_token: str


class SignInEnvelope(BaseModel):
    """What sign-in, sign-up and refresh answer (contract §3): the access token, the refresh token and
    the principal under ``user`` or ``customer`` (by kind; the other key is absent), at the top level and
    again under ``data``, where AppEngine's clients read them."""

    token: str
    refreshToken: str  # noqa: N815
    user: Record | None = Field(default=None, exclude_if=_absent)
    customer: Record | None = Field(default=None, exclude_if=_absent)
    data: SignedInData


class SignedIn(BaseModel):
    kind: PrincipalKind
    token: str
    refresh_token: str
    principal: Record

    def envelope(self) -> SignInEnvelope:
        """The compatibility envelope: every field at the top level and again under ``data``."""
        fields: dict[str, Any] = {
            "token": self.token,
            "refreshToken": self.refresh_token,
            self.kind: self.principal,
        }
        return SignInEnvelope(**fields, data=SignedInData(**fields, refresh_token=self.refresh_token))


class TwoFactorFields(BaseModel):
    """The 2FA answer of a first factor (contract §4): the contract's names beside AppEngine's."""

    twoFactorRequired: Literal[True] = True  # noqa: N815
    partialToken: str  # noqa: N815
    requiresTwoFactor: Literal[True] = True  # noqa: N815
    challengeToken: str  # noqa: N815
    twoFactorMethod: str = "authenticator"  # noqa: N815


class TwoFactorChallenge(TwoFactorFields):
    """What a first factor of a principal with 2FA enabled answers: no access or refresh token, only the
    partial token (its fields at the top level and again under ``data``)."""

    data: TwoFactorFields


class SecondFactorPending(BaseModel):
    """A completed first factor of a principal with 2FA enabled: only the partial token is handed out."""

    partial_token: str
    method: str = "authenticator"

    def envelope(self) -> TwoFactorChallenge:
        fields = TwoFactorFields(
            partialToken=self.partial_token, challengeToken=self.partial_token, twoFactorMethod=self.method
        )
        return TwoFactorChallenge(**fields.model_dump(), data=fields)


FirstFactorOutcome = SignedIn | SecondFactorPending
"""What any first factor (password, magic link, code) ends in: a session, or the 2FA challenge."""


class AuthService:
    def __init__(
        self,
        directory: DirectoryService | None = None,
        sessions: SessionStore | None = None,
        tokens: TokenService | None = None,
        events: EventPublisher | None = None,
        store: TenantStore | None = None,
        lockout: BruteForceGuard | None = None,
        second_factor: SecondFactorService | None = None,
    ) -> None:
        self._store = store or TenantStore()
        self._data = IdentityData(self._store)
        self._directory = directory or DirectoryService(data=self._data)
        self._sessions = sessions or SessionStore(self._store)
        self._tokens = tokens or TokenService()
        self._events = events or EventPublisher()
        self._lockout = lockout or BruteForceGuard(self._data, self._events)
        self._second_factor = second_factor or SecondFactorService(
            data=self._data, tokens=self._tokens, events=self._events, lockout=self._lockout
        )

    # -- sign-in -------------------------------------------------------------------------------
    def sign_in(
        self, kind: PrincipalKind, orgid: str, credentials: Credentials, client: ClientInfo
    ) -> FirstFactorOutcome:
        attempt = self._lockout.admit(orgid, kind, credentials.email, client.source_ip)
        stored, factor = self._directory.signing_in(orgid, kind, credentials.email)
        matches, new_hash = verify_password(
            credentials.password.get_secret_value(), stored.password_hash if stored else None
        )
        if stored is None or not matches:
            self._emit(
                "auth.sign_in_failed",
                orgid,
                kind=kind,
                email=attempt.email,
                reason="unknown_email" if stored is None else "wrong_password",
            )
            self._lockout.failed(attempt)  # 429 instead of 401 past a limit
            raise InvalidCredentials()
        record = stored.record
        if not self._may_act_on(kind, record, orgid):
            # The right password of a disabled account: no failed factor, no success either.
            self._emit("auth.sign_in_failed", orgid, kind=kind, principal=record.sk, reason="disabled")
            raise InvalidCredentials("this account is disabled")
        self._lockout.succeeded(attempt)
        if new_hash:
            # The hash predates the current parameters: store a stronger one while we hold the password.
            self._data.rehash_password(record.key, new_hash)
        return self.first_factor_done(kind, orgid, record, "password", client, factor=factor)

    def sign_up_customer(self, orgid: str, new: NewCustomer, client: ClientInfo) -> SignedIn:
        record = self._directory.create_customer(orgid, new)
        self._emit("customer.created", orgid, principal=record.sk)
        return self._start_session("customer", orgid, record, "password", client)

    def sign_up_user(self, orgid: str, new: NewUser, client: ClientInfo) -> SignedIn:
        org = self._directory.get_org(orgid)
        if org is None:
            raise NotFound("no such org")
        if not org.settings.get("allowUserSignup", False):
            raise Forbidden("this org does not allow staff sign-up")
        # Self sign-up never chooses its own rights: role User, permission read, this org only.
        safe = NewUser(
            email=new.email,
            password=new.password,
            firstName=new.firstName,
            lastName=new.lastName,
            roles=["User"],
            permissions=["read"],
            orgs=[orgid],
        )
        record = self._directory.create_user(orgid, safe)
        self._emit("user.created", orgid, principal=record.sk, roles=["User"], via="signup")
        return self._start_session("user", orgid, record, "password", client)

    def first_factor_done(
        self,
        kind: PrincipalKind,
        orgid: str,
        record: Record,
        method: str,
        client: ClientInfo,
        *,
        factor: dict[str, Any] | Unread | None = UNREAD,
    ) -> FirstFactorOutcome:
        """The one place every first factor (password, magic link, code) ends: a session, or, for a
        principal with 2FA enabled, only the partial token of the second-factor challenge. ``factor``:
        the principal's 2FA item when the first factor read it with the principal."""
        partial_token = self._second_factor.challenge(kind, orgid, record, method, factor=factor)
        if partial_token is not None:
            return SecondFactorPending(partial_token=partial_token)
        return self._start_session(kind, orgid, record, method, client)

    def verify_second_factor(
        self, orgid: str, request: SecondFactorVerification, client: ClientInfo
    ) -> SignedIn:
        """The second factor of a sign-in (contract §4): its challenge completed once, then the session,
        whose method is the first factor's with ``+2fa``."""
        done = self._second_factor.complete(orgid, request, client.source_ip)
        record = self._directory.principal(done.principal_sk, consistent=True)
        if record is None or not self._may_act_on(done.kind, record, orgid):
            # Disabled (or gone) while the challenge was open.
            self._emit(
                "auth.sign_in_failed", orgid, kind=done.kind, principal=done.principal_sk, reason="disabled"
            )
            raise Unauthorized("this account is disabled")
        return self._start_session(done.kind, orgid, record, f"{done.method}+2fa", client)

    def _start_session(
        self, kind: PrincipalKind, orgid: str, record: Record, method: str, client: ClientInfo
    ) -> SignedIn:
        settings = get_settings()
        session, refresh = self._sessions.create(
            principal_sk=record.sk,
            kind=kind,
            method=method,
            lifetime_seconds=settings.refresh_token_ttl_seconds,
            user_agent=client.user_agent,
            source_ip=client.source_ip,
        )
        token, _ = self._tokens.issue(subject=record.sk, kind=kind, session_id=session.id, orgid=record.orgid)
        self._emit("auth.signed_in", orgid, kind=kind, principal=record.sk, session=session.id, method=method)
        return SignedIn(
            kind=kind, token=token, refresh_token=refresh.value, principal=shown_to_self(record, orgid)
        )

    @staticmethod
    def _may_act_on(kind: PrincipalKind, record: Record, orgid: str) -> bool:
        """A customer is disabled as a whole; a User per org (its membership of ``orgid``, or its platform
        membership for a platform root), so a User disabled in one org still signs in to its others."""
        if kind == "customer":
            return not record.data.get("disabled")
        membership, _ = effective_membership(record.data, orgid, get_settings().platform_orgid)
        return membership is not None

    # -- refresh and sign-out ------------------------------------------------------------------
    def refresh(self, kind: PrincipalKind, orgid: str, request: RefreshRequest) -> SignedIn:
        token = RefreshToken.parse(request.token)
        if token is None:
            raise Unauthorized("invalid refresh token")
        session = self._sessions.get_raw(token.home_orgid, token.session_id)
        if session is None or session.get("kind") != kind:
            # A User token at a customer endpoint (or the reverse) is refused without touching the family.
            raise Unauthorized("invalid refresh token")
        record = self._directory.principal(str(session["principal"]))
        if record is None:
            raise Unauthorized("invalid refresh token")
        if (kind == "customer" and record.orgid != orgid) or not self._may_act_on(kind, record, orgid):
            raise Unauthorized("invalid refresh token")
        outcome, successor = self._sessions.refresh(token, read=session)
        if outcome == "reuse":
            self._emit(
                "session.compromised", record.orgid, kind=kind, principal=record.sk, session=token.session_id
            )
        if successor is None:
            raise Unauthorized("invalid refresh token")
        access, _ = self._tokens.issue(
            subject=record.sk, kind=kind, session_id=token.session_id, orgid=record.orgid
        )
        return SignedIn(
            kind=kind, token=access, refresh_token=successor.value, principal=shown_to_self(record, orgid)
        )

    def sign_out(self, caller: Caller) -> None:
        principal = caller.principal
        if principal.session_id is None:
            raise Unauthorized("no session to sign out of")
        home = TenantKey.parse(principal.principal_id).orgid
        self._sessions.revoke(home, principal.session_id, reason="signout")
        self._emit(
            "auth.signed_out",
            caller.orgid,
            kind=principal.kind,
            principal=principal.principal_id,
            session=principal.session_id,
        )

    # -- events --------------------------------------------------------------------------------
    def _emit(self, detail_type: str, orgid: str, **detail: Any) -> None:
        # A bus outage must not lock people out: auth events are published best-effort.
        publish_best_effort(self._events, detail_type, orgid, **detail)
