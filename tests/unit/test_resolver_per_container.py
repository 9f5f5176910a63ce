"""The local stack runs many containers' copies of a handler in one process at once. Powertools keeps the
request on the router class; each resolver must see its own request (its request id, source IP and
query parameters), or concurrent local requests would read each other's."""

from __future__ import annotations

from typing import Any

from appengine_core.edge.http import DocumentedResolver
from tests.conftest import load_event


def _resolver_answering_its_path() -> DocumentedResolver:
    resolver = DocumentedResolver()

    @resolver.get("/monitoring/health")
    def health() -> dict[str, Any]:
        return {"path": resolver.current_event.path}

    return resolver


def test_each_resolver_keeps_the_request_it_serves() -> None:
    # Given two copies of a function (two warm containers in the local stack)
    first, second = _resolver_answering_its_path(), _resolver_answering_its_path()
    first_event = load_event("platform-health")
    second_event = load_event("platform-health", requestContext={"requestId": "second"})

    # When the second serves a request while the first still holds its own
    first.resolve(first_event, None)  # type: ignore[arg-type]
    second.resolve(second_event, None)  # type: ignore[arg-type]

    # Then each still sees the request it served, not the last one in the process
    assert first.current_event.request_context.request_id == first_event["requestContext"]["requestId"]
    assert second.current_event.request_context.request_id == "second"
