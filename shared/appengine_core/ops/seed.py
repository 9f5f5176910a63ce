"""Loads a seed file (contract §9) into an org: orgs, staff Users, Customers and records.

Loading is idempotent for orgs and principals (an existing one is kept, not changed), so the same file
can be applied again after adding entries. Records are created unless they carry an ``id`` that exists.

A staff User's ``roles`` and ``permissions`` apply to every org of its ``orgs`` (the shape seed files had
before per-org memberships); an optional ``memberships`` object gives an org its own, e.g.
``"memberships": {"globex": {"roles": ["User"], "permissions": ["read"]}}`` (its orgs join ``orgs``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from appengine_core.identity.directory import DirectoryService, NewCustomer, NewUser, normalize_permissions
from appengine_core.identity.memberships import Membership
from appengine_core.infra.errors import Conflict
from appengine_core.records.writer import RecordWriter


class SeedOrg(BaseModel):
    orgid: str
    name: str = ""
    settings: dict[str, Any] = Field(default_factory=dict)


class SeedMembership(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: list[str] = Field(default_factory=lambda: ["User"])
    permissions: list[str] = Field(default_factory=lambda: ["read"])
    disabled: bool = False

    def membership(self) -> Membership:
        permissions = normalize_permissions(self.permissions)
        return Membership(roles=tuple(self.roles), permissions=tuple(permissions), disabled=self.disabled)


class SeedUser(NewUser):
    memberships: dict[str, SeedMembership] | None = None

    def orgs_and_memberships(self) -> tuple[list[str], dict[str, Membership]]:
        overrides = {org: m.membership() for org, m in (self.memberships or {}).items()}
        orgs = list(dict.fromkeys([*(self.orgs or []), *overrides]))
        return orgs, overrides


class SeedCustomer(NewCustomer):
    orgid: str


class SeedRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    orgid: str
    datatype: str
    data: dict[str, Any]
    id: str | None = None
    name: str = ""
    state: str = "new"
    requiredRole: str | None = None  # noqa: N815


class SeedFile(BaseModel):
    orgs: list[SeedOrg] = Field(default_factory=list)
    users: list[SeedUser] = Field(default_factory=list)
    customers: list[SeedCustomer] = Field(default_factory=list)
    records: list[SeedRecord] = Field(default_factory=list)


class SeedReport(BaseModel):
    created: dict[str, int] = Field(
        default_factory=lambda: {"orgs": 0, "users": 0, "customers": 0, "records": 0}
    )
    kept: dict[str, int] = Field(
        default_factory=lambda: {"orgs": 0, "users": 0, "customers": 0, "records": 0}
    )


def read_seed_file(path: str | Path) -> SeedFile:
    return SeedFile.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))


def apply_seed(
    seed: SeedFile, directory: DirectoryService | None = None, records: RecordWriter | None = None
) -> SeedReport:
    directory = directory or DirectoryService()
    records = records or RecordWriter()
    report = SeedReport()

    def attempt(kind: str, action: Any) -> None:
        try:
            action()
            report.created[kind] += 1
        except Conflict:
            report.kept[kind] += 1

    for org in seed.orgs:
        attempt("orgs", lambda org=org: directory.create_org(org.orgid, org.name, org.settings))
    for user in seed.users:
        orgs, overrides = user.orgs_and_memberships()
        if not orgs:
            raise ValueError(f"seed user {user.email} lists no orgs")
        staff = NewUser.model_validate(user.model_dump(exclude={"memberships"}) | {"orgs": orgs})
        attempt(
            "users",
            lambda staff=staff, home=orgs[0], overrides=overrides: directory.create_user(
                home, staff, memberships=overrides
            ),
        )
    for customer in seed.customers:
        new = NewCustomer.model_validate(customer.model_dump(exclude={"orgid"}))
        attempt("customers", lambda c=customer, new=new: directory.create_customer(c.orgid, new))
    for record in seed.records:
        attempt(
            "records",
            lambda r=record: records.create(
                r.orgid,
                r.datatype,
                r.data,
                name=r.name,
                state=r.state,
                required_role=r.requiredRole,
                record_id=r.id,
            ),
        )
    return report
