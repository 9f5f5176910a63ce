"""Per-org memberships for Users written before they existed (issue 13 item 3): the operator CLI's
``migrate-memberships``, the authorizer reading the legacy shape until then, and the seed loader's two
shapes, on emulated AWS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from appengine_core.edge.authorizer import user_principal
from appengine_core.identity.directory import DirectoryService, NewUser
from appengine_core.infra.envelope import Record
from appengine_core.infra.errors import Forbidden
from appengine_core.infra.store import TenantStore, Update
from appengine_core.infra.tenancy import TenantKey
from appengine_core.ops.cli import main as admin_cli
from appengine_core.ops.seed import apply_seed, read_seed_file


def make_legacy(record: Record, **legacy: Any) -> None:
    """Rewrite a User item the way the code before memberships stored it: global rights."""
    data = {k: v for k, v in record.data.items() if k != "memberships"} | legacy
    TenantStore().update(
        Update(record.key, "SET #data = :data", values={":data": data}, names={"#data": "data"}),
        return_new=False,
    )


def stored(record: Record) -> dict[str, Any]:
    item = TenantStore().get(TenantKey.parse(record.sk), consistent=True)
    assert item is not None
    return item


def migrate(capsys: pytest.CaptureFixture[str]) -> dict[str, int]:
    assert admin_cli(["migrate-memberships"]) == 0
    return dict(json.loads(capsys.readouterr().out))


@pytest.fixture
def legacy_users(aws_stack: dict[str, str]) -> dict[str, Record]:
    directory = DirectoryService()
    for orgid in ("platform", "acme", "globex"):
        directory.create_org(orgid, orgid.title())
    shared = directory.create_user(
        "acme", NewUser(email="consultant@acme.test", password="password-123", orgs=["acme", "globex"])
    )
    make_legacy(shared, roles=["RootAdmin"], permissions={"content": ["read", "update"]}, disabled=False)
    locked = directory.create_user("globex", NewUser(email="locked@globex.test", password="password-123"))
    make_legacy(locked, roles=["User"], permissions={"content": ["read"]}, disabled=True)
    current = directory.create_user("acme", NewUser(email="new@acme.test", password="password-123"))
    return {"shared": shared, "locked": locked, "current": current}


def test_migration_rewrites_legacy_users_into_memberships_once(
    legacy_users: dict[str, Record], capsys: pytest.CaptureFixture[str]
) -> None:
    shared, locked, current = legacy_users["shared"], legacy_users["locked"], legacy_users["current"]
    # Given two legacy users and one already in the membership shape
    # When the operator runs the migration
    report = migrate(capsys)
    # Then the legacy ones are rewritten (rights in every org of orgs, no top-level rights left)
    assert report == {"examined": 3, "migrated": 2, "current": 1, "conflicts": 0}
    data = stored(shared)["data"]
    rights = {"roles": ["RootAdmin"], "permissions": ["read", "update"], "disabled": False}
    assert data["memberships"] == {"acme": rights, "globex": rights}
    assert not {"roles", "permissions", "disabled"} & set(data)
    assert data["email"] == "consultant@acme.test" and data["orgs"] == ["acme", "globex"]
    assert stored(locked)["data"]["memberships"] == {
        "globex": {"roles": ["User"], "permissions": ["read"], "disabled": True}
    }
    # And each rewrite was a versioned write; the current user is untouched
    assert stored(shared)["version"] == shared.version + 1
    assert stored(current)["version"] == current.version
    # When it runs again, Then nothing changes
    versions = {name: stored(r)["version"] for name, r in legacy_users.items()}
    assert migrate(capsys) == {"examined": 3, "migrated": 0, "current": 3, "conflicts": 0}
    assert {name: stored(r)["version"] for name, r in legacy_users.items()} == versions


def test_legacy_users_keep_working_before_and_after_the_migration(
    legacy_users: dict[str, Record], capsys: pytest.CaptureFixture[str]
) -> None:
    shared, locked = legacy_users["shared"], legacy_users["locked"]
    for _ in ("before", "after"):
        # The legacy shape means the same rights in every org of orgs, and a disabled user nowhere
        for orgid in ("acme", "globex"):
            principal = user_principal(shared.sk, stored(shared)["data"], orgid, session_id=None)
            assert principal.roles == ("RootAdmin",) and principal.permissions == ("read", "update")
        with pytest.raises(Forbidden):
            user_principal(locked.sk, stored(locked)["data"], "globex", session_id=None)
        migrate(capsys)


def test_a_concurrent_change_is_read_again_not_overwritten(
    legacy_users: dict[str, Record], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = legacy_users["shared"]
    real_get = TenantStore.get
    changed: list[bool] = []

    def get_then_change(self: TenantStore, key: Any, *, consistent: bool = False) -> Any:
        item = real_get(self, key, consistent=consistent)
        if key == shared.key and not changed:
            # Given someone renames the user between the migration's read and its write
            changed.append(True)
            self.update(
                Update(
                    key,
                    "SET #data.firstName = :name, #version = #version + :one",
                    values={":name": "Renamed", ":one": 1},
                    names={"#data": "data", "#version": "version"},
                ),
                return_new=False,
            )
        return item

    monkeypatch.setattr(TenantStore, "get", get_then_change)
    # When the migration runs, Then its first write fails the version check and it reads again
    assert migrate(capsys)["migrated"] == 2
    data = stored(shared)["data"]
    # And both the concurrent change and the migration are kept
    assert data["firstName"] == "Renamed" and "acme" in data["memberships"] and "roles" not in data


def test_the_seed_takes_the_old_shape_and_per_org_memberships(
    aws_stack: dict[str, str], tmp_path: Path
) -> None:
    # Given a seed file with a legacy-shaped user and one with a per-org override
    seed = {
        "orgs": [{"orgid": "acme"}, {"orgid": "globex"}],
        "users": [
            {
                "email": "old@acme.test",
                "password": "password-123",
                "orgs": ["acme", "globex"],
                "roles": ["ContentAdmin"],
            },
            {
                "email": "consultant@acme.test",
                "password": "password-123",
                "orgs": ["acme"],
                "roles": ["ContentAdmin"],
                "permissions": ["read", "create"],
                "memberships": {"globex": {"roles": ["User"], "permissions": ["read"]}},
            },
        ],
    }
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(seed))
    # When it is loaded
    assert apply_seed(read_seed_file(path)).created["users"] == 2
    directory = DirectoryService()
    found_old = directory.principal_by_email("globex", "user", "old@acme.test")
    found_consultant = directory.principal_by_email("globex", "user", "consultant@acme.test")
    assert found_old is not None and found_consultant is not None
    old, consultant = found_old.record.model_dump(), found_consultant.record.model_dump()
    # Then roles/permissions apply to every org of orgs, and memberships override (and add) an org
    assert old["data"]["memberships"]["globex"] == {
        "roles": ["ContentAdmin"],
        "permissions": ["read"],
        "disabled": False,
    }
    assert consultant["data"]["orgs"] == ["acme", "globex"]
    assert consultant["data"]["memberships"] == {
        "acme": {"roles": ["ContentAdmin"], "permissions": ["create", "read"], "disabled": False},
        "globex": {"roles": ["User"], "permissions": ["read"], "disabled": False},
    }
