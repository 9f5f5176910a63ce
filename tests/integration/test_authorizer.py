"""The REQUEST authorizer with REST-API semantics, invoked with the events/ sample."""

from __future__ import annotations

from typing import Any

import pytest

from appengine_core.identity.tokens import TokenService
from appengine_core.infra.envelope import Record
from appengine_local.runtime import LocalLambda
from tests.conftest import load_event
from tests.integration.conftest import access_token_for


def authorizer_event(**headers: str) -> dict[str, Any]:
    event = load_event("authorizer-request")
    event["headers"] = dict(headers)
    event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    return event


def access_token(record: Record) -> str:
    return access_token_for(record)


def test_a_token_of_an_unknown_session_is_unauthorized(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    admin = tenants["acme_admin"]
    token, _ = TokenService().issue(subject=admin.sk, kind="user", session_id="0" * 32)
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        functions.invoke("AuthorizerFunction", authorizer_event(orgid="acme", Authorization=token))


def test_no_credentials_raises_unauthorized(functions: LocalLambda, tenants: dict[str, Record]) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        functions.invoke("AuthorizerFunction", authorizer_event(orgid="acme"))


def test_a_member_user_is_allowed_with_its_principal_in_the_context(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    admin = tenants["acme_admin"]
    event = authorizer_event(orgid="acme", Authorization=f"Bearer {access_token(admin)}")
    result = functions.invoke("AuthorizerFunction", event)
    (statement,) = result["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Resource"] == event["methodArn"]
    assert result["principalId"] == admin.sk
    context = result["context"]
    assert (
        context["kind"] == "user"
        and context["orgid"] == "acme"
        and "RootAdmin" in context["roles"].split(",")
    )
    assert all(isinstance(v, str) for v in context.values()), "API Gateway contexts hold flat strings"


def test_a_user_on_an_org_outside_its_list_is_denied(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    event = authorizer_event(orgid="globex", Authorization=access_token(tenants["acme_admin"]))
    result = functions.invoke("AuthorizerFunction", event)
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Deny"


def test_the_platform_root_may_act_on_any_org(functions: LocalLambda, tenants: dict[str, Record]) -> None:
    event = authorizer_event(orgid="globex", Authorization=access_token(tenants["platform_root"]))
    result = functions.invoke("AuthorizerFunction", event)
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert result["context"]["platformRoot"] == "true"


def test_a_customer_token_with_another_orgid_is_denied(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    event = authorizer_event(orgid="globex", Authorization=access_token(tenants["acme_customer"]))
    result = functions.invoke("AuthorizerFunction", event)
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Deny"


def test_missing_orgid_is_allowed_through_for_the_guard_to_answer_400(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    result = functions.invoke(
        "AuthorizerFunction", authorizer_event(Authorization=access_token(tenants["acme_admin"]))
    )
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert result["context"]["orgid"] == ""


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ4In0.",
        "Bearer ",
    ],
)
def test_malformed_tokens_are_unauthorized(
    functions: LocalLambda, tenants: dict[str, Record], token: str
) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        functions.invoke("AuthorizerFunction", authorizer_event(orgid="acme", Authorization=token))


def test_a_disabled_membership_is_refused_from_the_next_request(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    from appengine_core.infra.store import TenantStore, Update

    # Given a user whose acme membership is disabled after its token was issued
    admin = tenants["acme_admin"]
    token = access_token(admin)
    TenantStore().update(
        Update(
            admin.key,
            "SET #data.#m.acme.disabled = :yes",
            values={":yes": True},
            names={"#data": "data", "#m": "memberships"},
        )
    )
    # When it calls acme with that token, Then the authorizer denies it (403: not permitted on the org)
    result = functions.invoke("AuthorizerFunction", authorizer_event(orgid="acme", Authorization=token))
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Deny"


def test_a_shared_user_runs_with_the_membership_of_the_orgid_header_only(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    from appengine_core.identity.directory import DirectoryService, NewUser
    from appengine_core.identity.memberships import Membership

    # Given a user that is RootAdmin in acme, a reader in globex and disabled in neither
    shared = DirectoryService().create_user(
        "acme",
        NewUser(email="shared@acme.test", password="password-123", orgs=["acme", "globex"]),
        memberships={
            "acme": Membership(roles=("RootAdmin",), permissions=("read", "update")),
            "globex": Membership(roles=("User",), permissions=("read",)),
        },
    )
    token = access_token(shared)
    # When it calls each org, Then each call carries that org's roles and permissions only
    acme = functions.invoke("AuthorizerFunction", authorizer_event(orgid="acme", Authorization=token))
    globex = functions.invoke("AuthorizerFunction", authorizer_event(orgid="globex", Authorization=token))
    assert (acme["context"]["roles"], acme["context"]["permissions"]) == ("RootAdmin", "read,update")
    assert (globex["context"]["roles"], globex["context"]["permissions"]) == ("User", "read")
    assert acme["context"]["platformRoot"] == globex["context"]["platformRoot"] == "false"


def test_a_tenant_root_admin_with_a_platform_user_membership_is_no_platform_root(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    from appengine_core.identity.directory import DirectoryService, NewUser
    from appengine_core.identity.memberships import Membership

    # Given a RootAdmin of acme that is a mere User in the platform org
    user = DirectoryService().create_user(
        "acme",
        NewUser(email="tenant-root@acme.test", password="password-123", orgs=["acme", "platform"]),
        memberships={
            "acme": Membership(roles=("RootAdmin",), permissions=("read",)),
            "platform": Membership(roles=("User",), permissions=("read",)),
        },
    )
    # When it calls globex, Then it is denied: only a platform membership's admin role makes a root
    result = functions.invoke(
        "AuthorizerFunction", authorizer_event(orgid="globex", Authorization=access_token(user))
    )
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Deny"


# -- app tokens (contract §5, issue 16) ---------------------------------------------------------------
def app_token_of(gateway: Any, owner: Record, **body: Any) -> tuple[dict[str, Any], str]:
    from tests.integration.test_api_keys import create_key

    key = create_key(gateway, owner, **body)
    issued = gateway.post(
        "/profile/app/key",
        headers={"orgid": owner.orgid},
        json={"appId": key["id"], "key": key["prefix"], "secret": key["key"]},
    )
    assert issued.status_code == 200, issued.text
    return key, str(issued.json["token"])


def test_an_app_token_alone_is_its_key_in_the_context(
    functions: LocalLambda, gateway: Any, tenants: dict[str, Record]
) -> None:
    admin = tenants["acme_admin"]
    key, token = app_token_of(gateway, admin, scopes=["read"])
    result = functions.invoke("AuthorizerFunction", authorizer_event(orgid="acme", Authorization=token))
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    context = result["context"]
    assert context["credential"] == "apikey" and context["apiKeyId"] == key["id"]
    assert context["principalId"] == admin.sk and context["scopes"] == "read"
    # With another org: denied, as the key is
    other = functions.invoke("AuthorizerFunction", authorizer_event(orgid="globex", Authorization=token))
    assert other["policyDocument"]["Statement"][0]["Effect"] == "Deny"


def test_an_app_token_beside_a_person_names_the_application_and_the_person_decides(
    functions: LocalLambda, gateway: Any, tenants: dict[str, Record]
) -> None:
    key, token = app_token_of(gateway, tenants["acme_admin"], scopes=["read"])
    buyer = tenants["acme_customer"]
    event = authorizer_event(
        orgid="acme", Authorization=f"Bearer {token}", **{"x-client-authorization": access_token(buyer)}
    )
    context = functions.invoke("AuthorizerFunction", event)["context"]
    assert context["kind"] == "customer" and context["principalId"] == buyer.sk
    assert context["credential"] == "jwt" and context["apiKeyId"] == key["id"] and context["scopes"] == ""


def test_an_app_token_is_never_a_persons_token_and_a_forged_one_is_unauthorized(
    functions: LocalLambda, gateway: Any, tenants: dict[str, Record]
) -> None:
    _, token = app_token_of(gateway, tenants["acme_admin"])
    person = access_token(tenants["acme_customer"])
    for headers in (
        {"x-client-authorization": token},
        {"Authorization": token[:-4] + "AAAA"},
        {"Authorization": token[:-4] + "AAAA", "x-client-authorization": person},
    ):
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            functions.invoke("AuthorizerFunction", authorizer_event(orgid="acme", **headers))
    # And an access token is never an app token: verified as what it is
    with pytest.raises(Exception, match="invalid token"):
        TokenService().verify_app(person)
    with pytest.raises(Exception, match="invalid token"):
        TokenService().verify(token)
