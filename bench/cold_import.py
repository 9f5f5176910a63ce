"""Cold-start proxy: import time of each function module, in a fresh interpreter each time, as a ratio
to the floor every Python Lambda that talks to DynamoDB pays (``import boto3; boto3.client("dynamodb")``).
"""

from __future__ import annotations

import compileall
import statistics
import subprocess
import sys
from pathlib import Path

from appengine_local.template import REPO_ROOT, load_template

RUNS = 5
_TIMER = """
import sys, time, importlib.util
start = time.perf_counter()
{body}
print(len(sys.modules), time.perf_counter() - start)
"""
BASELINE = 'import boto3\nboto3.client("dynamodb", region_name="us-east-1")'


def _import_body(module_file: Path) -> str:
    return (
        f"spec = importlib.util.spec_from_file_location('fn', {str(module_file)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)"
    )


def _median_seconds(body: str) -> tuple[float, int]:
    """Median import time and the number of modules loaded (the same in every run)."""
    samples = []
    modules = 0
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", _TIMER.format(body=body)], check=True, capture_output=True, text=True
        )
        count, seconds = out.stdout.strip().splitlines()[-1].split()
        samples.append(float(seconds))
        modules = int(count)
    return statistics.median(samples), modules


def precompile() -> None:
    for folder in ("shared", "functions"):
        compileall.compile_dir(REPO_ROOT / folder, quiet=1)


def run() -> list[tuple[str, float, float, int]]:
    # A container's code comes compiled; a module edited since its last import would count its compilation.
    precompile()
    baseline, baseline_modules = _median_seconds(BASELINE)
    rows = [("baseline: boto3 + dynamodb client", baseline, 1.0, baseline_modules)]
    for logical_id, function in sorted(load_template().functions.items()):
        seconds, modules = _median_seconds(_import_body(function.module_file))
        rows.append((logical_id, seconds, seconds / baseline, modules))
    return rows


def main() -> None:
    print(f"cold import, median of {RUNS} fresh interpreters (Python {sys.version.split()[0]}, this machine)")
    print(f"  {'':<38} {'wall':>11}   {'ratio':>6}  {'modules':>7}")
    for name, seconds, ratio, modules in run():
        print(f"  {name:<38} {seconds * 1000:8.1f} ms   x{ratio:5.2f}  {modules:7d}")


if __name__ == "__main__":
    main()
