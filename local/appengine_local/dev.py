"""``make dev``: the whole API on 127.0.0.1 with AWS emulated by moto in server mode.

Starts moto on a loopback port, creates the template's tables, bus and secrets there, creates the first
signing key, loads the seed file (``APPENGINE_SEED_FILE``, default the demo seed) and serves the local
gateway on ``127.0.0.1:$PORT`` (default 3000).
"""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from werkzeug.serving import run_simple

DEMO_SEED = Path(__file__).with_name("seed") / "demo.json"
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def start_emulator(port: int = 0) -> str:
    """Start moto's server on loopback, in a thread; returns its endpoint URL.

    moto's server answers requests on several threads but its DynamoDB backend does not lock: two
    conditional writes could interleave between check and write. DynamoDB guarantees that each
    conditional write and transaction is atomic, so the emulator serves one request at a time to keep
    that guarantee (the race tests depend on it, as production code does on DynamoDB's).
    """
    import threading

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    dispatcher = DomainDispatcherApplication(create_backend_app)
    one_at_a_time = threading.Lock()

    def serialized(environ: dict[str, Any], start_response: Any) -> Any:
        with one_at_a_time:
            return list(dispatcher(environ, start_response))

    server = make_server("127.0.0.1", port, serialized, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True, name="moto").start()
    return f"http://127.0.0.1:{server.server_port}"


def prepare_environment(endpoint: str) -> dict[str, str]:
    """Point every boto3 client at the emulator and give the functions their template environment."""
    from appengine_local.resources import merged_environment

    environment = {
        **LOCAL_CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint,
        "APPENGINE_AWS_READ_TIMEOUT": "60",  # moto, not DynamoDB: see appengine_core.infra.aws
        **merged_environment(),
        # Local only: OAuth issuers, endpoints and redirect URIs on http://127.0.0.1 (a local provider).
        "APPENGINE_OAUTH_ALLOW_LOOPBACK_HTTP": "true",
    }
    environment.setdefault("POWERTOOLS_DEV", "false")
    os.environ.update(environment)
    return environment


def build_local_stack(seed_file: Path | None) -> tuple[Any, dict[str, Any]]:
    from appengine_core.infra.settings import get_settings
    from appengine_core.ops.jobs import JOBS
    from appengine_core.ops.seed import apply_seed, read_seed_file
    from appengine_local.bus_tap import BusTap
    from appengine_local.gateway import LocalGateway
    from appengine_local.log_subscription import LogSubscription
    from appengine_local.mailbox import DevMailbox
    from appengine_local.resources import provision
    from appengine_local.rules import RuleDispatcher
    from appengine_local.streams import StreamMapping
    from appengine_local.template import load_template

    template = load_template()
    provision(template)
    gateway = LocalGateway(template)
    # What Lambda's event source mapping and a bus subscriber do when deployed, run here in threads.
    bus_name = get_settings().event_bus_name
    tap = BusTap(bus_name)
    # Local only: every message to a person lands in the dev mailbox (api.md §9), never deployed.
    mailbox = DevMailbox()
    tap.subscribe(mailbox.receive)
    # The template's EventBridge rules (mailer, audit, ...) deliver to their functions in-process.
    tap.subscribe(RuleDispatcher(template, gateway.lambdas, bus_name).dispatch)
    tap.run_forever()
    gateway.local_routes[("GET", "/_local/events")] = _drained_first(tap, tap.route)
    gateway.local_routes[("GET", "/_local/mailbox")] = _drained_first(tap, mailbox.route)
    StreamMapping(template, gateway.lambdas, "PublisherFunction").run_forever()
    # The functions' log group's subscription filter: usage lines to the metering function.
    LogSubscription(template, gateway.lambdas, interval=2.0).run_forever()
    JOBS["rotate-signing-keys"]()
    report: dict[str, Any] = {}
    if seed_file is not None:
        report = apply_seed(read_seed_file(seed_file)).model_dump()
    return gateway, report


def _drained_first(tap: Any, route: Any) -> Any:
    """A local route that first takes what is already on the bus, so a message sent by the request
    before is shown at once, not after the tap's next poll (scripts read the mailbox right away)."""

    def drained(request: Any) -> Any:
        tap.drain()
        return route(request)

    return drained


def _banner(port: int, endpoint: str, seed_file: Path | None) -> str:
    lines = [f"AppEngine local stack on http://127.0.0.1:{port}  (AWS emulated at {endpoint})"]
    if seed_file is not None:
        seed = json.loads(seed_file.read_text(encoding="utf-8"))
        lines.append(f"seed: {seed_file}")
        for user in seed.get("users", []):
            lines.append(
                f"  user      {user['email']} / {user['password']}  orgs={','.join(user.get('orgs', []))}"
            )
        for customer in seed.get("customers", []):
            lines.append(
                f"  customer  {customer['email']} / {customer['password']}  orgid={customer['orgid']}"
            )
        first = next(iter(seed.get("users", [])), None)
        if first:
            body = json.dumps({"email": first["email"], "password": first["password"]})
            lines.append("try:")
            lines.append(
                f"  curl -s http://127.0.0.1:{port}/profile/signin -H 'orgid: {first['orgs'][0]}' "
                f"-H 'content-type: application/json' -d '{body}'"
            )
    lines.append(f"  curl -s http://127.0.0.1:{port}/monitoring/health")
    lines.append(f"operator CLI against this stack: AWS_ENDPOINT_URL={endpoint} appengine-admin --help")
    return "\n".join(lines)


def main() -> None:
    # `kill -USR1 <pid>` prints every thread's stack to stderr: how to see what a stuck local stack waits on.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    for noisy in ("werkzeug", "botocore", "boto3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    port = int(os.environ.get("PORT", "3000"))
    seed_setting = os.environ.get("APPENGINE_SEED_FILE", str(DEMO_SEED))
    seed_file = Path(seed_setting) if seed_setting else None
    endpoint = start_emulator(int(os.environ.get("MOTO_PORT", "0")))
    prepare_environment(endpoint)
    gateway, report = build_local_stack(seed_file)
    print(_banner(port, endpoint, seed_file), flush=True)
    if report:
        print(f"seeded: {json.dumps(report['created'])}", flush=True)
    run_simple("127.0.0.1", port, gateway, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
