"""The authorizer runs on every request: its module imports only what its decision needs (issue 14)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("authorizer_app", "functions/authorizer/app.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(sys.modules)))
"""
# Password hashing, key management's request models, the REST resolver with its OpenAPI machinery, and
# every wing the decision does not read.
MUST_NOT_LOAD = (
    "passlib",
    "argon2",
    "aws_lambda_powertools.event_handler",
    # Powertools' event data classes package loads every event shape it knows; the decision reads three
    # fields of its event (issue 18).
    "aws_lambda_powertools.utilities.data_classes",
    "appengine_core.edge.http",
    "appengine_core.identity.directory",
    "appengine_core.identity.passwords",
    "appengine_core.identity.profiles",
    "appengine_core.identity.signin",
    "appengine_core.keys.models",
    "appengine_core.keys.service",
    "appengine_core.records",
    "appengine_core.commerce",
    "appengine_core.ops",
)


def test_the_authorizer_imports_only_what_its_decision_needs() -> None:
    # Given a fresh interpreter, as a cold Lambda container is
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO_ROOT,
        env={"PYTHONPATH": f"{REPO_ROOT / 'shared'}:{REPO_ROOT / 'local'}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    # When it imports the authorizer function
    loaded = set(json.loads(result.stdout))
    # Then none of the heavy or unrelated modules came along
    offending = sorted(m for m in loaded for bad in MUST_NOT_LOAD if m == bad or m.startswith(bad + "."))
    assert offending == []
    assert "appengine_core.keys.authenticator" in loaded and "appengine_core.edge.authorizer" in loaded
