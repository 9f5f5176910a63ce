"""The pepper of one-time codes: the key of the HMAC under which a 6-digit code is stored.

A 6-digit code has a million values. Keyed only with a salt stored beside it, anyone holding a copy of
the table (a backup, an export, a read-only role) could try all of them in a second and redeem a live
magic-link code or emailed 2FA code. Keyed with this pepper too, which lives in Secrets Manager and
only the signin function may read, the stored digest tells nothing without it.

The secret is read through Powertools' parameters utility and kept for ``MAX_AGE_SECONDS`` per
container. Changing it makes the codes in flight (15 minutes at most) fail once: they are asked again.
"""

from __future__ import annotations

import hashlib
import hmac

from appengine_core.infra import aws
from appengine_core.infra.errors import ServiceUnavailable
from appengine_core.infra.settings import get_settings

MAX_AGE_SECONDS = 300
# GenerateSecretString in the template makes 64 characters; anything much shorter is a deploy defect.
MIN_PEPPER_LENGTH = 32


def code_pepper() -> bytes:
    """The pepper, from the secret the settings name (kept ``MAX_AGE_SECONDS`` per container); 503 when
    none is set."""
    name = get_settings().code_pepper_secret
    if not name:
        raise ServiceUnavailable("one-time codes are not configured (no code pepper secret)")
    value = aws.secrets_provider().get(name, max_age=MAX_AGE_SECONDS)
    if not isinstance(value, str) or len(value) < MIN_PEPPER_LENGTH:
        raise ServiceUnavailable("one-time codes are not configured (the code pepper is too short)")
    return value.encode()


def peppered_digest(salt: str, code: str) -> str:
    """HMAC-SHA256 under the pepper of a code and its item's random salt (hex)."""
    return hmac.new(code_pepper(), bytes.fromhex(salt) + b"\n" + code.encode(), hashlib.sha256).hexdigest()
