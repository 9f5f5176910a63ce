"""Orgs and principals in the table, the seed file and the operator CLI, on emulated AWS."""

from __future__ import annotations

import json

import pytest

from appengine_core.identity.directory import DirectoryService, NewCustomer, NewUser
from appengine_core.infra.errors import Conflict, NotFound
from appengine_core.infra.store import TenantStore
from appengine_core.infra.tenancy import TenantKey
from appengine_core.ops.cli import main as admin_cli
from appengine_core.ops.seed import apply_seed, read_seed_file
from appengine_core.records.writer import RecordWriter
from appengine_local.dev import DEMO_SEED


def test_email_is_unique_per_org_and_kind(aws_stack: dict[str, str]) -> None:
    directory = DirectoryService()
    directory.create_org("acme", "Acme")
    directory.create_org("globex", "Globex")
    directory.create_customer("acme", NewCustomer(email="A@Acme.test", password="password-1"))
    # The same email (any case) is a conflict in the same org and kind...
    with pytest.raises(Conflict):
        directory.create_customer("acme", NewCustomer(email="a@acme.test", password="password-2"))
    # ...and fine in another org, or as the other principal kind.
    directory.create_customer("globex", NewCustomer(email="a@acme.test", password="password-3"))
    directory.create_user("acme", NewUser(email="a@acme.test", password="password-4"))


def test_a_failed_principal_write_leaves_nothing_behind(aws_stack: dict[str, str]) -> None:
    directory = DirectoryService()
    directory.create_org("acme", "Acme")
    # Given a user whose org list names an org that does not exist
    with pytest.raises(NotFound):
        directory.create_user(
            "acme", NewUser(email="u@acme.test", password="password-1", orgs=["acme", "nope"])
        )
    # Then no email index was written either: the same email can still be registered
    directory.create_user("acme", NewUser(email="u@acme.test", password="password-1"))


def test_secrets_are_stored_hashed_and_never_in_the_envelope(aws_stack: dict[str, str]) -> None:
    directory = DirectoryService()
    directory.create_org("acme", "Acme")
    record = directory.create_customer("acme", NewCustomer(email="c@acme.test", password="plain-secret-pw"))
    stored = TenantStore().get(TenantKey.parse(record.sk))
    assert stored is not None
    assert stored["passwordHash"].startswith("$argon2id$")
    assert "plain-secret-pw" not in json.dumps(stored)
    assert "passwordHash" not in record.model_dump() and "password" not in record.data


def test_the_demo_seed_loads_and_loading_again_keeps_everything(aws_stack: dict[str, str]) -> None:
    seed = read_seed_file(DEMO_SEED)
    first = apply_seed(seed)
    assert first.created == {"orgs": 3, "users": 4, "customers": 2, "records": 6}
    again = apply_seed(seed)
    assert again.kept == {"orgs": 3, "users": 4, "customers": 2, "records": 0}
    assert RecordWriter().count("acme", "product") == 3 + 3, "records without an id are created again"


def test_cli_bootstraps_an_org_and_its_root_admin(
    aws_stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = admin_cli(
        [
            "bootstrap",
            "--orgid",
            "initech",
            "--name",
            "Initech",
            "--email",
            "boss@initech.test",
            "--password",
            "long-password",
        ]
    )
    assert code == 0
    output = json.loads(capsys.readouterr().out)
    assert output["orgCreated"] is True
    found = DirectoryService().principal_by_email("initech", "user", "boss@initech.test")
    assert found is not None
    user = found.record.model_dump()
    assert user["data"]["memberships"]["initech"]["roles"] == ["RootAdmin"]
    assert "roles" not in user["data"], "new Users are written in the membership shape only"
    # A second bootstrap with the same email is a clean conflict, not a crash.
    assert (
        admin_cli(
            ["bootstrap", "--orgid", "initech", "--email", "boss@initech.test", "--password", "long-password"]
        )
        == 1
    )
