"""The README's curl walk-through, run verbatim against the local stack."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import REPO_ROOT
from tests.contract.conftest import LocalApi, local_stack


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


@pytest.mark.parametrize("marker", ["auth", "apikeys", "repository", "storefront", "appclients", "twofactor", "magiclink"])
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
