"""Contract §1 and §4 through the local gateway (issue 13 items 3, 4, 13, 14): roles, permissions and
``disabled`` held per org, the admin rank, customer profile fields only, and user lists that show one
org's membership. Every test makes its own users (unique emails) on the shared demo stack."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.contract.conftest import HttpResponse, LocalApi, sign_in

PASSWORD = "member-pass-123"
ALL = ["create", "read", "update", "delete", "review", "approve"]


def email(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}@members.test"


def bearer(api: LocalApi, address: str, password: str, orgid: str) -> dict[str, str]:
    return {"orgid": orgid, "authorization": "Bearer " + sign_in(api, address, password, orgid)["token"]}


@pytest.fixture(scope="module")
def root(api: LocalApi) -> dict[str, str]:
    return bearer(api, "root@platform.test", "platform-root-pass", "platform")


@pytest.fixture(scope="module")
def acme_admin(api: LocalApi) -> dict[str, str]:
    return bearer(api, "admin@acme.test", "acme-admin-pass", "acme")


def create(api: LocalApi, headers: dict[str, str], orgid: str, **body: Any) -> dict[str, Any]:
    response = api.post(
        "/user/create", headers=headers | {"orgid": orgid}, body={"password": PASSWORD, **body}
    )
    assert response.status == 201, response.text
    return dict(response.json())


def update(
    api: LocalApi, headers: dict[str, str], orgid: str, user: dict[str, Any], **body: Any
) -> HttpResponse:
    return api.post(f"/user/update/{user['sk']}", headers=headers | {"orgid": orgid}, body=body)


def shared_user(api: LocalApi, root: dict[str, str], acme: list[str], globex: list[str]) -> dict[str, Any]:
    """A user of acme and globex made by the platform root, with the given roles in each org."""
    address = email("shared")
    user = create(api, root, "acme", email=address, roles=acme, permissions=["read"], orgs=["acme", "globex"])
    promoted = update(api, root, "globex", user, roles=globex, permissions=["read"])
    assert promoted.status == 200, promoted.text
    return user | {"email": address}


def whoami_data(api: LocalApi, headers: dict[str, str], orgid: str) -> HttpResponse:
    return api.get("/profile/whoami", headers=headers | {"orgid": orgid})


def find_listed(api: LocalApi, headers: dict[str, str], orgid: str, address: str) -> dict[str, Any]:
    path = f"/user/org/{orgid}?ps=100"
    while True:
        page = api.get(path, headers=headers | {"orgid": orgid})
        assert page.status == 200, page.text
        body = page.json()
        for user in body["data"]:
            if user["data"]["email"] == address:
                return dict(user)
        assert body["next"], f"{address} is not listed in {orgid}"
        path = f"/user/org/{orgid}?ps=100&next={body['next']}"


# -- item 3: per-org memberships ------------------------------------------------------------------
def test_an_acme_admin_promoting_a_shared_user_gives_it_nothing_in_globex(
    api: LocalApi, root: dict[str, str], acme_admin: dict[str, str]
) -> None:
    # Given a consultant who is a plain User in acme and in globex
    consultant = shared_user(api, root, ["User"], ["User"])
    # When acme's admin makes it RootAdmin with every permission in acme
    promoted = update(api, acme_admin, "acme", consultant, roles=["RootAdmin"], permissions=ALL)
    assert promoted.status == 200, promoted.text
    assert promoted.json()["data"]["roles"] == ["RootAdmin"]
    # Then it is RootAdmin in acme only: its globex sign-in and whoami still show User
    in_acme = sign_in(api, consultant["email"], PASSWORD, "acme")
    in_globex = sign_in(api, consultant["email"], PASSWORD, "globex")
    assert in_acme["user"]["data"]["roles"] == ["RootAdmin"]
    assert in_acme["user"]["data"]["permissions"]["content"] == ALL
    assert in_globex["user"]["data"]["roles"] == ["User"]
    assert in_globex["user"]["data"]["permissions"]["content"] == ["read"]
    token = {"authorization": "Bearer " + in_globex["token"]}
    me = whoami_data(api, token, "globex").json()["principal"]["data"]
    assert me["roles"] == ["User"] and me["permissions"] == {"content": ["read"]}
    # And it cannot create a user in globex, though it can in acme
    in_globex_create = api.post(
        "/user/create",
        headers=token | {"orgid": "globex"},
        body={"email": email("made"), "password": PASSWORD, "roles": ["RootAdmin"]},
    )
    assert in_globex_create.status == 403, in_globex_create.text
    create(api, token, "acme", email=email("made"), roles=["User"], permissions=["read"])


def test_disabling_a_shared_user_in_acme_leaves_globex_working(
    api: LocalApi, root: dict[str, str], acme_admin: dict[str, str]
) -> None:
    # Given a consultant of acme and globex, signed in (one org-agnostic token)
    consultant = shared_user(api, root, ["User"], ["User"])
    token = {"authorization": "Bearer " + sign_in(api, consultant["email"], PASSWORD, "acme")["token"]}
    # When acme's admin disables it in acme
    disabled = update(api, acme_admin, "acme", consultant, disabled=True)
    assert disabled.status == 200 and disabled.json()["data"]["disabled"] is True, disabled.text
    # Then its token is refused in acme (403) and still works in globex
    assert whoami_data(api, token, "acme").status == 403
    assert whoami_data(api, token, "globex").status == 200
    # And it can no longer sign in to acme, but can sign in to globex, shown as enabled there
    refused = api.post(
        "/profile/signin",
        headers={"orgid": "acme"},
        body={"email": consultant["email"], "password": PASSWORD},
    )
    assert refused.status == 401
    assert sign_in(api, consultant["email"], PASSWORD, "globex")["user"]["data"]["disabled"] is False


def test_user_create_with_orgs_needs_admin_in_each_org_in_its_own_membership(
    api: LocalApi, root: dict[str, str]
) -> None:
    # Given a consultant who is RootAdmin in acme and a User in globex
    consultant = shared_user(api, root, ["RootAdmin"], ["User"])
    token = bearer(api, consultant["email"], PASSWORD, "acme")
    # When it creates a user in acme that should also be a member of globex, Then 403
    body = {"email": email("new"), "password": PASSWORD, "roles": ["User"], "orgs": ["acme", "globex"]}
    assert api.post("/user/create", headers=token, body=body).status == 403
    # And it cannot add an acme user of its own making to globex either
    made = create(api, token, "acme", email=email("made"), roles=["User"], permissions=["read"])
    assert update(api, token, "acme", made, orgs=["acme", "globex"]).status == 403
    # While an admin of both orgs may, and the new user is a member of both
    both = shared_user(api, root, ["RootAdmin"], ["RootAdmin"])
    both_token = bearer(api, both["email"], PASSWORD, "acme")
    twin = create(
        api,
        both_token,
        "acme",
        email=email("twin"),
        roles=["User"],
        permissions=["read"],
        orgs=["acme", "globex"],
    )
    assert sign_in(api, twin["data"]["email"], PASSWORD, "globex")["user"]["data"]["roles"] == ["User"]


# -- item 4: the admin rank -----------------------------------------------------------------------
def test_a_config_admin_cannot_touch_a_root_admin_nor_grant_root_admin(
    api: LocalApi, acme_admin: dict[str, str]
) -> None:
    # Given a ConfigAdmin (read, create, update) and a RootAdmin of acme
    config_email = email("config")
    create(
        api,
        acme_admin,
        "acme",
        email=config_email,
        roles=["ConfigAdmin"],
        permissions=["read", "create", "update"],
    )
    rootadmin = create(
        api, acme_admin, "acme", email=email("rootadmin"), roles=["RootAdmin"], permissions=ALL
    )
    config = bearer(api, config_email, PASSWORD, "acme")
    # When the ConfigAdmin demotes, disables or edits the RootAdmin, Then 403 each time
    for change in ({"roles": ["User"]}, {"disabled": True}, {"permissions": ["read"]}, {"firstName": "X"}):
        assert update(api, config, "acme", rootadmin, **change).status == 403, change
    assert sign_in(api, rootadmin["data"]["email"], PASSWORD, "acme")["user"]["data"]["roles"] == [
        "RootAdmin"
    ]
    # And it grants neither RootAdmin nor a permission it lacks
    refused = [
        {"email": email("x"), "password": PASSWORD, "roles": ["RootAdmin"]},
        {"email": email("x"), "password": PASSWORD, "roles": ["User"], "permissions": ["read", "delete"]},
    ]
    for body in refused:
        assert api.post("/user/create", headers=config, body=body).status == 403, body
    # But it manages users ranked at or below it, within its own permissions
    user = create(api, config, "acme", email=email("user"), roles=["User"], permissions=["read"])
    assert (
        update(api, config, "acme", user, roles=["ConfigAdmin"], permissions=["read", "update"]).status == 200
    )
    assert update(api, config, "acme", user, roles=["RootAdmin"]).status == 403
    assert update(api, config, "acme", user, permissions=["read", "approve"]).status == 403


def test_nobody_changes_its_own_roles_permissions_or_disabled(
    api: LocalApi, acme_admin: dict[str, str]
) -> None:
    # Given a RootAdmin of acme with some permissions
    me = create(
        api, acme_admin, "acme", email=email("self"), roles=["RootAdmin"], permissions=["read", "update"]
    )
    token = bearer(api, me["data"]["email"], PASSWORD, "acme")
    # When it changes its own roles (even keeping its admin role), permissions or disabled, Then 403
    for change in (
        {"roles": ["RootAdmin", "ContentAdmin"]},
        {"permissions": ["read", "update", "delete"]},
        {"disabled": True},
        {"orgs": ["acme", "globex"]},
    ):
        assert update(api, token, "acme", me, **change).status == 403, change
    # And its own name it may change
    assert update(api, token, "acme", me, firstName="Me").status == 200


# -- item 14: a user list shows one org's membership ----------------------------------------------
def test_the_org_user_list_shows_only_that_orgs_membership(
    api: LocalApi, root: dict[str, str], acme_admin: dict[str, str]
) -> None:
    # Given a user that is a reader in acme and RootAdmin in globex
    shared = shared_user(api, root, ["User"], ["RootAdmin"])
    # When acme's admin lists acme's users
    listed = find_listed(api, acme_admin, "acme", shared["email"])
    # Then the user shows its acme membership only: no globex, no other membership
    assert listed["data"]["roles"] == ["User"] and listed["data"]["permissions"] == {"content": ["read"]}
    assert listed["data"]["orgs"] == ["acme"]
    assert "globex" not in json.dumps(listed) and "RootAdmin" not in json.dumps(listed)
    # And the /user/create and /user/update answers show only the org of the call as well
    made = create(api, root, "acme", email=email("both"), roles=["User"], orgs=["acme", "globex"])
    assert "globex" not in json.dumps(made)
    changed = update(api, acme_admin, "acme", shared, firstName="Sam")
    assert changed.status == 200 and "globex" not in changed.text


# -- item 13: customer profile fields only --------------------------------------------------------
@pytest.mark.parametrize(
    "field",
    ["roles", "orgs", "permissions", "memberships", "disabled", "pk", "sk", "passwordHash", "owner"],
)
def test_customer_sign_up_refuses_authority_and_system_fields(api: LocalApi, field: str) -> None:
    # Given a sign-up body that also names an authority or system field
    body = {"email": email("buyer"), "password": PASSWORD, field: ["RootAdmin"] if field == "roles" else "x"}
    # When it is posted, Then 422 naming the field, and no customer exists afterwards
    response = api.post("/profile/customer/signup", headers={"orgid": "acme"}, body=body)
    assert response.status == 422, response.text
    assert any(field in d["field"] for d in response.json()["details"]), response.text
    absent = api.post(
        "/profile/customer/signin",
        headers={"orgid": "acme"},
        body={"email": body["email"], "password": PASSWORD},
    )
    assert absent.status == 401


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"a": value}
    return value


BAD_PROFILES: dict[str, dict[str, Any]] = {
    "a 450 KB field": {"firstName": "x" * 450_000},
    "a 450 KB metadata": {"metadata": {"blob": "x" * 450_000}},
    "metadata over 16 KB": {"metadata": {"blob": "x" * 17_000}},
    "40 levels of nesting": {"metadata": nested(40)},
    "40 levels in the address": {"address": nested(40)},
    "a list where a string goes": {"phone": [[["1"]]]},
}


@pytest.mark.parametrize("case", sorted(BAD_PROFILES))
def test_customer_sign_up_and_profile_update_refuse_what_cannot_be_stored(api: LocalApi, case: str) -> None:
    # Given a customer, and a profile body DynamoDB or the contract refuses
    body = BAD_PROFILES[case]
    signup = api.post(
        "/profile/customer/signup",
        headers={"orgid": "acme"},
        body={"email": email("c"), "password": PASSWORD, **body},
    )
    # When it is sent at sign-up or as a profile update, Then 422 with details, never 5xx
    assert signup.status == 422 and signup.json()["details"], signup.text
    buyer = api.post(
        "/profile/customer/signup",
        headers={"orgid": "acme"},
        body={"email": email("c"), "password": PASSWORD},
    )
    assert buyer.status == 201, buyer.text
    headers = {"orgid": "acme", "authorization": "Bearer " + buyer.json()["token"]}
    updated = api.post("/profile/customer/update", headers=headers, body=body)
    assert updated.status == 422 and updated.json()["details"], updated.text


def test_nan_in_a_customer_profile_is_422(api: LocalApi) -> None:
    # Given bodies with NaN (JSON as Python writes it), at sign-up and in a profile update
    raw = json.dumps({"email": email("nan"), "password": PASSWORD, "metadata": {"score": float("nan")}})
    signup = api.post(
        "/profile/customer/signup",
        headers={"orgid": "acme", "content-type": "application/json"},
        raw=raw.encode(),
    )
    # Then 422 each time
    assert signup.status == 422, signup.text
    buyer = api.post(
        "/profile/customer/signup",
        headers={"orgid": "acme"},
        body={"email": email("c"), "password": PASSWORD},
    )
    headers = {
        "orgid": "acme",
        "authorization": "Bearer " + buyer.json()["token"],
        "content-type": "application/json",
    }
    updated = api.post("/profile/customer/update", headers=headers, raw=b'{"metadata": {"score": NaN}}')
    assert updated.status == 422, updated.text


def test_customer_profile_update_refuses_authority_fields_and_keeps_profile_fields(api: LocalApi) -> None:
    # Given a customer that signed up with profile fields and metadata
    signup = api.post(
        "/profile/customer/signup",
        headers={"orgid": "acme"},
        body={"email": email("c"), "password": PASSWORD, "firstName": "Cy", "metadata": {"tier": "gold"}},
    )
    assert signup.status == 201, signup.text
    assert signup.json()["customer"]["data"]["metadata"] == {"tier": "gold"}
    headers = {"orgid": "acme", "authorization": "Bearer " + signup.json()["token"]}
    # When it tries to give itself authority or system fields, Then 422 naming them
    for field, value in (
        ("memberships", {"acme": {"roles": ["RootAdmin"]}}),
        ("pk", "x"),
        ("sk", "acme:user:x"),
    ):
        response = api.post("/profile/customer/update", headers=headers, body={field: value})
        assert response.status == 422 and any(field in d["field"] for d in response.json()["details"]), field
    # And its profile fields it may change
    changed = api.post(
        "/profile/customer/update", headers=headers, body={"phone": "+1 555", "locale": "en-US"}
    )
    assert changed.status == 200 and changed.json()["data"]["phone"] == "+1 555", changed.text
