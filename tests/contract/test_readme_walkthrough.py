"""The README's curl walk-through, run verbatim against the local stack."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.conftest import REPO_ROOT
from tests.contract.conftest import LocalApi, _free_port, local_stack


def readme_block(marker: str) -> str:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- walkthrough:{marker} -->\s*```bash\n(.*?)```", text, re.DOTALL)
    assert match, f"README has no walk-through block {marker!r}"
    return match.group(1)


def expected_outputs(script: str) -> list[str]:
    """The outputs the README shows after its commands (``#> 401``), in order."""
    return [m.group(1).strip() for m in re.finditer(r"^#> (.+)$", script, re.MULTILINE)]


@pytest.fixture(scope="module")
def fresh_api() -> Iterator[LocalApi]:
    """A stack of its own, as a new user's `make dev` is: other contract tests add products and users to
    the shared stack, and the walk-through shows counts of a fresh demo seed."""
    with local_stack("readme") as local:
        yield local


@pytest.fixture(scope="module")
def local_idp() -> Iterator[str]:
    """The local OpenID Connect provider, started as the README says (``python -m oidc_provider_mock``)."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "oidc_provider_mock", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/.well-known/openid-configuration", timeout=2):
                break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, "oidc_provider_mock did not start"
            time.sleep(0.2)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_readme_sso_walkthrough_runs_verbatim(fresh_api: LocalApi, local_idp: str) -> None:
    script = readme_block("sso")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={**os.environ, "API": fresh_api.base_url, "IDP": local_idp},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outputs = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    assert outputs == expected_outputs(script)


@pytest.mark.parametrize(
    "marker", ["auth", "apikeys", "repository", "storefront", "appclients", "twofactor", "magiclink"]
)
def test_readme_walkthrough_runs_verbatim(fresh_api: LocalApi, marker: str) -> None:
    api = fresh_api
    script = readme_block(marker)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={**os.environ, "API": api.base_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outputs = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    assert outputs == expected_outputs(script)
