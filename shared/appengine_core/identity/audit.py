"""The security audit log (issue 15): security events kept per org, and listed for its RootAdmin.

Security events (sign-ins, locks, second factor, sessions, API keys, user and customer changes, magic
links) reach the audit function through an EventBridge rule; ``AuditRecorder`` keeps each one in the
org's audit partition (``audit_data``) for ``audit_retention_days`` (the items' TTL), once per event id
however often EventBridge delivers it. ``notification.requested`` (the one event allowed to carry a code
and a link) is never audited: the rule does not match it, and the recorder drops it if it came anyway.

What is stored is a whitelist: the event's type, time, org and id, the principal and actor it names,
and a few facts (``DETAIL_FIELDS``), each a short string, a number, a flag or a short list of strings.
Nothing else of an event is stored, and a field whose name looks secret (token, secret, code, password,
hash, link, ...) never is, even if it were whitelisted. Nothing of an event's detail is logged.

``AuditService.events`` pages an org's log newest first, for the org's RootAdmin (or RootSystem) with a
person's token, or a platform root acting on the org; ``type`` and ``principal`` filter it inside
DynamoDB, within ``MAX_EXAMINED`` items per request (contract §2: ``total`` is left out when not every
match was examined).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

from appengine_core.identity.audit_data import AUDIT_COLLECTION, AuditData, AuditItem
from appengine_core.identity.principal import Caller, require_role
from appengine_core.infra.errors import Forbidden, invalid_field
from appengine_core.infra.events import SOURCE
from appengine_core.infra.paging import Page, PageRequest, decode_cursor, encode_cursor, examine
from appengine_core.infra.settings import get_settings
from appengine_core.infra.tenancy import ORGID_PATTERN, is_valid_orgid

# The detail-types the audit rule subscribes to (template.yaml, AuditFunction's Security event: a test
# keeps the two lists equal).
AuditedEventType = Literal[
    "auth.signed_in",
    "auth.sign_in_failed",
    "auth.locked",
    "auth.unlocked",
    "auth.signed_out",
    "auth.second_factor_enabled",
    "auth.second_factor_disabled",
    "auth.second_factor_failed",
    "auth.recovery_code_used",
    "auth.recovery_codes_regenerated",
    "auth.magic_link_requested",
    "auth.identity.linked",
    "auth.identity.unlinked",
    "oauth.provider.updated",
    "oauth.provider.deleted",
    "session.revoked",
    "session.compromised",
    "apikey.created",
    "apikey.regenerated",
    "apikey.revoked",
    "apikey.expired",
    "user.created",
    "user.updated",
    "customer.updated",
]
AUDITED_EVENT_TYPES: tuple[str, ...] = get_args(AuditedEventType)
NEVER_AUDITED = "notification.requested"  # carries codes and links: the mailer's only
AUDIT_READER_ROLES = ("RootSystem", "RootAdmin")
MAX_EXAMINED = 1000  # audit items a listing may examine per request (plus the pages it skips)

# The facts of an event's detail that are stored (beyond principal and actor); nothing else is.
DETAIL_FIELDS = frozenset(
    {
        "kind",  # user | customer
        "session",  # a session id
        "method",  # how a sign-in or second factor was done
        "reason",  # why it failed or was revoked
        "keyId",  # an API key's id (never the key)
        "target",  # what an action aimed at, where the principal is not it
        "email",  # the email a sign-in, lock or magic link was for (unknown emails have no principal)
        "sourceIp",
        "userAgent",
        "roles",  # membership changes
        "permissions",
        "orgs",
        "fields",  # which fields an update changed
        "disabled",
        "scope",  # a lock's scope: email | source
        "level",  # a lock's escalation level
        "seconds",  # a lock's length
        "count",  # how many sessions were revoked
        "via",  # how a user came to be (signup)
        "application",  # the API key of the application a person called through (AppEngine's clients)
        "provider",  # a social sign-in or SSO provider (google, microsoft, github, facebook, oidc)
    }
)
# A field whose name says it may hold a secret is never stored, whitelisted or not.
SECRET_NAME = re.compile(r"token|secret|code|passw|hash|link|otp|seed|cookie|credential|signature", re.I)
MAX_TEXT = 320  # an email's longest; a longer string is not a fact of ours: dropped, not cut
MAX_LIST = 50
MAX_LIST_TEXT = 128
MAX_NUMBER = 10**15
EVENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
PRINCIPAL_PK = re.compile(r"^(user|customer)-([A-Za-z0-9_-]{1,128})$")
PRINCIPAL_SK = re.compile(rf"^({ORGID_PATTERN.pattern[1:-1]}):(user|customer):([A-Za-z0-9_-]{{1,128}})$")

FactValue = str | int | bool | list[str]


# -- pure rules --------------------------------------------------------------------------------------
def redact(detail: Mapping[str, Any]) -> dict[str, FactValue]:
    """The facts of ``detail`` that may be stored: whitelisted names with plain, short values only."""
    kept: dict[str, FactValue] = {}
    for name, value in detail.items():
        if name not in DETAIL_FIELDS or SECRET_NAME.search(name):
            continue
        fact = _fact(value)
        if fact is not None:
            kept[name] = fact
    return kept


def _fact(value: Any) -> FactValue | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < MAX_NUMBER else None
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() and abs(value) < MAX_NUMBER else None
    if isinstance(value, str):
        return value if 0 < len(value) <= MAX_TEXT else None
    if isinstance(value, list | tuple):
        if len(value) > MAX_LIST or not all(isinstance(v, str) and len(v) <= MAX_LIST_TEXT for v in value):
            return None
        return [str(v) for v in value]
    return None  # objects and anything else: not a fact we keep


def principal_ref(value: Any) -> str | None:
    """A principal as the event names it (its sk), if it is one: kept as it is."""
    if isinstance(value, str) and (PRINCIPAL_SK.fullmatch(value) or PRINCIPAL_PK.fullmatch(value)):
        return value
    return None


def subject_of(reference: str) -> str | None:
    """The pk form (``user-<id>``, ``customer-<id>``) of a principal's sk or pk; None if it is neither."""
    by_sk = PRINCIPAL_SK.fullmatch(reference)
    if by_sk:
        return f"{by_sk.group(2)}-{by_sk.group(3)}"
    return reference if PRINCIPAL_PK.fullmatch(reference) else None


def sortable_time(value: Any) -> str | None:
    """An ISO 8601 time as fixed-width UTC with milliseconds (``2026-01-01T00:00:00.000Z``), so that
    the sort keys of an org's log order by time; None for anything that is not a time."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    if parsed.year < 2000:
        return None
    return parsed.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def expires_at(now: float, retention_days: int) -> int:
    """The TTL (epoch seconds) of an event stored at ``now``."""
    return int(now) + retention_days * 86400


@dataclass(frozen=True)
class Dropped:
    """Why an event is not stored (logged; the event itself never is)."""

    reason: str


def audit_item(event: Mapping[str, Any], now: float, retention_days: int) -> AuditItem | Dropped:
    """What to store of one EventBridge event, or why nothing is."""
    detail_type = event.get("detail-type")
    if detail_type == NEVER_AUDITED:
        return Dropped("never audited")
    if event.get("source") != SOURCE or detail_type not in AUDITED_EVENT_TYPES:
        return Dropped("not a security event")
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        return Dropped("no detail")
    orgid = detail.get("orgid")
    if not isinstance(orgid, str) or not is_valid_orgid(orgid):
        return Dropped("no valid orgid")
    # Events relayed from the outbox carry their own id (the same on every relay); others, the bus's.
    event_id = next(
        (v for v in (detail.get("eventId"), event.get("id")) if isinstance(v, str) and EVENT_ID.fullmatch(v)),
        None,
    )
    if event_id is None:
        return Dropped("no valid event id")
    at = sortable_time(detail.get("time")) or sortable_time(event.get("time"))
    if at is None:
        return Dropped("no valid time")
    principal, actor = principal_ref(detail.get("principal")), principal_ref(detail.get("actor"))
    subjects = tuple(dict.fromkeys(s for s in (subject_of(r) for r in (principal, actor) if r) if s))
    return AuditItem(
        orgid=orgid,
        event_id=event_id,
        event_type=str(detail_type),
        time=at,
        principal=principal,
        actor=actor,
        detail=redact(detail),
        subjects=subjects,
        expires_at=expires_at(now, retention_days),
    )


# -- models ------------------------------------------------------------------------------------------
class AuditEvent(BaseModel):
    """One security event of the org, as its RootAdmin reads it."""

    id: str = Field(description="the event's id")
    type: str = Field(description="the event's detail-type, e.g. auth.sign_in_failed")
    time: str = Field(description="when it happened (UTC ISO 8601)")
    orgid: str
    principal: str | None = Field(default=None, description="whom it is about (a User's or Customer's sk)")
    actor: str | None = Field(default=None, description="who did it, when not the principal itself")
    detail: dict[str, FactValue] = Field(
        default_factory=dict, description="facts: kind, session, method, reason, keyId, email, ..."
    )

    @classmethod
    def of_item(cls, item: Mapping[str, Any]) -> AuditEvent:
        return cls(
            id=str(item["eventId"]),
            type=str(item["eventType"]),
            time=str(item["time"]),
            orgid=str(item["orgid"]),
            principal=item.get("principal"),
            actor=item.get("actor"),
            detail=redact(item.get("detail") or {}),
        )


class AuditQuery(BaseModel):
    """The filters of a listing: an event type and a principal (its sk or pk), each optional."""

    type: str | None = None
    principal: str | None = None

    def checked(self) -> tuple[str | None, str | None]:
        """(event type, subject in pk form); 422 for a type that is not audited or a principal that is
        neither a User's or Customer's sk nor its pk."""
        if self.type is not None and self.type not in AUDITED_EVENT_TYPES:
            raise invalid_field("type", "not an audited event type")
        subject = None
        if self.principal is not None:
            subject = subject_of(self.principal)
            if subject is None:
                raise invalid_field("principal", "a User's or Customer's sk or pk")
        return self.type, subject


def _query_identity(event_type: str | None, subject: str | None) -> str | None:
    """What a filtered listing's cursor belongs to (a cursor of another filter is 422)."""
    if event_type is None and subject is None:
        return None
    return hashlib.sha256(f"{event_type or ''}\n{subject or ''}".encode()).hexdigest()[:16]


# -- services ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recorded:
    result: Literal["stored", "duplicate", "dropped"]
    detail_type: str | None = None
    orgid: str | None = None
    event_id: str | None = None
    reason: str | None = None


class AuditRecorder:
    """Keeps security events delivered by the bus (the audit function's one job)."""

    def __init__(self, data: AuditData | None = None) -> None:
        self._data = data or AuditData()

    def record(self, event: Mapping[str, Any], now: float | None = None) -> Recorded:
        """Stores ``event`` once; a malformed or foreign event is dropped (``dropped`` and a reason),
        a failure of DynamoDB raises, so that the invoker delivers the event again."""
        detail_type = event.get("detail-type")
        shown_type = detail_type[:64] if isinstance(detail_type, str) else None
        item = audit_item(event, time.time() if now is None else now, get_settings().audit_retention_days)
        if isinstance(item, Dropped):
            return Recorded("dropped", detail_type=shown_type, reason=item.reason)
        stored = self._data.store(item)
        return Recorded(
            "stored" if stored else "duplicate",
            detail_type=item.event_type,
            orgid=item.orgid,
            event_id=item.event_id,
        )


class AuditService:
    """An org's security events, for its RootAdmin."""

    def __init__(self, data: AuditData | None = None) -> None:
        self._data = data or AuditData()

    def events(self, caller: Caller, page: PageRequest, query: AuditQuery) -> Page[AuditEvent]:
        """One page of the org's security events, newest first, filtered by ``query``."""
        actor = caller.principal
        if not actor.is_user or actor.credential != "jwt":
            raise Forbidden("the audit log is read with a staff member's own token")
        require_role(actor, *AUDIT_READER_ROLES)
        orgid = caller.orgid
        event_type, subject = query.checked()
        filtered = event_type is not None or subject is not None
        query_id = _query_identity(event_type, subject)
        after = decode_cursor(page.cursor, orgid, AUDIT_COLLECTION, query_id) if page.cursor else None
        to_skip = 0 if page.cursor else (page.page - 1) * page.page_size
        wanted = page.page_size + 1
        # The first page counts every match it can within the cap (``total``); later pages need not.
        count_all = after is None and to_skip == 0

        def read(limit: int, after_sort_key: str | None) -> tuple[list[dict[str, Any]], int, str | None]:
            batch = self._data.newest_first(
                orgid, limit=limit, after_sort_key=after_sort_key, event_type=event_type, subject=subject
            )
            return batch.items, batch.examined, batch.last_sort_key

        # Read on to the cap to count (the first page) or to find matches past the filter; otherwise
        # exactly what the page needs.
        found = examine(
            read,
            after=after,
            to_skip=to_skip,
            wanted=wanted,
            cap=MAX_EXAMINED + to_skip,
            read_on=filtered or count_all,
            count_all=count_all,
        )
        resume = found.resume_after(page.page_size, lambda item: str(item["_sk"]))
        next_cursor = encode_cursor(orgid, AUDIT_COLLECTION, resume, query_id) if resume is not None else None
        return Page[AuditEvent](
            data=[AuditEvent.of_item(item) for item in found.matches[: page.page_size]],
            total=found.matched if count_all and found.exhausted else None,
            page=page.page,
            pageSize=page.page_size,
            hasNext=next_cursor is not None,
            next=next_cursor,
        )
