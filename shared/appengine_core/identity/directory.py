"""Orgs, staff Users and Customers: creation and lookup (the principals behind every credential).

Where they live and the writes that make them are in ``identity.data``; email uniqueness per (org,
principal kind) is enforced there by the index items' conditional puts, in the same transaction as the
record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

# Re-exported (``X as X``): other wings and the operator tools name these from here.
from appengine_core.identity.data import MEMBER_COLLECTION as MEMBER_COLLECTION
from appengine_core.identity.data import ORG_COLLECTION as ORG_COLLECTION
from appengine_core.identity.data import IdentityData, StoredPrincipal, new_customer_writes, new_user_writes
from appengine_core.identity.data import Org as Org
from appengine_core.identity.data import PrincipalKind as PrincipalKind
from appengine_core.identity.data import email_index_key as email_index_key
from appengine_core.identity.data import member_key as member_key
from appengine_core.identity.data import membership_removals as membership_removals
from appengine_core.identity.data import membership_writes as membership_writes
from appengine_core.identity.data import org_key as org_key
from appengine_core.identity.memberships import Membership, user_data_for_org
from appengine_core.identity.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, hash_password
from appengine_core.infra.envelope import Record, new_id, utc_now_iso
from appengine_core.infra.errors import Conflict, NotFound, ValidationFailed
from appengine_core.infra.limits import check_storable
from appengine_core.infra.store import Check, ConditionFailed, Operation, TenantStore
from appengine_core.infra.tenancy import validate_orgid

ROLES = ("RootSystem", "RootAdmin", "RootPowerUser", "ConfigAdmin", "ContentAdmin", "User")
CONTENT_PERMISSIONS = ("create", "read", "update", "delete", "review", "approve")
ROLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
EMAIL = re.compile(r"^[^@\s:]{1,64}@[^@\s:]{1,255}\.[^@\s:]{1,63}$")
SECRET_ATTRIBUTES = ("passwordHash",)
# Fields that only the service writes: a body naming one of them is refused (422), never stored in
# ``data`` where it could pass for authority (contract §4).
SYSTEM_FIELDS = frozenset(
    {
        "roles",
        "orgs",
        "permissions",
        "memberships",
        "disabled",
        "pk",
        "sk",
        "PK",
        "SK",
        "passwordHash",
        "password_hash",
        "datatype",
        "version",
        "state",
        "author",
        "owner",
        "requiredRole",
        "createdate",
        "modifydate",
        "email_verified",
        "emailVerified",
        "twoFactor",
        "totpSecret",
    }
)
MAX_METADATA_BYTES = 16 * 1024
MAX_ADDRESS_BYTES = 4 * 1024
MAX_EXTRA_PROFILE_BYTES = 16 * 1024


def normalize_permissions(value: Any) -> list[str]:
    """Content permissions as a list in canonical order; the stored ``{"content": [...]}`` is accepted."""
    if isinstance(value, dict):
        value = value.get("content", [])
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise ValueError("permissions must be a list of names")
    unknown = set(value) - set(CONTENT_PERMISSIONS)
    if unknown:
        raise ValueError(f"unknown permissions: {sorted(unknown)}")
    return [p for p in CONTENT_PERMISSIONS if p in value]


def normalize_email(email: str) -> str:
    normalized = email.strip().lower()
    if not EMAIL.fullmatch(normalized):
        raise ValueError("not an email address")
    return normalized


def _storable(value: Any, field: str, max_bytes: int) -> Any:
    """``limits.check_storable`` as a pydantic validator: its 422 becomes a validation error."""
    try:
        return check_storable(value, field, max_bytes=max_bytes)
    except ValidationFailed as refusal:
        problem = (refusal.details or [{}])[0].get("problem", "cannot be stored")
        raise ValueError(str(problem)) from refusal


def shown_to_self(record: Record, orgid: str) -> Record:
    """A principal's own record as a call on ``orgid`` shows it: a User sees the roles, permissions and
    ``disabled`` of that org's membership (contract §1), and the list of its own orgs."""
    if record.datatype != "user":
        return record
    return record.model_copy(update={"data": user_data_for_org(record.data, orgid, own=True)})


class NewPrincipal(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    email: str = Field(max_length=320)
    # SecretStr: never shown by repr or logs (Powertools logs handler arguments at DEBUG).
    password: SecretStr = Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)
    firstName: str | None = Field(default=None, max_length=200)  # noqa: N815
    lastName: str | None = Field(default=None, max_length=200)  # noqa: N815

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return normalize_email(value)

    def profile_data(self) -> dict[str, Any]:
        """Payload fields for ``data``: everything given except the password."""
        return self.model_dump(exclude={"password"}, exclude_none=True)


class NewUser(NewPrincipal):
    roles: list[str] = Field(default_factory=lambda: ["User"], max_length=50)
    permissions: list[str] = Field(default_factory=lambda: ["read"])
    orgs: list[str] | None = Field(default=None, max_length=100)

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: list[str]) -> list[str]:
        for role in value:
            if not ROLE_NAME.fullmatch(role):
                raise ValueError(f"invalid role name: {role!r}")
        return list(dict.fromkeys(value))

    @field_validator("permissions", mode="before")
    @classmethod
    def _permissions(cls, value: Any) -> Any:
        return normalize_permissions(value)

    @field_validator("orgs")
    @classmethod
    def _orgs(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        return list(dict.fromkeys(validate_orgid(o) for o in value))

    @model_validator(mode="after")
    def _no_system_fields(self) -> NewUser:
        # Other profile fields AppEngine's clients send are kept in ``data``; authority never is.
        extra = dict(self.model_extra or {})
        reserved = sorted(SYSTEM_FIELDS & set(extra))
        if reserved:
            raise ValueError(f"fields the service sets itself: {', '.join(reserved)}")
        if extra:
            _storable(extra, "body", MAX_EXTRA_PROFILE_BYTES)
        return self

    def profile_data(self) -> dict[str, Any]:
        """Profile fields for ``data``: rights live in the memberships, never at the top level."""
        return self.model_dump(exclude={"password", "roles", "permissions", "orgs"}, exclude_none=True)

    def membership(self) -> Membership:
        return Membership(roles=tuple(self.roles), permissions=tuple(self.permissions))


class CustomerProfile(BaseModel):
    """The fields a customer sets on itself, at sign-up or later (contract §4): nothing else."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    firstName: str | None = Field(default=None, max_length=200)  # noqa: N815
    lastName: str | None = Field(default=None, max_length=200)  # noqa: N815
    phone: str | None = Field(default=None, max_length=50)
    address: str | dict[str, Any] | None = Field(default=None, max_length=1000)
    avatar: str | None = Field(default=None, max_length=2048)
    locale: str | None = Field(default=None, max_length=35)
    metadata: dict[str, Any] | None = None

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        return _storable(value, "address", MAX_ADDRESS_BYTES) if isinstance(value, dict) else value

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else _storable(value, "metadata", MAX_METADATA_BYTES)


class NewCustomer(CustomerProfile):
    email: str = Field(max_length=320)
    password: SecretStr = Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return normalize_email(value)

    def profile_data(self) -> dict[str, Any]:
        """Payload fields for ``data``: everything given except the password."""
        return self.model_dump(exclude={"password"}, exclude_none=True)


class DirectoryService:
    """Orgs and principals. Not on behalf of a caller: the sign-in service, the user-management rules
    of ``profiles`` and the operator tools decide who may create what, then call this."""

    def __init__(self, store: TenantStore | None = None, data: IdentityData | None = None) -> None:
        self._data = data or IdentityData(store)

    # -- orgs ----------------------------------------------------------------------------------
    def create_org(self, orgid: str, name: str, settings: dict[str, Any] | None = None) -> Org:
        org = Org(
            orgid=validate_orgid(orgid), name=name or orgid, createdAt=utc_now_iso(), settings=settings or {}
        )
        try:
            self._data.put_org(org)
        except ConditionFailed as exc:
            raise Conflict(f"org {orgid} already exists") from exc
        return org

    def get_org(self, orgid: str) -> Org | None:
        return self._data.org(orgid)

    # -- principals ----------------------------------------------------------------------------
    def create_user(
        self,
        home_orgid: str,
        new: NewUser,
        *,
        author: str | None = None,
        memberships: Mapping[str, Membership] | None = None,
    ) -> Record:
        """A User with a membership in every org of ``new.orgs`` (the home org first if missing): the
        roles and permissions of ``new``, unless ``memberships`` names that org."""
        orgs = new.orgs or [home_orgid]
        if home_orgid not in orgs:
            orgs = [home_orgid, *orgs]
        default = new.membership()
        by_org = {org: (memberships or {}).get(org, default) for org in orgs}
        data = new.profile_data() | {"orgs": orgs, "memberships": {o: m.to_item() for o, m in by_org.items()}}
        record = Record.new(orgid=home_orgid, datatype="user", data=data, name=new.email, author=author)
        password_hash = hash_password(new.password.get_secret_value())
        self._commit_principal(new_user_writes(record, password_hash, orgs, new.email))
        return record

    def create_customer(self, orgid: str, new: NewCustomer) -> Record:
        data = new.profile_data() | {"disabled": False}
        record = Record.new(orgid=orgid, datatype="customer", data=data, name=new.email, record_id=new_id())
        record = record.model_copy(update={"author": record.sk, "owner": record.sk})
        password_hash = hash_password(new.password.get_secret_value())
        self._commit_principal(new_customer_writes(record, password_hash, new.email))
        return record

    def create_customer_without_password(self, orgid: str, email: str, profile: CustomerProfile) -> Record:
        """A Customer that signs in only through a linked identity (social sign-in, contract §4): no
        password hash is stored, so a password sign-in verifies against the dummy hash and fails as a
        wrong password does, in the same time. 409 if the email is taken meanwhile, 404 without the org."""
        email = normalize_email(email)
        data = profile.model_dump(exclude_none=True) | {"email": email, "disabled": False}
        record = Record.new(orgid=orgid, datatype="customer", data=data, name=email, record_id=new_id())
        record = record.model_copy(update={"author": record.sk, "owner": record.sk})
        self._commit_principal(new_customer_writes(record, None, email))
        return record

    def _commit_principal(self, operations: list[Operation]) -> None:
        try:
            self._data.commit(operations)
        except ConditionFailed as exc:
            failed = operations[exc.index] if exc.index is not None else None
            if isinstance(failed, Check):
                raise NotFound(f"org {failed.key.orgid} does not exist") from exc
            raise Conflict("a principal with this email already exists in this org") from exc

    def principal_by_email(self, orgid: str, kind: PrincipalKind, email: str) -> StoredPrincipal | None:
        """The stored principal (its password hash included, for the sign-in service only), or None."""
        sk = self._sk_by_email(orgid, kind, email)
        return self._data.principal(sk) if sk else None

    def signing_in(
        self, orgid: str, kind: PrincipalKind, email: str
    ) -> tuple[StoredPrincipal | None, dict[str, Any] | None]:
        """For the sign-in service only: the stored principal of ``email`` (password hash included) and
        its 2FA item, read together, or (None, None)."""
        sk = self._sk_by_email(orgid, kind, email)
        return self._data.principal_and_second_factor(sk) if sk else (None, None)

    def principal(self, principal_sk: str, *, consistent: bool = False) -> Record | None:
        """A principal's public envelope, or None."""
        stored = self._data.principal(principal_sk, consistent=consistent)
        return stored.record if stored else None

    def _sk_by_email(self, orgid: str, kind: PrincipalKind, email: str) -> str | None:
        try:
            normalized = normalize_email(email)
        except ValueError:
            return None
        return self._data.principal_sk_by_email(orgid, kind, normalized)

    def member_sk(self, orgid: str, user_id: str) -> str | None:
        """The sk of the user ``user_id`` if it is a member of ``orgid``."""
        return self._data.member_sk(orgid, user_id)
