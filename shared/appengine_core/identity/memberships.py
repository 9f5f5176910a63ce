"""A staff User's rights, held per org (contract §1): memberships, the admin rank, and the views of a
User record that show one org's membership only.

Stored shape of a User's ``data``::

    "orgs": ["acme", "globex"],
    "memberships": {"acme": {"roles": ["RootAdmin"], "permissions": ["read", ...], "disabled": false},
                    "globex": {"roles": ["User"], "permissions": ["read"], "disabled": false}}

A call runs with the membership of the org in its ``orgid`` header and nothing else; a platform root (a
RootAdmin or RootSystem membership in the platform org) acts on any org with its platform membership.
Items written before memberships existed (``data.roles`` / ``data.permissions.content`` /
``data.disabled`` applying to every org of ``data.orgs``) are read as that legacy shape until the
operator CLI's ``migrate-memberships`` rewrites them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PLATFORM_ROOT_ROLES = frozenset({"RootSystem", "RootAdmin"})
# The admin rank of contract §1; a custom role ranks with User.
ROLE_RANK: dict[str, int] = {
    "RootSystem": 5,
    "RootAdmin": 4,
    "ConfigAdmin": 3,
    "RootPowerUser": 3,
    "ContentAdmin": 2,
    "User": 1,
}
CUSTOM_ROLE_RANK = 1
CONTENT_PERMISSIONS = ("create", "read", "update", "delete", "review", "approve")


class Membership(BaseModel):
    """A User's rights in one org."""

    model_config = ConfigDict(frozen=True)

    roles: tuple[str, ...] = ()
    permissions: tuple[str, ...] = ()
    disabled: bool = False

    @property
    def rank(self) -> int:
        return highest_rank(self.roles)

    def to_item(self) -> dict[str, Any]:
        return {"roles": list(self.roles), "permissions": list(self.permissions), "disabled": self.disabled}


class MembershipMap(BaseModel):
    """Every membership of one User, by orgid."""

    by_org: dict[str, Membership] = Field(default_factory=dict)

    def of(self, orgid: str) -> Membership | None:
        return self.by_org.get(orgid)

    def to_item(self) -> dict[str, Any]:
        return {org: m.to_item() for org, m in sorted(self.by_org.items())}


def role_rank(role: str) -> int:
    return ROLE_RANK.get(role, CUSTOM_ROLE_RANK)


def highest_rank(roles: Iterable[str]) -> int:
    """The rank of the highest role; 0 for no role at all."""
    return max((role_rank(r) for r in roles), default=0)


def _permissions_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, Mapping):
        value = value.get("content") or ()
    return tuple(str(p) for p in value or () if str(p) in CONTENT_PERMISSIONS)


def memberships_of(data: Mapping[str, Any]) -> MembershipMap:
    """The memberships of a stored User's ``data``, new shape or legacy (see the module doc)."""
    orgs = [str(o) for o in data.get("orgs") or ()]
    stored = data.get("memberships")
    if isinstance(stored, Mapping):
        by_org = {
            str(org): Membership(
                roles=tuple(str(r) for r in (m or {}).get("roles") or ()),
                permissions=_permissions_list((m or {}).get("permissions")),
                disabled=bool((m or {}).get("disabled", False)),
            )
            for org, m in stored.items()
            if str(org) in orgs and isinstance(m, Mapping)
        }
        return MembershipMap(by_org=by_org)
    legacy = Membership(
        roles=tuple(str(r) for r in data.get("roles") or ()),
        permissions=_permissions_list(data.get("permissions")),
        disabled=bool(data.get("disabled", False)),
    )
    return MembershipMap(by_org=dict.fromkeys(orgs, legacy))


def platform_membership(data: Mapping[str, Any], platform_orgid: str) -> Membership | None:
    """The platform membership that makes a User a platform root, if it has one (enabled, admin)."""
    membership = memberships_of(data).of(platform_orgid)
    if membership is None or membership.disabled or not PLATFORM_ROOT_ROLES & set(membership.roles):
        return None
    return membership


def effective_membership(
    data: Mapping[str, Any], orgid: str, platform_orgid: str
) -> tuple[Membership | None, bool]:
    """(the membership a call on ``orgid`` runs with, whether it is a platform root's).

    None when the User may not act on ``orgid`` at all: not a member and not a platform root, or its
    membership there is disabled.
    """
    root = platform_membership(data, platform_orgid)
    if root is not None:
        return root, True
    membership = memberships_of(data).of(orgid)
    if membership is None or membership.disabled:
        return None, False
    return membership, False


def user_data_for_org(data: Mapping[str, Any], orgid: str, *, own: bool = False) -> dict[str, Any]:
    """A User's ``data`` as shown in a call on ``orgid``: ``roles``, ``permissions.content`` and
    ``disabled`` of that org's membership (where AppEngine's clients read them), and no other org's
    membership. ``own`` (the User looking at itself: sign-in, whoami) keeps the list of its orgs."""
    memberships = memberships_of(data)
    membership = memberships.of(orgid) or Membership()
    shown = {k: v for k, v in data.items() if k not in ("memberships", "roles", "permissions", "disabled")}
    shown["orgs"] = [str(o) for o in data.get("orgs") or ()] if own else [orgid]
    shown["roles"] = list(membership.roles)
    shown["permissions"] = {"content": list(membership.permissions)}
    shown["disabled"] = membership.disabled
    shown["memberships"] = {orgid: membership.to_item()}
    return shown
