"""Sizes of the built artifacts (after ``sam build``): the layer and each function, unzipped, and whether
the layer carries Python 3.13 bytecode. ``--check`` fails when boto3 slipped into the layer, or when the
build said it compiled bytecode and the artifact has none."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BUILD = Path(".aws-sam/build")


def size_of(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def bytecode_files(layer: Path) -> int:
    return sum(1 for _ in layer.rglob("*.cpython-313.pyc"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--build-log", type=Path, help="sam build's output, to see whether it compiled")
    arguments = parser.parse_args(argv)
    if not BUILD.is_dir():
        sys.exit("no .aws-sam/build: run `make build` first")
    layer = BUILD / "SharedLayer" / "python"
    print(f"{'artifact':<26} {'unzipped':>10}")
    for artifact in sorted(p for p in BUILD.iterdir() if p.is_dir()):
        print(f"{artifact.name:<26} {size_of(artifact) / 1024:9.0f} KiB")
    compiled = bytecode_files(layer)
    print(f"layer bytecode for Python 3.13: {compiled} files" if compiled else "layer ships source only")
    if not arguments.check:
        return
    problems = [f"{name} is in the layer" for name in ("boto3", "botocore") if (layer / name).exists()]
    build_log = arguments.build_log.read_text() if arguments.build_log else ""
    said_compiled = "bytecode for Python 3.13 compiled" in build_log
    if said_compiled and not compiled:
        problems.append("the build compiled bytecode but the layer has none")
    if said_compiled and not (layer / "appengine_core" / "__pycache__").is_dir():
        problems.append("the project's own package has no bytecode")
    if problems:
        sys.exit("; ".join(problems))


if __name__ == "__main__":
    main()
