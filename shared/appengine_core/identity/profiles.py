"""Who am I, customer self-service, and staff user management (contract §4).

Staff user management follows the admin rank of contract §1, org by org: in each org it touches, the
actor must be an admin there (its own membership, or its platform membership for a platform root), may
grant only roles ranked at or below its own highest role there and only permissions it holds there, may
change only users ranked at or below it there, and never changes its own roles, permissions or
``disabled``. A change made in one org never changes a membership in another.

Customer administration (the org's customers listed, one disabled or enabled again) and the unlock of
an email locked by the brute-force guard (``lockout``) are here too: the org's admins, with a person's
token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from appengine_core.identity.data import IdentityData, PrincipalKind, membership_removals, membership_writes
from appengine_core.identity.directory import (
    ROLE_NAME,
    CustomerProfile,
    DirectoryService,
    NewUser,
    normalize_email,
    normalize_permissions,
    shown_to_self,
)
from appengine_core.identity.lockout import BruteForceGuard
from appengine_core.identity.memberships import Membership, memberships_of, role_rank, user_data_for_org
from appengine_core.identity.principal import Caller, Principal, require_permission, require_role
from appengine_core.infra.envelope import Record, record_key_from_path_id, utc_now_iso
from appengine_core.infra.errors import Conflict, Forbidden, NotFound, invalid_field
from appengine_core.infra.events import EventPublisher, publish_best_effort
from appengine_core.infra.limits import check_storable
from appengine_core.infra.paging import Page, PageRequest
from appengine_core.infra.settings import get_settings
from appengine_core.infra.store import ConditionFailed, Operation, TenantStore
from appengine_core.infra.tenancy import validate_orgid

USER_ADMIN_ROLES = ("RootAdmin", "ConfigAdmin")
USER_LIST_ROLES = ("RootSystem", "RootAdmin", "RootPowerUser")
# Legacy top-level rights: a User written again is written in the membership shape only.
LEGACY_RIGHTS_FIELDS = ("roles", "permissions", "disabled")


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: list[str] | None = Field(default=None, max_length=50)
    permissions: list[str] | None = None
    orgs: list[str] | None = Field(default=None, min_length=1, max_length=100)
    disabled: bool | None = None
    firstName: str | None = Field(default=None, max_length=200)  # noqa: N815
    lastName: str | None = Field(default=None, max_length=200)  # noqa: N815
    version: int | None = None

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not ROLE_NAME.fullmatch(r) for r in value):
            raise ValueError("invalid role name")
        return value

    @field_validator("orgs")
    @classmethod
    def _orgs(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(dict.fromkeys(validate_orgid(o) for o in value))

    @field_validator("permissions", mode="before")
    @classmethod
    def _permissions(cls, value: Any) -> Any:
        return None if value is None else normalize_permissions(value)


class UnlockRequest(BaseModel):
    """Whose lock to clear: any email, existing or not (unknown emails are locked alike)."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=320)


class CustomerUpdate(BaseModel):
    """What an org's admin changes on a customer (contract §4): whether it is disabled."""

    model_config = ConfigDict(extra="forbid")

    disabled: StrictBool


class WhoAmI(BaseModel):
    """The caller as a call on ``orgid`` shows it to itself (contract §4)."""

    kind: PrincipalKind
    orgid: str
    principal: Record


def resolve_user_id(path_id: str) -> str | None:
    """A user's id from its ``pk`` (``user-<id>``) or ``sk`` (``<home>:user:<id>``)."""
    if path_id.startswith("user-"):
        return path_id[5:] or None
    parts = path_id.split(":")
    if len(parts) == 3 and parts[1] == "user" and parts[2]:
        return parts[2]
    return None


class ProfileService:
    def __init__(
        self,
        directory: DirectoryService | None = None,
        store: TenantStore | None = None,
        events: EventPublisher | None = None,
        lockout: BruteForceGuard | None = None,
    ) -> None:
        self._data = IdentityData(store)
        self._directory = directory or DirectoryService(data=self._data)
        self._events = events or EventPublisher()
        self._lockout = lockout or BruteForceGuard(self._data, self._events)

    # -- self ----------------------------------------------------------------------------------
    def _own_record(self, caller: Caller) -> Record:
        record = self._directory.principal(caller.principal.principal_id, consistent=True)
        if record is None:
            raise NotFound("principal not found")
        return record

    def whoami(self, caller: Caller) -> WhoAmI:
        record = shown_to_self(self._own_record(caller), caller.orgid)
        return WhoAmI(kind=caller.principal.kind, orgid=caller.orgid, principal=record)

    def customer_profile(self, caller: Caller) -> Record:
        return self._own_record(caller)

    def update_customer_profile(self, caller: Caller, changes: CustomerProfile) -> Record:
        fields = changes.model_dump(exclude_unset=True)
        if not fields:
            raise invalid_field("body", "nothing to update")
        record = self._own_record(caller)
        data = check_storable(record.data | fields, "body")
        return self._write_user_like(record, data, [])

    # -- staff user management -----------------------------------------------------------------
    def create_user(self, caller: Caller, new: NewUser) -> Record:
        actor, orgid = caller.principal, caller.orgid
        require_role(actor, *USER_ADMIN_ROLES)
        orgs = new.orgs or [orgid]
        if orgid not in orgs:
            orgs = [orgid, *orgs]
        grant = new.membership()
        actor_data = self._actor_data(actor, orgid, orgs)
        for org in orgs:
            self._check_grant(
                actor, org, self._admin_membership(actor, orgid, org, actor_data), Membership(), grant
            )
        record = self._directory.create_user(
            orgid, new.model_copy(update={"orgs": orgs}), author=actor.principal_id
        )
        publish_best_effort(
            self._events,
            "user.created",
            orgid,
            principal=record.sk,
            actor=actor.principal_id,
            roles=new.roles,
            orgs=orgs,
        )
        return shown_in_org(record, orgid)

    def list_org_users(self, caller: Caller, path_orgid: str, page: PageRequest) -> Page[Record]:
        actor, orgid = caller.principal, caller.orgid
        if path_orgid != orgid:
            raise Forbidden("the path org must be the orgid of the call")
        require_role(actor, *USER_LIST_ROLES)
        require_permission(actor, "read")
        result, records = self._data.member_page(orgid, page)
        # Each user as this org sees it: its membership here, never its other orgs (contract §1).
        users = [shown_in_org(record, orgid) for record in records]
        return Page[Record].of(users, result, total=self._data.count(orgid, "user"))

    def update_user(self, caller: Caller, path_id: str, update: UserUpdate) -> Record:
        actor, orgid = caller.principal, caller.orgid
        require_role(actor, *USER_ADMIN_ROLES)
        user_id = resolve_user_id(path_id)
        user_sk = self._directory.member_sk(orgid, user_id) if user_id else None
        if user_sk is None or (":" in path_id and path_id != user_sk):
            raise NotFound("no such user in this org")
        record = self._directory.principal(user_sk, consistent=True)
        if record is None:
            raise NotFound("no such user in this org")
        if update.version is not None and update.version != record.version:
            raise Conflict("the user was changed since you read it (stale version)")
        is_self = record.sk == actor.principal_id
        current_orgs = [str(o) for o in record.data.get("orgs") or []]
        platform = get_settings().platform_orgid
        if not actor.platform_root and not is_self and platform in current_orgs:
            raise Forbidden("only a platform root may change a platform user")
        memberships = dict(memberships_of(record.data).by_org)
        mine = self._admin_membership(actor, orgid, orgid, {})
        here = memberships.get(orgid, Membership())
        if not is_self:
            self._check_target(orgid, mine, here)
        changed = here.model_copy(
            update={
                k: v
                for k, v in {
                    "roles": None if update.roles is None else tuple(dict.fromkeys(update.roles)),
                    "permissions": None if update.permissions is None else tuple(update.permissions),
                    "disabled": update.disabled,
                }.items()
                if v is not None
            }
        )
        if changed != here:
            if is_self:
                raise Forbidden("nobody changes its own roles, permissions or disabled flag")
            self._check_grant(actor, orgid, mine, here, changed)
            memberships[orgid] = changed
        orgs = current_orgs
        operations: list[Operation] = []
        if update.orgs is not None and update.orgs != current_orgs:
            orgs, operations = self._change_orgs(actor, orgid, record, update.orgs, changed, memberships)
        data = {k: v for k, v in record.data.items() if k not in LEGACY_RIGHTS_FIELDS}
        data["orgs"] = orgs
        data["memberships"] = {org: memberships.get(org, Membership()).to_item() for org in orgs}
        for field in ("firstName", "lastName"):
            value = getattr(update, field)
            if value is not None:
                data[field] = value
        updated = self._write_user_like(record, data, operations)
        publish_best_effort(
            self._events,
            "user.updated",
            orgid,
            principal=record.sk,
            actor=actor.principal_id,
            fields=sorted(update.model_dump(exclude_none=True, exclude={"version"})),
        )
        return shown_in_org(updated, orgid)

    def _change_orgs(
        self,
        actor: Principal,
        orgid: str,
        record: Record,
        wanted: list[str],
        template: Membership,
        memberships: dict[str, Membership],
    ) -> tuple[list[str], list[Operation]]:
        """Memberships added and removed by ``orgs`` (each in an org where the actor is an admin): the
        new org list, with ``memberships`` changed in place, and the writes of the member items."""
        if record.orgid not in wanted:
            raise invalid_field("orgs", "cannot remove the user's home org")
        if record.sk == actor.principal_id:
            raise Forbidden("nobody changes its own memberships")
        current = [str(o) for o in record.data.get("orgs") or []]
        added = [o for o in wanted if o not in current]
        removed = [o for o in current if o not in wanted]
        actor_data = self._actor_data(actor, orgid, added + removed)
        # A new membership gets the rights this update gives in the org of the call (never disabled).
        grant = Membership(roles=template.roles, permissions=template.permissions)
        operations: list[Operation] = []
        email = str(record.data["email"])
        for org in added:
            self._check_grant(
                actor, org, self._admin_membership(actor, orgid, org, actor_data), Membership(), grant
            )
            memberships[org] = grant
            operations.extend(membership_writes(org, record.sk, email))
        for org in removed:
            self._check_target(
                org, self._admin_membership(actor, orgid, org, actor_data), memberships.get(org)
            )
            memberships.pop(org, None)
            operations.extend(membership_removals(org, record.sk, email))
        return wanted, operations

    # -- customer administration and unlock ----------------------------------------------------
    def list_customers(self, caller: Caller, page: PageRequest, email: str | None = None) -> Page[Record]:
        """The org's customers, paged; ``email``: the one customer of that exact email, if any."""
        actor, orgid = caller.principal, caller.orgid
        if not actor.is_user:
            raise Forbidden("customers are listed by staff")
        require_permission(actor, "read")
        if email is None:
            result, records = self._data.customer_page(orgid, page)
            return Page[Record].of(records, result, total=self._data.count(orgid, "customer"))
        try:
            normalized: str | None = normalize_email(email)
        except ValueError:
            normalized = None  # not an email: no customer has it
        found = self._directory.principal_by_email(orgid, "customer", normalized) if normalized else None
        matches = [found.record] if found is not None and page.page == 1 and not page.cursor else []
        return Page[Record](
            data=matches, total=len(matches), page=page.page, pageSize=page.page_size, hasNext=False
        )

    def update_customer(self, caller: Caller, path_id: str, update: CustomerUpdate) -> Record:
        """Disables a customer of the org (its tokens stop at the next request, its sign-in is 401) or
        enables it again; ``path_id`` is its pk or sk; another org's customer is 404."""
        actor, orgid = self._person_admin(caller)
        key = record_key_from_path_id(orgid, "customer", path_id)
        stored = self._data.principal(key.sort, consistent=True) if key else None
        if stored is None:
            raise NotFound("no such customer in this org")
        record = stored.record
        if bool(record.data.get("disabled")) == update.disabled:
            return record
        updated = self._write_user_like(record, record.data | {"disabled": update.disabled}, [])
        publish_best_effort(
            self._events,
            "customer.updated",
            orgid,
            principal=record.sk,
            actor=actor.principal_id,
            disabled=update.disabled,
        )
        return updated

    def unlock(self, caller: Caller, kind: PrincipalKind, request: UnlockRequest) -> None:
        """Clears the failed sign-ins, the lock and the escalation of an email of ``kind`` in the org."""
        actor, orgid = self._person_admin(caller)
        self._lockout.unlock(orgid, kind, request.email, actor.principal_id)

    @staticmethod
    def _person_admin(caller: Caller) -> tuple[Principal, str]:
        """An admin of the org of the call, with a person's token: keys never administer (§1)."""
        actor = caller.principal
        if not actor.is_user or actor.credential != "jwt":
            raise Forbidden("needs a staff member's own token")
        require_role(actor, *USER_ADMIN_ROLES)
        return actor, caller.orgid

    # -- the admin rank ------------------------------------------------------------------------
    def _actor_data(self, actor: Principal, orgid: str, orgs: list[str]) -> Mapping[str, Any]:
        """The actor's stored ``data``, read only when it acts on orgs beyond the org of the call (its
        rights there are not in the principal)."""
        if actor.platform_root or all(org == orgid for org in orgs):
            return {}
        record = self._directory.principal(actor.principal_id, consistent=True)
        return record.data if record else {}

    @staticmethod
    def _admin_membership(
        actor: Principal, orgid: str, org: str, actor_data: Mapping[str, Any]
    ) -> Membership:
        """The actor's rights in ``org``: 403 unless it is an admin there. A platform root acts with its
        platform membership everywhere; in the org of the call the principal carries the membership."""
        if actor.platform_root or org == orgid:
            mine: Membership | None = Membership(roles=actor.roles, permissions=actor.permissions)
        else:
            mine = memberships_of(actor_data).of(org)
        if mine is None or mine.disabled:
            raise Forbidden(f"you are not a member of {org}")
        if not actor.platform_root and not set(USER_ADMIN_ROLES) & set(mine.roles):
            raise Forbidden(f"you are not an admin of {org}")
        return mine

    @staticmethod
    def _check_grant(
        actor: Principal, org: str, mine: Membership, before: Membership, after: Membership
    ) -> None:
        """Roles and permissions added in ``org`` must be within the actor's own there."""
        if org == get_settings().platform_orgid and not actor.platform_root:
            raise Forbidden("only a platform root may grant platform membership")
        above = sorted(r for r in set(after.roles) - set(before.roles) if role_rank(r) > mine.rank)
        if above:
            raise Forbidden(f"you cannot grant {', '.join(above)} in {org}: it ranks above your own role")
        missing = sorted(set(after.permissions) - set(before.permissions) - set(mine.permissions))
        if missing:
            raise Forbidden(f"you cannot grant permissions you do not hold in {org}: {', '.join(missing)}")

    @staticmethod
    def _check_target(org: str, mine: Membership, target: Membership | None) -> None:
        if target is not None and target.rank > mine.rank:
            raise Forbidden(f"the user ranks above you in {org}")

    # -- helpers -------------------------------------------------------------------------------
    def _write_user_like(self, record: Record, data: dict[str, Any], extra: list[Operation]) -> Record:
        try:
            return self._data.rewrite(record, data, utc_now_iso(), extra)
        except ConditionFailed as exc:
            if exc.index == 0:
                raise Conflict("changed concurrently; read it again") from exc
            raise Conflict("an email in one of the orgs is already taken, or an org does not exist") from exc


def shown_in_org(record: Record, orgid: str) -> Record:
    """A User as a call on ``orgid`` shows it to an admin: that org's membership only (contract §1)."""
    return record.model_copy(update={"data": user_data_for_org(record.data, orgid)})
