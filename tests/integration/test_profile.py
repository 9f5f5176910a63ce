"""Who am I, customer self-service and staff user management, through the gateway path
(authorizer context -> profile function), with the events/ samples."""

from __future__ import annotations

import json
from typing import Any

import pytest

from appengine_core.infra.envelope import Record
from appengine_local.runtime import LocalLambda
from tests.conftest import load_event
from tests.integration.conftest import access_token_for, body_of


def call(
    functions: LocalLambda,
    sample: str,
    caller: Record | None,
    *,
    orgid: str | None = "acme",
    body: Any = None,
    path: str | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The sample event, authorized the way API Gateway would (the real authorizer decides)."""
    event = load_event(sample)
    headers: dict[str, str] = {"content-type": "application/json"}
    if orgid is not None:
        headers["orgid"] = orgid
    if caller is not None:
        headers["authorization"] = f"Bearer {access_token_for(caller)}"
    event["headers"] = headers
    event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    event["body"] = None if body is None else json.dumps(body)
    if path is not None:
        event["path"] = path
    if path_parameters is not None:
        event["pathParameters"] = path_parameters
    event["queryStringParameters"] = query
    authorizer_event = {
        "type": "REQUEST",
        "methodArn": f"arn:aws:execute-api:us-east-1:1:api/v1/{event['httpMethod']}{event['path']}",
        **{k: event[k] for k in ("resource", "path", "httpMethod", "headers", "multiValueHeaders")},
    }
    try:
        decision = functions.invoke("AuthorizerFunction", authorizer_event)
    except Exception as refusal:
        if str(refusal) != "Unauthorized":
            raise
        return {"statusCode": 401, "body": json.dumps({"error": "unauthorized"})}
    if decision["policyDocument"]["Statement"][0]["Effect"] != "Allow":
        return {"statusCode": 403, "body": json.dumps({"error": "forbidden"})}
    event["requestContext"]["authorizer"] = {**decision["context"], "principalId": decision["principalId"]}
    return functions.invoke("ProfileFunction", event)


def test_whoami_for_a_user_and_a_customer(functions: LocalLambda, tenants: dict[str, Record]) -> None:
    user = body_of(call(functions, "profile-whoami", tenants["acme_admin"]))
    assert (
        user["kind"] == "user"
        and user["orgid"] == "acme"
        and user["principal"]["sk"] == tenants["acme_admin"].sk
    )
    customer = body_of(call(functions, "profile-whoami", tenants["acme_customer"]))
    assert customer["kind"] == "customer" and customer["principal"]["data"]["email"] == "buyer@acme.test"


def test_missing_orgid_is_400_after_a_valid_credential(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    response = call(functions, "profile-whoami", tenants["acme_admin"], orgid=None)
    assert response["statusCode"] == 400 and body_of(response)["error"] == "orgid_required"


def test_customer_updates_its_own_profile_but_not_reserved_fields(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    customer = tenants["acme_customer"]
    updated = body_of(
        call(functions, "profile-customer-update", customer, body={"phone": "+1 555", "firstName": "B"})
    )
    assert updated["data"]["phone"] == "+1 555" and updated["version"] == 2
    again = body_of(call(functions, "profile-customer-get", customer))
    assert again["data"]["firstName"] == "B" and again["data"]["email"] == "buyer@acme.test"
    refused = call(
        functions, "profile-customer-update", customer, body={"email": "x@y.zz", "disabled": False}
    )
    assert refused["statusCode"] == 422
    assert {d["field"] for d in body_of(refused)["details"]} == {"email", "disabled"}


def test_staff_routes_refuse_customers_and_customer_routes_refuse_staff(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    body = {"email": "x@acme.test", "password": "password-123"}
    assert call(functions, "user-create", tenants["acme_customer"], body=body)["statusCode"] == 403
    assert call(functions, "profile-customer-get", tenants["acme_admin"])["statusCode"] == 403


def test_role_is_checked_before_the_body(functions: LocalLambda, tenants: dict[str, Record]) -> None:
    # A reader sending garbage to an admin route gets 403, not the body schema (contract §1: 403, then 422).
    assert call(functions, "user-create", tenants["acme_reader"], body={"nonsense": 1})["statusCode"] == 403
    assert call(functions, "user-create", tenants["acme_admin"], body={"nonsense": 1})["statusCode"] == 422


def test_admin_creates_lists_and_updates_users(functions: LocalLambda, tenants: dict[str, Record]) -> None:
    admin = tenants["acme_admin"]
    created = call(
        functions,
        "user-create",
        admin,
        body={
            "email": "editor@acme.test",
            "password": "editor-pass-1",
            "roles": ["ContentAdmin"],
            "permissions": ["read", "create"],
        },
    )
    assert created["statusCode"] == 201
    editor = body_of(created)
    assert editor["data"]["orgs"] == ["acme"] and editor["author"] == admin.sk
    assert (
        call(
            functions, "user-create", admin, body={"email": "editor@acme.test", "password": "editor-pass-1"}
        )["statusCode"]
        == 409
    )

    # List with page size 2: three members (admin, reader, editor) over two pages, total exact.
    first = body_of(call(functions, "user-list-org", admin, query={"pageSize": "2"}))
    assert first["total"] == 3 and first["hasNext"] is True and len(first["data"]) == 2
    second = body_of(call(functions, "user-list-org", admin, query={"pageSize": "2", "next": first["next"]}))
    assert second["hasNext"] is False and second["next"] is None and len(second["data"]) == 1
    emails = {u["data"]["email"] for u in first["data"] + second["data"]}
    assert emails == {"admin@acme.test", "reader@acme.test", "editor@acme.test"}
    assert all("passwordHash" not in json.dumps(u) for u in first["data"])
    by_page = body_of(call(functions, "user-list-org", admin, query={"ps": "2", "p": "2"}))
    assert [u["sk"] for u in by_page["data"]] == [u["sk"] for u in second["data"]]

    # Update by sk (what AppEngine's clients send): roles, then disable.
    path = {"user_id": editor["sk"]}
    updated = body_of(
        call(
            functions,
            "user-update",
            admin,
            body={"roles": ["User"], "version": 1},
            path=f"/user/update/{editor['sk']}",
            path_parameters=path,
        )
    )
    assert updated["data"]["roles"] == ["User"] and updated["version"] == 2
    stale = call(
        functions,
        "user-update",
        admin,
        body={"disabled": True, "version": 1},
        path=f"/user/update/{editor['sk']}",
        path_parameters=path,
    )
    assert stale["statusCode"] == 409


def test_a_disabled_user_stops_working_on_the_next_request(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    admin, reader = tenants["acme_admin"], tenants["acme_reader"]
    assert call(functions, "profile-whoami", reader)["statusCode"] == 200
    response = call(
        functions,
        "user-update",
        admin,
        body={"disabled": True},
        path=f"/user/update/{reader.pk}",
        path_parameters={"user_id": reader.pk},
    )
    assert response["statusCode"] == 200 and body_of(response)["data"]["disabled"] is True
    # A disabled membership is a principal not permitted on that org: 403 (contract §1, §4).
    assert call(functions, "profile-whoami", reader)["statusCode"] == 403


def test_user_list_of_another_org_in_the_path_is_forbidden(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    response = call(
        functions,
        "user-list-org",
        tenants["acme_admin"],
        path="/user/org/globex",
        path_parameters={"orgid": "globex"},
    )
    assert response["statusCode"] == 403


def test_a_reader_cannot_list_users(functions: LocalLambda, tenants: dict[str, Record]) -> None:
    assert call(functions, "user-list-org", tenants["acme_reader"])["statusCode"] == 403


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"email": "a@acme.test", "password": "password-123", "roles": ["RootSystem"]}, 403),
        ({"email": "a@acme.test", "password": "password-123", "orgs": ["acme", "globex"]}, 403),
        ({"email": "a@acme.test", "password": "password-123", "orgs": ["acme", "platform"]}, 403),
        ({"email": "a@acme.test", "password": "password-123", "permissions": ["fly"]}, 422),
    ],
)
def test_no_privilege_escalation_through_user_create(
    functions: LocalLambda, tenants: dict[str, Record], body: Any, status: int
) -> None:
    assert call(functions, "user-create", tenants["acme_admin"], body=body)["statusCode"] == status


def test_the_platform_root_manages_users_of_any_org(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    root = tenants["platform_root"]
    created = call(
        functions,
        "user-create",
        root,
        orgid="globex",
        body={"email": "ops@globex.test", "password": "password-123"},
    )
    assert created["statusCode"] == 201 and body_of(created)["sk"].startswith("globex:user:")


def test_an_unknown_user_or_another_orgs_user_is_404(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    admin = tenants["acme_admin"]
    root = tenants["platform_root"]
    for target in ("user-doesnotexist", root.sk, root.pk, "garbage"):
        response = call(
            functions,
            "user-update",
            admin,
            body={"disabled": True},
            path=f"/user/update/{target}",
            path_parameters={"user_id": target},
        )
        assert response["statusCode"] == 404, target


def test_an_admin_cannot_lock_itself_out(functions: LocalLambda, tenants: dict[str, Record]) -> None:
    admin = tenants["acme_admin"]
    for body in ({"disabled": True}, {"roles": ["User"]}):
        response = call(
            functions,
            "user-update",
            admin,
            body=body,
            path=f"/user/update/{admin.sk}",
            path_parameters={"user_id": admin.sk},
        )
        assert response["statusCode"] == 403, body
    assert call(functions, "profile-whoami", admin)["statusCode"] == 200
    renamed = call(
        functions,
        "user-update",
        admin,
        body={"firstName": "Ada"},
        path=f"/user/update/{admin.sk}",
        path_parameters={"user_id": admin.sk},
    )
    assert renamed["statusCode"] == 200
