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
from typing import Any

import boto3

from appengine_core.directory import CONTENT_PERMISSIONS, DirectoryService, NewUser
from appengine_core.errors import Conflict
from appengine_core.jobs import JOBS
from appengine_core.seed import apply_seed, read_seed_file
from appengine_core.settings import get_settings

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
    from appengine_core.signing import KeyStore

    return {"rotated": KeyStore().rotate(force=args.force)}


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
