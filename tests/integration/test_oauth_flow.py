"""The social sign-in flow through the OAuth function, in-process on moto (contract §4 "Social sign-in and
enterprise SSO"), with the providers' answers recorded in their documented shapes (``responses``):

- GitHub (``/login/oauth/access_token``, ``/user``, ``/user/emails``) and Facebook (``/oauth/access_token``,
  ``/me?fields=id,name,email``): sign-in, auto-creation, a GitHub account whose primary email is not
  verified, the token endpoint's errors, a provider down, slow or answering garbage;
- an OpenID provider on https with a JWKS made here: ID tokens signed by another key, for another
  audience, expired, with another nonce or issuer, HMAC-"signed" or unsigned: each refused; a token
  without ``kid`` against a one-key set (accepted) and a two-key set (refused); a rotated key fetched
  again once, and only once.

Every refusal after the state check is a 302 to ``redirectUri#error=<reason>``, never a 500.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
import responses
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from appengine_core.identity import oauth_clients, oauth_flow, passwords
from appengine_core.infra.envelope import Record
from appengine_core.infra.settings import get_settings
from appengine_core.infra.store import TenantStore
from appengine_core.infra.tenancy import TenantKey
from tests.integration.conftest import bearer_for

APP = "https://shop.acme.test/auth/callback"
ISSUER = "https://idp.acme.test"
CLIENT_ID = "acme-shop"
CLIENT_SECRET = "acme-shop-secret-1"
GITHUB = "https://github.com"
GITHUB_API = "https://api.github.com"
FACEBOOK_GRAPH = "https://graph.facebook.com/v21.0"


# -- calling the routes (through the in-process gateway) ------------------------------------------------
def configure(gateway: Any, admin: Record, provider: str, **settings: Any) -> None:
    body = {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET, "redirectUris": [APP]} | settings
    response = gateway.put(f"/profile/oauth/providers/{provider}", headers=bearer_for(admin), json=body)
    assert response.status_code == 200, response.text


def start(gateway: Any, provider: str, *, kind: str | None = None, redirect_uri: str = APP) -> Any:
    query = {"orgid": "acme", "redirectUri": redirect_uri} | ({"kind": kind} if kind else {})
    return gateway.get(f"/profile/{provider}?{urlencode(query)}")


def callback(gateway: Any, provider: str, query: dict[str, str]) -> Any:
    return gateway.get(f"/profile/{provider}/redirect?{urlencode(query)}")


def exchange(gateway: Any, code: str, orgid: str = "acme") -> Any:
    return gateway.post("/profile/oauth/exchange", headers={"orgid": orgid}, json={"code": code})


def location(response: Any) -> str:
    assert response.status_code == 302, response.text
    assert response.headers["Cache-Control"] == "no-store"
    return str(response.headers["Location"])


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def fragment_of(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == APP, url
    return {k: v[0] for k, v in parse_qs(parts.fragment).items()}


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


# -- recorded providers --------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    oauth_clients.clear_caches()
    yield
    oauth_clients.clear_caches()


@pytest.fixture
def web() -> Iterator[responses.RequestsMock]:
    """Every outbound call of the flow answered here (an unregistered URL: a connection error)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@dataclass
class TokenEndpoint:
    """A provider's token endpoint that checks PKCE against the authorization request's challenge."""

    answer: Callable[[dict[str, str]], tuple[int, Any]]
    challenge: str = ""
    received: list[dict[str, str]] = field(default_factory=list)

    def __call__(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        form = {k: v[0] for k, v in parse_qs(str(request.body or "")).items()}
        self.received.append(form | {"authorization": str(request.headers.get("Authorization", ""))})
        if s256(form.get("code_verifier", "")) != self.challenge:
            return 400, {"content-type": "application/json"}, json.dumps({"error": "invalid_grant"})
        status, body = self.answer(form)
        text = body if isinstance(body, str) else json.dumps(body)
        return status, {"content-type": "application/json"}, text


def sign_in_through(
    gateway: Any, provider: str, endpoint: TokenEndpoint, *, kind: str | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """Start, (the person approves at the provider), callback: (the authorization request's query,
    the fragment the browser lands on)."""
    authorization = query_of(location(start(gateway, provider, kind=kind)))
    endpoint.challenge = authorization["code_challenge"]
    back = callback(gateway, provider, {"code": "provider-code-1", "state": authorization["state"]})
    return authorization, fragment_of(location(back))


def github(web: responses.RequestsMock, user: dict[str, Any], emails: list[dict[str, Any]]) -> TokenEndpoint:
    endpoint = TokenEndpoint(
        lambda form: (
            200,
            {"access_token": "gho_16C7e42F292c6912E7710c838347Ae178B4a", "token_type": "bearer"},
        )
    )
    web.add_callback(responses.POST, f"{GITHUB}/login/oauth/access_token", callback=endpoint)
    web.add(responses.GET, f"{GITHUB_API}/user", json=user)
    web.add(responses.GET, f"{GITHUB_API}/user/emails", json=emails)
    return endpoint


OCTOCAT = {
    "login": "octocat",
    "id": 583231,
    "node_id": "MDQ6VXNlcjU4MzIzMQ==",
    "avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4",
    "type": "User",
    "name": "The Octocat",
    "company": "@github",
    "email": None,
}


def octocat_emails(*, verified: bool, email: str = "octocat@shop.test") -> list[dict[str, Any]]:
    return [
        {"email": email, "primary": True, "verified": verified, "visibility": "public"},
        {
            "email": "583231+octocat@users.noreply.github.com",
            "primary": False,
            "verified": True,
            "visibility": None,
        },
    ]


# -- GitHub --------------------------------------------------------------------------------------------
def test_github_sign_in_creates_a_customer_without_a_password(
    gateway: Any, tenants: dict[str, Record], web: responses.RequestsMock
) -> None:
    # Given GitHub enabled for acme's customers, and a GitHub account whose primary email is verified
    configure(gateway, tenants["acme_admin"], "github")
    endpoint = github(web, OCTOCAT, octocat_emails(verified=True))

    # When the person signs in with GitHub and the application exchanges the code
    authorization, fragment = sign_in_through(gateway, "github", endpoint)
    signed_in = exchange(gateway, fragment["code"])

    # Then the authorization request was GitHub's, with PKCE S256 and no nonce (not OpenID Connect)
    assert authorization["client_id"] == CLIENT_ID and authorization["code_challenge_method"] == "S256"
    assert authorization["scope"] == "read:user user:email" and "nonce" not in authorization
    assert authorization["redirect_uri"].endswith("/profile/github/redirect")
    # the code was exchanged with the client secret (in the body, as GitHub takes it) and the verifier
    assert endpoint.received[0]["client_secret"] == CLIENT_SECRET
    assert endpoint.received[0]["redirect_uri"] == authorization["redirect_uri"]
    # and a new customer signed in, with no password stored
    assert signed_in.status_code == 200, signed_in.text
    envelope = signed_in.json
    customer = envelope["customer"]
    assert customer["data"]["email"] == "octocat@shop.test" and customer["data"]["firstName"] == "The"
    item = TenantStore().get(TenantKey.parse(customer["sk"]))
    assert item is not None and "passwordHash" not in item
    # whose session says how it signed in
    assert [s["method"] for s in own_sessions(gateway, envelope["token"])] == ["oauth:github"]


def own_sessions(gateway: Any, token: str) -> list[dict[str, Any]]:
    response = gateway.get(
        "/profile/security/sessions", headers={"orgid": "acme", "authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    return list(response.json["data"])


def test_an_oauth_customer_cannot_sign_in_with_a_password(
    gateway: Any, tenants: dict[str, Record], web: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a customer that GitHub's sign-in created (no password hash), and every argon2 verification
    # of the sign-in watched
    configure(gateway, tenants["acme_admin"], "github")
    endpoint = github(web, OCTOCAT, octocat_emails(verified=True))
    _, fragment = sign_in_through(gateway, "github", endpoint)
    assert exchange(gateway, fragment["code"]).status_code == 200
    passwords.verify_password("warm-up", None)  # the dummy hash exists before the watch starts
    real, verified = passwords.password_context(), []

    class Watched:
        def verify(self, secret: str, hashed: str) -> bool:
            verified.append(hashed.split("$")[1:4])  # scheme, version, cost parameters
            return bool(real.verify(secret, hashed))

        def verify_and_update(self, secret: str, hashed: str) -> tuple[bool, str | None]:
            verified.append(hashed.split("$")[1:4])
            return real.verify_and_update(secret, hashed)  # type: ignore[no-any-return]

    monkeypatch.setattr(passwords, "password_context", lambda: Watched())

    # When someone tries passwords for its email, and a wrong one for a customer with a password
    def attempt(email: str, password: str) -> Any:
        body = {"email": email, "password": password}
        return gateway.post("/profile/customer/signin", headers={"orgid": "acme"}, json=body)

    attempts = [attempt("octocat@shop.test", p) for p in ("anything-at-all", "octocat@shop.test")]
    wrong = attempt("buyer@acme.test", "not-the-password")

    # Then each is the plain wrong-password answer, after the same work: one argon2id verification at
    # the same cost parameters (the dummy hash for the customer without a password)
    assert [a.status_code for a in [*attempts, wrong]] == [401, 401, 401]
    assert {a.json["error"] for a in [*attempts, wrong]} == {"invalid_credentials"}
    assert len(verified) == 3 and verified[0] == verified[1] == verified[2]
    assert verified[0][0] == "argon2id"
    # and an empty password is invalid input, as for everyone
    assert attempt("octocat@shop.test", "").status_code == 422


def test_a_github_primary_email_that_github_did_not_verify_signs_nobody_in(
    gateway: Any, tenants: dict[str, Record], web: responses.RequestsMock
) -> None:
    # Given a GitHub account whose primary email is unverified (a verified noreply address beside it)
    configure(gateway, tenants["acme_admin"], "github")
    endpoint = github(web, OCTOCAT, octocat_emails(verified=False, email="buyer@acme.test"))

    # When it signs in, naming an existing customer's email
    authorization, fragment = sign_in_through(gateway, "github", endpoint)

    # Then the browser lands on the application with the reason, and nothing was created or linked
    assert fragment == {"error": "email_not_verified"}
    replay = callback(gateway, "github", {"code": "provider-code-1", "state": authorization["state"]})
    assert replay.status_code == 401 and replay.json["error"] == "invalid_state"
    assert TenantStore().query("acme", "#oauth-link", limit=10).items == []


@pytest.mark.parametrize(
    ("token_answer", "user_answer", "case"),
    [
        (
            (200, {"error": "bad_verification_code", "error_description": "The code passed is incorrect."}),
            None,
            "code",
        ),
        ((500, "<html>unavailable</html>"), None, "token-500"),
        ((200, "<html>not json</html>"), None, "token-garbage"),
        ((200, {"token_type": "bearer"}), None, "no-access-token"),
        (None, (502, "bad gateway"), "user-502"),
        (None, (200, "[[["), "user-garbage"),
        (None, (200, {"login": "octocat"}), "user-without-id"),
        (None, requests.exceptions.ReadTimeout("slow"), "user-timeout"),
        (None, requests.exceptions.ConnectionError("down"), "user-down"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_a_failing_or_garbled_provider_is_a_provider_error_redirect(
    gateway: Any,
    tenants: dict[str, Record],
    web: responses.RequestsMock,
    token_answer: Any,
    user_answer: Any,
    case: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given GitHub answering one of its calls wrongly
    configure(gateway, tenants["acme_admin"], "github")
    ok_token = (200, {"access_token": "gho_x", "token_type": "bearer"})
    endpoint = TokenEndpoint(lambda form: token_answer or ok_token)
    web.add_callback(responses.POST, f"{GITHUB}/login/oauth/access_token", callback=endpoint)
    if isinstance(user_answer, Exception):
        web.add(responses.GET, f"{GITHUB_API}/user", body=user_answer)
    elif user_answer is not None:
        status, body = user_answer
        web.add(
            responses.GET,
            f"{GITHUB_API}/user",
            status=status,
            body=json.dumps(body) if isinstance(body, dict) else body,
        )
    else:
        web.add(responses.GET, f"{GITHUB_API}/user", json=OCTOCAT)
    web.add(responses.GET, f"{GITHUB_API}/user/emails", json=octocat_emails(verified=True))

    # When the person comes back from GitHub
    _, fragment = sign_in_through(gateway, "github", endpoint)

    # Then the application is told the provider failed (a warning in the log), never a 500
    assert fragment == {"error": "provider_error"}, case
    warned = [r for r in caplog.records if r.name == "appengine.oauth" and r.levelname == "WARNING"]
    assert [getattr(r, "step", None) for r in warned] == ["callback"], case
    assert "gho_" not in str(getattr(warned[0], "detail", ""))


# -- Facebook ------------------------------------------------------------------------------------------
def facebook(web: responses.RequestsMock, me: dict[str, Any]) -> tuple[TokenEndpoint, list[str]]:
    endpoint = TokenEndpoint(
        lambda form: (
            200,
            {"access_token": "EAAGm0PX4ZCpsBAKZC", "token_type": "bearer", "expires_in": 5183944},
        )
    )
    web.add_callback(responses.POST, f"{FACEBOOK_GRAPH}/oauth/access_token", callback=endpoint)
    seen: list[str] = []

    def profile(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        seen.append(str(request.url))
        assert request.headers["Authorization"] == "Bearer EAAGm0PX4ZCpsBAKZC"
        return 200, {"content-type": "application/json"}, json.dumps(me)

    web.add_callback(responses.GET, f"{FACEBOOK_GRAPH}/me", callback=profile)
    return endpoint, seen


def test_facebook_sign_in_links_the_customer_with_that_email(
    gateway: Any, tenants: dict[str, Record], web: responses.RequestsMock
) -> None:
    # Given Facebook enabled, and a Facebook account with the email of acme's existing customer
    configure(gateway, tenants["acme_admin"], "facebook")
    endpoint, seen = facebook(
        web, {"id": "10158223456789012", "name": "Bea Buyer", "email": "buyer@acme.test"}
    )

    # When it signs in
    authorization, fragment = sign_in_through(gateway, "facebook", endpoint)
    signed_in = exchange(gateway, fragment["code"])

    # Then it is that customer, now linked; the profile call asked for the documented fields with the
    # app secret proof (an HMAC of the token), the token itself in the header only
    assert authorization["scope"] == "email public_profile"
    assert signed_in.status_code == 200 and signed_in.json["customer"]["sk"] == tenants["acme_customer"].sk
    asked = query_of(seen[0])
    assert asked["fields"] == "id,name,email" and len(asked["appsecret_proof"]) == 64
    assert "EAAGm0PX4ZCpsBAKZC" not in seen[0]
    links = TenantStore().query("acme", "#oauth-link", limit=10).items
    assert [(link["principal"], link["subject"]) for link in links] == [
        (tenants["acme_customer"].sk, "10158223456789012")
    ]


def test_a_facebook_account_without_an_email_signs_nobody_in(
    gateway: Any, tenants: dict[str, Record], web: responses.RequestsMock
) -> None:
    # Given a Facebook account that shares no email (Facebook omits the field then)
    configure(gateway, tenants["acme_admin"], "facebook")
    endpoint, _ = facebook(web, {"id": "10158223456789013", "name": "No Mail"})

    # When it signs in, Then the application is told there is no verified email
    _, fragment = sign_in_through(gateway, "facebook", endpoint)
    assert fragment == {"error": "email_not_verified"}


# -- an OpenID provider with a JWKS of our own ---------------------------------------------------------
@pytest.fixture(scope="module")
def keys() -> dict[str, RSAKey]:
    return {
        name: RSAKey.generate_key(2048, parameters={"kid": kid})
        for name, kid in (("signing", "k1"), ("intruder", "k1"), ("next", "k2"))
    }


@dataclass
class OidcProvider:
    web: responses.RequestsMock
    keys: dict[str, RSAKey]
    published: list[str] = field(default_factory=lambda: ["signing"])
    jwks_fetches: int = 0

    def __post_init__(self) -> None:
        self.web.add(
            responses.GET,
            f"{ISSUER}/.well-known/openid-configuration",
            json={
                "issuer": ISSUER,
                "authorization_endpoint": f"{ISSUER}/authorize",
                "token_endpoint": f"{ISSUER}/token",
                "userinfo_endpoint": f"{ISSUER}/userinfo",
                "jwks_uri": f"{ISSUER}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            },
        )
        self.web.add_callback(responses.GET, f"{ISSUER}/jwks", callback=self._jwks)

    def _jwks(self, _: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.jwks_fetches += 1
        document = {"keys": [self.keys[name].as_dict(private=False) for name in self.published]}
        return 200, {"content-type": "application/json"}, json.dumps(document)

    def token_endpoint(self, id_token: Callable[[dict[str, str]], str]) -> TokenEndpoint:
        endpoint = TokenEndpoint(
            lambda form: (
                200,
                {"access_token": "idp-at-1", "token_type": "Bearer", "id_token": id_token(form)},
            )
        )
        self.web.add_callback(responses.POST, f"{ISSUER}/token", callback=endpoint)
        return endpoint


def claims(flow_nonce: str, /, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "sub": "idp-user-1",
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 300,
        "nonce": flow_nonce,
        "email": "sso.person@acme.test",
        "email_verified": True,
        "given_name": "Sso",
        "family_name": "Person",
    }
    return {k: v for k, v in (base | changes).items() if v is not None}


def signed(key: Any, payload: dict[str, Any], *, header: dict[str, Any] | None = None) -> str:
    return jwt.encode(header or {"alg": "RS256", "kid": key.kid}, payload, key)


def oidc_sign_in(
    gateway: Any, idp: OidcProvider, token: Callable[[str], str]
) -> tuple[dict[str, str], dict[str, str]]:
    """One sign-in where the ID token is ``token(nonce of the authorization request)``."""
    nonces: dict[str, str] = {}
    endpoint = idp.token_endpoint(lambda form: token(nonces["nonce"]))
    authorization = query_of(location(start(gateway, "oidc")))
    nonces["nonce"] = authorization["nonce"]
    endpoint.challenge = authorization["code_challenge"]
    back = callback(gateway, "oidc", {"code": "idp-code-1", "state": authorization["state"]})
    return authorization, fragment_of(location(back))


@pytest.fixture
def idp(
    gateway: Any, tenants: dict[str, Record], web: responses.RequestsMock, keys: dict[str, RSAKey]
) -> OidcProvider:
    configure(gateway, tenants["acme_admin"], "oidc", issuer=ISSUER)
    return OidcProvider(web, keys)


def test_an_id_token_that_verifies_signs_in(gateway: Any, idp: OidcProvider) -> None:
    # Given an OpenID provider whose ID token is signed with its published key
    # When the person signs in
    authorization, fragment = oidc_sign_in(
        gateway, idp, lambda nonce: signed(idp.keys["signing"], claims(nonce))
    )

    # Then the authorization request carried a nonce and PKCE, and the code signs a new customer in
    assert authorization["scope"] == "openid email profile" and len(authorization["nonce"]) >= 32
    signed_in = exchange(gateway, fragment["code"])
    assert signed_in.status_code == 200
    data = signed_in.json["customer"]["data"]
    assert (data["email"], data["firstName"], data["lastName"]) == ("sso.person@acme.test", "Sso", "Person")


@pytest.mark.parametrize(
    "forged",
    [
        "another-key",
        "another-audience",
        "expired",
        "another-nonce",
        "another-issuer",
        "no-nonce",
        "hmac-with-the-client-secret",
        "unsigned",
        "email-not-verified-string",
    ],
)
def test_an_id_token_that_does_not_verify_is_refused(
    gateway: Any, idp: OidcProvider, forged: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an ID token with one thing wrong
    def token(nonce: str) -> str:
        key = idp.keys["signing"]
        if forged == "another-key":
            return signed(idp.keys["intruder"], claims(nonce))  # same kid, another key
        if forged == "another-audience":
            return signed(key, claims(nonce, aud="someone-else"))
        if forged == "expired":
            return signed(key, claims(nonce, iat=int(time.time()) - 900, exp=int(time.time()) - 600))
        if forged == "another-nonce":
            return signed(key, claims("not-the-flow-nonce"))
        if forged == "another-issuer":
            return signed(key, claims(nonce, iss="https://evil.test"))
        if forged == "no-nonce":
            return signed(key, claims(nonce, nonce=None))
        if forged == "hmac-with-the-client-secret":
            secret = OctKey.import_key(CLIENT_SECRET.encode())
            return jwt.encode({"alg": "HS256", "kid": "k1"}, claims(nonce), secret)
        if forged == "unsigned":
            header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"k1"}').rstrip(b"=").decode()
            body = base64.urlsafe_b64encode(json.dumps(claims(nonce)).encode()).rstrip(b"=").decode()
            return f"{header}.{body}."
        return signed(key, claims(nonce, email_verified="false"))

    # When the person comes back with it
    _, fragment = oidc_sign_in(gateway, idp, token)

    # Then nobody is signed in: the application gets the reason
    expected = "email_not_verified" if forged == "email-not-verified-string" else "provider_error"
    assert fragment == {"error": expected}
    # and, for a token that does not verify, the log says why (the token itself is never logged)
    details = [str(getattr(r, "detail", "")) for r in caplog.records if r.name == "appengine.oauth"]
    if expected == "provider_error":
        assert any(d.startswith("the ID token does not verify") for d in details), details
    assert not any("eyJ" in d for d in details)  # no JWT (a JSON header in base64url) in the log


def test_email_verified_absent_counts_as_unverified(gateway: Any, idp: OidcProvider) -> None:
    _, fragment = oidc_sign_in(
        gateway, idp, lambda nonce: signed(idp.keys["signing"], claims(nonce, email_verified=None))
    )
    assert fragment == {"error": "email_not_verified"}


def test_a_token_without_kid_is_checked_against_a_single_key_only(gateway: Any, idp: OidcProvider) -> None:
    # Given ID tokens without a kid header
    def without_kid(nonce: str) -> str:
        return signed(idp.keys["signing"], claims(nonce), header={"alg": "RS256"})

    # When the provider's JWKS holds exactly one key, Then the token is checked against it and accepted
    _, fragment = oidc_sign_in(gateway, idp, without_kid)
    assert set(fragment) == {"code"}

    # When it holds two keys, Then the token cannot name its key and is refused
    oauth_clients.clear_caches()
    idp.published = ["signing", "next"]
    _, fragment = oidc_sign_in(gateway, idp, without_kid)
    assert fragment == {"error": "provider_error"}


def test_a_rotated_key_is_fetched_again_once(
    gateway: Any, idp: OidcProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a first sign-in that cached the provider's JWKS (the old key only)
    monkeypatch.setattr(oauth_clients, "JWKS_REFETCH_SECONDS", 0)
    oidc_sign_in(gateway, idp, lambda nonce: signed(idp.keys["signing"], claims(nonce)))
    assert idp.jwks_fetches == 1

    # When the provider rotates and signs with a key the cached set lacks
    idp.published = ["signing", "next"]
    _, fragment = oidc_sign_in(gateway, idp, lambda nonce: signed(idp.keys["next"], claims(nonce)))

    # Then the set was fetched once more and the token accepted
    assert set(fragment) == {"code"} and idp.jwks_fetches == 2

    # And a token naming a key nobody publishes makes one fetch more, not a loop, and is refused
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k9"})
    _, fragment = oidc_sign_in(gateway, idp, lambda nonce: signed(stranger, claims(nonce)))
    assert fragment == {"error": "provider_error"} and idp.jwks_fetches == 3


def test_the_provider_down_at_the_start_sends_the_browser_back_with_an_error(
    gateway: Any, tenants: dict[str, Record], web: responses.RequestsMock
) -> None:
    # Given an OpenID provider whose discovery document does not answer
    configure(gateway, tenants["acme_admin"], "oidc", issuer="https://down.acme.test")
    web.add(responses.GET, "https://down.acme.test/.well-known/openid-configuration", status=503)

    # When a sign-in starts, Then the browser goes back to the application with the reason
    assert fragment_of(location(start(gateway, "oidc"))) == {"error": "provider_error"}


def test_the_email_from_userinfo_when_the_id_token_has_none(gateway: Any, idp: OidcProvider) -> None:
    # Given an ID token without email, and the userinfo endpoint naming the same subject
    idp.web.add(
        responses.GET,
        f"{ISSUER}/userinfo",
        json={"sub": "idp-user-1", "email": "buyer@acme.test", "email_verified": True},
    )
    # When the person signs in
    _, fragment = oidc_sign_in(
        gateway,
        idp,
        lambda nonce: signed(idp.keys["signing"], claims(nonce, email=None, email_verified=None)),
    )
    # Then userinfo's verified email picked the existing customer
    signed_in = exchange(gateway, fragment["code"])
    assert signed_in.json["customer"]["data"]["email"] == "buyer@acme.test"


# -- the state and the code ----------------------------------------------------------------------------
def test_an_expired_state_or_code_is_refused(
    gateway: Any,
    tenants: dict[str, Record],
    web: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure(gateway, tenants["acme_admin"], "github")
    endpoint = github(web, OCTOCAT, octocat_emails(verified=True))

    # Given a state that outlived its 10 minutes
    monkeypatch.setattr(oauth_flow, "STATE_LIFETIME_SECONDS", -1)
    authorization = query_of(location(start(gateway, "github")))
    stale = callback(gateway, "github", {"code": "c", "state": authorization["state"]})
    # Then the callback refuses it without a redirect
    assert stale.status_code == 401 and stale.json["error"] == "invalid_state"

    # Given a one-time code that outlived its 60 seconds
    monkeypatch.setattr(oauth_flow, "STATE_LIFETIME_SECONDS", 600)
    monkeypatch.setattr(oauth_flow, "CODE_LIFETIME_SECONDS", -1)
    _, fragment = sign_in_through(gateway, "github", endpoint)
    late = exchange(gateway, fragment["code"])
    # Then the exchange refuses it
    assert late.status_code == 401 and late.json["error"] == "invalid_code"


def test_a_disabled_customer_is_refused(
    gateway: Any, tenants: dict[str, Record], web: responses.RequestsMock
) -> None:
    # Given acme's customer, disabled, whose email a Facebook account verified
    store = TenantStore()
    customer = tenants["acme_customer"]
    item = store.get(customer.key) or {}
    from appengine_core.infra.store import Put

    store.put(Put(customer.key, item | {"data": item["data"] | {"disabled": True}}, must_not_exist=False))
    configure(gateway, tenants["acme_admin"], "facebook")
    endpoint, _ = facebook(web, {"id": "10158223456789014", "name": "Bea", "email": "buyer@acme.test"})

    # When it signs in, Then the application is told the account is disabled, and nothing was linked
    _, fragment = sign_in_through(gateway, "facebook", endpoint)
    assert fragment == {"error": "account_disabled"}
    assert TenantStore().query("acme", "#oauth-link", limit=10).items == []


def test_no_secret_of_the_flow_rests_in_the_table(
    gateway: Any, tenants: dict[str, Record], web: responses.RequestsMock
) -> None:
    # Given a sign-in halfway (started, not come back) and one completed up to the exchange code
    configure(gateway, tenants["acme_admin"], "github")
    endpoint = github(web, OCTOCAT, octocat_emails(verified=True))
    pending = query_of(location(start(gateway, "github")))
    _, fragment = sign_in_through(gateway, "github", endpoint)

    # Then neither the state, nor the PKCE verifier, nor the one-time code is stored in the clear
    table = get_settings().table_name
    import boto3

    items = json.dumps(boto3.resource("dynamodb").Table(table).scan()["Items"], default=str)
    state_secret = pending["state"].split(".", 1)[1]
    assert state_secret not in items and fragment["code"] not in items
    assert CLIENT_SECRET not in items and "gho_16C7e42F292c6912E7710c838347Ae178B4a" not in items
    verifier = endpoint.received[0]["code_verifier"]
    assert verifier not in items


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The second factor's clock, frozen 10 s into the current TOTP step (the test moves it)."""
    from appengine_core.identity import second_factor

    now = [float(second_factor.totp_step(time.time()) * 30 + 10)]
    monkeypatch.setattr(second_factor, "wall_clock", lambda: now[0])
    return now


def test_a_principal_with_2fa_gets_the_second_factor_challenge(
    gateway: Any, tenants: dict[str, Record], web: responses.RequestsMock, clock: list[float]
) -> None:
    # Given acme's customer with 2FA enabled, and a Facebook account with its email
    from tests.integration.test_second_factor import PEOPLE, enabled, verify

    _, authenticator, _ = enabled(gateway, PEOPLE["customer"], clock)
    configure(gateway, tenants["acme_admin"], "facebook")
    endpoint, _ = facebook(web, {"id": "10158223456789015", "name": "Bea", "email": "buyer@acme.test"})

    # When it signs in with Facebook and the application exchanges the code
    _, fragment = sign_in_through(gateway, "facebook", endpoint)
    answer = exchange(gateway, fragment["code"])

    # Then the answer is the 2FA challenge (no token), which the second factor completes
    assert (
        answer.status_code == 200 and answer.json["twoFactorRequired"] is True and "token" not in answer.json
    )
    status, signed_in = verify(gateway, answer.json["partialToken"], code=authenticator.next_step())
    assert status == 200 and signed_in["customer"]["sk"] == tenants["acme_customer"].sk
    sessions = own_sessions(gateway, signed_in["token"])
    assert "oauth:facebook+2fa" in [s["method"] for s in sessions]
