"""Two-factor authentication with TOTP (contract §4 "Second factor"), for Users and Customers alike.

A principal's second factor is one item in its home org (``identity.data.second_factor_key``): the
TOTP secret sealed with KMS (``infra.sealing``, bound to the org and the principal), pending until a
first code confirms it, the last TOTP step accepted, and the SHA-256 hashes of its unused recovery codes.
The secret is shown once, by setup, and never again; no code, secret or hash is logged or put in an
event.

RFC 6238 with SHA-1, 6 digits and 30-second steps; the step before and the step after the current one
are accepted too. Each step is accepted once per principal: the step a code matched is computed here
(``matched_step``) and written as ``lastStep`` by a conditional update that requires every earlier
acceptance to be of an earlier step. Two parallel uses of one code (two sign-ins, one code) therefore
end with exactly one success; the other is a wrong code (401 ``invalid_code``).

Sign-in: a first factor (password, magic link, code) of a principal with 2FA enabled gets no session,
only a partial token (``use: partial``, 5 minutes) naming a challenge item in the org of the sign-in.
``complete`` takes the token with a TOTP code, a recovery code (single use) or a code mailed by
``send_code`` (single use), through the brute-force guard (``lockout``: each wrong code is a failed
factor of the principal's email), and consumes the challenge in the same transaction as the factor, so
a challenge completes once. Five wrong codes kill the challenge: the right code is refused after that.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
import secrets
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator

from appengine_core.identity.data import (
    IdentityData,
    PrincipalKind,
    StoredPrincipal,
    challenge_code_sent,
    challenge_completion,
    challenge_failure,
    challenge_key,
    new_challenge,
    pending_second_factor,
    recovery_code_spent,
    recovery_codes_replaced,
    second_factor_enabled,
    second_factor_enabling,
    second_factor_key,
    second_factor_removal,
    totp_step_spent,
)
from appengine_core.identity.lockout import Attempt, BruteForceGuard, normalized_email
from appengine_core.identity.passwords import MAX_PASSWORD_LENGTH, verify_password
from appengine_core.identity.principal import Caller, Principal
from appengine_core.infra.envelope import Record
from appengine_core.infra.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidCode,
    InvalidCredentials,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
    invalid_field,
)
from appengine_core.infra.events import EventPublisher, EventPublishFailed, publish_best_effort
from appengine_core.infra.notifications import Notification, Notifier
from appengine_core.infra.pepper import peppered_digest
from appengine_core.infra.sealing import SealBroken, Sealer, sealing_context
from appengine_core.infra.store import ConditionFailed, Operation, TransactionCollided
from appengine_core.infra.tenancy import TenantKey

if TYPE_CHECKING:
    from appengine_core.identity.tokens import AccessClaims, TokenService

TOTP_DIGITS = 6
TOTP_PERIOD_SECONDS = 30
TOTP_WINDOW_STEPS = 1  # the step before and the step after the current one are accepted too
RECOVERY_CODE_COUNT = 10
# No 0/o, 1/l/i: codes are read off paper. 31 symbols, 10 of them: ~49.5 bits per code.
RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
RECOVERY_CODE_LENGTH = 10
CHALLENGE_TTL_SECONDS = 300
CHALLENGE_MAX_FAILURES = 5
CHALLENGE_MAX_SENDS = 3
DEFAULT_ISSUER = "AppEngine"
SEALING_PURPOSE = "totp"
# First factors proven by a message to the email address: an emailed code adds nothing to them.
EMAILED_FIRST_FACTORS = frozenset({"magic_link", "code"})
CODE = re.compile(r"^[0-9]{6}$")
CHALLENGE_ID = re.compile(r"^[0-9a-f]{32}$")
# A JWT in compact form: base64url segments and dots.
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_.-]+$")
_SEPARATORS = re.compile(r"[\s-]")
Factor = Literal["authenticator", "recovery_code", "email"]


# -- TOTP, recovery codes and emailed codes (pure) ---------------------------------------------------
def wall_clock() -> float:
    """Now, in Unix seconds: what the TOTP step is computed from (looked up at every use, so that the
    in-process tests can move it)."""
    return time.time()


def totp_step(now: float) -> int:
    """The RFC 6238 time step of ``now`` (Unix seconds)."""
    return int(now // TOTP_PERIOD_SECONDS)


def code_at_step(secret: str, step: int) -> str:
    """The code an authenticator holding ``secret`` shows during ``step``."""
    import pyotp  # only a second step needs it: kept off the imports of every first factor's function

    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD_SECONDS).at(step * TOTP_PERIOD_SECONDS)


def matched_step(secret: str, code: str, now: float) -> int | None:
    """The step (current ±1) whose code is ``code``, or None. Every candidate is compared in constant
    time, and all of them always: the time taken tells nothing about which one matched."""
    current = totp_step(now)
    matched: int | None = None
    for step in range(current - TOTP_WINDOW_STEPS, current + TOTP_WINDOW_STEPS + 1):
        if hmac.compare_digest(code_at_step(secret, step), code):
            matched = step
    return matched


def new_recovery_code() -> str:
    """``xxxxx-xxxxx`` from an unambiguous alphabet (``secrets``: a CSPRNG)."""
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    codes: list[str] = []
    while len(codes) < count:
        code = new_recovery_code()
        if code not in codes:
            codes.append(code)
    return codes


def canonical_recovery_code(value: str) -> str | None:
    """A recovery code as typed (any case, with or without its hyphen or spaces) in its canonical
    compact form, or None when it cannot be one."""
    compact = _SEPARATORS.sub("", value).lower()
    if len(compact) != RECOVERY_CODE_LENGTH or any(c not in RECOVERY_ALPHABET for c in compact):
        return None
    return compact


def recovery_digest(code: str) -> str:
    """What is stored of a recovery code: the SHA-256 of its canonical form (a code has ~50 bits of
    entropy and is rate-limited at use, so an unsalted fast hash is enough)."""
    compact = canonical_recovery_code(code)
    if compact is None:
        raise ValueError("not a recovery code")
    return hashlib.sha256(compact.encode()).hexdigest()


def new_email_code() -> str:
    return f"{secrets.randbelow(10**TOTP_DIGITS):0{TOTP_DIGITS}d}"


def email_code_digest(salt: str, code: str) -> str:
    """A 6-digit code has too little entropy for a plain hash: keyed with a per-challenge random salt
    and the code pepper (infra.pepper), and capped at 5 wrong tries by the challenge."""
    return peppered_digest(salt, code)


def qr_svg(uri: str) -> str:
    """The ``otpauth://`` URI as an SVG QR code (segno: no imaging library)."""
    import segno  # only setup draws one: kept off the sign-in path's imports

    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=4, border=2, xmldecl=False, svgns=True)
    return buffer.getvalue().decode()


# -- requests and answers ----------------------------------------------------------------------------
def _compact_code(value: Any) -> Any:
    """``123 456`` and ``123-456`` as ``123456`` (what people type); anything else as it came."""
    return _SEPARATORS.sub("", value) if isinstance(value, str) else value


def _six_digits(value: SecretStr) -> SecretStr:
    if not CODE.fullmatch(value.get_secret_value()):
        raise ValueError("must be the 6 digits of the code")
    return value


def _recovery_code(value: SecretStr) -> SecretStr:
    if canonical_recovery_code(value.get_secret_value()) is None:
        raise ValueError("not a recovery code (xxxxx-xxxxx)")
    return value


def _token_shaped(value: SecretStr) -> SecretStr:
    if not TOKEN_SHAPE.fullmatch(value.get_secret_value()):
        raise ValueError("not a token")
    return value


def _text(value: SecretStr) -> SecretStr:
    """Refuses what JSON can carry but no text encoding can (a lone surrogate, ``\\ud800``)."""
    try:
        value.get_secret_value().encode()
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text") from exc
    return value


# Codes, tokens and passwords are SecretStr: never shown by repr or logs.
PartialToken = Annotated[SecretStr, Field(min_length=1, max_length=4096), AfterValidator(_token_shaped)]
Password = Annotated[SecretStr, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH), AfterValidator(_text)]
SixDigitCode = Annotated[
    SecretStr,
    BeforeValidator(_compact_code),
    Field(max_length=32, description="6 digits"),
    AfterValidator(_six_digits),
]
RecoveryCode = Annotated[
    SecretStr, Field(max_length=64, description="xxxxx-xxxxx"), AfterValidator(_recovery_code)
]


class TotpCode(BaseModel):
    """``{code}``: the 6 digits the authenticator shows now."""

    model_config = ConfigDict(extra="ignore")

    code: SixDigitCode

    @property
    def value(self) -> str:
        return self.code.get_secret_value()


class DisableRequest(BaseModel):
    """``{code}`` (the authenticator's) or ``{password}``: one of them."""

    model_config = ConfigDict(extra="ignore")

    code: SixDigitCode | None = None
    password: Password | None = None

    @model_validator(mode="after")
    def _one_proof(self) -> DisableRequest:
        if (self.code is None) == (self.password is None):
            raise ValueError("give the authenticator's code or the password (one of them)")
        return self


class _ChallengeToken(BaseModel):
    """The partial token of a sign-in, as ``partialToken`` or ``challengeToken`` (both in use)."""

    model_config = ConfigDict(extra="ignore")

    partialToken: PartialToken | None = None  # noqa: N815
    challengeToken: PartialToken | None = None  # noqa: N815

    @model_validator(mode="after")
    def _one_token(self) -> _ChallengeToken:
        tokens = {t.get_secret_value() for t in (self.partialToken, self.challengeToken) if t is not None}
        if not tokens:
            raise ValueError("partialToken (or challengeToken) is required")
        if len(tokens) > 1:
            raise ValueError("partialToken and challengeToken differ")
        return self

    @property
    def token(self) -> str:
        secret = self.partialToken or self.challengeToken
        return secret.get_secret_value() if secret else ""


class SecondFactorVerification(_ChallengeToken):
    """``{partialToken, code}`` or ``{partialToken, recoveryCode}``: a code of the authenticator or
    one mailed by ``challenge/send``, or a recovery code."""

    code: SixDigitCode | None = None
    recoveryCode: RecoveryCode | None = None  # noqa: N815

    @model_validator(mode="after")
    def _one_code(self) -> SecondFactorVerification:
        if (self.code is None) == (self.recoveryCode is None):
            raise ValueError("give a code or a recoveryCode (one of them)")
        return self


class CodeSendRequest(_ChallengeToken):
    """``{challengeToken, method: "email"}``: mail a one-time code to the principal's address."""

    method: Literal["email"]


class TwoFactorSetup(BaseModel):
    """The new secret, shown this once: pending until ``enable`` confirms a code of it."""

    secret: str
    otpauthUri: str  # noqa: N815
    qrSvg: str  # noqa: N815


class RecoveryCodes(BaseModel):
    """2FA on, and a fresh set of recovery codes: shown only here."""

    enabled: Literal[True] = True
    recoveryCodes: list[str]  # noqa: N815


class TwoFactorDisabled(BaseModel):
    enabled: Literal[False] = False


class CodeSent(BaseModel):
    sent: Literal[True] = True
    twoFactorMethod: Literal["email"] = "email"  # noqa: N815


@dataclass(frozen=True)
class CompletedChallenge:
    """A second factor accepted: the sign-in it completes, for ``AuthService`` to start the session."""

    kind: PrincipalKind
    principal_sk: str
    method: str  # the first factor's
    factor: Factor


# -- the service -------------------------------------------------------------------------------------
def _enabled(item: dict[str, Any] | None) -> bool:
    return bool(item and item.get("enabled") is True and isinstance(item.get("secret"), str))


def _email_of(record: Record) -> str:
    return str(record.data.get("email") or record.name or "")


def _person(caller: Caller) -> Principal:
    """2FA is managed with a person's own token, never an API key or an app token."""
    principal = caller.principal
    if principal.credential != "jwt":
        raise Forbidden("two-factor authentication is managed with a person's own token")
    return principal


def _not_enabled() -> Conflict:
    return Conflict("two-factor authentication is not enabled")


def _challenge_over() -> Unauthorized:
    return Unauthorized("the sign-in challenge is over; sign in again")


class Unread:
    """A 2FA item not read yet (``None`` is one read and absent)."""


UNREAD = Unread()


class SecondFactorService:
    def __init__(
        self,
        data: IdentityData | None = None,
        tokens: TokenService | None = None,
        events: EventPublisher | None = None,
        lockout: BruteForceGuard | None = None,
        sealer: Sealer | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._data = data or IdentityData()
        self._given_tokens = tokens
        self._events = events or EventPublisher()
        self._lockout = lockout or BruteForceGuard(self._data, self._events)
        self._sealer = sealer or Sealer()
        self._notifier = notifier or Notifier(self._events)
        self._clock = clock or (lambda: wall_clock())

    @cached_property
    def _tokens(self) -> TokenService:
        # Only the challenge (a partial token) needs tokens; a person's own 2FA settings (the profile
        # function) never load JWT signing.
        if self._given_tokens is not None:
            return self._given_tokens
        from appengine_core.identity.tokens import TokenService

        return TokenService()

    # -- the principal's own settings (a person's token) ---------------------------------------
    def setup(self, caller: Caller) -> TwoFactorSetup:
        """A new pending secret (replacing a pending one); 409 when 2FA is enabled."""
        principal = _person(caller)
        import pyotp

        stored = self._stored(principal)
        secret = pyotp.random_base32()
        sealed = self._sealer.seal(secret, self._context(principal.principal_id))
        try:
            self._data.change(
                pending_second_factor(second_factor_key(principal.principal_id), sealed, int(self._clock()))
            )
        except ConditionFailed as enabled:
            raise Conflict("two-factor authentication is already enabled; disable it first") from enabled
        uri = pyotp.TOTP(secret).provisioning_uri(
            name=_email_of(stored.record), issuer_name=self._issuer(principal.kind, caller.orgid)
        )
        return TwoFactorSetup(secret=secret, otpauthUri=uri, qrSvg=qr_svg(uri))

    def enable(self, caller: Caller, request: TotpCode) -> RecoveryCodes:
        """The pending secret becomes the secret when ``request`` holds one of its codes (422 otherwise,
        409 when already enabled), with a first set of recovery codes."""
        principal = _person(caller)
        sk = principal.principal_id
        item = self._data.second_factor(sk) or {}
        if _enabled(item):
            raise Conflict("two-factor authentication is already enabled")
        pending = item.get("pendingSecret")
        if not isinstance(pending, str):
            raise invalid_field("code", "no pending setup: call /profile/security/2fa/setup first")
        try:
            secret = self._sealer.open(pending, self._context(sk))
        except SealBroken as broken:
            raise invalid_field("code", "the pending setup cannot be read: call setup again") from broken
        step = matched_step(secret, request.value, self._clock())
        if step is None:
            raise invalid_field("code", "wrong code")
        codes = new_recovery_codes()
        try:
            self._data.change(
                second_factor_enabling(
                    second_factor_key(sk),
                    pending=pending,
                    step=step,
                    recovery_hashes=[recovery_digest(c) for c in codes],
                    now=int(self._clock()),
                )
            )
        except ConditionFailed as changed:
            if _enabled(self._data.second_factor(sk)):
                raise Conflict("two-factor authentication is already enabled") from changed
            raise invalid_field("code", "the setup was replaced meanwhile: use the new secret") from changed
        self._emit("auth.second_factor_enabled", caller.orgid, principal)
        return RecoveryCodes(recoveryCodes=codes)

    def regenerate_recovery_codes(
        self, caller: Caller, request: TotpCode, source_ip: str | None = None
    ) -> RecoveryCodes:
        """A new set of recovery codes for an authenticator code; the old set stops working."""
        principal = _person(caller)
        sk = principal.principal_id
        stored = self._stored(principal)
        item = self._enabled_item(sk)
        attempt = self._lockout.admit(caller.orgid, principal.kind, _email_of(stored.record), source_ip)
        step = self._step(item, sk, request.value)
        if step is None:
            self._refuse(attempt, principal, "wrong_code", "recovery_codes", InvalidCode())
        codes = new_recovery_codes()
        try:
            self._data.change(
                recovery_codes_replaced(second_factor_key(sk), step, [recovery_digest(c) for c in codes])
            )
        except ConditionFailed:
            self._refuse(attempt, principal, "replayed_code", "recovery_codes", InvalidCode())
        self._lockout.succeeded(attempt)
        self._emit("auth.recovery_codes_regenerated", caller.orgid, principal)
        return RecoveryCodes(recoveryCodes=codes)

    def disable(
        self, caller: Caller, request: DisableRequest, source_ip: str | None = None
    ) -> TwoFactorDisabled:
        """2FA off, for an authenticator code (a wrong one: 401 ``invalid_code``) or the password (a
        wrong one: 401 ``invalid_credentials``); 409 when not enabled."""
        principal = _person(caller)
        sk = principal.principal_id
        stored = self._stored(principal)
        item = self._enabled_item(sk)
        attempt = self._lockout.admit(caller.orgid, principal.kind, _email_of(stored.record), source_ip)
        step: int | None = None
        if request.password is not None:
            matches, _ = verify_password(request.password.get_secret_value(), stored.password_hash)
            if not matches:
                self._refuse(
                    attempt, principal, "wrong_password", "disable", InvalidCredentials("wrong password")
                )
        else:
            code = request.code.get_secret_value() if request.code else ""
            step = self._step(item, sk, code)
            if step is None:
                self._refuse(attempt, principal, "wrong_code", "disable", InvalidCode())
        try:
            self._data.clear(second_factor_removal(second_factor_key(sk), step))
        except ConditionFailed as changed:
            if step is not None and _enabled(self._data.second_factor(sk)):
                self._refuse(attempt, principal, "replayed_code", "disable", InvalidCode())
            raise _not_enabled() from changed
        self._lockout.succeeded(attempt)
        self._emit(
            "auth.second_factor_disabled",
            caller.orgid,
            principal,
            via="password" if request.password is not None else "code",
        )
        return TwoFactorDisabled()

    # -- sign-in ---------------------------------------------------------------------------------
    def challenge(
        self,
        kind: PrincipalKind,
        orgid: str,
        record: Record,
        method: str,
        *,
        factor: dict[str, Any] | Unread | None = UNREAD,
    ) -> str | None:
        """For a principal with 2FA enabled, a new challenge in ``orgid`` and its partial token; None when
        2FA is not enabled (the first factor completes the sign-in). ``factor``: the principal's 2FA item
        as the caller read it with the principal (strongly consistent), else it is read here."""
        if isinstance(factor, Unread):
            factor = self._data.second_factor(record.sk)
        if not _enabled(factor):
            return None
        challenge_id = secrets.token_hex(16)
        now = int(self._clock())
        attributes = {
            "principal": record.sk,
            "kind": kind,
            "method": method,
            "email": normalized_email(_email_of(record)),
            "createdAt": now,
        }
        self._data.save(
            new_challenge(challenge_key(orgid, challenge_id), attributes, now + CHALLENGE_TTL_SECONDS)
        )
        token, _ = self._tokens.issue(
            subject=record.sk,
            kind=kind,
            session_id=challenge_id,
            orgid=record.orgid,
            use="partial",
            ttl_seconds=CHALLENGE_TTL_SECONDS,
        )
        return token

    def send_code(self, orgid: str, request: CodeSendRequest, source_ip: str | None = None) -> CodeSent:
        """Mails a one-time 6-digit code for the challenge (replacing one sent before; at most 3)."""
        claims, challenge, key = self._open_challenge(orgid, request.token)
        if str(challenge.get("method")) in EMAILED_FIRST_FACTORS:
            raise invalid_field(
                "method", "an emailed code cannot complete a sign-in whose first factor came by email"
            )
        email = str(challenge.get("email") or "")
        self._lockout.admit(orgid, claims.kind, email, source_ip)  # 429 while the email is locked
        code, salt = new_email_code(), secrets.token_hex(16)
        now = int(self._clock())
        try:
            self._data.change(
                challenge_code_sent(
                    key,
                    salt=salt,
                    digest=email_code_digest(salt, code),
                    now=now,
                    max_failures=CHALLENGE_MAX_FAILURES,
                    max_sends=CHALLENGE_MAX_SENDS,
                )
            )
        except ConditionFailed as refused:
            again = self._data.challenge(orgid, claims.sid) or {}
            expires_at = int(again.get("expiresAt") or 0)
            if expires_at > now and int(again.get("sends") or 0) >= CHALLENGE_MAX_SENDS:
                raise RateLimited(expires_at - now, "enough codes were sent for this sign-in") from refused
            raise _challenge_over() from refused
        notification = Notification(
            orgid=orgid,
            to=email,
            subject="Your sign-in code",
            text=SecretStr(
                f"Your sign-in code is {code}. It works once, for 5 minutes.\n"
                "If you did not just sign in, change your password."
            ),
            code=SecretStr(code),
            purpose="two_factor_code",
        )
        try:
            self._notifier.send(notification)
        except EventPublishFailed as failed:
            raise ServiceUnavailable(
                "the code could not be sent; try again", retry_after_seconds=1
            ) from failed
        return CodeSent()

    def complete(
        self, orgid: str, request: SecondFactorVerification, source_ip: str | None = None
    ) -> CompletedChallenge:
        """The challenge of ``request``'s partial token, completed by its code: once, and only while it
        lives (5 minutes, fewer than 5 wrong codes). A wrong, replayed or used code is 401
        ``invalid_code`` and a failed factor for the brute-force guard (429 past its limit)."""
        claims, challenge, key = self._open_challenge(orgid, request.token)
        sk, kind = claims.sub, claims.kind
        attempt = self._lockout.admit(orgid, kind, str(challenge.get("email") or ""), source_ip)
        item = self._data.second_factor(sk)
        if not _enabled(item) or item is None:
            raise Unauthorized("two-factor authentication is no longer enabled; sign in again")
        now = int(self._clock())
        factor_key = second_factor_key(sk)
        over = challenge_completion(key, now=now, max_failures=CHALLENGE_MAX_FAILURES)
        operations: list[Operation] | None = None
        factor: Factor
        if request.recoveryCode is not None:
            factor = "recovery_code"
            digest = recovery_digest(request.recoveryCode.get_secret_value())
            held = [str(h) for h in item.get("recoveryHashes") or []]
            matches = [hmac.compare_digest(digest, h) for h in held]  # every one: no early exit
            if any(matches):
                operations = [recovery_code_spent(factor_key, digest), over]
        else:
            code = request.code.get_secret_value() if request.code else ""
            salt, mailed = challenge.get("emailCodeSalt"), challenge.get("emailCodeHash")
            if (
                isinstance(salt, str)
                and isinstance(mailed, str)
                and hmac.compare_digest(email_code_digest(salt, code), mailed)
            ):
                factor = "email"
                operations = [
                    second_factor_enabled(factor_key),
                    challenge_completion(
                        key, now=now, max_failures=CHALLENGE_MAX_FAILURES, email_code_hash=mailed
                    ),
                ]
            else:
                factor = "authenticator"
                step = self._step(item, sk, code)
                if step is not None:
                    operations = [totp_step_spent(factor_key, step), over]
        if operations is None:
            self._wrong_code(attempt, key, claims, "wrong_code")
        outcome = self._commit(operations)
        if outcome == "factor":
            if factor == "email":
                raise Unauthorized("two-factor authentication is no longer enabled; sign in again")
            self._wrong_code(attempt, key, claims, "used_code")
        if outcome == "challenge":
            raise _challenge_over()
        self._lockout.succeeded(attempt)
        if factor == "recovery_code":
            publish_best_effort(
                self._events,
                "auth.recovery_code_used",
                orgid,
                kind=kind,
                principal=sk,
                remaining=max(0, len(item.get("recoveryHashes") or []) - 1),
            )
        return CompletedChallenge(
            kind=kind, principal_sk=sk, method=str(challenge.get("method")), factor=factor
        )

    # -- helpers -------------------------------------------------------------------------------
    def _open_challenge(self, orgid: str, token: str) -> tuple[AccessClaims, dict[str, Any], TenantKey]:
        """The claims of a valid partial token and its live challenge in ``orgid``; 401 otherwise."""
        claims = self._tokens.verify(token, use="partial")
        if not CHALLENGE_ID.fullmatch(claims.sid) or (claims.kind == "customer" and claims.org != orgid):
            raise _challenge_over()
        challenge = self._data.challenge(orgid, claims.sid)
        if (
            challenge is None
            or challenge.get("principal") != claims.sub
            or challenge.get("kind") != claims.kind
            or int(challenge.get("expiresAt") or 0) <= self._clock()
            or int(challenge.get("failures") or 0) >= CHALLENGE_MAX_FAILURES
        ):
            raise _challenge_over()
        return claims, challenge, challenge_key(orgid, claims.sid)

    def _step(self, item: dict[str, Any], principal_sk: str, code: str) -> int | None:
        """The step ``code`` matches on the principal's secret, if later than the last one accepted."""
        try:
            secret = self._sealer.open(str(item["secret"]), self._context(principal_sk))
        except SealBroken:
            return None  # fail closed: a seal that does not open under this principal proves nothing
        step = matched_step(secret, code, self._clock())
        last = item.get("lastStep")
        if step is None or (last is not None and step <= int(last)):
            return None
        return step

    def _commit(self, operations: Sequence[Operation]) -> Literal["done", "factor", "challenge"]:
        """The factor's write (operation 0) and the challenge's end (operation 1) in one transaction:
        which of them refused, if one did."""
        for _ in range(3):  # a collision with a parallel transaction is judged again
            try:
                self._data.commit(operations)
            except ConditionFailed as failed:
                return "challenge" if failed.index == 1 else "factor"
            except TransactionCollided:
                continue
            return "done"
        raise ServiceUnavailable("busy; try again", retry_after_seconds=1)

    def _wrong_code(self, attempt: Attempt, key: TenantKey, claims: AccessClaims, reason: str) -> NoReturn:
        with suppress(ConditionFailed):  # over meanwhile: the next attempt is refused anyway
            self._data.change(
                challenge_failure(key, now=int(self._clock()), max_failures=CHALLENGE_MAX_FAILURES)
            )
        publish_best_effort(
            self._events,
            "auth.second_factor_failed",
            attempt.orgid,
            kind=claims.kind,
            principal=claims.sub,
            reason=reason,
            where="sign_in",
        )
        self._lockout.failed(attempt)  # 429 instead of 401 past the limit
        raise InvalidCode()

    def _refuse(
        self, attempt: Attempt, principal: Principal, reason: str, where: str, error: DomainError
    ) -> NoReturn:
        publish_best_effort(
            self._events,
            "auth.second_factor_failed",
            attempt.orgid,
            kind=principal.kind,
            principal=principal.principal_id,
            reason=reason,
            where=where,
        )
        self._lockout.failed(attempt)
        raise error

    def _stored(self, principal: Principal) -> StoredPrincipal:
        stored = self._data.principal(principal.principal_id)
        if stored is None:
            raise Unauthorized()
        return stored

    def _enabled_item(self, principal_sk: str) -> dict[str, Any]:
        item = self._data.second_factor(principal_sk)
        if not _enabled(item) or item is None:
            raise _not_enabled()
        return item

    def _issuer(self, kind: PrincipalKind, orgid: str) -> str:
        """What the authenticator app shows the account under: a customer's org (its account lives
        there only); for a User, whose one account spans orgs, the platform's name."""
        if kind == "customer":
            org = self._data.org(orgid)
            if org is not None and org.name.strip():
                return org.name.strip()
        return DEFAULT_ISSUER

    @staticmethod
    def _context(principal_sk: str) -> dict[str, str]:
        return sealing_context(TenantKey.parse(principal_sk).orgid, principal_sk, SEALING_PURPOSE)

    def _emit(self, detail_type: str, orgid: str, principal: Principal, **detail: Any) -> None:
        publish_best_effort(
            self._events, detail_type, orgid, kind=principal.kind, principal=principal.principal_id, **detail
        )
