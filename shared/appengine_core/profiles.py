"""Who am I, customer self-service, and staff user management (contract §4)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from appengine_core.directory import (
    ROLE_NAME,
    DirectoryService,
    NewUser,
    membership_removals,
    membership_writes,
    normalize_permissions,
    public_record,
)
from appengine_core.errors import Conflict, Forbidden, NotFound, ValidationFailed, invalid_field
from appengine_core.events import EventPublisher, publish_best_effort
from appengine_core.guard import require_permission, require_role
from appengine_core.pagination import PageRequest, fetch_page
from appengine_core.principal import Principal
from appengine_core.records import Record, utc_now_iso
from appengine_core.repository import counter_key
from appengine_core.settings import get_settings
from appengine_core.store import ConditionFailed, Operation, TenantStore, Update
from appengine_core.tenancy import TenantKey, validate_orgid
from appengine_core.web import list_envelope

USER_ADMIN_ROLES = ("RootAdmin", "ConfigAdmin")
USER_LIST_ROLES = ("RootSystem", "RootAdmin", "RootPowerUser")
# Profile fields a customer may not set on itself.
RESERVED_PROFILE_FIELDS = frozenset(
    {"email", "password", "passwordHash", "disabled", "orgs", "roles", "permissions"}
)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: list[str] | None = None
    permissions: list[str] | None = None
    orgs: list[str] | None = Field(default=None, min_length=1)
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


def _resolve_user_id(path_id: str) -> str | None:
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
    ) -> None:
        self._store = store or TenantStore()
        self._directory = directory or DirectoryService(self._store)
        self._events = events or EventPublisher()

    # -- self ----------------------------------------------------------------------------------
    def _own_record(self, principal: Principal) -> Record:
        item = self._directory.get_principal(principal.principal_id, consistent=True)
        if item is None:
            raise NotFound("principal not found")
        return public_record(item)

    def whoami(self, principal: Principal, orgid: str) -> dict[str, Any]:
        return {"kind": principal.kind, "orgid": orgid, "principal": self._own_record(principal).model_dump()}

    def customer_profile(self, principal: Principal) -> Record:
        return self._own_record(principal)

    def update_customer_profile(self, principal: Principal, changes: dict[str, Any]) -> Record:
        reserved = sorted(RESERVED_PROFILE_FIELDS & set(changes))
        if reserved:
            raise ValidationFailed(
                details=[{"field": f, "problem": "cannot be changed here"} for f in reserved]
            )
        if not changes:
            raise invalid_field("body", "nothing to update")
        record = self._own_record(principal)
        return self._write_user_like(record, record.data | changes, [])

    # -- staff user management -----------------------------------------------------------------
    def create_user(self, actor: Principal, orgid: str, new: NewUser) -> Record:
        require_role(actor, *USER_ADMIN_ROLES)
        orgs = new.orgs or [orgid]
        if orgid not in orgs:
            orgs = [orgid, *orgs]
        self._check_grants(actor, new.roles, set(orgs))
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
        return record

    def list_org_users(
        self, actor: Principal, orgid: str, path_orgid: str, page: PageRequest
    ) -> dict[str, Any]:
        if path_orgid != orgid:
            raise Forbidden("the path org must be the orgid of the call")
        require_role(actor, *USER_LIST_ROLES)
        require_permission(actor, "read")
        result = fetch_page(
            page,
            orgid,
            "#member",
            lambda limit, after: self._store.query(orgid, "#member", limit=limit, after_sort_key=after),
        )
        keys = [TenantKey.parse(str(item["principal"])) for item in result.items]
        found = self._store.batch_get(keys)
        users = [public_record(found[k.sort]).model_dump() for k in keys if k.sort in found]
        total = int((self._store.get(counter_key(orgid, "user")) or {}).get("total", 0))
        return list_envelope(
            users,
            page=result.page,
            page_size=result.page_size,
            has_next=result.has_next,
            next_cursor=result.next_cursor,
            total=total,
        )

    def update_user(self, actor: Principal, orgid: str, path_id: str, update: UserUpdate) -> Record:
        require_role(actor, *USER_ADMIN_ROLES)
        user_id = _resolve_user_id(path_id)
        user_sk = self._directory.member_sk(orgid, user_id) if user_id else None
        if user_sk is None or (":" in path_id and path_id != user_sk):
            raise NotFound("no such user in this org")
        item = self._directory.get_principal(user_sk, consistent=True)
        if item is None:
            raise NotFound("no such user in this org")
        record = public_record(item)
        if update.version is not None and update.version != record.version:
            raise Conflict("the user was changed since you read it (stale version)")
        if record.sk == actor.principal_id and (
            update.disabled or (update.roles is not None and not set(USER_ADMIN_ROLES) & set(update.roles))
        ):
            # Lockout guard: another admin (or a platform root) must do this.
            raise Forbidden("you cannot disable yourself or drop your own admin role")
        current_orgs = [str(o) for o in record.data.get("orgs") or []]
        if not actor.platform_root and self._is_platform_member(current_orgs):
            raise Forbidden("only a platform root may change a platform user")
        data = dict(record.data)
        operations: list[Operation] = []
        if update.roles is not None:
            data["roles"] = list(dict.fromkeys(update.roles))
        if update.permissions is not None:
            data["permissions"] = {"content": update.permissions}
        if update.orgs is not None:
            if record.orgid not in update.orgs:
                raise invalid_field("orgs", "cannot remove the user's home org")
            added, removed = set(update.orgs) - set(current_orgs), set(current_orgs) - set(update.orgs)
            self._check_grants(actor, data.get("roles") or [], added | removed)
            email = str(data["email"])
            for org in sorted(added):
                operations.extend(membership_writes(org, record.sk, email))
            for org in sorted(removed):
                operations.extend(membership_removals(org, record.sk, email))
            data["orgs"] = update.orgs
        elif update.roles is not None:
            self._check_grants(actor, data["roles"], set())
        for field in ("disabled", "firstName", "lastName"):
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
        return updated

    # -- helpers -------------------------------------------------------------------------------
    def _write_user_like(self, record: Record, data: dict[str, Any], extra: list[Operation]) -> Record:
        now = utc_now_iso()
        write = Update(
            record.key,
            "SET #data = :data, #version = :next, modifydate = :now",
            values={":data": data, ":next": record.version + 1, ":now": now, ":current": record.version},
            names={"#data": "data", "#version": "version"},
            condition="#version = :current",
        )
        try:
            self._store.transact([write, *extra])
        except ConditionFailed as exc:
            if exc.index == 0:
                raise Conflict("changed concurrently; read it again") from exc
            raise Conflict("an email in one of the orgs is already taken, or an org does not exist") from exc
        return record.model_copy(update={"data": data, "version": record.version + 1, "modifydate": now})

    def _is_platform_member(self, orgs: list[str]) -> bool:
        return get_settings().platform_orgid in orgs

    def _check_grants(self, actor: Principal, roles: list[str], orgs: set[str]) -> None:
        """No escalation: only a platform root grants RootSystem or platform membership; a ConfigAdmin
        cannot make RootAdmins; nobody adds users to orgs they cannot act on themselves."""
        if actor.platform_root:
            return
        if "RootSystem" in roles or self._is_platform_member(sorted(orgs)):
            raise Forbidden("only a platform root may grant RootSystem or platform membership")
        if "RootAdmin" in roles and not actor.has_role("RootAdmin"):
            raise Forbidden("only a RootAdmin may grant RootAdmin")
        actor_item = self._directory.get_principal(actor.principal_id) or {}
        allowed = set((actor_item.get("data") or {}).get("orgs") or [])
        if not orgs <= allowed:
            raise Forbidden("cannot grant orgs you may not act on")
