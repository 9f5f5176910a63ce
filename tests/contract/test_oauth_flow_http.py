"""Social sign-in and enterprise SSO over HTTP (contract §4 "Social sign-in and enterprise SSO"): the
local stack against a real OpenID Connect provider on loopback (``oidc-provider-mock``, see
``tests/contract/oidc_mock.py``), configured as ``oidc``, ``google`` and ``microsoft`` (their issuer
overridden), by acme's admin through PUT /profile/oauth/providers/{provider}.

Each sign-in is what a browser does: GET /profile/{provider} (302 to the provider), the person authorizes
a subject on the provider's page (302 back to the callback), GET the callback (302 to
``redirectUri#code=...``), then the application POSTs the code to /profile/oauth/exchange.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.contract.conftest import LocalApi, sign_in
from tests.contract.oidc_mock import LocalOidcProvider, local_oidc_provider

APP = "http://127.0.0.1:5173/auth/callback"  # an application on the developer's machine
OPENID_PROVIDERS = ("oidc", "google", "microsoft")


@pytest.fixture(scope="module")
def idp() -> Iterator[LocalOidcProvider]:
    with local_oidc_provider() as provider:
        yield provider


@pytest.fixture(scope="module")
def admin(api: LocalApi) -> dict[str, str]:
    token = sign_in(api, "admin@acme.test", "acme-admin-pass", "acme")["token"]
    return {"orgid": "acme", "authorization": f"Bearer {token}"}


def configure(
    api: LocalApi, admin: dict[str, str], idp: LocalOidcProvider, provider: str, **settings: Any
) -> None:
    body = {
        "clientId": f"acme-{provider}",
        "clientSecret": f"acme-{provider}-secret",
        "issuer": idp.issuer,
        "redirectUris": [APP],
        "kinds": ["customer", "user"],
    } | settings
    response = api.request("PUT", f"/profile/oauth/providers/{provider}", headers=admin, body=body)
    assert response.status == 200, response.text


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


class Browser:
    """What a browser does with the API's redirects (no redirect followed by itself)."""

    def __init__(self, api: LocalApi, idp: LocalOidcProvider) -> None:
        self.api, self.idp = api, idp

    def start(
        self, provider: str, *, kind: str | None = None, redirect_uri: str = APP, **query: str
    ) -> requests.Response:
        params = {"orgid": "acme", "redirectUri": redirect_uri} | ({"kind": kind} if kind else {}) | query
        return requests.get(
            f"{self.api.base_url}/profile/{provider}", params=params, allow_redirects=False, timeout=30
        )

    def to_provider(self, provider: str, *, kind: str | None = None) -> str:
        started = self.start(provider, kind=kind)
        assert started.status_code == 302, started.text
        return str(started.headers["Location"])

    def back_from_provider(self, provider: str, sub: str, *, kind: str | None = None) -> str:
        """The callback URL the provider sends the browser to, after ``sub`` authorized."""
        return self.idp.authorize(self.to_provider(provider, kind=kind), sub)

    def callback(self, url: str) -> requests.Response:
        assert url.startswith(self.api.base_url + "/profile/"), url
        return requests.get(url, allow_redirects=False, timeout=30)

    def sign_in(self, provider: str, sub: str, *, kind: str | None = None) -> dict[str, str]:
        """The fragment the application's page reads after the whole round trip."""
        landed = self.callback(self.back_from_provider(provider, sub, kind=kind))
        assert landed.status_code == 302, landed.text
        return fragment_of(str(landed.headers["Location"]))


def fragment_of(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == APP and not parts.query, url
    return {k: v[0] for k, v in parse_qs(parts.fragment).items()}


def exchange(api: LocalApi, code: str, orgid: str = "acme") -> Any:
    return api.post("/profile/oauth/exchange", headers={"orgid": orgid}, body={"code": code})


@pytest.fixture
def browser(api: LocalApi, idp: LocalOidcProvider) -> Browser:
    return Browser(api, idp)


def bearer(envelope: dict[str, Any]) -> dict[str, str]:
    return {"orgid": "acme", "authorization": f"Bearer {envelope['token']}"}


# -- the whole flow ------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", OPENID_PROVIDERS)
def test_a_new_person_signs_in_and_becomes_a_customer(
    api: LocalApi, admin: dict[str, str], idp: LocalOidcProvider, browser: Browser, provider: str
) -> None:
    # Given the provider set up for acme with the local OpenID provider as its issuer, and a person there
    configure(api, admin, idp, provider)
    sub, email = unique("sub"), f"{unique('new')}@people.test"
    idp.set_user(sub, {"email": email, "email_verified": True, "given_name": "Nova", "family_name": "Person"})

    # When the person goes through the provider and the application exchanges the code
    authorization = parse_qs(urlsplit(browser.to_provider(provider)).query)
    fragment = browser.sign_in(provider, sub)
    signed_in = exchange(api, fragment["code"])

    # Then the provider was asked for the code flow with PKCE S256, a nonce and the default scopes,
    assert authorization["code_challenge_method"] == ["S256"] and authorization["nonce"]
    assert authorization["scope"] == ["openid email profile"] and authorization["client_id"] == [
        f"acme-{provider}"
    ]
    assert authorization["state"][0].startswith("acme.")
    # the person is a new customer of acme, signed in with a session of method oauth:<provider>
    assert signed_in.status == 200, signed_in.text
    envelope = signed_in.json()
    customer = envelope["customer"]
    assert customer["data"]["email"] == email and customer["data"]["firstName"] == "Nova"
    assert envelope["data"]["customer"]["sk"] == customer["sk"] and envelope["refreshToken"]
    whoami = api.get("/profile/whoami", headers=bearer(envelope))
    assert whoami.status == 200 and whoami.json()["principal"]["sk"] == customer["sk"]
    sessions = api.get("/profile/security/sessions", headers=bearer(envelope)).json()["data"]
    assert [s["method"] for s in sessions] == [f"oauth:{provider}"]
    # with the provider's account linked to it
    identities = api.get("/profile/security/identities", headers=bearer(envelope)).json()["data"]
    assert [(i["provider"], i["subject"], i["email"]) for i in identities] == [(provider, sub, email)]
    # and no password: a password sign-in fails as a wrong password does
    refused = api.post(
        "/profile/customer/signin",
        headers={"orgid": "acme"},
        body={"email": email, "password": "any-password-1"},
    )
    assert refused.status == 401 and refused.json()["error"] == "invalid_credentials"


def test_linking_by_email_then_by_subject(
    api: LocalApi, admin: dict[str, str], idp: LocalOidcProvider, browser: Browser
) -> None:
    # Given a customer who signed up with a password, and a provider account with the same verified email
    configure(api, admin, idp, "oidc")
    email = f"{unique('linked')}@people.test"
    signed_up = api.post(
        "/profile/customer/signup",
        headers={"orgid": "acme"},
        body={"email": email, "password": "signup-pass-1"},
    )
    assert signed_up.status == 201, signed_up.text
    customer_sk = signed_up.json()["customer"]["sk"]
    sub = unique("sub")
    idp.set_user(sub, {"email": email.upper(), "email_verified": True})

    # When the provider account signs in, Then it is that customer (linked by its verified email)
    first = exchange(api, browser.sign_in("oidc", sub)["code"])
    assert first.status == 200 and first.json()["customer"]["sk"] == customer_sk

    # When the account's email at the provider changes, Then the link by subject still finds the customer
    idp.set_user(sub, {"email": f"{unique('moved')}@elsewhere.test", "email_verified": True})
    second = exchange(api, browser.sign_in("oidc", sub)["code"])
    assert second.status == 200 and second.json()["customer"]["sk"] == customer_sk

    # And the password still works beside it
    assert sign_in(api, email, "signup-pass-1", "acme", kind="customer")["customer"]["sk"] == customer_sk


def test_a_user_signs_in_but_is_never_created(
    api: LocalApi, admin: dict[str, str], idp: LocalOidcProvider, browser: Browser
) -> None:
    # Given the provider enabled for users too, and a staff member of acme
    configure(api, admin, idp, "google")
    email = f"{unique('staff')}@acme.test"
    created = api.post(
        "/user/create",
        headers=admin,
        body={"email": email, "password": "staff-pass-123", "roles": ["User"], "permissions": ["read"]},
    )
    assert created.status == 201, created.text
    staff_sub, stranger_sub = unique("sub"), unique("sub")
    idp.set_user(staff_sub, {"email": email, "email_verified": True})
    idp.set_user(stranger_sub, {"email": f"{unique('stranger')}@acme.test", "email_verified": True})

    # When the staff member signs in as a user, Then it is that User, with acme's roles
    signed_in = exchange(api, browser.sign_in("google", staff_sub, kind="user")["code"])
    assert signed_in.status == 200, signed_in.text
    assert signed_in.json()["user"]["pk"] == created.json()["pk"] and signed_in.json()["user"]["data"][
        "roles"
    ] == ["User"]

    # When someone without a User account signs in as a user, Then no User is created
    assert browser.sign_in("google", stranger_sub, kind="user") == {"error": "no_account"}


# -- refusals after the state check: back to the application with #error= ------------------------------
@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"email_verified": False}, "email_not_verified"),
        ({}, "email_not_verified"),  # email_verified absent
        ({"email_verified": True, "domain": "other.test"}, "domain_not_allowed"),
    ],
    ids=["unverified", "verified-absent", "outside-allowed-domains"],
)
def test_an_unverified_or_foreign_email_signs_nobody_in(
    api: LocalApi,
    admin: dict[str, str],
    idp: LocalOidcProvider,
    browser: Browser,
    claims: dict[str, Any],
    reason: str,
) -> None:
    # Given the provider restricted to acme.test addresses, and an account with one thing wrong
    configure(api, admin, idp, "microsoft", allowedDomains=["acme.test"])
    sub = unique("sub")
    domain = claims.pop("domain", "acme.test")
    idp.set_user(sub, {"email": f"{unique('p')}@{domain}"} | claims)

    # When it signs in, Then the application learns why, and no code exists to exchange
    assert browser.sign_in("microsoft", sub) == {"error": reason}


# -- single use, org binding, and what is refused before any redirect ----------------------------------
def test_the_state_and_the_code_work_once_and_in_their_org_only(
    api: LocalApi, admin: dict[str, str], idp: LocalOidcProvider, browser: Browser
) -> None:
    configure(api, admin, idp, "oidc")
    sub = unique("sub")
    idp.set_user(sub, {"email": f"{unique('once')}@people.test", "email_verified": True})

    # Given the provider's redirect back to the callback, followed once
    back = browser.back_from_provider("oidc", sub)
    first = browser.callback(back)
    code = fragment_of(str(first.headers["Location"]))["code"]

    # When the same callback URL is replayed, Then the state is spent: 401 invalid_state, no redirect
    replayed = browser.callback(back)
    assert replayed.status_code == 401 and replayed.json()["error"] == "invalid_state"
    assert "Location" not in replayed.headers

    # When the code is exchanged in another org, Then it is unknown there (and not spent by that)
    assert exchange(api, code, orgid="globex").status == 401
    # When it is exchanged in its org twice, Then only the first works
    assert exchange(api, code).status == 200
    again = exchange(api, code)
    assert again.status == 401 and again.json()["error"] == "invalid_code"


def test_a_callback_with_a_state_of_another_provider_is_refused(
    api: LocalApi, admin: dict[str, str], idp: LocalOidcProvider, browser: Browser
) -> None:
    # Given a sign-in started with oidc, its provider's answer sent to google's callback (a mix-up)
    configure(api, admin, idp, "oidc")
    configure(api, admin, idp, "google")
    sub = unique("sub")
    idp.set_user(sub, {"email": f"{unique('mix')}@people.test", "email_verified": True})
    back = browser.back_from_provider("oidc", sub)
    mixed = back.replace("/profile/oidc/redirect", "/profile/google/redirect")

    # Then google's callback refuses it, and oidc's still takes it
    refused = browser.callback(mixed)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_state"
    assert set(fragment_of(str(browser.callback(back).headers["Location"]))) == {"code"}


def test_an_unlisted_redirect_uri_is_422_without_a_redirect(
    api: LocalApi, admin: dict[str, str], idp: LocalOidcProvider, browser: Browser
) -> None:
    configure(api, admin, idp, "oidc")
    for uri in ("http://127.0.0.1:5173/auth/callback/", "https://evil.test/auth/callback"):
        started = browser.start("oidc", redirect_uri=uri)
        assert started.status_code == 422 and "Location" not in started.headers
        assert started.json()["details"][0]["field"] == "redirectUri"


def test_a_provider_not_enabled_for_that_org_or_kind_is_404(
    api: LocalApi, admin: dict[str, str], idp: LocalOidcProvider, browser: Browser
) -> None:
    # Given oidc enabled for acme's customers only, and microsoft disabled
    configure(api, admin, idp, "oidc", kinds=["customer"])
    configure(api, admin, idp, "microsoft", enabled=False)

    # Then a user sign-in with oidc, any sign-in with microsoft or an unknown provider, and a sign-in
    # at an org that has none of them are 404, with no redirect
    for started in (
        browser.start("oidc", kind="user"),
        browser.start("microsoft"),
        browser.start("myspace"),
        browser.start("oidc", orgid="globex"),
    ):
        assert started.status_code == 404 and "Location" not in started.headers, started.text
    # and kind defaults to customer, while a kind that is neither is invalid
    assert browser.start("oidc").status_code == 302
    assert browser.start("oidc", kind="robot").status_code == 422


def test_the_local_provider_enforces_pkce(idp: LocalOidcProvider) -> None:
    # The fixture itself: a token request whose verifier does not match the challenge is refused, so
    # the sign-ins above prove the API sent the verifier of its challenge.
    refused = requests.post(
        f"{idp.issuer}/oauth2/token",
        data={"grant_type": "authorization_code", "code": "never-issued", "code_verifier": "x" * 43},
        auth=("c", "s"),
        timeout=10,
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
