"""Generates the OpenAPI document of the whole API from every function's Powertools resolver.

``python -m appengine_local.openapi --write`` refreshes ``functions/platform/openapi.json``, which the
platform function serves at ``/openapi.json`` and ``/docs``; a test fails when the file is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
from aws_lambda_powertools.event_handler.openapi.models import Server

from appengine_core.edge.http import security_schemes
from appengine_local.template import REPO_ROOT, Template, load_template

DOCUMENT_PATH = REPO_ROOT / "functions" / "platform" / "openapi.json"


def generate(template: Template | None = None) -> dict[str, Any]:
    template = template or load_template()
    merge = OpenAPIMerge(
        title="AppEngine-compatible API",
        version="1.0.0",
        description=(
            "Multi-tenant auth, tenancy and data backend. Every call but health, JWKS and these docs needs "
            "the `orgid` header; protected routes take `Authorization: Bearer <jwt>`, "
            "`x-client-authorization` or `x-api-key`."
        ),
        servers=[Server(url="/")],
        security_schemes=security_schemes(),
        on_conflict="error",
    )
    routed = {route.function for route in template.routes}
    for logical_id in sorted(routed):
        merge.add_file(template.functions[logical_id].module_file, resolver_name="app")
    document: dict[str, Any] = json.loads(merge.get_openapi_json_schema())
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="write functions/platform/openapi.json")
    args = parser.parse_args(argv)
    text = render(generate())
    if args.write:
        Path(DOCUMENT_PATH).write_text(text, encoding="utf-8")
        print(f"wrote {DOCUMENT_PATH.relative_to(REPO_ROOT)}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
