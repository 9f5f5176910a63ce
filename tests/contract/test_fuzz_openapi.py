"""Property-based testing of every documented operation through the local gateway, with schemathesis (its
CLI; the pytest plugin does not yet run under pytest 9), as an admin, with all its response checks on:
no server error, every status and content type documented, every body matching its documented schema,
and invalid input refused. Bounded to fit CI: the coverage phase (every constraint's boundaries, once)
plus a few random examples per operation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract.conftest import LocalApi, local_stack, sign_in

# Routes that end the fuzzer's own session (it follows links from the sessions list to its DELETE).
SKIPPED = r"^/profile/(signout|security/sessions)"
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)
# The routes answer every method they do not declare at the gateway (403, as API Gateway does); the
# `unsupported_method` check is not asked for, so the coverage phase need not send them.
CONFIG = """\
[phases.coverage]
unexpected-methods = []
"""
# The `orgid` header is fixed (-H) to the admin's org, so the coverage phase's variants of it would all be
# sent as `acme`: skip them rather than send the same request twenty times per operation.
HOOKS = """\
import schemathesis


@schemathesis.hook
def filter_case(context, case):
    data = case.meta.phase.data if case.meta is not None else None
    location = getattr(getattr(data, "parameter_location", None), "value", None)
    return not (getattr(data, "parameter", None) == "orgid" and location == "header")
"""


@pytest.fixture(scope="module")
def api() -> Iterator[LocalApi]:
    """A stack of its own: the fuzzer learns ids from responses and will change or delete what it finds."""
    with local_stack("fuzz") as local:
        yield local


def test_every_operation_conforms_to_the_document(api: LocalApi, tmp_path: Path) -> None:
    token = sign_in(api, "admin@acme.test", "acme-admin-pass", "acme")["token"]
    (tmp_path / "schemathesis.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "fuzz_hooks.py").write_text(HOOKS, encoding="utf-8")
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    result = subprocess.run(
        [
            cli,
            "--config-file",
            str(tmp_path / "schemathesis.toml"),
            "run",
            f"{api.base_url}/openapi.json",
            "--url",
            api.base_url,
            "-H",
            "orgid: acme",
            "-H",
            f"Authorization: Bearer {token}",
            "--checks",
            ",".join(CHECKS),
            "--max-examples",
            "5",
            "--workers",
            "1",
            "--exclude-path-regex",
            SKIPPED,
            "--seed",
            "20261123",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
        env=os.environ | {"SCHEMATHESIS_HOOKS": "fuzz_hooks", "PYTHONPATH": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failure" not in result.stdout.lower(), result.stdout[-6000:]
