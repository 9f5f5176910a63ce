"""Contract §4 "Social sign-in and enterprise SSO", the org's side, over HTTP through the local gateway
and its authorizer: provider settings (PUT, GET, list, DELETE) by the org's RootAdmin/ConfigAdmin with
a person's token, the client secret never answered nor stored in clear, refusals (403) for everyone
else, the local stack's loopback http, linked identities (own listing, unlink), and the settings'
changes in the org's audit log.

Other tests on the same stack may set providers of acme too (the isolation matrix sets google,
microsoft and facebook): these tests use github and oidc, and never count on an exact list.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from tests.contract.conftest import LocalApi
from tests.contract.test_audit_http import admin, bearer
from tests.contract.test_metering_http import table
from tests.contract.test_platform_http import assert_error

PROVIDERS = "/profile/oauth/providers"
IDENTITIES = "/profile/security/identities"
PASSWORD = "oauth-http-pass-1234"
WAIT_SECONDS = 15


def staff(api: LocalApi, roles: list[str]) -> dict[str, str]:
    email = f"oauth-{uuid.uuid4().hex[:12]}@acme.test"
    created = api.post(
        "/user/create",
        headers=admin(api),
        body={"email": email, "password": PASSWORD, "roles": roles, "permissions": ["read"]},
    )
    assert created.status == 201, created.text
    return bearer(api, email, PASSWORD)


def github(secret: str) -> dict[str, Any]:
    return {
        "clientId": f"Iv1.{uuid.uuid4().hex[:16]}",
        "clientSecret": secret,
        "redirectUris": ["https://shop.acme.test/auth/github"],
        "allowedDomains": ["acme.test"],
    }


def test_put_get_list_delete_never_show_the_secret(api: LocalApi) -> None:
    headers, secret = admin(api), f"gh-secret-{uuid.uuid4().hex}"
    settings = github(secret)
    # When acme's admin sets github
    put = api.request("PUT", f"{PROVIDERS}/github", headers=headers, body=settings)
    # Then the answer is the settings, the secret only said to be set, the public endpoints filled in
    assert put.status == 200, put.text
    view = put.json()
    assert view["provider"] == "github" and view["clientSecretSet"] is True
    assert view["clientId"] == settings["clientId"] and view["kinds"] == ["customer"]
    assert view["redirectUris"] == settings["redirectUris"] and view["allowedDomains"] == ["acme.test"]
    assert view["endpoints"]["authorization"] == "https://github.com/login/oauth/authorize"
    assert view["scopes"] == "read:user user:email" and view["issuer"] is None
    assert secret not in put.text and "clientSecret" not in view
    # And GET shows the same
    got = api.get(f"{PROVIDERS}/github", headers=headers)
    assert got.status == 200 and got.json() == view and secret not in got.text
    # And the list holds it, in the list shape of §2
    listed = api.get(PROVIDERS, headers=headers)
    assert listed.status == 200, listed.text
    page = listed.json()
    assert set(page) >= {"data", "total", "page", "pageSize", "hasNext", "next"}
    assert page["total"] == len(page["data"]) and page["hasNext"] is False and page["next"] is None
    assert [p for p in page["data"] if p["provider"] == "github"] == [view]
    assert secret not in listed.text
    # And no item of the emulated table holds the secret in clear
    items = table(api).scan()["Items"]
    assert not [i for i in items if secret in json.dumps(i, default=str)]
    # When it is deleted: ok; then GET and DELETE are 404 and the list has no github
    deleted = api.request("DELETE", f"{PROVIDERS}/github", headers=headers)
    assert deleted.status == 200 and deleted.json() == {"ok": True}
    assert_error(api.get(f"{PROVIDERS}/github", headers=headers), 404, "not_found")
    assert_error(api.request("DELETE", f"{PROVIDERS}/github", headers=headers), 404, "not_found")
    assert "github" not in [p["provider"] for p in api.get(PROVIDERS, headers=headers).json()["data"]]


def test_the_secret_may_be_left_out_once_set(api: LocalApi) -> None:
    headers = admin(api)
    settings = github(f"gh-secret-{uuid.uuid4().hex}")
    without = {k: v for k, v in settings.items() if k != "clientSecret"}
    api.request("DELETE", f"{PROVIDERS}/github", headers=headers)
    # The first PUT needs it
    refused = api.request("PUT", f"{PROVIDERS}/github", headers=headers, body=without)
    assert_error(refused, 422, "validation_error")
    assert [d["field"] for d in refused.json()["details"]] == ["clientSecret"]
    # Later ones keep it
    assert api.request("PUT", f"{PROVIDERS}/github", headers=headers, body=settings).status == 200
    kept = api.request("PUT", f"{PROVIDERS}/github", headers=headers, body=without | {"enabled": False})
    assert kept.status == 200 and kept.json()["enabled"] is False and kept.json()["clientSecretSet"] is True
    assert api.request("DELETE", f"{PROVIDERS}/github", headers=headers).status == 200


def test_the_local_stack_takes_a_loopback_http_issuer_and_nothing_else_in_http(api: LocalApi) -> None:
    headers = admin(api)
    oidc = {
        "clientId": "acme-local",
        "clientSecret": "kc-secret",
        "issuer": "http://127.0.0.1:9/realms/acme",
        "redirectUris": ["http://127.0.0.1:3000/cb"],
        "kinds": ["customer", "user"],
    }
    accepted = api.request("PUT", f"{PROVIDERS}/oidc", headers=headers, body=oidc)
    assert accepted.status == 200, accepted.text
    assert accepted.json()["issuer"] == oidc["issuer"] and accepted.json()["scopes"] == "openid email profile"
    for bad in (
        oidc | {"issuer": "http://idp.acme.test/realms/acme"},
        oidc | {"redirectUris": ["http://shop.acme.test/cb"]},
        {k: v for k, v in oidc.items() if k != "issuer"},
    ):
        assert_error(
            api.request("PUT", f"{PROVIDERS}/oidc", headers=headers, body=bad), 422, "validation_error"
        )
    assert api.get(f"{PROVIDERS}/oidc", headers=headers).json()["issuer"] == oidc["issuer"]
    assert api.request("DELETE", f"{PROVIDERS}/oidc", headers=headers).status == 200


def test_only_the_orgs_admins_with_a_persons_token(api: LocalApi) -> None:
    headers = admin(api)
    key = api.post(
        "/api-key/create",
        headers=headers,
        body={"name": f"o-{uuid.uuid4().hex[:8]}", "scopes": ["read", "write"]},
    )
    assert key.status == 201, key.text
    # A ConfigAdmin may
    config_admin = staff(api, ["ConfigAdmin"])
    put = api.request("PUT", f"{PROVIDERS}/github", headers=config_admin, body=github("config-secret"))
    assert put.status == 200, put.text
    # Nobody else: a ContentAdmin, a customer, an API key, another org's admin
    refused = {
        "content admin": staff(api, ["ContentAdmin"]),
        "customer": bearer(api, "buyer@acme.test", "acme-buyer-pass", kind="customer"),
        "api key": {"orgid": "acme", "x-api-key": key.json()["key"]},
        "other org": bearer(api, "admin@globex.test", "globex-admin-pass", "globex") | {"orgid": "acme"},
    }
    for who, credentials in refused.items():
        for method, path, body in (
            ("GET", PROVIDERS, None),
            ("GET", f"{PROVIDERS}/github", None),
            ("PUT", f"{PROVIDERS}/github", github("stolen-secret")),
            ("DELETE", f"{PROVIDERS}/github", None),
        ):
            response = api.request(method, path, headers=credentials, body=body)
            assert response.status == 403, (who, method, path, response.text)
            assert_error(response, 403, "forbidden")
    # And acme's github is as the ConfigAdmin left it
    assert api.get(f"{PROVIDERS}/github", headers=headers).json() == put.json()
    assert api.request("DELETE", f"{PROVIDERS}/github", headers=config_admin).status == 200
    # Without credentials: 401
    assert_error(api.get(PROVIDERS, headers={"orgid": "acme"}), 401, "unauthorized")


def test_own_identities(api: LocalApi) -> None:
    customer = bearer(api, "buyer@acme.test", "acme-buyer-pass", kind="customer")
    # A person lists its own identities: none linked here
    listed = api.get(IDENTITIES, headers=customer)
    assert listed.status == 200, listed.text
    assert listed.json()["data"] == [] and listed.json()["total"] == 0 and listed.json()["hasNext"] is False
    # Unlinking one it does not have: 404; an unknown provider: 404
    assert_error(api.request("DELETE", f"{IDENTITIES}/google", headers=customer), 404, "not_found")
    assert_error(api.request("DELETE", f"{IDENTITIES}/myspace", headers=customer), 404, "not_found")
    # An API key never: 403
    key = api.post(
        "/api-key/create", headers=admin(api), body={"name": f"i-{uuid.uuid4().hex[:8]}", "scopes": ["read"]}
    )
    assert key.status == 201, key.text
    assert_error(
        api.get(IDENTITIES, headers={"orgid": "acme", "x-api-key": key.json()["key"]}), 403, "forbidden"
    )


def test_provider_changes_reach_the_orgs_audit_log(api: LocalApi) -> None:
    headers = admin(api)
    assert (
        api.request("PUT", f"{PROVIDERS}/github", headers=headers, body=github("audit-secret")).status == 200
    )
    assert api.request("DELETE", f"{PROVIDERS}/github", headers=headers).status == 200
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        updated = api.get("/profile/security/audit?type=oauth.provider.updated", headers=headers).json()[
            "data"
        ]
        deleted = api.get("/profile/security/audit?type=oauth.provider.deleted", headers=headers).json()[
            "data"
        ]
        # Other tests of this module change other providers: wait for github's own events.
        updated = [e for e in updated if e["detail"].get("provider") == "github"]
        deleted = [e for e in deleted if e["detail"].get("provider") == "github"]
        if updated and deleted:
            break
        assert time.monotonic() < deadline, "the audit log never showed the provider's changes"
        time.sleep(0.25)
    assert updated[0]["actor"] and deleted[0]["actor"]
    assert "audit-secret" not in json.dumps(updated + deleted)
