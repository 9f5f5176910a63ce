"""Repository behaviour (contract §6): versions, authorship, roles, states, bad input, paging, events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from appengine_core.identity.directory import DirectoryService, NewUser
from appengine_core.infra.envelope import Record
from appengine_local.runtime import LocalLambda
from appengine_local.streams import StreamMapping
from appengine_local.template import load_template
from tests.integration.conftest import bearer_for


def create(gateway: Any, headers: dict[str, str], datatype: str = "note", **fields: Any) -> Any:
    return gateway.post("/repository/create", headers=headers, json={"datatype": datatype, **fields})


@pytest.fixture
def admin(tenants: dict[str, Record]) -> dict[str, str]:
    return bearer_for(tenants["acme_admin"])


def test_create_returns_the_envelope_with_system_fields(
    gateway: Any, admin: dict[str, str], tenants: dict[str, Record]
) -> None:
    response = create(gateway, admin, data={"title": "t"}, name="n", isNew=True)
    assert response.status_code == 201
    record = response.json
    assert set(record) == {
        "pk",
        "sk",
        "datatype",
        "name",
        "data",
        "version",
        "state",
        "createdate",
        "modifydate",
        "author",
        "owner",
        "requiredRole",
    }
    assert record["pk"].startswith("note-") and record["sk"] == f"acme:note:{record['pk'][5:]}"
    assert (
        record["version"] == 1 and record["author"] == tenants["acme_admin"].sk and record["state"] == "new"
    )


def test_versions_increment_and_a_stale_version_is_409(gateway: Any, admin: dict[str, str]) -> None:
    record = create(gateway, admin, data={"a": 1, "nested": {"x": 1, "y": 1}}).json
    merged = gateway.post(
        f"/repository/update/note/{record['sk']}", headers=admin, json={"data": {"b": 2}, "version": 1}
    ).json
    assert merged["version"] == 2 and merged["data"] == {"a": 1, "b": 2, "nested": {"x": 1, "y": 1}}
    stale = gateway.post(
        f"/repository/update/note/{record['sk']}", headers=admin, json={"data": {"c": 3}, "version": 1}
    )
    assert stale.status_code == 409 and stale.json["error"] == "conflict"
    deep = gateway.post(
        f"/repository/update-partial/note/{record['pk']}", headers=admin, json={"data": {"nested": {"y": 2}}}
    ).json
    assert deep["version"] == 3 and deep["data"]["nested"] == {"x": 1, "y": 2}
    shallow = gateway.post(
        f"/repository/update/note/{record['pk']}", headers=admin, json={"data": {"nested": {"z": 1}}}
    ).json
    assert shallow["data"]["nested"] == {"z": 1}


def test_the_author_may_update_and_delete_its_own_record(gateway: Any, tenants: dict[str, Record]) -> None:
    DirectoryService().create_user(
        "acme", NewUser(email="writer@acme.test", password="writer-pass-1", permissions=["create", "read"])
    )
    from tests.integration.conftest import access_token_for

    writer_record = user_record("writer@acme.test")
    writer = {"orgid": "acme", "authorization": f"Bearer {access_token_for(writer_record)}"}
    own = create(gateway, writer, data={"a": 1}).json
    theirs = create(gateway, bearer_for(tenants["acme_admin"]), data={"a": 1}).json
    assert (
        gateway.post(
            f"/repository/update/note/{own['sk']}", headers=writer, json={"data": {"a": 2}}
        ).status_code
        == 200
    )
    assert (
        gateway.post(
            f"/repository/update/note/{theirs['sk']}", headers=writer, json={"data": {"a": 2}}
        ).status_code
        == 403
    )
    assert gateway.delete(f"/repository/delete/note/{theirs['sk']}", headers=writer).status_code == 403
    assert gateway.delete(f"/repository/delete/note/{own['sk']}", headers=writer).status_code == 200


def test_required_role_on_a_record_and_on_a_collection(
    gateway: Any, admin: dict[str, str], tenants: dict[str, Record]
) -> None:
    reader = bearer_for(tenants["acme_reader"])
    secret = create(gateway, admin, data={"k": 1}, requiredRole="Finance").json
    plain = create(gateway, admin, data={"k": 1}).json
    assert gateway.get(f"/repository/get/note/{secret['sk']}", headers=reader).status_code == 403
    assert gateway.get(f"/repository/get/note/{secret['sk']}", headers=admin).status_code == 200  # RootAdmin
    found = gateway.post("/repository/find/note", headers=reader, json={"query": {"k": 1}}).json["data"]
    assert [r["sk"] for r in found] == [plain["sk"]], "records the caller may not read are left out of finds"
    # A collection-wide role from the org's settings.
    from appengine_core.identity.directory import org_key
    from appengine_core.infra.store import TenantStore, Update

    TenantStore().update(
        Update(
            org_key("acme"),
            "SET settings = :s",
            values={":s": {"collections": {"ledger": {"requiredRole": "Finance"}}}},
        )
    )
    assert create(gateway, admin, datatype="ledger", data={"x": 1}).status_code == 201
    assert gateway.post("/repository/find/ledger", headers=reader, json={}).status_code == 403


def test_publishing_needs_approve_and_review_needs_review(gateway: Any, tenants: dict[str, Record]) -> None:
    DirectoryService().create_user(
        "acme",
        NewUser(
            email="editor@acme.test",
            password="editor-pass-1",
            permissions=["create", "read", "update", "review"],
        ),
    )
    from tests.integration.conftest import access_token_for

    editor_record = user_record("editor@acme.test")
    editor = {"orgid": "acme", "authorization": f"Bearer {access_token_for(editor_record)}"}
    draft = create(gateway, editor, data={"t": 1}, state="draft").json
    to_review = gateway.post(
        f"/repository/update/note/{draft['sk']}", headers=editor, json={"state": "review"}
    )
    assert to_review.status_code == 200 and to_review.json["state"] == "review"
    publish = gateway.post(
        f"/repository/update/note/{draft['sk']}", headers=editor, json={"state": "published"}
    )
    assert publish.status_code == 403
    assert create(gateway, editor, data={"t": 1}, state="published").status_code == 403
    admin = bearer_for(tenants["acme_admin"])
    assert (
        gateway.post(
            f"/repository/update/note/{draft['sk']}", headers=admin, json={"state": "published"}
        ).json["state"]
        == "published"
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"datatype": "not a name", "data": {}}, "datatype"),
        ({"datatype": "note", "data": ["not", "an", "object"]}, "data"),
        ({"datatype": "note", "data": {"version": 9}}, "data.version"),
        ({"datatype": "note", "data": {"sk": "globex:note:1"}}, "data.sk"),
        ({"datatype": "note", "data": {"blob": "x" * (101 * 1024)}}, "data"),
        ({"datatype": "note", "data": {"deep": json.loads("[" * 20 + "]" * 20)}}, "data"),
        ({"datatype": "note", "data": {"n": 1}, "state": "Not A State!"}, "state"),
        ({"data": {"n": 1}}, "datatype"),
    ],
)
def test_bad_input_is_422_with_details_and_writes_nothing(
    gateway: Any, admin: dict[str, str], body: dict[str, Any], field: str
) -> None:
    before = gateway.post("/repository/find/note", headers=admin, json={}).json["total"]
    response = gateway.post("/repository/create", headers=admin, json=body)
    assert response.status_code == 422, response.text
    assert response.json["error"] == "validation_error"
    assert any(d["field"] == field for d in response.json["details"]), response.json["details"]
    assert gateway.post("/repository/find/note", headers=admin, json={}).json["total"] == before


def test_non_finite_numbers_and_bad_queries_are_422(gateway: Any, admin: dict[str, str]) -> None:
    raw = '{"datatype": "note", "data": {"n": NaN}}'
    response = gateway.post(
        "/repository/create", headers=admin | {"content-type": "application/json"}, data=raw
    )
    assert response.status_code == 422
    for query in ({"n": {"$regex": "x"}}, {"bad field!": 1}, {"n": [1, 2]}, {"n": {"$in": "x"}}):
        bad = gateway.post("/repository/find/note", headers=admin, json={"query": query})
        assert bad.status_code == 422, query


def test_paging_by_cursor_and_by_page_number_with_exact_totals(gateway: Any, admin: dict[str, str]) -> None:
    created = [create(gateway, admin, data={"i": i, "even": i % 2 == 0}).json["sk"] for i in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        options: dict[str, Any] = {"pageSize": 3} | ({"next": cursor} if cursor else {})
        page = gateway.post("/repository/find/note", headers=admin, json={"options": options}).json
        assert page["total"] == 7
        seen += [r["sk"] for r in page["data"]]
        cursor = page["next"]
        if not page["hasNext"]:
            break
    assert seen == created, "pages cover every record once, in creation order"
    third = gateway.post(
        "/repository/find/note", headers=admin, json={"options": {"pageSize": 3, "page": 3}}
    ).json
    assert [r["sk"] for r in third["data"]] == created[6:] and third["hasNext"] is False
    newest = gateway.post(
        "/repository/find/note",
        headers=admin,
        json={"options": {"pageSize": 2, "sort": "createdate", "sortType": "desc"}},
    ).json
    assert [r["sk"] for r in newest["data"]] == created[::-1][:2]
    evens = gateway.post(
        "/repository/find/note", headers=admin, json={"query": {"even": True}, "options": {"pageSize": 2}}
    ).json
    assert evens["total"] == 4 and len(evens["data"]) == 2 and evens["hasNext"] is True
    by_field = gateway.post(
        "/repository/find/note",
        headers=admin,
        json={"options": {"sort": "i", "sortType": "desc", "pageSize": 4}},
    ).json
    assert [r["data"]["i"] for r in by_field["data"]] == [6, 5, 4, 3]
    assert (
        gateway.post("/repository/find/note", headers=admin, json={"options": {"page": 101}}).status_code
        == 422
    )
    assert (
        gateway.post("/repository/find/note", headers=admin, json={"options": {"pageSize": 1000}}).status_code
        == 422
    )


def test_a_cursor_cannot_be_replayed_against_another_org_or_collection(
    gateway: Any, admin: dict[str, str], tenants: dict[str, Record]
) -> None:
    for i in range(3):
        create(gateway, admin, data={"i": i})
    cursor = gateway.post("/repository/find/note", headers=admin, json={"options": {"pageSize": 1}}).json[
        "next"
    ]
    other_collection = gateway.post(
        "/repository/find/task", headers=admin, json={"options": {"next": cursor}}
    )
    assert other_collection.status_code == 422
    other_org = gateway.post(
        "/repository/find/note",
        headers=bearer_for(tenants["globex_admin"]),
        json={"options": {"next": cursor}},
    )
    assert other_org.status_code == 422
    assert (
        gateway.post(
            "/repository/find/note", headers=admin, json={"options": {"next": "garbage"}}
        ).status_code
        == 422
    )


def test_bulk_delete_is_all_or_nothing(gateway: Any, admin: dict[str, str]) -> None:
    first, second = (create(gateway, admin, data={"i": i}).json for i in range(2))
    missing = gateway.post("/repository/delete/note", headers=admin, json=[first["sk"], "note-doesnotexist"])
    assert missing.status_code == 404
    assert gateway.get(f"/repository/get/note/{first['sk']}", headers=admin).status_code == 200
    assert gateway.post("/repository/delete/note", headers=admin, json=[first["sk"], second["pk"]]).json == {
        "ok": True
    }
    assert gateway.post("/repository/find/note", headers=admin, json={}).json["total"] == 0


def test_events_are_published_exactly_for_committed_writes(
    gateway: Any, admin: dict[str, str], functions: LocalLambda, bus_messages: Any
) -> None:
    record = create(gateway, admin, data={"i": 1}).json
    gateway.post(
        f"/repository/update/note/{record['sk']}", headers=admin, json={"data": {"i": 2}, "version": 1}
    )
    gateway.post(
        f"/repository/update/note/{record['sk']}", headers=admin, json={"data": {"i": 3}, "version": 1}
    )  # 409
    create(gateway, admin, datatype="bad name", data={})  # 422
    gateway.delete(f"/repository/delete/note/{record['sk']}", headers=admin)
    StreamMapping(load_template(), functions, "PublisherFunction").poll_once()
    events = [e for e in bus_messages() if e["detail-type"].startswith("record.")]
    assert [(e["detail-type"], e["detail"]["version"]) for e in events] == [
        ("record.created", 1),
        ("record.updated", 2),
        ("record.deleted", 2),
    ]
    for event in events:
        assert event["detail"]["orgid"] == "acme" and event["detail"]["datatype"] == "note"
        assert event["detail"]["id"] == record["pk"] and event["detail"]["actor"] == record["author"]


def test_no_scan_is_ever_issued(gateway: Any, admin: dict[str, str]) -> None:
    from appengine_core.infra import aws

    calls: list[str] = []
    aws.dynamodb().meta.client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.append(model.name)
    )
    record = create(gateway, admin, data={"i": 1}).json
    gateway.post("/repository/find/note", headers=admin, json={"query": {"i": {"$gt": 0}}})
    gateway.get(f"/repository/get/note/{record['sk']}", headers=admin)
    assert calls and "Scan" not in calls


def test_usage_is_metered_per_org_per_day_for_the_root_admin(
    gateway: Any, admin: dict[str, str], tenants: dict[str, Record], functions: LocalLambda
) -> None:
    from appengine_local.log_subscription import LogSubscription
    from appengine_local.template import load_template

    # Usage lines reach the metering function through the log group's subscription, in batches.
    subscription = LogSubscription(load_template(), functions)
    try:
        for _ in range(3):
            gateway.post("/repository/find/note", headers=admin, json={})
        gateway.get("/profile/usage?days=2", headers=admin)
        gateway.get("/profile/usage?days=1", headers=bearer_for(tenants["globex_admin"]))
        subscription.flush()
    finally:
        subscription.close()
    report = gateway.get("/profile/usage?days=2", headers=admin)
    assert report.status_code == 200
    days = report.json["data"]
    assert len(days) == 2 and report.json["total"] == 2
    assert days[-1]["requests"] == 4  # the three finds and the first report (this one is not delivered)
    assert gateway.get("/profile/usage", headers=bearer_for(tenants["acme_reader"])).status_code == 403
    assert gateway.get("/profile/usage?days=365", headers=admin).status_code == 422
    globex = gateway.get("/profile/usage?days=1", headers=bearer_for(tenants["globex_admin"])).json["data"]
    assert globex[-1]["requests"] == 1, "another org's requests are not counted here"


def test_the_publisher_sample_event_publishes_its_event(functions: LocalLambda, bus_messages: Any) -> None:
    from tests.conftest import load_event

    result = functions.invoke("PublisherFunction", load_event("publisher-stream-batch"))
    assert result == {"batchItemFailures": []}
    (event,) = bus_messages()
    assert event["detail-type"] == "record.created" and event["source"] == "appengine"
    assert event["detail"]["orgid"] == "acme" and event["detail"]["version"] == 1


def test_payload_may_carry_its_own_name_and_state(gateway: Any, admin: dict[str, str]) -> None:
    response = create(
        gateway, admin, datatype="product", data={"name": "Mug", "state": "in stock", "id": "ext-1"}
    )
    assert response.status_code == 201
    assert (
        response.json["data"] == {"name": "Mug", "state": "in stock", "id": "ext-1"}
        and response.json["name"] == "Mug"
    )


def user_record(email: str) -> Record:
    found = DirectoryService().principal_by_email("acme", "user", email)
    assert found is not None
    return found.record


@pytest.mark.parametrize("path", ["/repository/create/note", "/repository/create", "/repository/find/note"])
def test_an_array_where_an_object_belongs_is_422_and_writes_nothing(
    gateway: Any, admin: dict[str, str], path: str
) -> None:
    # Given a body that is a JSON array holding what the route takes (found by schemathesis: the
    # framework read its first element as the object)
    before = gateway.post("/repository/find/note", headers=admin, json={"query": {}}).json.get("total", 0)
    # When it is sent
    response = gateway.post(path, headers=admin, json=[{"datatype": "note", "data": {"a": 1}, "query": {}}])
    # Then 422 naming the body, and nothing was created
    assert response.status_code == 422 and response.json["details"] == [
        {"field": "body", "problem": "must be a JSON object"}
    ]
    after = gateway.post("/repository/find/note", headers=admin, json={"query": {}}).json.get("total", 0)
    assert after == before
