"""Contract §1, §2 and §8 over HTTP through the local gateway (`make dev`'s stack)."""

from __future__ import annotations

from tests.contract.conftest import LocalApi


def assert_error(response, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status == status, response.text
    body = response.json()
    assert body["statusCode"] == status
    assert body["error"] == body["code"] == body["reason"] == code
    assert body["message"]
    assert body["requestId"] == response.headers["x-request-id"]


def test_health_needs_no_headers_and_carries_a_request_id(api: LocalApi) -> None:
    response = api.get("/monitoring/health")
    assert response.status == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


def test_jwks_lists_ed25519_public_keys(api: LocalApi) -> None:
    response = api.get("/.well-known/jwks.json")
    assert response.status == 200
    keys = response.json()["keys"]
    assert keys and all(k["kty"] == "OKP" and k["kid"] and "d" not in k for k in keys)


def test_openapi_document_and_swagger_ui_are_served(api: LocalApi) -> None:
    document = api.get("/openapi.json")
    assert document.status == 200
    assert document.json()["openapi"].startswith("3.")
    assert "/monitoring/health" in document.json()["paths"]
    docs = api.get("/docs")
    assert docs.status == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "swagger" in docs.text.lower()


def test_unknown_route_is_a_json_404_from_the_gateway(api: LocalApi) -> None:
    assert_error(api.get("/no/such/route", headers={"orgid": "acme"}), 404, "not_found")


def test_wrong_method_on_a_known_path_is_a_json_404(api: LocalApi) -> None:
    assert_error(api.post("/monitoring/health", body={}), 404, "not_found")
