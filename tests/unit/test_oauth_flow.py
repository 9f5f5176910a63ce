"""The pure rules of the social sign-in flow (contract §4 "Social sign-in and enterprise SSO"): PKCE,
what the state binds, redirect-URI matching, the email and domain rules, which issuers and endpoints may
be called, and the callback URL."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from pydantic import SecretStr

from appengine_core.identity.oauth_clients import (
    OAuthClients,
    ProviderMetadata,
    identity_from_claims,
    usable_url,
)
from appengine_core.identity.oauth_flow import (
    OAuthFlowService,
    callback_url,
    email_refusal,
    flow_nonce,
    issue_state,
    issuer_check,
    parse_state,
    pkce_verifier,
    verified_email,
    with_fragment,
)
from appengine_core.identity.oauth_flow_data import digest
from appengine_core.identity.oauth_providers import ProviderConfig
from appengine_core.identity.passwordless import LinkOrigin
from appengine_core.infra.errors import InvalidState, NotFound, ValidationFailed
from appengine_core.infra.store import ConditionFailed, Delete, Put
from appengine_core.infra.tenancy import TenantKey

APP = "https://shop.acme.test/auth/callback"
LOCAL = LinkOrigin(domain="127.0.0.1:3000", context_path="/v1/profile/github", path="/profile/github")


def config(provider: str = "github", **changes: Any) -> ProviderConfig:
    openid = provider in ("google", "microsoft", "oidc")
    values: dict[str, Any] = {
        "orgid": "acme",
        "provider": provider,
        "client_id": "acme-shop",
        "client_secret": SecretStr("acme-shop-secret"),
        "kinds": ("customer",),
        "redirect_uris": (APP, "http://127.0.0.1:5173/cb"),
        "issuer": "https://idp.acme.test" if openid else None,
        "authorization_endpoint": None if openid else "https://github.com/login/oauth/authorize",
        "token_endpoint": None if openid else "https://github.com/login/oauth/access_token",
        "userinfo_endpoint": None if openid else "https://api.github.com/user",
        "scopes": "openid email profile" if openid else "read:user user:email",
        "allowed_domains": (),
        "auto_create": True,
    }
    return ProviderConfig.model_validate(values | changes)


# -- PKCE ----------------------------------------------------------------------------------------------
def test_the_s256_challenge_is_rfc_7636s() -> None:
    # RFC 7636 Appendix B: the example verifier and its challenge.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert create_s256_code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_the_verifier_and_nonce_come_from_the_state_and_the_items_salt() -> None:
    # Given a state's secret and an item's salt
    _, secret = issue_state("acme")
    verifier = pkce_verifier(secret, "aa" * 16)

    # Then the verifier is RFC 7636's shape (43 base64url characters: 256 bits), the same every time,
    # different with another salt or another state, and never the nonce
    assert len(verifier) == 43 and set(verifier) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
    assert verifier == pkce_verifier(secret, "aa" * 16)
    assert verifier != pkce_verifier(secret, "bb" * 16)
    assert verifier != pkce_verifier(issue_state("acme")[1], "aa" * 16)
    assert verifier != flow_nonce(secret, "aa" * 16)


def test_the_authorization_url_asks_for_the_code_with_pkce_s256_state_and_nonce() -> None:
    # When the authorization URL of an OpenID provider is built
    url = OAuthClients().authorization_url(
        "https://idp.acme.test/authorize?prompt=login",
        client_id="acme-shop",
        scope="openid email profile",
        callback="https://api.acme.test/v1/profile/oidc/redirect",
        state="acme.state",
        verifier="v" * 43,
        nonce="n" * 43,
    )

    # Then it is the code flow with the S256 challenge of the verifier (never the verifier itself)
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    expected = base64.urlsafe_b64encode(hashlib.sha256(b"v" * 43).digest()).rstrip(b"=").decode()
    assert parts.netloc == "idp.acme.test" and query["prompt"] == "login"
    assert query == {
        "prompt": "login",
        "response_type": "code",
        "client_id": "acme-shop",
        "redirect_uri": "https://api.acme.test/v1/profile/oidc/redirect",
        "scope": "openid email profile",
        "state": "acme.state",
        "code_challenge": expected,
        "code_challenge_method": "S256",
        "nonce": "n" * 43,
    }
    assert "v" * 43 not in url


def test_a_plain_oauth_provider_gets_no_nonce() -> None:
    url = OAuthClients().authorization_url(
        "https://github.com/login/oauth/authorize",
        client_id="c",
        scope="read:user user:email",
        callback="https://api.acme.test/profile/github/redirect",
        state="acme.s",
        verifier="v" * 43,
        nonce=None,
    )
    assert "nonce" not in parse_qs(urlsplit(url).query)


# -- the state -----------------------------------------------------------------------------------------
def test_a_state_names_its_org_and_nothing_else_parses() -> None:
    state, secret = issue_state("acme")
    assert parse_state(state) == ("acme", secret) and len(secret) == 43
    for bad in (
        None,
        "",
        secret,
        f"ACME.{secret}",
        f"acme.{secret}x",
        f"acme:{secret}",
        f"acme.{secret[:-1]}!",
    ):
        with pytest.raises(InvalidState):
            parse_state(bad)


@dataclass
class MemoryStore:
    """What the flow's data module asks of the store, in memory (conditions as the flow writes them)."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: list[Delete] = field(default_factory=list)

    def get(self, key: TenantKey, *, consistent: bool = False) -> dict[str, Any] | None:
        return self.items.get(key.sort)

    def put(self, op: Put) -> None:
        if op.must_not_exist and op.key.sort in self.items:
            raise ConditionFailed()
        self.items[op.key.sort] = dict(op.attributes)

    def delete(self, op: Delete) -> None:
        item = self.items.get(op.key.sort)
        provider = op.values.get(":provider")
        if (
            item is None
            or item["expiresAt"] <= op.values[":now"]
            or (provider and item["provider"] != provider)
        ):
            raise ConditionFailed()
        self.deleted.append(op)
        del self.items[op.key.sort]


class Providers:
    def __init__(self, *configs: ProviderConfig) -> None:
        self._configs: dict[str, ProviderConfig] = {c.provider: c for c in configs}

    def config(self, orgid: str, provider: str) -> ProviderConfig | None:
        return self._configs.get(provider) if orgid == "acme" else None


def service(store: MemoryStore, *configs: ProviderConfig, now: float = 1_000_000.0) -> OAuthFlowService:
    return OAuthFlowService(
        auth=object(),  # type: ignore[arg-type]
        providers=Providers(*configs),  # type: ignore[arg-type]
        links=object(),  # type: ignore[arg-type]
        clients=OAuthClients(),
        store=store,  # type: ignore[arg-type]
        events=object(),  # type: ignore[arg-type]
        clock=lambda: now,
    )


def test_the_state_binds_org_kind_provider_and_redirect_uri_and_stores_no_secret() -> None:
    # Given GitHub enabled for acme's customers
    store = MemoryStore()

    # When a sign-in starts
    url = service(store, config()).start("acme", "github", "customer", APP, LOCAL)

    # Then the provider gets a state naming the org, and the challenge of the verifier the item derives
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    orgid, secret = parse_state(query["state"])
    ((sort_key, item),) = store.items.items()
    assert orgid == "acme" and sort_key == f"acme:#oauth-state:{digest(secret)}"
    assert query["code_challenge"] == create_s256_code_challenge(pkce_verifier(secret, item["salt"]))
    # and the item binds what the callback needs, for 10 minutes, with neither the state, the verifier
    # nor the nonce in it
    assert item | {"salt": "-"} == {
        "kind": "customer",
        "provider": "github",
        "redirectUri": APP,
        "callbackUri": "http://127.0.0.1:3000/profile/github/redirect",
        "salt": "-",
        "expiresAt": 1_000_600,
        "ttl": 1_004_200,
    }
    stored = repr(item)
    assert secret not in stored and pkce_verifier(secret, item["salt"]) not in stored


def test_a_state_is_refused_at_another_provider_another_org_or_once_expired() -> None:
    # Given a state issued for GitHub
    store = MemoryStore()
    github, facebook = (
        config(),
        config("facebook", authorization_endpoint="https://www.facebook.com/dialog/oauth"),
    )
    url = service(store, github, facebook).start("acme", "github", "customer", APP, LOCAL)
    state = parse_qs(urlsplit(url).query)["state"][0]

    # When it comes back at Facebook's callback (a mix-up), or with another org's header, or too late
    with pytest.raises(InvalidState):
        service(store, github, facebook).callback("facebook", state=state, code="c")
    with pytest.raises(InvalidState):
        service(store, github).callback("github", state=state, code="c", header_orgid="globex")
    with pytest.raises(InvalidState):
        service(store, github, now=1_000_600.0).callback("github", state=state, code="c")
    # or in another org (the prefix changed): nothing is found there
    with pytest.raises(InvalidState):
        service(store, github).callback("github", state="globex." + state.split(".", 1)[1], code="c")

    # Then none of these spent it
    assert len(store.items) == 1 and store.deleted == []


def test_the_person_declining_at_the_provider_spends_the_state_and_says_so() -> None:
    # Given a started sign-in
    store = MemoryStore()
    events: list[Any] = []

    class Events:
        def publish(self, batch: list[Any]) -> None:
            events.extend(batch)

    flow = service(store, config())
    flow._events = Events()  # type: ignore[assignment]
    url = flow.start("acme", "github", "customer", APP, LOCAL)
    state = parse_qs(urlsplit(url).query)["state"][0]

    # When the provider sends the browser back with access_denied
    back = flow.callback("github", state=state, code=None, error="access_denied")

    # Then the application learns it, the state is spent, and the refusal is an event without secrets
    assert back == f"{APP}#error=access_denied" and store.items == {}
    assert [(e.detail_type, e.detail["reason"], e.detail["method"]) for e in events] == [
        ("auth.sign_in_failed", "access_denied", "oauth:github")
    ]


def test_a_callback_after_the_settings_changed_sends_the_browser_nowhere() -> None:
    # Given two sign-ins started with GitHub returning to APP
    store = MemoryStore()
    states = [
        parse_qs(urlsplit(service(store, config()).start("acme", "github", "customer", APP, LOCAL)).query)[
            "state"
        ][0]
        for _ in range(2)
    ]
    events: list[Any] = []

    class Events:
        def publish(self, batch: list[Any]) -> None:
            events.extend(batch)

    # When one comes back after APP left the redirect URIs, and the other after GitHub was disabled
    unlisted = service(store, config(redirect_uris=("https://shop.acme.test/other",)))
    disabled = service(store)
    for flow, state in ((unlisted, states[0]), (disabled, states[1])):
        flow._events = Events()  # type: ignore[assignment]
        with pytest.raises(InvalidState):
            flow.callback("github", state=state, code="provider-code")

    # Then neither redirects (401 invalid_state), both states are spent, and the refusals are counted
    assert store.items == {}
    assert [e.detail["reason"] for e in events] == ["settings_changed", "settings_changed"]


# -- redirect URIs and providers -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "uri",
    [
        APP + "/",
        APP + "?x=1",
        APP.upper(),
        "https://shop.acme.test/auth/callbacks",
        "https://shop.acme.test/auth",
        "https://evil.test/?https://shop.acme.test/auth/callback",
        APP + "#code=planted",
        "http://127.0.0.1:5174/cb",
    ],
)
def test_only_a_listed_redirect_uri_exactly_may_start_a_sign_in(uri: str) -> None:
    store = MemoryStore()
    with pytest.raises(ValidationFailed) as refused:
        service(store, config()).start("acme", "github", "customer", uri, LOCAL)
    assert refused.value.details == [
        {"field": "redirectUri", "problem": "not one of the redirect URIs set for this provider"}
    ]
    assert store.items == {}


def test_a_listed_loopback_redirect_uri_is_taken_exactly() -> None:
    store = MemoryStore()
    service(store, config()).start("acme", "github", "customer", "http://127.0.0.1:5173/cb", LOCAL)
    assert len(store.items) == 1


@pytest.mark.parametrize(
    ("orgid", "provider", "kind"),
    [
        ("acme", "github", "user"),
        ("acme", "facebook", "customer"),
        ("globex", "github", "customer"),
        ("acme", "x", "customer"),
    ],
)
def test_a_provider_not_enabled_for_that_org_and_kind_is_404(orgid: str, provider: str, kind: Any) -> None:
    with pytest.raises(NotFound):
        service(MemoryStore(), config()).start(orgid, provider, kind, APP, LOCAL)


# -- email and domain rules ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("claims", "domains", "refusal"),
    [
        ({"email": "Jo@Acme.test", "email_verified": True}, (), None),
        ({"email": "jo@acme.test", "email_verified": "true"}, (), None),
        ({"email": "jo@acme.test"}, (), "email_not_verified"),
        ({"email": "jo@acme.test", "email_verified": False}, (), "email_not_verified"),
        ({"email": "jo@acme.test", "email_verified": "false"}, (), "email_not_verified"),
        ({"email": "jo@acme.test", "email_verified": 1}, (), "email_not_verified"),
        ({"email_verified": True}, (), "email_not_verified"),
        ({"email": "not an email", "email_verified": True}, (), "email_not_verified"),
        ({"email": "jo@acme.test", "email_verified": True}, ("acme.test",), None),
        ({"email": "jo@ACME.TEST", "email_verified": True}, ("acme.test",), None),
        ({"email": "jo@eu.acme.test", "email_verified": True}, ("acme.test",), "domain_not_allowed"),
        ({"email": "jo@acme.test.evil", "email_verified": True}, ("acme.test",), "domain_not_allowed"),
        ({"email": "jo@evilacme.test", "email_verified": True}, ("acme.test",), "domain_not_allowed"),
        ({"email": "jo@other.test", "email_verified": True}, ("acme.test", "other.test"), None),
    ],
)
def test_a_verified_email_inside_the_allowed_domains_is_required(
    claims: dict[str, Any], domains: tuple[str, ...], refusal: str | None
) -> None:
    identity = identity_from_claims({"sub": "s-1"} | claims)
    assert email_refusal(identity, config("oidc", allowed_domains=domains)) == refusal
    if refusal is None:
        assert verified_email(identity) == str(claims["email"]).lower()


def test_a_provider_identity_without_a_subject_is_a_provider_error() -> None:
    from appengine_core.identity.oauth_clients import ProviderError

    for claims in ({}, {"sub": ""}, {"sub": 12}, {"sub": "x" * 256}):
        with pytest.raises(ProviderError):
            identity_from_claims(claims)


# -- issuers and endpoints -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "loopback_allowed", "usable"),
    [
        ("https://idp.acme.test", False, True),
        ("https://idp.acme.test/realms/acme", False, True),
        ("http://idp.acme.test", True, False),
        ("http://127.0.0.1:9400", False, False),
        ("http://127.0.0.1:9400", True, True),
        ("http://localhost:9400", True, True),
        ("http://[::1]:9400", True, True),
        ("http://10.0.0.1:9400", True, False),
        ("http://127.0.0.1.evil.test", True, False),
        ("https://user:pw@idp.acme.test", False, False),
        ("https://idp.acme.test/#x", False, False),
        ("ftp://idp.acme.test", True, False),
        ("https://idp.acme.test:99999", False, False),
        ("javascript:alert(1)", True, False),
    ],
)
def test_only_https_is_called_and_http_only_on_loopback_when_allowed(
    url: str, loopback_allowed: bool, usable: bool
) -> None:
    assert usable_url(url, allow_loopback_http=loopback_allowed) is usable


def metadata(issuer: str) -> ProviderMetadata:
    return ProviderMetadata(
        issuer=issuer, authorization_endpoint=issuer, token_endpoint=issuer, jwks_uri=issuer
    )


def test_the_id_tokens_issuer_must_be_the_providers() -> None:
    google = issuer_check(
        config("google", issuer="https://accounts.google.com"), metadata("https://accounts.google.com")
    )
    assert google("https://accounts.google.com", {}) and google("accounts.google.com", {})
    assert not google("https://accounts.google.com.evil.test", {})

    tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    common = "https://login.microsoftonline.com/common/v2.0"
    microsoft = issuer_check(
        config("microsoft", issuer=common), metadata("https://login.microsoftonline.com/{tenantid}/v2.0")
    )
    assert microsoft(f"https://login.microsoftonline.com/{tenant}/v2.0", {"tid": tenant})
    assert not microsoft(f"https://login.microsoftonline.com/{tenant}/v2.0", {"tid": "another"})
    assert not microsoft("https://login.microsoftonline.com/{tenantid}/v2.0", {})

    own = issuer_check(config("oidc"), metadata("https://idp.acme.test"))
    assert own("https://idp.acme.test", {}) and not own("https://idp.acme.test/", {})
    assert not own("accounts.google.com", {})


# -- where the browser goes ----------------------------------------------------------------------------
def test_the_callback_url_comes_from_api_gateways_view_of_the_request() -> None:
    staged = LinkOrigin(
        domain="abc.execute-api.eu-west-1.amazonaws.com",
        context_path="/v1/profile/google",
        path="/profile/google",
    )
    custom = LinkOrigin(domain="api.acme.test", context_path="/auth/profile/google", path="/profile/google")
    assert (
        callback_url("google", staged)
        == "https://abc.execute-api.eu-west-1.amazonaws.com/v1/profile/google/redirect"
    )
    assert callback_url("google", custom) == "https://api.acme.test/auth/profile/google/redirect"
    assert callback_url("oidc", LOCAL) == "http://127.0.0.1:3000/profile/oidc/redirect"
    assert (
        callback_url("oidc", LinkOrigin(domain="bad host/")) == "http://127.0.0.1:3000/profile/oidc/redirect"
    )


def test_the_answer_travels_in_the_fragment() -> None:
    assert with_fragment(APP, code="abc_-1") == f"{APP}#code=abc_-1"
    assert with_fragment(APP, error="email_not_verified") == f"{APP}#error=email_not_verified"


# -- routing: static /profile/* routes win over {provider}, as in API Gateway --------------------------
@pytest.mark.parametrize(
    ("method", "path", "resource"),
    [
        ("GET", "/profile/whoami", "/profile/whoami"),
        ("GET", "/profile/usage", "/profile/usage"),
        ("GET", "/profile/magic-link", "/profile/magic-link"),
        ("GET", "/profile/magic-link/redirect", "/profile/magic-link/redirect"),
        ("GET", "/profile/oauth/providers", "/profile/oauth/providers"),
        ("GET", "/profile/google", "/profile/{provider}"),
        ("GET", "/profile/oidc/redirect", "/profile/{provider}/redirect"),
        ("POST", "/profile/oauth/exchange", "/profile/oauth/exchange"),
    ],
)
def test_static_profile_routes_win_over_the_provider_parameter(method: str, path: str, resource: str) -> None:
    from appengine_local.gateway import LocalGateway
    from appengine_local.template import load_template

    gateway = LocalGateway(load_template(), lambdas=object())  # type: ignore[arg-type]
    route, _ = gateway.match(method, path)
    assert route is not None and route.path == resource


def test_no_static_profile_route_is_shadowed_by_a_parameter() -> None:
    # Every literal GET route under /profile/ resolves to itself, whatever order the template lists them.
    from appengine_local.gateway import LocalGateway
    from appengine_local.template import load_template

    template = load_template()
    gateway = LocalGateway(template, lambdas=object())  # type: ignore[arg-type]
    literal = [r for r in template.routes if r.path.startswith("/profile/") and "{" not in r.path]
    assert literal
    for route in literal:
        matched, _ = gateway.match(route.method, route.path)
        assert matched is not None and matched.path == route.path, route
