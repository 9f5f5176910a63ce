"""Contract §6 over HTTP through the local gateway, with events visible on the local stack."""

from __future__ import annotations

import time

import pytest

from tests.contract.conftest import LocalApi, sign_in
from tests.contract.test_platform_http import assert_error


@pytest.fixture(scope="module")
def admin(api: LocalApi) -> dict[str, str]:
    return {
        "orgid": "acme",
        "authorization": sign_in(api, "admin@acme.test", "acme-admin-pass", "acme")["token"],
    }


def test_record_round_trip_and_its_events(api: LocalApi, admin: dict[str, str]) -> None:
    created = api.request(
        "PUT", "/repository/create", headers=admin, body={"datatype": "memo", "data": {"t": 1}, "isNew": True}
    )
    assert created.status == 201
    record = created.json()
    assert api.get(f"/repository/get/memo/{record['sk']}", headers=admin).json()["pk"] == record["pk"]
    updated = api.post(
        f"/repository/update/memo/{record['pk']}", headers=admin, body={"data": {"t": 2}, "version": 1}
    )
    assert updated.json()["version"] == 2
    assert_error(
        api.post(
            f"/repository/update/memo/{record['pk']}", headers=admin, body={"data": {"t": 3}, "version": 1}
        ),
        409,
        "conflict",
    )
    assert api.request("DELETE", f"/repository/delete/memo/{record['sk']}", headers=admin).json() == {
        "ok": True
    }
    assert_error(api.get(f"/repository/get/memo/{record['sk']}", headers=admin), 404, "not_found")
    # The outbox relay and the bus tap run in the background: the events show up within a few seconds.
    deadline = time.monotonic() + 30  # the relay also carries every other test's events
    while time.monotonic() < deadline:
        events = api.get("/_local/events").json()["data"]
        mine = [e for e in events if e.get("detail", {}).get("id") == record["pk"]]
        if len(mine) == 3:
            break
        time.sleep(0.3)
    assert sorted(e["detail-type"] for e in mine) == ["record.created", "record.deleted", "record.updated"]


def test_another_orgs_record_is_404_and_customers_are_403(api: LocalApi, admin: dict[str, str]) -> None:
    record = api.post("/repository/create", headers=admin, body={"datatype": "memo", "data": {"t": 1}}).json()
    globex = {
        "orgid": "globex",
        "authorization": sign_in(api, "admin@globex.test", "globex-admin-pass", "globex")["token"],
    }
    assert_error(api.get(f"/repository/get/memo/{record['sk']}", headers=globex), 404, "not_found")
    buyer = sign_in(api, "buyer@acme.test", "acme-buyer-pass", "acme", kind="customer")
    assert_error(
        api.post(
            "/repository/find/memo", headers={"orgid": "acme", "authorization": buyer["token"]}, body={}
        ),
        403,
        "forbidden",
    )


def test_find_pages_by_page_number_until_has_next_is_false(api: LocalApi, admin: dict[str, str]) -> None:
    for i in range(5):
        api.post("/repository/create/ticket", headers=admin, body={"i": i})
    seen, page = [], 1
    while True:
        body = api.post(
            "/repository/find/ticket",
            headers=admin,
            body={"query": {}, "options": {"page": page, "pageSize": 2}},
        ).json()
        assert set(body) >= {"data", "total", "page", "pageSize", "hasNext", "next"}
        seen += [r["data"]["i"] for r in body["data"]]
        if not body["hasNext"]:
            break
        page += 1
    assert seen == [0, 1, 2, 3, 4] and body["total"] == 5
