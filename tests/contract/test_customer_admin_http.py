"""Contract §4, customer administration, over HTTP: GET /customer/list (staff with ``read``; the list
shape of §2; ``?email=`` filters by exact email) and POST /customer/update/{id} ``{disabled}`` (the
org's RootAdmin/ConfigAdmin with a person's token; {id} is the pk or the sk; another org's customer is
404). A disabled customer's tokens stop at the next request and its sign-in is 401."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.contract.conftest import LocalApi, sign_in
from tests.contract.test_platform_http import assert_error

ORG = "acme"
PASSWORD = "customer-admin-pass"


@pytest.fixture(scope="module")
def admin(api: LocalApi) -> dict[str, str]:
    return {"orgid": ORG, "authorization": sign_in(api, "admin@acme.test", "acme-admin-pass", ORG)["token"]}


def new_customer(api: LocalApi) -> dict[str, Any]:
    email = f"admin-me-{uuid.uuid4().hex[:12]}@acme.test"
    response = api.post(
        "/profile/customer/signup", headers={"orgid": ORG}, body={"email": email, "password": PASSWORD}
    )
    assert response.status == 201, response.text
    body = response.json()
    return {"email": email, "pk": body["customer"]["pk"], "sk": body["customer"]["sk"], "signed_in": body}


def new_staff(
    api: LocalApi, admin: dict[str, str], roles: list[str], permissions: list[str]
) -> dict[str, str]:
    email = f"staff-{uuid.uuid4().hex[:12]}@acme.test"
    created = api.post(
        "/user/create",
        headers=admin,
        body={"email": email, "password": PASSWORD, "roles": roles, "permissions": permissions},
    )
    assert created.status == 201, created.text
    return {"orgid": ORG, "authorization": sign_in(api, email, PASSWORD, ORG)["token"]}


def test_staff_with_read_list_the_orgs_customers_in_pages(api: LocalApi, admin: dict[str, str]) -> None:
    for _ in range(2):
        new_customer(api)
    reader = new_staff(api, admin, ["User"], ["read"])
    # Given pages of one customer
    first = api.get("/customer/list?ps=1", headers=reader)
    assert first.status == 200, first.text
    body = first.json()
    assert set(body) == {"data", "total", "page", "pageSize", "hasNext", "next"}
    assert body["total"] >= 3 and body["pageSize"] == 1 and body["hasNext"] is True and body["next"]
    second = api.get(f"/customer/list?ps=1&next={body['next']}", headers=reader).json()
    assert second["data"][0]["pk"] != body["data"][0]["pk"]
    # Then every record is a customer of acme, shown without secrets
    everyone = api.get("/customer/list?ps=100", headers=reader)
    assert all(c["sk"].startswith("acme:customer:") for c in everyone.json()["data"])
    assert "passwordHash" not in everyone.text and "argon2" not in everyone.text


def test_the_email_filter_is_exact(api: LocalApi, admin: dict[str, str]) -> None:
    customer = new_customer(api)
    found = api.get(f"/customer/list?email={customer['email'].upper()}", headers=admin).json()
    assert [c["pk"] for c in found["data"]] == [customer["pk"]] and found["total"] == 1
    for other in (customer["email"][:-1], "admin@acme.test", "not-an-email"):
        assert api.get(f"/customer/list?email={other}", headers=admin).json()["data"] == []


def test_who_may_list(api: LocalApi, admin: dict[str, str]) -> None:
    customer = new_customer(api)
    as_customer = {"orgid": ORG, "authorization": customer["signed_in"]["token"]}
    assert_error(api.get("/customer/list", headers=as_customer), 403, "forbidden")
    no_read = new_staff(api, admin, ["User"], [])
    assert_error(api.get("/customer/list", headers=no_read), 403, "forbidden")
    key = api.post("/api-key/create", headers=admin, body={"name": "lister", "scopes": ["read"]}).json()
    assert api.get("/customer/list", headers={"orgid": ORG, "x-api-key": key["key"]}).status == 200
    # Another org's admin sees its own customers only
    globex = {
        "orgid": "globex",
        "authorization": sign_in(api, "admin@globex.test", "globex-admin-pass", "globex")["token"],
    }
    listed = api.get(f"/customer/list?ps=100&email={customer['email']}", headers=globex)
    assert listed.status == 200 and listed.json()["data"] == []


def test_a_disabled_customer_is_refused_from_the_next_request(api: LocalApi, admin: dict[str, str]) -> None:
    customer = new_customer(api)
    token, refresh = customer["signed_in"]["token"], customer["signed_in"]["refreshToken"]
    as_customer = {"orgid": ORG, "authorization": token}
    assert api.get("/profile/whoami", headers=as_customer).status == 200
    # When an admin disables it (by its sk)
    disabled = api.post(f"/customer/update/{customer['sk']}", headers=admin, body={"disabled": True})
    assert disabled.status == 200, disabled.text
    assert disabled.json()["pk"] == customer["pk"] and disabled.json()["data"]["disabled"] is True
    # Then its token, its refresh token and its password stop working at once
    assert_error(api.get("/profile/whoami", headers=as_customer), 401, "unauthorized")
    refreshed = api.post("/profile/customer/refresh", headers={"orgid": ORG}, body={"refreshToken": refresh})
    assert_error(refreshed, 401, "unauthorized")
    assert_error(
        api.post(
            "/profile/customer/signin",
            headers={"orgid": ORG},
            body={"email": customer["email"], "password": PASSWORD},
        ),
        401,
        "invalid_credentials",
    )
    # And enabled again (by its pk), it signs in
    enabled = api.post(f"/customer/update/{customer['pk']}", headers=admin, body={"disabled": False})
    assert enabled.status == 200 and enabled.json()["data"]["disabled"] is False
    assert sign_in(api, customer["email"], PASSWORD, ORG, kind="customer")["token"]


def test_who_may_disable(api: LocalApi, admin: dict[str, str]) -> None:
    customer = new_customer(api)
    path = f"/customer/update/{customer['pk']}"
    key = api.post(
        "/api-key/create", headers=admin, body={"name": "disabler", "scopes": ["read", "write"]}
    ).json()
    refused = [
        {"orgid": ORG, "authorization": customer["signed_in"]["token"]},
        new_staff(api, admin, ["User"], ["read", "update"]),
        new_staff(api, admin, ["ContentAdmin"], ["read", "update"]),
        {"orgid": ORG, "x-api-key": key["key"]},
    ]
    for headers in refused:
        assert_error(api.post(path, headers=headers, body={"disabled": True}), 403, "forbidden")
    config_admin = new_staff(api, admin, ["ConfigAdmin"], ["read"])
    assert api.post(path, headers=config_admin, body={"disabled": True}).status == 200


def test_another_orgs_customer_or_an_unknown_id_is_404(api: LocalApi, admin: dict[str, str]) -> None:
    customer = new_customer(api)
    globex = {
        "orgid": "globex",
        "authorization": sign_in(api, "admin@globex.test", "globex-admin-pass", "globex")["token"],
    }
    for path_id in (customer["pk"], customer["sk"]):
        assert_error(
            api.post(f"/customer/update/{path_id}", headers=globex, body={"disabled": True}), 404, "not_found"
        )
    for path_id in ("customer-nope", "acme:customer:nope", "acme:user:x", "whatever"):
        assert_error(
            api.post(f"/customer/update/{path_id}", headers=admin, body={"disabled": True}), 404, "not_found"
        )
    # And the customer is untouched
    assert sign_in(api, customer["email"], PASSWORD, ORG, kind="customer")["token"]


def test_bad_bodies_are_422_and_change_nothing(api: LocalApi, admin: dict[str, str]) -> None:
    customer = new_customer(api)
    path = f"/customer/update/{customer['pk']}"
    for body in ({}, {"disabled": "yes"}, {"disabled": True, "roles": ["RootAdmin"]}, {"disabled": None}):
        assert_error(api.post(path, headers=admin, body=body), 422, "validation_error")
    assert sign_in(api, customer["email"], PASSWORD, ORG, kind="customer")["token"]
