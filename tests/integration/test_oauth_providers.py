"""Contract §4 "Social sign-in and enterprise SSO", the org's side, through the local gateway in-process
(authorizer included) on moto: provider settings (PUT, GET, list, DELETE; the client secret sealed with
KMS, never stored in clear nor answered; who may configure), what the sign-in flow reads of them
(``ProviderDirectory``), and linked identities (link, lookup, listing, unlink with the rule that a
principal always keeps a way in)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from appengine_core.identity.data import PASSWORD_HASH
from appengine_core.identity.directory import DirectoryService, NewCustomer, NewUser
from appengine_core.identity.oauth_data import SEALED_SECRET, link_key, principal_identity_key, provider_key
from appengine_core.identity.oauth_links import IdentityLinks
from appengine_core.identity.oauth_providers import ProviderDirectory
from appengine_core.identity.principal import Caller, Principal
from appengine_core.infra.envelope import Record
from appengine_core.infra.errors import Conflict
from appengine_core.infra.settings import get_settings
from appengine_core.infra.store import Put, TenantStore, Update
from appengine_core.infra.tenancy import TenantKey
from appengine_local.resources import LOCAL_REGION
from tests.conftest import load_event
from tests.integration.conftest import access_token_for, bearer_for

SECRET = "gocspx-very-secret-client-value-0123456789"
GOOGLE = {
    "clientId": "1234567890-acme.apps.googleusercontent.com",
    "clientSecret": SECRET,
    "kinds": ["customer", "user"],
    "redirectUris": ["https://shop.acme.test/auth/callback", "http://127.0.0.1:3000/cb"],
    "allowedDomains": ["Acme.test"],
}
PATH = "/profile/oauth/providers"


def call(gateway: Any, method: str, path: str, headers: dict[str, str], body: Any = None) -> tuple[int, Any]:
    response = gateway.open(path, method=method, headers=headers, json=body)
    return response.status_code, response.get_json(silent=True)


def all_items() -> list[dict[str, Any]]:
    """Every item of the table (a Scan: the test's eyes only)."""
    table = boto3.resource("dynamodb", region_name=LOCAL_REGION).Table(get_settings().table_name)
    items: list[dict[str, Any]] = []
    response = table.scan()
    items += response["Items"]
    while "LastEvaluatedKey" in response:
        response = table.scan(ExclusiveStartKey=response["LastEvaluatedKey"])
        items += response["Items"]
    return items


def staff(orgid: str, email: str, roles: list[str]) -> Record:
    return DirectoryService().create_user(
        orgid, NewUser(email=email, password="staff-pass-1234", roles=roles, permissions=["read", "create"])
    )


def api_key_of(gateway: Any, admin: Record) -> dict[str, str]:
    status, created = call(
        gateway, "POST", "/api-key/create", bearer_for(admin), {"name": "oauth", "scopes": ["read", "write"]}
    )
    assert status == 201, created
    return {"orgid": admin.orgid, "x-api-key": created["key"]}


def assert_error(status: int, body: Any, expected: int, code: str) -> None:
    assert status == expected, body
    assert body["error"] == body["code"] == body["reason"] == code, body


# -- provider settings ---------------------------------------------------------------------------------
def test_put_get_list_delete(gateway: Any, tenants: dict[str, Record], bus_messages: Any) -> None:
    admin = bearer_for(tenants["acme_admin"])
    # When acme's admin sets google
    status, view = call(gateway, "PUT", f"{PATH}/google", admin, GOOGLE)
    # Then the answer is the settings without the secret, the defaults filled in
    assert status == 200, view
    assert view["provider"] == "google" and view["clientSecretSet"] is True
    assert view["clientId"] == GOOGLE["clientId"] and view["kinds"] == ["customer", "user"]
    assert view["redirectUris"] == GOOGLE["redirectUris"] and view["allowedDomains"] == ["acme.test"]
    assert view["issuer"] == "https://accounts.google.com" and view["scopes"] == "openid email profile"
    assert view["enabled"] is True and view["autoCreate"] is True
    assert "clientSecret" not in view and SECRET not in json.dumps(view)
    # And GET answers the same, and the list holds it in the list shape of §2
    status, read = call(gateway, "GET", f"{PATH}/google", admin)
    assert status == 200 and read == view
    status, listed = call(gateway, "GET", PATH, admin)
    assert status == 200, listed
    assert listed["data"] == [view] and listed["total"] == 1
    assert listed["page"] == 1 and listed["hasNext"] is False and listed["next"] is None
    assert SECRET not in json.dumps(listed)
    # When it is deleted
    status, done = call(gateway, "DELETE", f"{PATH}/google", admin)
    # Then it is gone: GET and a second DELETE are 404, the list is empty
    assert (status, done) == (200, {"ok": True})
    assert_error(*call(gateway, "GET", f"{PATH}/google", admin), 404, "not_found")
    assert_error(*call(gateway, "DELETE", f"{PATH}/google", admin), 404, "not_found")
    assert call(gateway, "GET", PATH, admin)[1]["total"] == 0
    # And the bus saw an update and a deletion by the admin, never the secret
    events = [e for e in bus_messages() if e["detail-type"].startswith("oauth.provider.")]
    assert [e["detail-type"] for e in events] == ["oauth.provider.updated", "oauth.provider.deleted"]
    for event in events:
        assert event["detail"]["actor"] == tenants["acme_admin"].sk
        assert event["detail"]["provider"] == "google" and event["detail"]["orgid"] == "acme"
        assert SECRET not in json.dumps(event)
    assert "clientSecret" in events[0]["detail"]["fields"]


def test_the_secret_is_sealed_never_stored_in_clear_and_bound_to_org_and_provider(
    gateway: Any, tenants: dict[str, Record]
) -> None:
    # Given google set in acme
    assert call(gateway, "PUT", f"{PATH}/google", bearer_for(tenants["acme_admin"]), GOOGLE)[0] == 200
    # Then no item of the table holds the secret in clear; the provider's item holds it sealed
    assert not [item for item in all_items() if SECRET in json.dumps(item, default=str)]
    store = TenantStore()
    stored = store.get(provider_key("acme", "google")) or {}
    assert stored[SEALED_SECRET] and SECRET not in stored[SEALED_SECRET]
    # And the flow reads it opened
    config = ProviderDirectory().config("acme", "google")
    assert config is not None and config.client_secret.get_secret_value() == SECRET
    # When the sealed value is copied onto globex's google, or acme's github
    for orgid, provider in (("globex", "google"), ("acme", "github")):
        item = dict(stored) | {"provider": provider}
        store.put(Put(provider_key(orgid, provider), item, must_not_exist=False))
        # Then it does not open there: the flow sees no provider
        assert ProviderDirectory().config(orgid, provider) is None


def test_a_secret_is_required_first_and_kept_when_left_out(gateway: Any, tenants: dict[str, Record]) -> None:
    admin = bearer_for(tenants["acme_admin"])
    without = {k: v for k, v in GOOGLE.items() if k != "clientSecret"}
    # A first PUT without a secret: 422 naming clientSecret, nothing stored
    status, body = call(gateway, "PUT", f"{PATH}/google", admin, without)
    assert_error(status, body, 422, "validation_error")
    assert [d["field"] for d in body["details"]] == ["clientSecret"]
    assert TenantStore().get(provider_key("acme", "google")) is None
    # With one, then again without it (other settings changed): the secret stays, the rest is replaced
    assert call(gateway, "PUT", f"{PATH}/google", admin, GOOGLE)[0] == 200
    status, view = call(
        gateway, "PUT", f"{PATH}/google", admin, without | {"enabled": False, "kinds": ["user"]}
    )
    assert status == 200 and view["enabled"] is False and view["kinds"] == ["user"], view
    stored = TenantStore().get(provider_key("acme", "google")) or {}
    assert stored["enabled"] is False
    assert call(gateway, "PUT", f"{PATH}/google", admin, without)[0] == 200
    config = ProviderDirectory().config("acme", "google")
    assert config is not None and config.client_secret.get_secret_value() == SECRET
    # A new clientId without its secret: 422
    status, body = call(gateway, "PUT", f"{PATH}/google", admin, without | {"clientId": "another-client"})
    assert_error(status, body, 422, "validation_error")
    assert (TenantStore().get(provider_key("acme", "google")) or {})["clientId"] == GOOGLE["clientId"]


def test_what_the_flow_reads(gateway: Any, tenants: dict[str, Record]) -> None:
    admin = bearer_for(tenants["acme_admin"])
    directory = ProviderDirectory()
    # Nothing configured, an unknown provider: None
    assert directory.config("acme", "google") is None
    assert directory.config("acme", "myspace") is None
    # An enabled github: its public endpoints under the overrides, kinds and exact redirects
    body = {
        "clientId": "Iv1.abc",
        "clientSecret": "gh-secret",
        "redirectUris": ["https://shop.acme.test/cb"],
        "endpoints": {"userinfo": "https://ghe.acme.test/api/v3/user"},
    }
    assert call(gateway, "PUT", f"{PATH}/github", admin, body)[0] == 200
    config = directory.config("acme", "github")
    assert config is not None and config.orgid == "acme" and config.provider == "github"
    assert config.client_id == "Iv1.abc" and config.client_secret.get_secret_value() == "gh-secret"
    assert config.authorization_endpoint == "https://github.com/login/oauth/authorize"
    assert config.userinfo_endpoint == "https://ghe.acme.test/api/v3/user"
    assert config.issuer is None and not config.openid and config.scope_list == ["read:user", "user:email"]
    assert config.allows("customer") and not config.allows("user")
    assert config.redirect_allowed("https://shop.acme.test/cb")
    assert not config.redirect_allowed("https://shop.acme.test/cb/")
    # Another org sees nothing of it
    assert directory.config("globex", "github") is None
    # Disabled: None
    assert call(gateway, "PUT", f"{PATH}/github", admin, body | {"enabled": False})[0] == 200
    assert directory.config("acme", "github") is None


def test_oidc_needs_an_issuer_and_https_unless_loopback_http_is_allowed(
    gateway: Any, tenants: dict[str, Record], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = bearer_for(tenants["acme_admin"])
    oidc = {"clientId": "acme-app", "clientSecret": "kc-secret", "redirectUris": ["http://127.0.0.1:3000/cb"]}
    # Without an issuer: 422
    status, body = call(gateway, "PUT", f"{PATH}/oidc", admin, oidc)
    assert_error(status, body, 422, "validation_error")
    assert {d["field"] for d in body["details"]} == {"issuer"}
    # A local provider on loopback http where that is allowed (the tests, as the local stack): 200
    local = oidc | {"issuer": "http://127.0.0.1:9000/realms/acme"}
    status, view = call(gateway, "PUT", f"{PATH}/oidc", admin, local)
    assert status == 200 and view["issuer"] == "http://127.0.0.1:9000/realms/acme", view
    # http elsewhere: 422
    status, body = call(gateway, "PUT", f"{PATH}/oidc", admin, local | {"issuer": "http://idp.acme.test"})
    assert_error(status, body, 422, "validation_error")
    # Where loopback http is not allowed (deployed): 422 for the issuer and the redirect
    monkeypatch.setenv("APPENGINE_OAUTH_ALLOW_LOOPBACK_HTTP", "false")
    get_settings.cache_clear()
    status, body = call(gateway, "PUT", f"{PATH}/oidc", admin, local)
    assert_error(status, body, 422, "validation_error")
    assert {d["field"] for d in body["details"]} == {"issuer", "redirectUris.0"}
    # And what was stored before is as it was
    assert (TenantStore().get(provider_key("acme", "oidc")) or {})["issuer"] == local["issuer"]


def test_an_unknown_provider_or_a_bad_body_is_refused(gateway: Any, tenants: dict[str, Record]) -> None:
    admin = bearer_for(tenants["acme_admin"])
    for method in ("PUT", "GET", "DELETE"):
        status, body = call(gateway, method, f"{PATH}/myspace", admin, GOOGLE if method == "PUT" else None)
        assert_error(status, body, 404, "not_found")
    for bad in (
        GOOGLE | {"redirectUris": ["https://shop.acme.test/cb#x"]},
        GOOGLE | {"redirectUris": []},
        GOOGLE | {"allowedDomain": ["acme.test"]},
        GOOGLE | {"kinds": ["admin"]},
    ):
        assert_error(*call(gateway, "PUT", f"{PATH}/google", admin, bad), 422, "validation_error")
    response = gateway.open(f"{PATH}/google", method="PUT", headers=admin, data="{not json")
    assert response.status_code == 400
    assert TenantStore().get(provider_key("acme", "google")) is None


def test_only_the_orgs_admins_with_their_own_token_configure(
    gateway: Any, tenants: dict[str, Record]
) -> None:
    # Given google set in acme by its RootAdmin
    assert call(gateway, "PUT", f"{PATH}/google", bearer_for(tenants["acme_admin"]), GOOGLE)[0] == 200
    # A ConfigAdmin of acme may do everything
    config_admin = bearer_for(staff("acme", "config@acme.test", ["ConfigAdmin"]))
    assert call(gateway, "GET", PATH, config_admin)[0] == 200
    assert call(gateway, "PUT", f"{PATH}/github", config_admin, GOOGLE | {"clientId": "gh"})[0] == 200
    assert call(gateway, "DELETE", f"{PATH}/github", config_admin)[0] == 200
    # Nobody else: a ContentAdmin, a reader, a customer, an API key of acme's admin, globex's admin
    refused = {
        "content admin": bearer_for(staff("acme", "content@acme.test", ["ContentAdmin"])),
        "reader": bearer_for(tenants["acme_reader"]),
        "customer": bearer_for(tenants["acme_customer"]),
        "api key": api_key_of(gateway, tenants["acme_admin"]),
        "other org": bearer_for(tenants["globex_admin"]) | {"orgid": "acme"},
    }
    for who, headers in refused.items():
        for method, path, body in (
            ("GET", PATH, None),
            ("GET", f"{PATH}/google", None),
            ("PUT", f"{PATH}/google", GOOGLE | {"enabled": False}),
            ("DELETE", f"{PATH}/google", None),
        ):
            status, answer = call(gateway, method, path, headers, body)
            assert status == 403, (who, method, path, answer)
    # And acme's google is as it was
    config = ProviderDirectory().config("acme", "google")
    assert config is not None and config.client_secret.get_secret_value() == SECRET
    # globex's admin in globex sees globex's providers only
    status, listed = call(gateway, "GET", PATH, bearer_for(tenants["globex_admin"]))
    assert status == 200 and listed["total"] == 0


def invoke_sample(functions: Any, name: str, caller: Record, body: Any = None) -> dict[str, Any]:
    """The sample event, authorized by the real authorizer as ``caller``, handled by the oauth function."""
    event = load_event(name)
    headers = {"content-type": "application/json", "orgid": caller.orgid}
    headers["authorization"] = f"Bearer {access_token_for(caller)}"
    event |= {"headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()}}
    event["body"] = None if body is None else json.dumps(body)
    authorizer_event = {
        "type": "REQUEST",
        "methodArn": f"arn:aws:execute-api:us-east-1:1:api/v1/{event['httpMethod']}{event['path']}",
        **{k: event[k] for k in ("resource", "path", "httpMethod", "headers", "multiValueHeaders")},
    }
    decision = functions.invoke("AuthorizerFunction", authorizer_event)
    assert decision["policyDocument"]["Statement"][0]["Effect"] == "Allow", decision
    event["requestContext"]["authorizer"] = {**decision["context"], "principalId": decision["principalId"]}
    return dict(functions.invoke("OAuthFunction", event))


def test_the_sample_events_run(functions: Any, tenants: dict[str, Record]) -> None:
    # Each sample as acme's RootAdmin (the PUT with a real secret instead of the placeholder)
    put = json.loads(load_event("oauth-provider-put")["body"]) | {"clientSecret": "sample-secret"}
    for name, body, status in (
        ("oauth-provider-put", put, 200),
        ("oauth-provider-get", None, 200),
        ("oauth-providers-list", None, 200),
        ("oauth-provider-delete", None, 200),
        ("identities-own", None, 200),
        ("identities-own-unlink", None, 404),
    ):
        response = invoke_sample(functions, name, tenants["acme_admin"], body)
        assert response["statusCode"] == status, (name, response)
        assert "sample-secret" not in response["body"]


# -- linked identities -----------------------------------------------------------------------------------
def passwordless_customer(email: str) -> Record:
    """A customer as a provider's sign-in creates it: no password."""
    record = DirectoryService().create_customer("acme", NewCustomer(email=email, password="to-be-removed"))
    TenantStore().update(Update(TenantKey.parse(record.sk), f"REMOVE {PASSWORD_HASH}"), return_new=False)
    return record


def test_link_lookup_listing_and_unlink(gateway: Any, tenants: dict[str, Record], bus_messages: Any) -> None:
    links, customer = IdentityLinks(), tenants["acme_customer"]
    # When the flow links a google account to the customer
    links.link("acme", "customer", "google", "google-sub-1", customer.sk, "buyer@acme.test")
    # Then the subject names the customer, in acme and as a customer only
    assert links.principal_for("acme", "customer", "google", "google-sub-1") == customer.sk
    assert links.principal_for("acme", "user", "google", "google-sub-1") is None
    assert links.principal_for("globex", "customer", "google", "google-sub-1") is None
    assert links.principal_for("acme", "customer", "github", "google-sub-1") is None
    # And linking it again to the same customer changes nothing
    links.link("acme", "customer", "google", "google-sub-1", customer.sk, "buyer@acme.test")
    # And the customer lists it
    headers = bearer_for(customer)
    status, listed = call(gateway, "GET", "/profile/security/identities", headers)
    assert status == 200, listed
    assert listed["total"] == 1 and listed["hasNext"] is False
    [identity] = listed["data"]
    assert identity["provider"] == "google" and identity["subject"] == "google-sub-1"
    assert identity["email"] == "buyer@acme.test" and identity["linkedAt"] and identity["orgid"] == "acme"
    # Nobody else sees it
    assert (
        call(gateway, "GET", "/profile/security/identities", bearer_for(tenants["acme_admin"]))[1]["total"]
        == 0
    )
    # When the customer (who has a password) unlinks it: 200, gone, and a second unlink is 404
    assert call(gateway, "DELETE", "/profile/security/identities/google", headers) == (200, {"ok": True})
    assert links.principal_for("acme", "customer", "google", "google-sub-1") is None
    assert TenantStore().get(principal_identity_key(customer.sk, "acme", "google")) is None
    assert TenantStore().get(link_key("acme", "customer", "google", "google-sub-1")) is None
    assert_error(*call(gateway, "DELETE", "/profile/security/identities/google", headers), 404, "not_found")
    assert_error(*call(gateway, "DELETE", "/profile/security/identities/myspace", headers), 404, "not_found")
    # And the bus saw one link and one unlink
    events = [e for e in bus_messages() if e["detail-type"].startswith("auth.identity.")]
    assert [e["detail-type"] for e in events] == ["auth.identity.linked", "auth.identity.unlinked"]
    for event in events:
        assert event["detail"]["principal"] == customer.sk and event["detail"]["provider"] == "google"
        assert event["detail"]["kind"] == "customer" and event["detail"]["orgid"] == "acme"


def test_a_subject_links_to_one_principal_and_a_principal_to_one_subject_per_provider(
    tenants: dict[str, Record],
) -> None:
    links = IdentityLinks()
    admin, reader = tenants["acme_admin"], tenants["acme_reader"]
    links.link("acme", "user", "microsoft", "ms-sub-1", admin.sk, "admin@acme.test")
    # The same subject for another principal: Conflict, and the link stays the first one's
    with pytest.raises(Conflict):
        links.link("acme", "user", "microsoft", "ms-sub-1", reader.sk, "reader@acme.test")
    assert links.principal_for("acme", "user", "microsoft", "ms-sub-1") == admin.sk
    # Another subject of the same provider for the same principal in the same org: Conflict
    with pytest.raises(Conflict):
        links.link("acme", "user", "microsoft", "ms-sub-2", admin.sk, "admin@acme.test")
    assert links.principal_for("acme", "user", "microsoft", "ms-sub-2") is None
    # The same subject in another org is another link (a User may belong to several orgs)
    links.link("globex", "user", "microsoft", "ms-sub-1", reader.sk, "reader@acme.test")
    assert links.principal_for("globex", "user", "microsoft", "ms-sub-1") == reader.sk
    # A principal's listing is one Query on its index: every org's, or one org's
    assert {(i.orgid, i.provider) for i in links.listed(reader.sk)} == {("globex", "microsoft")}
    assert links.listed(reader.sk, "acme") == []


def test_the_last_way_in_is_never_unlinked(gateway: Any, tenants: dict[str, Record]) -> None:
    # Given a customer without a password and with two linked identities
    links, customer = IdentityLinks(), passwordless_customer("social@acme.test")
    links.link("acme", "customer", "google", "g-social", customer.sk, "social@acme.test")
    links.link("acme", "customer", "facebook", "fb-social", customer.sk, "social@acme.test")
    headers = bearer_for(customer)
    # When it unlinks one: 200
    assert call(gateway, "DELETE", "/profile/security/identities/google", headers)[0] == 200
    # Then the other is its only way in: 409, and it stays linked
    status, body = call(gateway, "DELETE", "/profile/security/identities/facebook", headers)
    assert_error(status, body, 409, "conflict")
    assert links.principal_for("acme", "customer", "facebook", "fb-social") == customer.sk
    assert [i.provider for i in links.listed(customer.sk)] == ["facebook"]


def test_an_unlink_racing_another_never_leaves_no_way_in(
    tenants: dict[str, Record], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a customer without a password and with two linked identities
    links, customer = IdentityLinks(), passwordless_customer("race@acme.test")
    links.link("acme", "customer", "google", "g-race", customer.sk, "race@acme.test")
    links.link("acme", "customer", "github", "gh-race", customer.sk, "race@acme.test")
    caller = Caller(
        principal=Principal(kind="customer", principal_id=customer.sk, orgid="acme"), orgid="acme"
    )
    # And a parallel unlink of github that lands right after the unlink of google counted github
    counted = links._data.principal_identities
    raced: list[bool] = []

    def counted_then_raced(principal_sk: str, orgid: str | None = None, *, limit: int = 100) -> Any:
        seen = counted(principal_sk, orgid, limit=limit)
        if orgid is None and not raced:
            raced.append(True)
            IdentityLinks().unlink(caller, "github")  # google is still there: it succeeds
        return seen

    monkeypatch.setattr(links._data, "principal_identities", counted_then_raced)
    # When google is unlinked, counting on github
    with pytest.raises(Conflict):
        links.unlink(caller, "google")
    # Then the commit saw github gone, judged again, and refused: google stays, the only way in
    assert raced == [True]
    assert [i.provider for i in IdentityLinks().listed(customer.sk)] == ["google"]


def test_identities_are_a_persons_own(gateway: Any, tenants: dict[str, Record]) -> None:
    key = api_key_of(gateway, tenants["acme_admin"])
    assert_error(*call(gateway, "GET", "/profile/security/identities", key), 403, "forbidden")
    assert_error(*call(gateway, "DELETE", "/profile/security/identities/google", key), 403, "forbidden")
    # A User lists its own in the org of the call
    assert call(gateway, "GET", "/profile/security/identities", bearer_for(tenants["acme_reader"]))[0] == 200
