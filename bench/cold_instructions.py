"""Cold-start figure that does not wobble: instructions counted by valgrind (callgrind) for each function's
import plus its first AWS client, as a ratio to the same count for ``import boto3;
boto3.client("dynamodb")`` measured in the same run. Wall-clock times on shared 2-core machines move by
tens of percent between runs; instruction counts repeat to a fraction of a percent.

Targets (reported, not gated): the authorizer at most 1.25x the baseline, every other function 1.5x.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from appengine_local.template import load_template
from bench.cold_import import precompile

BASELINE = 'import boto3\nboto3.client("dynamodb", region_name="us-east-1")'
# The function module, then the client its first request creates (every function's first request
# reaches DynamoDB or the bus through the layer's lazily created clients).
_FUNCTION = """
import importlib.util, boto3
spec = importlib.util.spec_from_file_location("fn", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
boto3.client("dynamodb", region_name="us-east-1")
"""
TARGETS = {"AuthorizerFunction": 1.25}
DEFAULT_TARGET = 1.5
_TOTAL = re.compile(r"^summary:\s+(\d+)", re.MULTILINE)


def instructions(body: str) -> int:
    """Instructions executed by a fresh interpreter running ``body`` (valgrind --tool=callgrind)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                "--dump-instr=no",
                "--collect-jumps=no",
                sys.executable,
                "-c",
                body,
            ],
            check=True,
            capture_output=True,
            env={"PYTHONHASHSEED": "0", "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
        )
        match = _TOTAL.search(out.read_text(errors="replace"))
        if match is None:
            raise RuntimeError("callgrind wrote no summary")
        return int(match.group(1))


def run() -> list[tuple[str, int, float]]:
    # A container's code comes compiled; a module edited since its last import would count its compilation.
    precompile()
    baseline = instructions(BASELINE)
    rows = [("baseline: boto3 + dynamodb client", baseline, 1.0)]
    for logical_id, function in sorted(load_template().functions.items()):
        count = instructions(_FUNCTION.format(path=str(function.module_file)))
        rows.append((logical_id, count, count / baseline))
    return rows


def main() -> None:
    if shutil.which("valgrind") is None:
        print("cold start in instructions: valgrind is not installed (apt-get install valgrind); skipped")
        return
    print(f"cold start in instructions (callgrind, Python {sys.version.split()[0]}; import + first client)")
    for name, count, ratio in run():
        target = TARGETS.get(name, DEFAULT_TARGET) if not name.startswith("baseline") else None
        verdict = (
            "" if target is None else ("  within target" if ratio <= target else f"  over target x{target}")
        )
        print(f"  {name:<38} {count / 1e6:9.1f} M   x{ratio:5.2f}{verdict}")


if __name__ == "__main__":
    main()
