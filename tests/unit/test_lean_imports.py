"""What a cold container imports is what its first request needs (issue 18, lean imports): the heavy
libraries of rare paths are imported by the code that uses them. ``make bench`` counts the instructions;
these tests keep the modules from creeping back into a function's import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from appengine_local.template import load_template
from tests.conftest import REPO_ROOT

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("function_app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(sys.modules)))
"""
# Powertools' OpenAPI document models: only an OpenAPI document or the Swagger page needs them, and they
# cost a cold start about half of `import boto3` again.
OPENAPI_MODELS = "aws_lambda_powertools.event_handler.openapi.models"
# What each function's rare routes need, never its import.
RARE_PATHS = {
    "OAuthFunction": ("requests", "authlib", "joserfc"),  # only the calls to a provider
    "SigninFunction": ("pyotp", "segno"),  # only a second step, only 2FA setup
    # A person's own 2FA settings: no code checked at import; nothing signs a token here.
    "ProfileFunction": ("pyotp", "segno", "jwt"),
}
FUNCTIONS = load_template().functions


def loaded_by(logical_id: str) -> set[str]:
    """The modules a fresh interpreter (a cold container) holds after importing the function."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(path=str(FUNCTIONS[logical_id].module_file))],
        cwd=REPO_ROOT,
        env={"PYTHONPATH": f"{REPO_ROOT / 'shared'}:{REPO_ROOT / 'local'}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(result.stdout))


def _under(loaded: set[str], package: str) -> list[str]:
    return sorted(m for m in loaded if m == package or m.startswith(package + "."))


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_no_function_imports_the_openapi_document_models(logical_id: str) -> None:
    # Given a cold container of the function
    # When it imports its module
    loaded = loaded_by(logical_id)
    # Then Powertools' OpenAPI models did not come along (request validation does not use them)
    assert _under(loaded, OPENAPI_MODELS) == []


@pytest.mark.parametrize("logical_id", sorted(RARE_PATHS))
def test_libraries_of_rare_routes_are_imported_by_the_routes(logical_id: str) -> None:
    # Given a cold container of a function whose rare routes use heavy libraries
    # When it imports its module
    loaded = loaded_by(logical_id)
    # Then none of those libraries is loaded yet
    assert [m for package in RARE_PATHS[logical_id] for m in _under(loaded, package)] == []
