"""The provider settings' pure rules (contract §4 "Social sign-in and enterprise SSO"): the PUT body's
shape, URLs (https, http only on a loopback address and only where allowed), what each provider takes
(oidc needs an issuer, plain OAuth providers take endpoints, OpenID ones need ``openid``), the
defaults filled in, and what the flow reads: exact redirect matches, kinds, domains, issuers."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from appengine_core.identity.oauth_data import (
    link_key,
    principal_identity_key,
    principal_identity_prefix,
    subject_digest,
)
from appengine_core.identity.oauth_providers import (
    MICROSOFT_CONSUMERS_TENANT,
    ProviderConfig,
    ProviderSettings,
    ProviderView,
    is_loopback_host,
    url_scheme_problem,
    url_shape_problem,
)
from appengine_core.infra.errors import ValidationFailed

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def settings(**fields: Any) -> ProviderSettings:
    body = {"clientId": "client-1", "clientSecret": "s3cret", "redirectUris": ["https://app.test/cb"]}
    return ProviderSettings.model_validate(body | fields)


def problems(error: ValidationFailed) -> dict[str, str]:
    return {d["field"]: d["problem"] for d in error.details or []}


def config(**fields: Any) -> ProviderConfig:
    values: dict[str, Any] = {
        "orgid": "acme",
        "provider": "oidc",
        "client_id": "client-1",
        "client_secret": SecretStr("s3cret"),
        "kinds": ("customer",),
        "redirect_uris": ("https://app.test/cb",),
        "issuer": "https://idp.test",
        "authorization_endpoint": None,
        "token_endpoint": None,
        "userinfo_endpoint": None,
        "scopes": "openid email profile",
        "allowed_domains": (),
        "auto_create": True,
    }
    return ProviderConfig(**(values | fields))


# -- the body's shape ----------------------------------------------------------------------------------
def test_the_defaults_are_the_contracts() -> None:
    # Given a body with only the required fields
    given = ProviderSettings.model_validate({"clientId": "c", "redirectUris": ["https://app.test/cb"]})
    # Then it is enabled, for customers, auto-creating, with no secret given and nothing else set
    assert given.enabled is True and given.autoCreate is True
    assert given.kinds == ["customer"]
    assert given.clientSecret is None and given.issuer is None and given.scopes is None
    assert given.allowedDomains == []


@pytest.mark.parametrize(
    "body",
    [
        {"redirectUris": ["https://app.test/cb"]},  # no clientId
        {"clientId": "c"},  # no redirectUris
        {"clientId": "c", "redirectUris": []},  # an empty allow-list
        {"clientId": "with space", "redirectUris": ["https://app.test/cb"]},
        {"clientId": "c", "redirectUris": ["https://app.test/cb"], "kinds": []},
        {"clientId": "c", "redirectUris": ["https://app.test/cb"], "kinds": ["admin"]},
        {"clientId": "c", "redirectUris": ["https://app.test/cb"], "clientSecret": ""},
        {"clientId": "c", "redirectUris": ["https://app.test/cb"], "clientSecret": "a\nb"},
        {"clientId": "c", "redirectUris": ["https://app.test/cb"], "clientSecret": "\u00e9" * 1500},
        {"clientId": "c", "redirectUris": ["https://app.test/cb"], "scopes": "openid " * 1000},
        {"clientId": "c", "redirectUris": ["https://app.test/cb"], "scopes": ""},
        {"clientId": "c", "redirectUris": ["https://app.test/cb"], "scopes": 'openid "x'},
        {"clientId": "c", "redirectUris": ["https://app.test/cb"], "allowedDomains": ["not a domain"]},
        {"clientId": "c", "redirectUris": ["https://app.test/cb"], "endpoints": {"other": "https://x.test"}},
        # a misspelt field is refused, never ignored (allowedDomain would allow everyone)
        {"clientId": "c", "redirectUris": ["https://app.test/cb"], "allowedDomain": ["acme.test"]},
    ],
)
def test_a_malformed_body_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ProviderSettings.model_validate(body)


def test_the_fields_of_the_answer_may_be_sent_back() -> None:
    # Given what GET answered, sent back as the PUT body (no secret: the stored one is kept)
    body = {
        "provider": "google",
        "clientSecretSet": True,
        "createdAt": "2026-01-01T00:00:00.000Z",
        "updatedAt": "2026-01-01T00:00:00.000Z",
        "clientId": "c",
        "redirectUris": ["https://app.test/cb"],
    }
    # Then it is read as the settings
    assert ProviderSettings.model_validate(body).clientId == "c"


def test_scopes_kinds_domains_and_redirects_are_normalized() -> None:
    given = settings(
        scopes="openid  email openid",
        kinds=["user", "user"],
        allowedDomains=["Acme.TEST", "@example.com", "acme.test."],
        redirectUris=["https://app.test/cb", "https://app.test/cb"],
    )
    assert given.scopes == ["openid", "email"]
    assert given.kinds == ["user"]
    assert given.allowedDomains == ["acme.test", "example.com"]
    assert given.redirectUris == ["https://app.test/cb"]
    assert settings(scopes=["openid", "email"]).scopes == ["openid", "email"]


def test_the_secret_is_never_shown_by_the_model() -> None:
    given = settings(clientSecret="hunter2-secret")
    assert "hunter2-secret" not in repr(given) and "hunter2-secret" not in str(given.model_dump())
    assert "hunter2-secret" not in str(given.stored("google"))


# -- URLs ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "app.test/cb",  # not absolute
        "/cb",
        "ftp://app.test/cb",
        "javascript:alert(1)",
        "https://",  # no host
        "https://user:pass@app.test/cb",  # user info
        "https://app.test/cb#frag",  # a fragment: the answer's code goes there
        "https://app.test/c b",
        "https://app.test:port/cb",
        "https://app.test\\@evil.test/cb",
        "https://app.test/" + "x" * 2100,
    ],
)
def test_a_redirect_uri_must_be_an_absolute_http_url(url: str) -> None:
    assert url_shape_problem(url) is not None
    with pytest.raises(ValidationError):
        settings(redirectUris=[url])


def test_an_issuer_takes_no_query() -> None:
    assert url_shape_problem("https://idp.test/realms/acme?x=1", query_allowed=False) is not None
    with pytest.raises(ValidationError):
        settings(issuer="https://idp.test/realms/acme?x=1")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.5.6.7", "::1", "localhost", "LOCALHOST"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["10.0.0.1", "app.test", "localhost.evil.test", "0.0.0.0", "::"])
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not is_loopback_host(host)


@pytest.mark.parametrize(
    ("url", "allowed", "ok"),
    [
        ("https://app.test/cb", False, True),
        ("https://127.0.0.1:8443/cb", False, True),
        ("http://app.test/cb", True, False),  # http elsewhere: never
        ("http://127.0.0.1:9000/cb", False, False),  # loopback http: only where allowed
        ("http://127.0.0.1:9000/cb", True, True),
        ("http://[::1]:9000/cb", True, True),
        ("http://localhost:3000/cb", True, True),
        ("http://localhost.evil.test/cb", True, False),
    ],
)
def test_https_or_loopback_http_where_allowed(url: str, allowed: bool, ok: bool) -> None:
    assert (url_scheme_problem(url, allow_loopback_http=allowed) is None) is ok


def test_every_url_of_the_settings_is_checked_for_its_scheme() -> None:
    # Given an oidc provider on a local http issuer with a local http redirect
    given = settings(issuer="http://127.0.0.1:9000", redirectUris=["http://127.0.0.1:3000/cb"])
    # Then it is refused where loopback http is not allowed, naming both fields
    with pytest.raises(ValidationFailed) as refused:
        given.checked_for("oidc", allow_loopback_http=False)
    assert set(problems(refused.value)) == {"issuer", "redirectUris.0"}
    # And accepted where it is (the local stack)
    assert given.checked_for("oidc", allow_loopback_http=True) is given


def test_endpoint_overrides_are_checked_for_their_scheme() -> None:
    given = settings(endpoints={"token": "http://gh.test/token"})
    with pytest.raises(ValidationFailed) as refused:
        given.checked_for("github", allow_loopback_http=True)
    assert set(problems(refused.value)) == {"endpoints.token"}


# -- what each provider takes ----------------------------------------------------------------------------
def test_oidc_requires_an_issuer() -> None:
    with pytest.raises(ValidationFailed) as refused:
        settings().checked_for("oidc", allow_loopback_http=False)
    assert set(problems(refused.value)) == {"issuer"}
    assert settings(issuer="https://idp.test").checked_for("oidc", allow_loopback_http=False)


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_google_and_microsoft_take_an_issuer_override_but_need_none(provider: str) -> None:
    assert settings().checked_for(provider, allow_loopback_http=False)
    assert settings(issuer="https://login.test/tenant/v2.0").checked_for(provider, allow_loopback_http=False)


@pytest.mark.parametrize("provider", ["github", "facebook"])
def test_plain_oauth_providers_take_endpoints_not_an_issuer(provider: str) -> None:
    assert settings(endpoints={"userinfo": "https://api.test/me"}).checked_for(
        provider, allow_loopback_http=False
    )
    with pytest.raises(ValidationFailed) as refused:
        settings(issuer="https://idp.test").checked_for(provider, allow_loopback_http=False)
    assert set(problems(refused.value)) == {"issuer"}


@pytest.mark.parametrize("provider", ["google", "microsoft", "oidc"])
def test_openid_providers_take_no_endpoints_and_need_the_openid_scope(provider: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        settings(
            issuer="https://idp.test", endpoints={"token": "https://t.test"}, scopes="email"
        ).checked_for(provider, allow_loopback_http=False)
    assert set(problems(refused.value)) == {"endpoints", "scopes"}


# -- the answer ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("provider", "issuer", "scopes"),
    [
        ("google", "https://accounts.google.com", "openid email profile"),
        ("microsoft", "https://login.microsoftonline.com/common/v2.0", "openid email profile"),
    ],
)
def test_the_answer_fills_in_the_public_issuers(provider: str, issuer: str, scopes: str) -> None:
    view = ProviderView.of_item(settings().stored(provider))
    assert view.issuer == issuer and view.scopes == scopes and view.endpoints is None
    assert view.clientSecretSet is True and view.provider == provider
    assert "clientSecret" not in view.model_dump()


def test_the_answer_fills_in_github_and_facebook_endpoints_under_the_overrides() -> None:
    github = ProviderView.of_item(
        settings(endpoints={"userinfo": "https://ghe.test/api/user"}).stored("github")
    )
    assert github.endpoints is not None and github.issuer is None
    assert github.endpoints.authorization == "https://github.com/login/oauth/authorize"
    assert github.endpoints.userinfo == "https://ghe.test/api/user"
    assert github.scopes == "read:user user:email"
    facebook = ProviderView.of_item(settings().stored("facebook"))
    assert facebook.endpoints is not None and facebook.endpoints.token.startswith(
        "https://graph.facebook.com/"
    )
    assert facebook.scopes == "email public_profile"


def test_the_answer_keeps_given_scopes_and_issuer() -> None:
    view = ProviderView.of_item(settings(issuer="https://idp.test", scopes="openid email").stored("oidc"))
    assert view.issuer == "https://idp.test" and view.scopes == "openid email"


# -- what the flow reads ---------------------------------------------------------------------------------
def test_a_redirect_is_allowed_only_by_an_exact_match() -> None:
    given = config(redirect_uris=("https://app.test/cb", "http://127.0.0.1:3000/cb"))
    assert given.redirect_allowed("https://app.test/cb")
    assert given.redirect_allowed("http://127.0.0.1:3000/cb")
    for near in (
        "https://app.test/cb/",
        "https://app.test/cb?x=1",
        "https://APP.test/cb",
        "https://app.test/cbx",
        "https://app.test/c",
        "https://app.test:443/cb",
        "https://app.test/cb#x",
        "http://app.test/cb",
    ):
        assert not given.redirect_allowed(near), near


def test_kinds_and_domains() -> None:
    given = config(kinds=("user",), allowed_domains=("acme.test",))
    assert given.allows("user") and not given.allows("customer")
    assert given.domain_allowed("Ann@ACME.test")
    assert not given.domain_allowed("ann@sub.acme.test")
    assert not given.domain_allowed("ann@acme.test.evil.test")
    assert not given.domain_allowed("acme.test")
    assert config().domain_allowed("anyone@anywhere.test")


def test_the_secret_is_not_shown_by_the_config() -> None:
    assert "s3cret" not in repr(config()) and "s3cret" not in str(config())


def test_issuers_match_exactly() -> None:
    given = config(issuer="https://idp.test/realms/acme")
    assert given.issuer_matches("https://idp.test/realms/acme")
    assert not given.issuer_matches("https://idp.test/realms/acme/")
    assert not given.issuer_matches("https://idp.test/realms/other", TENANT)
    assert given.discovery_url == "https://idp.test/realms/acme/.well-known/openid-configuration"


def test_microsofts_common_issuer_matches_the_tokens_own_tenant() -> None:
    common = config(provider="microsoft", issuer="https://login.microsoftonline.com/common/v2.0")
    assert common.issuer_matches(f"https://login.microsoftonline.com/{TENANT}/v2.0", TENANT)
    # the iss must name the token's own tid, a tenant id
    assert not common.issuer_matches(f"https://login.microsoftonline.com/{TENANT}/v2.0", None)
    assert not common.issuer_matches(
        f"https://login.microsoftonline.com/{TENANT}/v2.0", MICROSOFT_CONSUMERS_TENANT
    )
    assert not common.issuer_matches("https://login.microsoftonline.com/evil/v2.0", "evil")
    assert not common.issuer_matches(f"https://evil.test/{TENANT}/v2.0", TENANT)
    organizations = config(
        provider="microsoft", issuer="https://login.microsoftonline.com/organizations/v2.0"
    )
    consumer_iss = f"https://login.microsoftonline.com/{MICROSOFT_CONSUMERS_TENANT}/v2.0"
    assert not organizations.issuer_matches(consumer_iss, MICROSOFT_CONSUMERS_TENANT)
    consumers = config(provider="microsoft", issuer="https://login.microsoftonline.com/consumers/v2.0")
    assert consumers.issuer_matches(consumer_iss, MICROSOFT_CONSUMERS_TENANT)
    assert not consumers.issuer_matches(f"https://login.microsoftonline.com/{TENANT}/v2.0", TENANT)
    # an oidc provider's "common" path is nothing special
    other = config(issuer="https://login.microsoftonline.com/common/v2.0")
    assert not other.issuer_matches(f"https://login.microsoftonline.com/{TENANT}/v2.0", TENANT)


# -- the keys ----------------------------------------------------------------------------------------------
def test_link_keys_are_the_orgs_and_hold_only_a_digest_of_the_subject() -> None:
    key = link_key("acme", "customer", "google", "1234567890")
    assert key.sort == f"acme:#oauth-link:customer:google:{subject_digest('1234567890')}"
    assert "1234567890" not in key.sort


def test_a_principals_identities_are_indexed_in_its_home_org() -> None:
    key = principal_identity_key("acme:user:abc", "globex", "github")
    assert key.sort == "acme:#principal-identity:user:abc:globex:github"
    assert key.sort.startswith(principal_identity_prefix("acme:user:abc"))
    assert key.sort.startswith(principal_identity_prefix("acme:user:abc", "globex"))
    assert not key.sort.startswith(principal_identity_prefix("acme:user:abc", "acme"))
    # one principal's prefix never covers another's whose id extends it
    assert not principal_identity_key("acme:user:abcd", "acme", "google").sort.startswith(
        principal_identity_prefix("acme:user:abc")
    )
