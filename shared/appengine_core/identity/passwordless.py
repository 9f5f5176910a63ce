"""Passwordless sign-in for Users and Customers: a magic link and a 6-digit code (contract §4).

A request always answers 200 ``{"sent": true}``, for an email that exists, that does not, or whose
principal may not sign in (disabled), after the same work: the same reads (the guard's counters, the
email index, a principal item: a real one or one that cannot exist), the same secrets drawn and hashed,
one conditional write of the link item, and one PutEvents call (the message and
``auth.magic_link_requested`` for a principal that may sign in; ``auth.magic_link_requested`` alone
otherwise).

One item per (org, kind, email) holds the pending link and code, ``<org>:#signin-link:<kind>:<selector>``
(``selector``: a digest of org, kind and normalized email, so the email is not in the link): a new
request overwrites it, so the previous link and code stop working. It holds the SHA-256 of the link's
256-bit secret and an HMAC-SHA256 of the code under a random per-item salt; neither the link nor the code
rests anywhere in the clear. Both work once (the redeem is a conditional delete), for 15 minutes (checked
in code; TTL cleans up), and after 5 wrong codes the item is dead for the right code and the link too.
Every wrong token or code counts in the brute-force guard (``lockout``) for the email; requests are
capped at 5 per email per 15-minute window (429 with ``Retry-After``), known or not, and refused while
the email is locked or the source blocked.

The link is ``<MAGIC_LINK_URL>?token=<selector>.<secret>&orgid=<orgid>``; without a configured
``MAGIC_LINK_URL`` it points at this API's own redirect route, built from what API Gateway says about the
request (``requestContext.domainName`` and the base path in ``requestContext.path``; never a client's
``Host`` header deployed, so a forged host cannot poison a link).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Literal, NoReturn
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from appengine_core.identity.data import (
    IdentityData,
    PrincipalKind,
    signin_code_missed,
    signin_link_issued,
    signin_link_key,
    signin_link_redeemed,
    signin_link_window_started,
)
from appengine_core.identity.directory import normalize_email
from appengine_core.identity.lockout import Attempt, BruteForceGuard
from appengine_core.identity.memberships import effective_membership
from appengine_core.identity.signin import AuthService, ClientInfo, FirstFactorOutcome
from appengine_core.infra.envelope import Record
from appengine_core.infra.errors import InvalidCode, RateLimited
from appengine_core.infra.events import DomainEvent, EventPublisher
from appengine_core.infra.notifications import Notification
from appengine_core.infra.pepper import peppered_digest
from appengine_core.infra.settings import get_settings
from appengine_core.infra.store import TTL_ATTRIBUTE, ConditionFailed, TenantStore
from appengine_core.infra.tenancy import TenantKey

LINK_LIFETIME_SECONDS = 15 * 60
MAX_WRONG_CODES = 5
REQUEST_WINDOW_SECONDS = 15 * 60
MAX_REQUESTS_PER_WINDOW = 5
CODE_DIGITS = 6
MAX_TOKEN_LENGTH = 256
MAX_EMAIL_LENGTH = 320
REDIRECT_PATHS: dict[PrincipalKind, str] = {
    "customer": "/profile/magic-link/redirect",
    "user": "/profile/user/magic-link/redirect",
}
_SELECTOR_HEX = 32
_SECRET_BYTES = 32  # token_urlsafe(32): 43 characters
_TOKEN = re.compile(r"^(?P<selector>[0-9a-f]{32})\.(?P<secret>[A-Za-z0-9_-]{43})$")
_CODE = re.compile(r"^[0-9]{6}$")
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")
_LOOPBACK = re.compile(r"^(?:localhost|127(?:\.[0-9]{1,3}){3}|\[::1\])(?::[0-9]{1,5})?$", re.IGNORECASE)
MAGIC_LINK_REQUESTED = "auth.magic_link_requested"
_SELECTOR_KEY = "link:"  # what the guard counts a token's failures by when no item names an email
_REFUSALS = {"magic_link": "invalid, used or expired sign-in link", "code": "invalid, used or expired code"}


# -- secrets (pure) ----------------------------------------------------------------------------------
def link_selector(orgid: str, kind: PrincipalKind, email: str) -> str:
    """Where the link item of ``email`` (normalized) lives: a digest, so the link does not name it."""
    return hashlib.sha256(f"{orgid}\n{kind}\n{email}".encode()).hexdigest()[:_SELECTOR_HEX]


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def new_salt() -> str:
    return secrets.token_hex(16)


def code_digest(salt: str, code: str) -> str:
    """HMAC-SHA256 of a code and its item's random salt under the code pepper (a 6-digit code alone is
    too small to hash, and a salt stored beside it would not keep a copy of the table from testing
    every code: infra.pepper)."""
    return peppered_digest(salt, code)


def code_matches(salt: str, stored: str, code: str) -> bool:
    return hmac.compare_digest(code_digest(salt, code), stored)


@dataclass(frozen=True)
class LinkToken:
    """``<selector>.<secret>``: the selector finds the item, the secret proves the link."""

    selector: str
    secret: str

    @property
    def value(self) -> str:
        return f"{self.selector}.{self.secret}"

    @property
    def digest(self) -> str:
        return token_digest(self.secret)

    @classmethod
    def new(cls, selector: str) -> LinkToken:
        return cls(selector, secrets.token_urlsafe(_SECRET_BYTES))

    @classmethod
    def parse(cls, value: str) -> LinkToken | None:
        match = _TOKEN.fullmatch(value.strip()) if isinstance(value, str) else None
        return cls(match["selector"], match["secret"]) if match else None


def is_live(item: Mapping[str, Any], now: float) -> bool:
    """A link item that may still be redeemed: not expired, fewer than 5 wrong codes, for a principal."""
    return (
        float(item.get("expiresAt") or 0) > now
        and int(item.get("misses") or 0) < MAX_WRONG_CODES
        and bool(item.get("principal"))
    )


def request_window(now: float) -> int:
    return int(now // REQUEST_WINDOW_SECONDS)


# -- where the link points ---------------------------------------------------------------------------
class LinkOrigin(BaseModel):
    """What API Gateway says about a request, to point a link back at this API (when no
    ``MAGIC_LINK_URL`` is configured): the domain that served it, the path it saw (with the stage or a
    custom domain's base path in front) and the resource path."""

    domain: str | None = None
    context_path: str | None = None
    path: str | None = None

    def base_path(self) -> str:
        """The stage (``/v1``) or a custom domain's base path in front of the API's routes."""
        context, path = self.context_path or "", self.path or ""
        if path and context.endswith(path):
            return context[: len(context) - len(path)].rstrip("/")
        return f"/{get_settings().stage}"


def redirect_url(kind: PrincipalKind, origin: LinkOrigin, configured: str = "") -> str:
    """The address a link opens: ``configured`` (``{kind}`` in it becomes ``user`` or ``customer``), or
    this API's redirect route for ``kind``: ``http://<loopback host>/...`` on the local stack (which
    serves routes at the root), ``https://<domainName><base path>/...`` deployed."""
    if configured:
        return configured.replace("{kind}", kind)
    domain = origin.domain if origin.domain and _HOST.fullmatch(origin.domain) else "127.0.0.1:3000"
    if _LOOPBACK.fullmatch(domain):
        return f"http://{domain}{REDIRECT_PATHS[kind]}"
    return f"https://{domain}{origin.base_path()}{REDIRECT_PATHS[kind]}"


def link_for(base: str, token: str, orgid: str) -> str:
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}{urlencode({'token': token, 'orgid': orgid})}"


# -- requests and answers ----------------------------------------------------------------------------
def six_digits(value: SecretStr) -> SecretStr:
    """A code as typed: six ASCII digits (surrounding spaces dropped), else invalid (422)."""
    code = value.get_secret_value().strip()
    if not _CODE.fullmatch(code):
        raise ValueError("must be 6 digits")
    return SecretStr(code)


class LinkRequest(BaseModel):
    """``{email, type?}``: ``type: "code"`` asks for the code alone; anything else for link and code."""

    model_config = ConfigDict(extra="ignore")

    email: str = Field(min_length=1, max_length=MAX_EMAIL_LENGTH)
    type: str | None = Field(default=None, max_length=32)

    @field_validator("email")
    @classmethod
    def _normalized(cls, value: str) -> str:
        return normalize_email(value)

    @property
    def code_only(self) -> bool:
        return (self.type or "").strip().lower() == "code"


class CodeRequest(BaseModel):
    """``{code}``: six digits."""

    model_config = ConfigDict(extra="ignore")

    code: SecretStr = Field(max_length=16)

    @field_validator("code")
    @classmethod
    def _six_digits(cls, value: SecretStr) -> SecretStr:
        return six_digits(value)


class RedeemRequest(BaseModel):
    """``{token}`` (the link's) or ``{email, code}``."""

    model_config = ConfigDict(extra="ignore")

    token: SecretStr | None = Field(default=None, min_length=1, max_length=MAX_TOKEN_LENGTH)
    email: str | None = Field(default=None, min_length=1, max_length=MAX_EMAIL_LENGTH)
    code: SecretStr | None = Field(default=None, max_length=16)

    @field_validator("email")
    @classmethod
    def _normalized(cls, value: str | None) -> str | None:
        return None if value is None else normalize_email(value)

    @field_validator("code")
    @classmethod
    def _six_digits(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None else six_digits(value)

    @model_validator(mode="after")
    def _token_or_email_and_code(self) -> RedeemRequest:
        if self.token is None and (self.email is None or self.code is None):
            raise ValueError("token, or email and code, is required")
        return self


class Sent(BaseModel):
    """What every request for a link or code answers, whether or not the email exists."""

    sent: Literal[True] = True


# -- the service -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Issued:
    token: LinkToken
    code: str
    attributes: dict[str, Any]


class PasswordlessService:
    def __init__(
        self,
        auth: AuthService | None = None,
        data: IdentityData | None = None,
        events: EventPublisher | None = None,
        lockout: BruteForceGuard | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._data = data or IdentityData(TenantStore())
        self._events = events or EventPublisher()
        self._lockout = lockout or BruteForceGuard(self._data, self._events, clock)
        self._auth = auth or AuthService(store=self._data.store, events=self._events, lockout=self._lockout)
        self._clock = clock

    # -- request ---------------------------------------------------------------------------------
    def request(
        self,
        kind: PrincipalKind,
        orgid: str,
        request: LinkRequest,
        client: ClientInfo,
        origin: LinkOrigin,
        *,
        code_only: bool = False,
    ) -> Sent:
        """Mails a link and a code (or the code alone) to ``request.email`` if it belongs to a
        ``kind`` of ``orgid`` that may sign in; the same answer and the same work otherwise."""
        email, code_only = request.email, code_only or request.code_only
        self._lockout.admit(orgid, kind, email, client.source_ip)  # 429: email locked, source blocked
        principal = self._principal_for(orgid, kind, email)
        now = self._clock()
        issued = self._issue(orgid, kind, email, principal, now)
        self._store_link(signin_link_key(orgid, kind, issued.token.selector), issued.attributes, now)
        link = link_for(redirect_url(kind, origin, get_settings().magic_link_url), issued.token.value, orgid)
        message = _message(orgid, email, link, issued.code, code_only=code_only)
        requested = DomainEvent(
            detail_type=MAGIC_LINK_REQUESTED,
            orgid=orgid,
            detail={"kind": kind, "email": email, "delivery": "code" if code_only else "link"}
            | ({"principal": principal.sk, "sent": True} if principal else {"sent": False}),
        )
        # One PutEvents call either way; only a principal that may sign in gets the message.
        self._publish([message.event(), requested] if principal else [requested])
        return Sent()

    def _principal_for(self, orgid: str, kind: PrincipalKind, email: str) -> Record | None:
        """The principal ``email`` names, if it may sign in to ``orgid``; two reads whatever the answer
        (an unknown email reads a principal key that cannot exist)."""
        sk = self._data.principal_sk_by_email(orgid, kind, email)
        stored = self._data.principal(sk or TenantKey(orgid, kind, "#none").sort)
        if stored is None or sk is None or not may_sign_in(kind, stored.record, orgid):
            return None
        return stored.record

    @staticmethod
    def _issue(orgid: str, kind: PrincipalKind, email: str, principal: Record | None, now: float) -> _Issued:
        token = LinkToken.new(link_selector(orgid, kind, email))
        code, salt = new_code(), new_salt()
        expires_at = int(now) + LINK_LIFETIME_SECONDS
        attributes = {
            "kind": kind,
            "email": email,
            "principal": principal.sk if principal else "",
            "tokenHash": token.digest,
            "codeSalt": salt,
            "codeHash": code_digest(salt, code),
            "expiresAt": expires_at,
            TTL_ATTRIBUTE: expires_at + LINK_LIFETIME_SECONDS,
        }
        return _Issued(token, code, attributes)

    def _store_link(self, key: TenantKey, attributes: dict[str, Any], now: float) -> None:
        """The new link replaces the pending one, within the email's requests per window: counted in
        the current window, or starting it; if a parallel request started it first, counted in it."""
        window = request_window(now)
        counted = signin_link_issued(key, attributes, window=window, max_requests=MAX_REQUESTS_PER_WINDOW)
        for operation in (counted, signin_link_window_started(key, attributes, window=window), counted):
            try:
                self._data.change(operation)
            except ConditionFailed:
                continue
            return
        retry = (window + 1) * REQUEST_WINDOW_SECONDS - now
        raise RateLimited(int(retry) + 1, "too many sign-in links asked for this email; try again later")

    def _publish(self, events: list[DomainEvent]) -> None:
        try:
            self._events.publish(events)
        except Exception:
            # Best effort, as every auth event: and the answer must not tell whether a message was due.
            logging.getLogger("appengine.passwordless").exception("sign-in link events not published")

    # -- redeem ----------------------------------------------------------------------------------
    def redeem(
        self, kind: PrincipalKind, orgid: str, request: RedeemRequest, client: ClientInfo
    ) -> FirstFactorOutcome:
        if request.token is not None:
            return self.redeem_token(kind, orgid, request.token.get_secret_value(), client)
        assert request.email is not None and request.code is not None  # the model's validator
        return self.redeem_code(kind, orgid, request.email, request.code.get_secret_value(), client)

    def redeem_token(
        self, kind: PrincipalKind, orgid: str, value: str, client: ClientInfo
    ) -> FirstFactorOutcome:
        """The link's token: the sign-in envelope (or the 2FA answer), once; 401 ``invalid_code``."""
        token = LinkToken.parse(value)
        if token is None:
            raise InvalidCode(_REFUSALS["magic_link"])  # matches nothing: nothing to count
        key = signin_link_key(orgid, kind, token.selector)
        item = self._data.signin_link(key)
        # The guard counts by the email the item names (an unknown selector: by the selector).
        email = str(item["email"]) if item and item.get("email") else _SELECTOR_KEY + token.selector
        attempt = self._lockout.admit(orgid, kind, email, client.source_ip)
        now = self._clock()
        stored = str((item or {}).get("tokenHash") or "0" * 64)
        right = hmac.compare_digest(token.digest, stored)
        if item is None or not right or item.get("kind") != kind or not is_live(item, now):
            self._failed(attempt, "magic_link", "invalid_link")
        try:
            self._data.clear(
                signin_link_redeemed(
                    key, attribute="tokenHash", digest=token.digest, now=now, max_misses=MAX_WRONG_CODES
                )
            )
        except ConditionFailed as spent:  # redeemed, replaced or killed meanwhile
            raise InvalidCode(_REFUSALS["magic_link"]) from spent
        return self._signed_in(attempt, kind, orgid, str(item["principal"]), "magic_link", client)

    def redeem_code(
        self, kind: PrincipalKind, orgid: str, email: str, code: str, client: ClientInfo
    ) -> FirstFactorOutcome:
        """The emailed code for ``email``: the sign-in envelope (or the 2FA answer), once; 401
        ``invalid_code``; the 5th wrong code kills the link and the code."""
        email = normalize_email(email)
        attempt = self._lockout.admit(orgid, kind, email, client.source_ip)
        key = signin_link_key(orgid, kind, link_selector(orgid, kind, email))
        item = self._data.signin_link(key)
        now = self._clock()
        salt = str((item or {}).get("codeSalt") or "00" * 16)
        stored = str((item or {}).get("codeHash") or "0" * 64)
        right = code_matches(salt, stored, code)
        if item is None or not is_live(item, now) or item.get("kind") != kind:
            self._failed(attempt, "code", "invalid_code")
        if not right:
            with suppress(ConditionFailed):  # replaced meanwhile: the miss was against a dead code
                self._data.change(signin_code_missed(key, code_hash=stored))
            self._failed(attempt, "code", "wrong_code")
        try:
            self._data.clear(
                signin_link_redeemed(
                    key, attribute="codeHash", digest=stored, now=now, max_misses=MAX_WRONG_CODES
                )
            )
        except ConditionFailed as spent:  # redeemed, replaced or killed meanwhile
            raise InvalidCode(_REFUSALS["code"]) from spent
        return self._signed_in(attempt, kind, orgid, str(item["principal"]), "code", client)

    def _failed(self, attempt: Attempt, method: str, reason: str) -> NoReturn:
        """A wrong factor: counted (429 instead past a limit), then 401 ``invalid_code``."""
        known = {} if attempt.email.startswith(_SELECTOR_KEY) else {"email": attempt.email}
        self._emit(
            "auth.sign_in_failed", attempt.orgid, kind=attempt.kind, method=method, reason=reason, **known
        )
        self._lockout.failed(attempt)
        raise InvalidCode(_REFUSALS[method])

    def _signed_in(
        self,
        attempt: Attempt,
        kind: PrincipalKind,
        orgid: str,
        principal_sk: str,
        method: str,
        client: ClientInfo,
    ) -> FirstFactorOutcome:
        stored = self._data.principal(principal_sk, consistent=True)
        if stored is None or not may_sign_in(kind, stored.record, orgid):
            # Disabled (or removed) since the link was sent: the link is spent and signs nobody in.
            self._emit(
                "auth.sign_in_failed",
                orgid,
                kind=kind,
                principal=principal_sk,
                method=method,
                reason="disabled",
            )
            raise InvalidCode(_REFUSALS[method])
        self._lockout.succeeded(attempt)
        return self._auth.first_factor_done(kind, orgid, stored.record, method, client)

    def _emit(self, detail_type: str, orgid: str, **detail: Any) -> None:
        self._publish([DomainEvent(detail_type=detail_type, orgid=orgid, detail=detail)])


def may_sign_in(kind: PrincipalKind, record: Record, orgid: str) -> bool:
    """As password sign-in decides: a Customer of ``orgid`` not disabled; a User with an enabled
    membership in ``orgid`` (or a platform root)."""
    if record.datatype != kind:
        return False
    if kind == "customer":
        return record.orgid == orgid and not record.data.get("disabled")
    membership, _ = effective_membership(record.data, orgid, get_settings().platform_orgid)
    return membership is not None


def _message(orgid: str, email: str, link: str, code: str, *, code_only: bool) -> Notification:
    minutes = LINK_LIFETIME_SECONDS // 60
    if code_only:
        return Notification(
            orgid=orgid,
            to=email,
            subject="Your sign-in code",
            text=SecretStr(
                f"Your sign-in code is {code}.\n\nIt works once, within {minutes} minutes. "
                "If you did not ask for it, ignore this message."
            ),
            code=SecretStr(code),
            purpose="sign_in_code",
        )
    return Notification(
        orgid=orgid,
        to=email,
        subject="Your sign-in link",
        text=SecretStr(
            f"Sign in with this link:\n{link}\n\nor enter this code: {code}\n\nEither works once, "
            f"within {minutes} minutes, and a new request replaces it. If you did not ask for it, ignore "
            "this message."
        ),
        link=SecretStr(link),
        code=SecretStr(code),
        purpose="magic_link",
    )
