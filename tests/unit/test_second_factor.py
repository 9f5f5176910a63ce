"""The second factor's pure rules (contract §4): RFC 6238 TOTP with its ±1 step window and the step a
code matched, the replay rule, recovery codes (format, normalization, hashing), emailed codes, and
the request models that turn bad input into 422."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pyotp
import pytest
from pydantic import ValidationError

from appengine_core.identity.second_factor import (
    RECOVERY_ALPHABET,
    CodeSendRequest,
    DisableRequest,
    SecondFactorService,
    SecondFactorVerification,
    TotpCode,
    canonical_recovery_code,
    code_at_step,
    email_code_digest,
    matched_step,
    new_email_code,
    new_recovery_codes,
    qr_svg,
    recovery_digest,
    totp_step,
)

# RFC 6238, appendix B: the SHA-1 seed "12345678901234567890", whose 8-digit codes end in these 6.
RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
RFC_VECTORS = [(59, "287082"), (1111111109, "081804"), (1111111111, "050471"), (1234567890, "005924")]


# -- TOTP ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("now", "code"), RFC_VECTORS)
def test_codes_are_rfc_6238_sha1_6_digits_30_seconds(now: int, code: str) -> None:
    assert code_at_step(RFC_SECRET, totp_step(now)) == code
    assert pyotp.TOTP(RFC_SECRET).at(now) == code


@pytest.mark.parametrize(
    ("now", "step"), [(0, 0), (29.999, 0), (30, 1), (59, 1), (60, 2), (1111111109, 37037036)]
)
def test_the_step_of_a_time_is_its_30_second_window(now: float, step: int) -> None:
    assert totp_step(now) == step


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_the_previous_current_and_next_steps_match_and_say_which_step_they_are(offset: int) -> None:
    # Given a time in the middle of a step, and the code of a step next to it
    now = 1_800_000_015.0
    current = totp_step(now)
    code = code_at_step(RFC_SECRET, current + offset)
    # Then the code matches, as that step
    assert matched_step(RFC_SECRET, code, now) == current + offset


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_steps_further_away_do_not_match(offset: int) -> None:
    now = 1_800_000_015.0
    code = code_at_step(RFC_SECRET, totp_step(now) + offset)
    # (unless the code happens to repeat within the window: not for these steps of this secret)
    assert code not in {code_at_step(RFC_SECRET, totp_step(now) + d) for d in (-1, 0, 1)}
    assert matched_step(RFC_SECRET, code, now) is None


def test_a_window_edge_moves_with_the_clock() -> None:
    # Given the code of step s, presented from the last second of step s+1, then the first of s+2
    secret = pyotp.random_base32()
    step = 60_000_000
    code = code_at_step(secret, step)
    # Then it still matches during s+1 and no longer during s+2
    assert matched_step(secret, code, (step + 2) * 30 - 0.001) == step
    if code not in {code_at_step(secret, step + d) for d in (1, 2, 3)}:
        assert matched_step(secret, code, (step + 2) * 30) is None


def test_a_wrong_or_malformed_code_matches_no_step() -> None:
    now = 1_800_000_015.0
    right = code_at_step(RFC_SECRET, totp_step(now))
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    assert matched_step(RFC_SECRET, wrong, now) is None
    assert matched_step(RFC_SECRET, right[:5], now) is None
    assert matched_step(RFC_SECRET, "", now) is None


# -- the replay rule -----------------------------------------------------------------------------------
class OpenSeal:
    """A sealer whose seal is the secret itself (the service's step rule, without KMS)."""

    def open(self, sealed: str, context: Any) -> str:
        return sealed


def service_at(now: float) -> SecondFactorService:
    unused: Any = object()
    return SecondFactorService(
        data=unused,
        tokens=unused,
        events=unused,
        lockout=unused,
        sealer=OpenSeal(),
        notifier=unused,
        clock=lambda: now,  # type: ignore[arg-type]
    )


def test_a_step_is_accepted_only_when_later_than_the_last_one_accepted() -> None:
    # Given a principal whose last accepted step is the current one
    now = 1_800_000_015.0
    current = totp_step(now)
    service = service_at(now)
    item = {"secret": RFC_SECRET, "enabled": True, "lastStep": current}
    sk = "acme:user:0001"
    # Then the current and the previous step's codes are replays; the next step's is new
    assert service._step(item, sk, code_at_step(RFC_SECRET, current)) is None
    assert service._step(item, sk, code_at_step(RFC_SECRET, current - 1)) is None
    assert service._step(item, sk, code_at_step(RFC_SECRET, current + 1)) == current + 1
    # and without a last step, any step of the window is new
    assert service._step({"secret": RFC_SECRET}, sk, code_at_step(RFC_SECRET, current - 1)) == current - 1


# -- recovery codes ------------------------------------------------------------------------------------
def test_recovery_codes_are_ten_distinct_unambiguous_codes() -> None:
    codes = new_recovery_codes()
    assert len(codes) == len(set(codes)) == 10
    for code in codes:
        assert re.fullmatch(rf"[{RECOVERY_ALPHABET}]{{5}}-[{RECOVERY_ALPHABET}]{{5}}", code), code
    assert not set("01ilo") & set(RECOVERY_ALPHABET)
    # fresh every time
    assert not set(codes) & set(new_recovery_codes())


def test_a_recovery_code_is_stored_as_the_sha256_of_its_canonical_form() -> None:
    code = new_recovery_codes(1)[0]
    compact = code.replace("-", "")
    digest = recovery_digest(code)
    assert digest == hashlib.sha256(compact.encode()).hexdigest()
    assert code not in digest and compact not in digest
    # as people type it: case, hyphen and spaces do not matter
    for typed in (code.upper(), compact, f" {code[:5]} {code[6:]} "):
        assert canonical_recovery_code(typed) == compact
        assert recovery_digest(typed) == digest
    # another code, another digest
    assert recovery_digest(new_recovery_codes(1)[0]) != digest


@pytest.mark.parametrize("typed", ["", "abcde", "abcde-fghjkm", "abcde-fghj0", "ABCDE-FGHJI", "abcde_fghjk"])
def test_what_cannot_be_a_recovery_code_is_refused(typed: str) -> None:
    assert canonical_recovery_code(typed) is None
    with pytest.raises(ValueError, match="not a recovery code"):
        recovery_digest(typed)


# -- emailed codes and the QR code ---------------------------------------------------------------------
def test_emailed_codes_are_6_digits_hashed_with_the_challenges_salt(pepper: bytes) -> None:
    codes = {new_email_code() for _ in range(200)}
    assert all(re.fullmatch(r"[0-9]{6}", c) for c in codes) and len(codes) > 190
    salt, other_salt = "00" * 16, "11" * 16
    assert email_code_digest(salt, "123456") == email_code_digest(salt, "123456")
    assert email_code_digest(salt, "123456") != email_code_digest(other_salt, "123456")
    assert email_code_digest(salt, "123456") != email_code_digest(salt, "123457")


def test_the_qr_code_is_an_svg_document() -> None:
    svg = qr_svg("otpauth://totp/AppEngine:a%40b.test?secret=JBSWY3DPEHPK3PXP&issuer=AppEngine")
    assert svg.startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in svg and svg.endswith("</svg>\n")


# -- request models: bad input is a validation error ---------------------------------------------------
@pytest.mark.parametrize("code", ["123456", "123 456", "123-456", " 123456 "])
def test_a_code_may_be_typed_with_spaces_or_a_hyphen(code: str) -> None:
    assert TotpCode.model_validate({"code": code}).value == "123456"


@pytest.mark.parametrize(
    "code", ["", "12345", "1234567", "12a456", "١٢٣٤٥٦", 123456, None, ["123456"], "9" * 100]
)
def test_a_code_that_is_not_6_digits_is_refused(code: Any) -> None:
    with pytest.raises(ValidationError):
        TotpCode.model_validate({"code": code})


def test_a_code_never_shows_in_a_repr() -> None:
    assert "123456" not in repr(TotpCode.model_validate({"code": "123456"}))
    verification = SecondFactorVerification.model_validate(
        {"partialToken": "tok-en", "recoveryCode": "abcde-fghjk"}
    )
    assert "abcde" not in repr(verification) and "tok-en" not in repr(verification)


@pytest.mark.parametrize(
    "body",
    [{}, {"code": "123456", "password": "secret-pass"}, {"password": ""}, {"code": "12345"}],
)
def test_disable_takes_exactly_one_proof(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        DisableRequest.model_validate(body)


def test_verify_takes_either_token_name_and_exactly_one_code() -> None:
    by_challenge = SecondFactorVerification.model_validate({"challengeToken": "t", "code": "123456"})
    assert by_challenge.token == "t"
    same = SecondFactorVerification.model_validate(
        {"partialToken": "t", "challengeToken": "t", "code": "123456"}
    )
    assert same.token == "t"
    for body in (
        {"code": "123456"},
        {"partialToken": "t"},
        {"partialToken": "t", "challengeToken": "u", "code": "123456"},
        {"partialToken": "t", "code": "123456", "recoveryCode": "abcde-fghjk"},
        {"partialToken": "t", "recoveryCode": "abcde-fghj1"},
        {"partialToken": "", "code": "123456"},
        {"partialToken": "a.b c", "code": "123456"},
        {"partialToken": "\ud800", "code": "123456"},
    ):
        with pytest.raises(ValidationError):
            SecondFactorVerification.model_validate(body)


def test_text_no_encoding_can_carry_is_refused() -> None:
    # JSON may hold a lone surrogate; no password or token can be one.
    with pytest.raises(ValidationError):
        DisableRequest.model_validate({"password": "\ud800-not-text"})


def test_send_takes_the_email_method_only() -> None:
    assert CodeSendRequest.model_validate({"challengeToken": "t", "method": "email"}).token == "t"
    for body in ({"challengeToken": "t", "method": "sms"}, {"challengeToken": "t"}, {"method": "email"}):
        with pytest.raises(ValidationError):
            CodeSendRequest.model_validate(body)
