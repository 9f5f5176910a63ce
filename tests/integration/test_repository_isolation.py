"""Tenant isolation of the repository: every route x every kind of caller, through the in-process gateway."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from appengine_core.infra.envelope import Record
from tests.integration.conftest import bearer_for

CALLERS = (
    "same_org_admin",
    "other_org_admin",
    "customer",
    "read_only_user",
    "read_scoped_key",
    "platform_root",
)

# route -> expected status per caller (in CALLERS order)
MATRIX: dict[str, tuple[int, ...]] = {
    "create": (201, 201, 403, 403, 403, 201),
    "create_of_datatype": (201, 201, 403, 403, 403, 201),
    "get": (200, 404, 403, 200, 200, 200),
    "find": (200, 200, 403, 200, 200, 200),
    "find_by_attribute": (200, 200, 403, 200, 200, 200),
    "update": (200, 404, 403, 403, 403, 200),
    "update_partial": (200, 404, 403, 403, 403, 200),
    "delete": (200, 404, 403, 403, 403, 200),
    "bulk_delete": (200, 404, 403, 403, 403, 200),
}


@pytest.fixture
def world(gateway: Any, tenants: dict[str, Record]) -> dict[str, Any]:
    """An acme note to aim at, and each caller's headers. "Other org" acts in its own org (its token is
    not valid for acme) and names acme's record by its sk."""
    admin = tenants["acme_admin"]
    key = gateway.post(
        "/api-key/create", headers=bearer_for(admin), json={"name": "ro", "scopes": ["read"]}
    ).json["key"]
    globex = bearer_for(tenants["globex_admin"])
    callers = {
        "same_org_admin": bearer_for(admin),
        "other_org_admin": globex,
        "customer": bearer_for(tenants["acme_customer"]),
        "read_only_user": bearer_for(tenants["acme_reader"]),
        "read_scoped_key": {"orgid": "acme", "x-api-key": key},
        "platform_root": bearer_for(tenants["platform_root"]) | {"orgid": "acme"},
    }
    return {"callers": callers, "admin": bearer_for(admin)}


def fresh_note(gateway: Any, admin: dict[str, str]) -> dict[str, Any]:
    response = gateway.post(
        "/repository/create",
        headers=admin,
        json={"datatype": "note", "data": {"title": "acme secret", "n": 1}},
    )
    assert response.status_code == 201
    return dict(response.json)


ROUTES: dict[str, Callable[[Any, dict[str, str], dict[str, Any]], Any]] = {
    "create": lambda g, h, n: g.post(
        "/repository/create", headers=h, json={"datatype": "note", "data": {"n": 2}}
    ),
    "create_of_datatype": lambda g, h, n: g.put(
        "/repository/create/note", headers=h, json={"n": 3, "isNew": True}
    ),
    "get": lambda g, h, n: g.get(f"/repository/get/note/{n['sk']}", headers=h),
    "find": lambda g, h, n: g.post("/repository/find/note", headers=h, json={"query": {"n": 1}}),
    "find_by_attribute": lambda g, h, n: g.get(
        "/repository/find-by-attribute/note/title/acme secret", headers=h
    ),
    "update": lambda g, h, n: g.post(
        f"/repository/update/note/{n['sk']}", headers=h, json={"data": {"n": 5}}
    ),
    "update_partial": lambda g, h, n: g.post(
        f"/repository/update-partial/note/{n['pk']}", headers=h, json={"data": {"n": 6}}
    ),
    "delete": lambda g, h, n: g.delete(f"/repository/delete/note/{n['sk']}", headers=h),
    "bulk_delete": lambda g, h, n: g.post("/repository/delete/note", headers=h, json=[n["sk"]]),
}


@pytest.mark.parametrize("route", list(MATRIX))
def test_isolation_matrix(gateway: Any, world: dict[str, Any], route: str) -> None:
    for caller, expected in zip(CALLERS, MATRIX[route], strict=True):
        note = fresh_note(gateway, world["admin"])
        response = ROUTES[route](gateway, world["callers"][caller], note)
        assert response.status_code == expected, (
            f"{route} as {caller}: {response.status_code} {response.text}"
        )
        if route in ("find", "find_by_attribute") and expected == 200:
            found = response.json["data"]
            if caller == "other_org_admin":
                assert found == [], "another org must never see acme's records"
            assert all(r["sk"].startswith(f"{world['callers'][caller]['orgid']}:note:") for r in found)
        if expected >= 400:
            body = response.json
            assert body["error"] == body["code"] == body["reason"]
            # Nothing changed: acme's record is still there, at its version.
            still = gateway.get(f"/repository/get/note/{note['sk']}", headers=world["admin"]).json
            assert still["version"] == note["version"] and still["data"] == note["data"]


@pytest.mark.parametrize("datatype", ["user", "customer", "apikey"])
def test_auth_collections_are_not_reachable(
    gateway: Any, world: dict[str, Any], tenants: dict[str, Record], datatype: str
) -> None:
    admin = world["admin"]
    assert (
        gateway.post("/repository/create", headers=admin, json={"datatype": datatype, "data": {}}).status_code
        == 403
    )
    assert gateway.post(f"/repository/find/{datatype}", headers=admin, json={}).status_code == 403
    assert gateway.get(f"/repository/get/user/{tenants['acme_reader'].sk}", headers=admin).status_code == 403
