"""One-time codes are stored under a pepper the table does not hold (infra.pepper): a copy of the table
holds each code's digest and salt, and neither lets anyone test the million 6-digit codes."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from appengine_core.infra import pepper
from appengine_core.infra.errors import ServiceUnavailable
from appengine_core.infra.settings import get_settings

SALT = "ab" * 16


pytestmark = pytest.mark.usefixtures("required_settings")


def test_the_digest_depends_on_the_pepper_as_well_as_the_salt(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given one pepper, then another
    monkeypatch.setattr(pepper, "code_pepper", lambda: b"a" * 64)
    first = pepper.peppered_digest(SALT, "042917")
    monkeypatch.setattr(pepper, "code_pepper", lambda: b"b" * 64)
    second = pepper.peppered_digest(SALT, "042917")
    # Then the same code and salt give different digests
    assert first != second
    # And what the stored item alone allows (the salt as the only key) never reproduces one
    salted_only = hmac.new(bytes.fromhex(SALT), b"042917", hashlib.sha256).hexdigest()
    assert salted_only not in (first, second)


def test_without_a_pepper_secret_codes_are_503_not_weaker() -> None:
    # Given no code pepper secret in the settings
    # When a code would be hashed
    # Then the request is refused as unavailable instead of storing a code anyone could test
    with pytest.raises(ServiceUnavailable):
        pepper.peppered_digest(SALT, "042917")


def test_a_pepper_too_short_to_be_the_generated_one_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a secret holding a short value (not what the template generates)
    monkeypatch.setenv("APPENGINE_CODE_PEPPER_SECRET", "pepper")
    get_settings.cache_clear()

    class Provider:
        def get(self, name: str, max_age: int) -> str:
            assert name == "pepper" and max_age == pepper.MAX_AGE_SECONDS
            return "short"

    monkeypatch.setattr(pepper.aws, "secrets_provider", Provider)
    # Then codes are refused as unavailable
    with pytest.raises(ServiceUnavailable):
        pepper.code_pepper()
