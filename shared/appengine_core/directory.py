"""Orgs, staff Users and Customers: creation and lookup (the principals behind every credential).

Layout (all keys tenant-scoped, see ``tenancy``):
- org:                 ``<org>:#org:<org>``
- User record:         ``<home org>:user:<id>`` (BaseModel, ``data.orgs`` lists the orgs it may act on)
- User email index:    ``<org>:#user-email:<email>`` for every org in ``data.orgs`` -> the User's sk;
                       its partition is also the org's member list
- Customer record:     ``<org>:customer:<id>``; email index ``<org>:#customer-email:<email>``
Email uniqueness per (org, principal kind) is enforced by the index items' conditional puts, in the same
transaction as the record.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from appengine_core.errors import Conflict, NotFound, ValidationFailed
from appengine_core.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, hash_password
from appengine_core.records import Record, new_id, utc_now_iso
from appengine_core.store import Check, ConditionFailed, Put, TenantStore
from appengine_core.tenancy import TenantKey, validate_orgid

PrincipalKind = Literal["user", "customer"]
ROLES = ("RootSystem", "RootAdmin", "RootPowerUser", "ConfigAdmin", "ContentAdmin", "User")
CONTENT_PERMISSIONS = ("create", "read", "update", "delete", "review", "approve")
ROLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
EMAIL = re.compile(r"^[^@\s:]{1,64}@[^@\s:]{1,255}\.[^@\s:]{1,63}$")
ORG_COLLECTION = "#org"
SECRET_ATTRIBUTES = ("passwordHash",)


def normalize_email(email: str) -> str:
    normalized = email.strip().lower()
    if not EMAIL.fullmatch(normalized):
        raise ValueError("not an email address")
    return normalized


def email_index_key(orgid: str, kind: PrincipalKind, email: str) -> TenantKey:
    return TenantKey(orgid, f"#{kind}-email", email)


def org_key(orgid: str) -> TenantKey:
    return TenantKey(orgid, ORG_COLLECTION, orgid)


class Org(BaseModel):
    orgid: str
    name: str
    createdAt: str  # noqa: N815
    settings: dict[str, Any] = Field(default_factory=dict)


class NewPrincipal(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    email: str
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)
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
    roles: list[str] = Field(default_factory=lambda: ["User"])
    permissions: list[str] = Field(default_factory=lambda: ["read"])
    orgs: list[str] | None = None

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
        if isinstance(value, dict):  # the stored shape {"content": [...]} is accepted too
            value = value.get("content", [])
        return value

    @field_validator("permissions")
    @classmethod
    def _known_permissions(cls, value: list[str]) -> list[str]:
        unknown = set(value) - set(CONTENT_PERMISSIONS)
        if unknown:
            raise ValueError(f"unknown permissions: {sorted(unknown)}")
        return [p for p in CONTENT_PERMISSIONS if p in value]

    @field_validator("orgs")
    @classmethod
    def _orgs(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        return list(dict.fromkeys(validate_orgid(o) for o in value))


class NewCustomer(NewPrincipal):
    pass


class DirectoryService:
    def __init__(self, store: TenantStore | None = None) -> None:
        self._store = store or TenantStore()

    # -- orgs ----------------------------------------------------------------------------------
    def create_org(self, orgid: str, name: str, settings: dict[str, Any] | None = None) -> Org:
        org = Org(
            orgid=validate_orgid(orgid), name=name or orgid, createdAt=utc_now_iso(), settings=settings or {}
        )
        try:
            self._store.put(Put(org_key(orgid), org.model_dump()))
        except ConditionFailed as exc:
            raise Conflict(f"org {orgid} already exists") from exc
        return org

    def get_org(self, orgid: str) -> Org | None:
        item = self._store.get(org_key(orgid))
        return Org.model_validate(item) if item else None

    # -- principals ----------------------------------------------------------------------------
    def create_user(self, home_orgid: str, new: NewUser, *, author: str | None = None) -> Record:
        orgs = new.orgs or [home_orgid]
        if home_orgid not in orgs:
            orgs = [home_orgid, *orgs]
        data = new.profile_data() | {
            "orgs": orgs,
            "roles": new.roles,
            "permissions": {"content": new.permissions},
            "disabled": False,
        }
        record = Record.new(orgid=home_orgid, datatype="user", data=data, name=new.email, author=author)
        operations: list[Any] = [
            Put(record.key, record.to_item() | {"passwordHash": hash_password(new.password)}),
        ]
        for orgid in orgs:
            operations.append(Check(org_key(orgid), "attribute_exists(PK)"))
            operations.append(Put(email_index_key(orgid, "user", new.email), {"principal": record.sk}))
        self._commit_principal(operations, orgs)
        return record

    def create_customer(self, orgid: str, new: NewCustomer) -> Record:
        data = new.profile_data() | {"disabled": False}
        record = Record.new(orgid=orgid, datatype="customer", data=data, name=new.email, record_id=new_id())
        record = record.model_copy(update={"author": record.sk, "owner": record.sk})
        self._commit_principal(
            [
                Put(record.key, record.to_item() | {"passwordHash": hash_password(new.password)}),
                Check(org_key(orgid), "attribute_exists(PK)"),
                Put(email_index_key(orgid, "customer", new.email), {"principal": record.sk}),
            ],
            [orgid],
        )
        return record

    def _commit_principal(self, operations: list[Any], orgs: list[str]) -> None:
        try:
            self._store.transact(operations)
        except ConditionFailed as exc:
            failed = operations[exc.index] if exc.index is not None else None
            if isinstance(failed, Check):
                raise NotFound(f"org {failed.key.orgid} does not exist") from exc
            raise Conflict("a principal with this email already exists in this org") from exc

    def find_by_email(self, orgid: str, kind: PrincipalKind, email: str) -> dict[str, Any] | None:
        """The stored principal item (secrets included, for the sign-in service only), or None."""
        try:
            normalized = normalize_email(email)
        except ValueError:
            return None
        index = self._store.get(email_index_key(orgid, kind, normalized))
        if not index:
            return None
        return self._store.get(TenantKey.parse(index["principal"]))

    def get_principal(self, principal_sk: str) -> dict[str, Any] | None:
        return self._store.get(TenantKey.parse(principal_sk))


def public_record(item: dict[str, Any]) -> Record:
    """The envelope of a stored principal, secrets dropped."""
    return Record.from_item(item)


def invalid(field: str, problem: str) -> ValidationFailed:
    return ValidationFailed(details=[{"field": field, "problem": problem}])
