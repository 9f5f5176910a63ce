"""Contract §5 over HTTP: API key lifecycle, and no over-admission under concurrent requests."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.contract.conftest import LocalApi, sign_in
from tests.contract.test_platform_http import assert_error


@pytest.fixture(scope="module")
def admin_headers(api: LocalApi) -> dict[str, str]:
    return {
        "orgid": "acme",
        "authorization": sign_in(api, "admin@acme.test", "acme-admin-pass", "acme")["token"],
    }


def create(api: LocalApi, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = api.post(
        "/api-key/create", headers=headers, body={"name": "contract", "scopes": ["read"]} | body
    )
    assert response.status == 201, response.text
    return dict(response.json())


def test_key_lifecycle_over_http(api: LocalApi, admin_headers: dict[str, str]) -> None:
    key = create(api, admin_headers, permissions=["read:data"], rateLimits={"perMinute": 100, "perDay": 1000})
    use = {"orgid": "acme", "x-api-key": key["key"]}
    assert api.get("/profile/whoami", headers=use).status == 200
    assert_error(api.get("/profile/whoami", headers={**use, "orgid": "globex"}), 403, "forbidden")
    listed = api.get("/api-key/list", headers=admin_headers).json()
    assert {"data", "total", "page", "pageSize", "hasNext", "next"} <= set(listed)
    assert all("key" not in k for k in listed["data"])
    fresh = api.post(f"/api-key/regenerate/{key['id']}", headers=admin_headers).json()["key"]
    assert_error(api.get("/profile/whoami", headers=use), 401, "unauthorized")
    assert api.get("/profile/whoami", headers={**use, "x-api-key": fresh}).status == 200
    assert api.request("DELETE", f"/api-key/{key['id']}", headers=admin_headers).json() == {"ok": True}
    assert_error(api.get("/profile/whoami", headers={**use, "x-api-key": fresh}), 401, "unauthorized")
    assert_error(api.get("/api-key/does-not-exist", headers=admin_headers), 404, "not_found")


def test_customers_get_403_on_key_routes(api: LocalApi) -> None:
    buyer = sign_in(api, "buyer@acme.test", "acme-buyer-pass", "acme", kind="customer")
    headers = {"orgid": "acme", "authorization": buyer["token"]}
    assert_error(
        api.post("/api-key/create", headers=headers, body={"name": "x", "scopes": ["read"]}), 403, "forbidden"
    )


def test_parallel_requests_never_exceed_the_limit(api: LocalApi, admin_headers: dict[str, str]) -> None:
    limit, attempts = 10, 40
    key = create(api, admin_headers, rateLimit={"requestsPerMinute": limit})
    # Start well inside a minute window so that all attempts fall into one window.
    second = time.time() % 60
    if second > 45:
        time.sleep(61 - second)
    headers = {"orgid": "acme", "x-api-key": key["key"]}
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: api.get("/profile/whoami", headers=headers), range(attempts)))
    statuses = [r.status for r in responses]
    assert statuses.count(200) == limit, statuses
    assert statuses.count(429) == attempts - limit, statuses
    assert all(r.headers.get("retry-after") for r in responses if r.status == 429)
    usage = api.get(f"/api-key/{key['id']}", headers=admin_headers).json()["usageCount"]
    assert usage == limit
