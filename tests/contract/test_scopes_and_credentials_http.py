"""Contract §1 over HTTP: key scopes on every route, keys never administer, and a credential beside a
person's token is verified, never ignored (issue 13, items 2 and 12)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.contract.conftest import LocalApi, sign_in
from tests.contract.test_platform_http import assert_error


@pytest.fixture(scope="module")
def admin(api: LocalApi) -> dict[str, str]:
    return {
        "orgid": "acme",
        "authorization": sign_in(api, "admin@acme.test", "acme-admin-pass", "acme")["token"],
    }


def key_with(api: LocalApi, admin: dict[str, str], scopes: list[str]) -> dict[str, str]:
    created = api.post(
        "/api-key/create", headers=admin, body={"name": f"scopes-{uuid.uuid4().hex[:6]}", "scopes": scopes}
    )
    assert created.status == 201, created.text
    return {"orgid": "acme", "x-api-key": str(created.json()["key"])}


def new_user_body() -> dict[str, Any]:
    return {
        "email": f"scoped-{uuid.uuid4().hex[:10]}@acme.test",
        "password": "scoped-pass-123",
        "roles": ["User"],
        "permissions": ["read"],
    }


def test_a_read_key_calls_reading_routes_only(api: LocalApi, admin: dict[str, str]) -> None:
    # Given a record of acme and a key of the org's RootAdmin narrowed to `read`
    record = api.post("/repository/create", headers=admin, body={"datatype": "note", "data": {"n": 1}})
    assert record.status == 201, record.text
    sk = record.json()["sk"]
    reader = key_with(api, admin, ["read"])

    # When it reads, it may: every GET and the POST routes that only read
    assert api.get(f"/repository/get/note/{sk}", headers=reader).status == 200
    assert api.post("/repository/find/note", headers=reader, body={"query": {}}).status == 200
    assert api.get("/repository/find-by-attribute/note/n/1", headers=reader).status == 200
    assert api.get("/profile/whoami", headers=reader).status == 200

    # Then everything else is 403, whatever its owner may do with a token
    assert_error(
        api.post("/repository/create", headers=reader, body={"datatype": "note", "data": {}}),
        403,
        "forbidden",
    )
    assert_error(
        api.post(f"/repository/update/note/{sk}", headers=reader, body={"data": {"n": 2}}), 403, "forbidden"
    )
    assert_error(api.request("DELETE", f"/repository/delete/note/{sk}", headers=reader), 403, "forbidden")
    assert_error(api.post("/profile/signout", headers=reader), 403, "forbidden")  # sessions take a person
    assert api.get(f"/repository/get/note/{sk}", headers=admin).json()["data"] == {"n": 1}


def test_keys_never_administer_users(api: LocalApi, admin: dict[str, str]) -> None:
    # Given keys of the org's RootAdmin, one of each scope
    for scopes in (["read"], ["write"], ["read", "write"]):
        key = key_with(api, admin, scopes)
        body = new_user_body()
        # When a key creates, lists or changes users / Then 403: those routes take a person's token
        assert_error(api.post("/user/create", headers=key, body=body), 403, "forbidden")
        assert_error(api.get("/user/org/acme", headers=key), 403, "forbidden")
        assert_error(
            api.post("/user/update/user-whoever", headers=key, body={"roles": ["RootAdmin"]}),
            403,
            "forbidden",
        )
        # And nobody was created
        listed = api.get("/user/org/acme?ps=100", headers=admin).json()["data"]
        assert body["email"] not in {u["data"]["email"] for u in listed}


def test_a_write_key_writes(api: LocalApi, admin: dict[str, str]) -> None:
    writer = key_with(api, admin, ["write"])
    created = api.post("/repository/create", headers=writer, body={"datatype": "note", "data": {"by": "key"}})
    assert created.status == 201, created.text
    # A write-only key does not read
    assert_error(api.get(f"/repository/get/note/{created.json()['sk']}", headers=writer), 403, "forbidden")


@pytest.mark.parametrize(
    "application",
    ["Bearer not-a-token", "garbage", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "aek_000000000000"],
)
def test_an_invalid_authorization_beside_a_person_token_is_401(
    api: LocalApi, admin: dict[str, str], application: str
) -> None:
    # Given a valid person token in x-client-authorization
    person = admin["authorization"]
    assert (
        api.get("/profile/whoami", headers={"orgid": "acme", "x-client-authorization": person}).status == 200
    )
    # When Authorization beside it holds something that is not a valid credential
    response = api.get(
        "/profile/whoami",
        headers={"orgid": "acme", "x-client-authorization": f"Bearer {person}", "authorization": application},
    )
    # Then it is verified, not ignored
    assert_error(response, 401, "unauthorized")
