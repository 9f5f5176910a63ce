"""``appengine-admin``: the operator's tool for a deployed stack or the local one.

Targets: ``--stack NAME`` reads the table, bus and secret from the CloudFormation stack's outputs; or set
APPENGINE_TABLE / APPENGINE_EVENT_BUS / APPENGINE_SIGNING_KEYS_SECRET yourself. ``AWS_ENDPOINT_URL``
points it at the local stack (``make dev`` prints the line to use).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

import boto3
from boto3.dynamodb.conditions import Attr

from appengine_core.identity.directory import CONTENT_PERMISSIONS, DirectoryService, NewUser
from appengine_core.identity.memberships import Membership, memberships_of
from appengine_core.infra import aws
from appengine_core.infra.envelope import utc_now_iso
from appengine_core.infra.errors import Conflict
from appengine_core.infra.settings import get_settings
from appengine_core.infra.store import ConditionFailed, TenantStore, Update
from appengine_core.infra.tenancy import TenantKey
from appengine_core.ops.jobs import JOBS
from appengine_core.ops.seed import apply_seed, read_seed_file

_STACK_OUTPUTS = {
    "TableName": "APPENGINE_TABLE",
    "EventBusName": "APPENGINE_EVENT_BUS",
    "SigningKeysSecretArn": "APPENGINE_SIGNING_KEYS_SECRET",
}


def _configure_from_stack(stack_name: str) -> None:
    stack = boto3.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    for output, variable in _STACK_OUTPUTS.items():
        if output in outputs:
            os.environ[variable] = outputs[output]
    for parameter in stack.get("Parameters", []):
        if parameter["ParameterKey"] == "PlatformOrgId":
            os.environ["PLATFORM_ORGID"] = parameter["ParameterValue"]
    get_settings.cache_clear()


def _bootstrap(args: argparse.Namespace) -> dict[str, Any]:
    password = args.password or os.environ.get("APPENGINE_ADMIN_PASSWORD") or getpass.getpass("password: ")
    directory = DirectoryService()
    JOBS["rotate-signing-keys"]()
    try:
        directory.create_org(args.orgid, args.name or args.orgid)
        org_created = True
    except Conflict:
        org_created = False
    user = directory.create_user(
        args.orgid,
        NewUser(
            email=args.email, password=password, roles=["RootAdmin"], permissions=list(CONTENT_PERMISSIONS)
        ),
    )
    return {"org": args.orgid, "orgCreated": org_created, "rootAdmin": user.sk}


def _seed(args: argparse.Namespace) -> dict[str, Any]:
    return apply_seed(read_seed_file(args.file)).model_dump()


def _run_job(args: argparse.Namespace) -> dict[str, Any]:
    if args.name not in JOBS:
        raise SystemExit(f"unknown job {args.name!r}; known: {', '.join(sorted(JOBS))}")
    return {"job": args.name, **JOBS[args.name]()}


def _rotate(args: argparse.Namespace) -> dict[str, Any]:
    from appengine_core.identity.signing import KeyStore

    return {"rotated": KeyStore().rotate(force=args.force)}


LEGACY_RIGHTS_FIELDS = ("roles", "permissions", "disabled")
MIGRATION_ATTEMPTS = 5


def migrated_user_data(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """A legacy User's ``data`` in the membership shape, or None when it is in that shape already.

    Legacy rights (``roles`` / ``permissions.content`` / ``disabled`` at the top level) applied to every
    org of ``orgs``: each org without a stored membership gets them; a stored membership is kept.
    """
    stored = data.get("memberships")
    orgs = [str(o) for o in data.get("orgs") or ()]
    has_legacy = any(field in data for field in LEGACY_RIGHTS_FIELDS)
    if isinstance(stored, Mapping) and not has_legacy and all(org in stored for org in orgs):
        return None
    legacy = memberships_of({k: v for k, v in data.items() if k != "memberships"})
    current = memberships_of(data) if isinstance(stored, Mapping) else legacy
    by_org = {org: current.of(org) or legacy.of(org) or Membership() for org in orgs}
    migrated = {k: v for k, v in data.items() if k not in LEGACY_RIGHTS_FIELDS}
    migrated["memberships"] = {org: membership.to_item() for org, membership in by_org.items()}
    return migrated


def _migrate_user(store: TenantStore, key: TenantKey) -> str:
    """One User item rewritten with a version check; a concurrent change is read again and retried."""
    for _ in range(MIGRATION_ATTEMPTS):
        item = store.get(key, consistent=True)
        if item is None:
            return "current"
        migrated = migrated_user_data(item.get("data") or {})
        if migrated is None:
            return "current"
        version = int(item.get("version", 0))
        try:
            store.update(
                Update(
                    key,
                    "SET #data = :data, #version = :next, modifydate = :now",
                    values={":data": migrated, ":next": version + 1, ":now": utc_now_iso(), ":v": version},
                    names={"#data": "data", "#version": "version"},
                    condition="#version = :v",
                ),
                return_new=False,
            )
        except ConditionFailed:
            continue
        return "migrated"
    return "conflicts"


def migrate_memberships() -> dict[str, int]:
    """Rewrites every legacy User item into per-org memberships; running it again changes nothing.

    An offline operator command, so it may Scan: no request path ever does.
    """
    table = aws.dynamodb().Table(get_settings().table_name)
    store = TenantStore()
    report = {"examined": 0, "migrated": 0, "current": 0, "conflicts": 0}
    scan: dict[str, Any] = {"FilterExpression": Attr("datatype").eq("user"), "ProjectionExpression": "SK"}
    while True:
        page = table.scan(**scan)
        for raw in page.get("Items", []):
            try:
                key = TenantKey.parse(str(raw["SK"]))
            except ValueError:
                continue
            if key.collection != "user":
                continue
            report["examined"] += 1
            report[_migrate_user(store, key)] += 1
        if "LastEvaluatedKey" not in page:
            return report
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _migrate(args: argparse.Namespace) -> dict[str, Any]:
    return migrate_memberships()


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="appengine-admin", description=__doc__)
    root.add_argument("--stack", help="CloudFormation stack to read table, bus and secret from")
    commands = root.add_subparsers(dest="command", required=True)

    bootstrap = commands.add_parser("bootstrap", help="create an org and its first RootAdmin")
    bootstrap.add_argument("--orgid", required=True)
    bootstrap.add_argument("--name")
    bootstrap.add_argument("--email", required=True)
    bootstrap.add_argument("--password", help="default: $APPENGINE_ADMIN_PASSWORD, else prompt")
    bootstrap.set_defaults(run=_bootstrap)

    seed = commands.add_parser("seed", help="load a seed file (orgs, users, customers, records)")
    seed.add_argument("file")
    seed.set_defaults(run=_seed)

    job = commands.add_parser("run-job", help="run a scheduled job now")
    job.add_argument("name", choices=sorted(JOBS))
    job.set_defaults(run=_run_job)

    rotate = commands.add_parser("rotate-signing-key", help="create the first signing key, or rotate")
    rotate.add_argument("--force", action="store_true", help="rotate even if the current key is young")
    rotate.set_defaults(run=_rotate)
    migrate = commands.add_parser(
        "migrate-memberships",
        help="rewrite legacy users (global roles) into per-org memberships; safe to run again",
    )
    migrate.set_defaults(run=_migrate)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.stack:
        _configure_from_stack(args.stack)
    try:
        result = args.run(args)
    except Conflict as error:
        print(json.dumps({"error": "conflict", "message": error.message}), file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
