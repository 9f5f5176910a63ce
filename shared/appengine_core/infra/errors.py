"""Domain errors. Services raise these; ``web`` maps them to HTTP in one place.

Each error names the machine word the contract puts in ``error``/``code``/``reason``.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a caller is meant to see."""

    code = "internal_error"
    default_message = "unexpected error"

    def __init__(self, message: str | None = None, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.details = details


class Unauthorized(DomainError):
    code = "unauthorized"
    default_message = "missing or invalid credentials"


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    default_message = "invalid email or password"


class InvalidCode(DomainError):
    """A one-time code (2FA, recovery, emailed, magic link) that is wrong, used, replayed or expired."""

    code = "invalid_code"
    default_message = "invalid or expired code"


class InvalidState(DomainError):
    """An OAuth callback whose ``state`` is unknown, used, expired or for another provider (no redirect:
    nothing says where the browser came from)."""

    code = "invalid_state"
    default_message = "invalid, used or expired sign-in state"


class OrgidRequired(DomainError):
    code = "orgid_required"
    default_message = "the orgid header is required"


class InvalidJson(DomainError):
    code = "invalid_json"
    default_message = "the request body is not valid JSON"


class Forbidden(DomainError):
    code = "forbidden"
    default_message = "not allowed"


class ValidationFailed(DomainError):
    code = "validation_error"
    default_message = "the request is invalid"


def invalid_field(field: str, problem: str) -> ValidationFailed:
    """A 422 about one field, in the contract's ``details`` shape."""
    return ValidationFailed(details=[{"field": field, "problem": problem}])


class NotFound(DomainError):
    code = "not_found"
    default_message = "not found"


class Conflict(DomainError):
    code = "conflict"
    default_message = "conflict"


class RateLimited(DomainError):
    code = "rate_limited"
    default_message = "too many requests"

    def __init__(self, retry_after_seconds: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = max(1, int(retry_after_seconds))


class ServiceUnavailable(DomainError):
    code = "service_unavailable"
    default_message = "the service is not ready"

    def __init__(self, message: str | None = None, *, retry_after_seconds: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


# The one table from domain error to HTTP status.
HTTP_STATUS: dict[type[DomainError], int] = {
    Unauthorized: 401,
    InvalidCredentials: 401,
    InvalidCode: 401,
    InvalidState: 401,
    OrgidRequired: 400,
    InvalidJson: 400,
    Forbidden: 403,
    ValidationFailed: 422,
    NotFound: 404,
    Conflict: 409,
    RateLimited: 429,
    ServiceUnavailable: 503,
}


def http_status_of(error: DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500
