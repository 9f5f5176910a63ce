"""Passwordless sign-in, the pure parts (contract §4): code hashing and comparison, the link token's
format, expiry and the wrong-code cap, where a link points, and the request models' refusals."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import pytest
from pydantic import SecretStr, ValidationError

from appengine_core.identity.data import signin_link_key
from appengine_core.identity.passwordless import (
    LINK_LIFETIME_SECONDS,
    MAX_TOKEN_LENGTH,
    MAX_WRONG_CODES,
    REQUEST_WINDOW_SECONDS,
    CodeRequest,
    LinkOrigin,
    LinkRequest,
    LinkToken,
    PasswordlessService,
    RedeemRequest,
    code_digest,
    code_matches,
    is_live,
    link_for,
    link_selector,
    new_code,
    new_salt,
    redirect_url,
    request_window,
    token_digest,
)
from appengine_core.infra.errors import RateLimited
from appengine_core.infra.settings import Settings, get_settings
from appengine_core.infra.store import ConditionFailed, Update

NOW = 1_800_000_000.0


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "APPENGINE_TABLE": "t-1",
        "APPENGINE_EVENT_BUS": "b",
        "APPENGINE_SIGNING_KEYS_SECRET": "s",
        "STAGE": "v1",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


# -- the code -------------------------------------------------------------------------------------------
def test_codes_are_six_digits_and_vary() -> None:
    codes = {new_code() for _ in range(200)}
    assert all(re.fullmatch(r"[0-9]{6}", code) for code in codes)
    assert len(codes) > 150  # 200 draws from a million: repeats are rare


def test_a_code_is_stored_as_a_salted_hmac_and_compared_by_it(pepper: bytes) -> None:
    # Given a code hashed under a random salt
    salt, code = new_salt(), "042917"
    stored = code_digest(salt, code)
    # Then the hash is neither the code nor its plain SHA-256, and another salt hashes it otherwise
    assert code not in stored and stored != hashlib.sha256(code.encode()).hexdigest()
    assert code_digest(new_salt(), code) != stored
    # And only the same code under the same salt matches
    assert code_matches(salt, stored, "042917")
    assert not code_matches(salt, stored, "042918")
    assert not code_matches(new_salt(), stored, "042917")


# -- the link token ---------------------------------------------------------------------------------------
def test_a_token_is_a_selector_and_a_secret_and_parses_back() -> None:
    selector = link_selector("acme", "customer", "buyer@acme.test")
    token = LinkToken.new(selector)
    assert re.fullmatch(r"[0-9a-f]{32}\.[A-Za-z0-9_-]{43}", token.value)
    assert LinkToken.parse(token.value) == token
    assert LinkToken.parse(f"  {token.value} ") == token
    # The item holds the secret's SHA-256 only
    assert token.digest == hashlib.sha256(token.secret.encode()).hexdigest() == token_digest(token.secret)
    assert LinkToken.new(selector).secret != token.secret


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not-a-token",
        "0" * 32,
        "0" * 32 + ".",
        "0" * 31 + "." + "a" * 43,
        "0" * 32 + "." + "a" * 42,
        "0" * 32 + "." + "a" * 44,
        "A" * 32 + "." + "a" * 43,  # the selector is lower-case hex
        "0" * 32 + "." + "a" * 42 + "=",
        "0" * 32 + ".." + "a" * 42,
        "0" * 32 + "." + "a" * 43 + ".x",
        "x" * MAX_TOKEN_LENGTH,
    ],
)
def test_malformed_tokens_do_not_parse(value: str) -> None:
    assert LinkToken.parse(value) is None


def test_the_selector_names_org_kind_and_email_without_showing_the_email() -> None:
    selector = link_selector("acme", "customer", "buyer@acme.test")
    assert re.fullmatch(r"[0-9a-f]{32}", selector) and "buyer" not in selector
    assert selector == link_selector("acme", "customer", "buyer@acme.test")
    others = {
        link_selector("globex", "customer", "buyer@acme.test"),
        link_selector("acme", "user", "buyer@acme.test"),
        link_selector("acme", "customer", "buyer2@acme.test"),
    }
    assert selector not in others and len(others) == 3


# -- expiry and the wrong-code cap --------------------------------------------------------------------------
def item(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {"principal": "acme:customer:1", "expiresAt": NOW + LINK_LIFETIME_SECONDS}
    return base | changes


def test_a_link_lives_15_minutes_for_fewer_than_5_wrong_codes_and_a_principal() -> None:
    assert is_live(item(), NOW)
    assert is_live(item(), NOW + LINK_LIFETIME_SECONDS - 1)
    assert not is_live(item(), NOW + LINK_LIFETIME_SECONDS)  # expired (TTL may not have removed it yet)
    assert is_live(item(misses=MAX_WRONG_CODES - 1), NOW)
    assert not is_live(item(misses=MAX_WRONG_CODES), NOW)  # dead, even for the right code
    assert not is_live(item(principal=""), NOW)  # an unknown email's item signs nobody in
    assert not is_live({}, NOW)


def test_requests_are_counted_in_15_minute_windows() -> None:
    start = (NOW // REQUEST_WINDOW_SECONDS) * REQUEST_WINDOW_SECONDS
    assert request_window(start) == request_window(start + REQUEST_WINDOW_SECONDS - 1)
    assert request_window(start + REQUEST_WINDOW_SECONDS) == request_window(start) + 1


# -- where the link points -----------------------------------------------------------------------------------
def test_a_configured_url_wins_and_names_the_kind_where_asked() -> None:
    origin = LinkOrigin(domain="abc.execute-api.us-east-1.amazonaws.com", context_path="/v1/x", path="/x")
    assert redirect_url("customer", origin, "https://shop.test/magic") == "https://shop.test/magic"
    assert redirect_url("user", origin, "https://app.test/{kind}/magic") == "https://app.test/user/magic"
    assert (
        link_for("https://app.test/m?from=mail", "t.s", "acme")
        == "https://app.test/m?from=mail&token=t.s&orgid=acme"
    )


def test_deployed_the_link_points_at_the_domain_and_stage_that_served_the_request() -> None:
    execute_api = LinkOrigin(
        domain="abc123.execute-api.eu-west-1.amazonaws.com",
        context_path="/v1/profile/magic-link",
        path="/profile/magic-link",
    )
    assert (
        redirect_url("customer", execute_api)
        == "https://abc123.execute-api.eu-west-1.amazonaws.com/v1/profile/magic-link/redirect"
    )
    assert (
        redirect_url("user", execute_api)
        == "https://abc123.execute-api.eu-west-1.amazonaws.com/v1/profile/user/magic-link/redirect"
    )
    # A custom domain with a base path mapping, and one mapped at its root
    mapped = LinkOrigin(
        domain="api.acme.test", context_path="/auth/profile/magic-link", path="/profile/magic-link"
    )
    assert redirect_url("customer", mapped) == "https://api.acme.test/auth/profile/magic-link/redirect"
    root = LinkOrigin(domain="api.acme.test", context_path="/profile/magic-link", path="/profile/magic-link")
    assert redirect_url("customer", root) == "https://api.acme.test/profile/magic-link/redirect"
    # Without a path to compare, the stage setting
    assert redirect_url("customer", LinkOrigin(domain="api.acme.test")) == (
        "https://api.acme.test/v1/profile/magic-link/redirect"
    )


def test_on_the_local_stack_the_link_points_at_the_loopback_gateway_without_a_stage() -> None:
    for domain in ("127.0.0.1:3000", "localhost", "localhost:3000", "127.0.0.1"):
        local = LinkOrigin(domain=domain, context_path="/v1/profile/magic-link", path="/profile/magic-link")
        assert redirect_url("customer", local) == f"http://{domain}/profile/magic-link/redirect"
        assert redirect_url("user", local) == f"http://{domain}/profile/user/magic-link/redirect"


def test_a_domain_that_is_no_host_name_is_not_put_in_a_link() -> None:
    for domain in ("evil.test/phish?", "a b", "x@y.test", None, ""):
        origin = LinkOrigin(domain=domain, context_path="/v1/p", path="/p")
        assert redirect_url("customer", origin) == "http://127.0.0.1:3000/profile/magic-link/redirect"


def test_the_setting_takes_an_http_url_or_nothing() -> None:
    base = {"table_name": "t-1", "event_bus_name": "b", "signing_keys_secret": "s"}
    assert Settings.model_validate(base).magic_link_url == ""
    assert Settings.model_validate(base | {"magic_link_url": "https://a.test/m"}).magic_link_url
    for bad in ("javascript:alert(1)", "ftp://a.test", "https://a.test/#frag", "https://a .test"):
        with pytest.raises(ValidationError):
            Settings.model_validate(base | {"magic_link_url": bad})


# -- the request models ----------------------------------------------------------------------------
def test_a_link_request_normalizes_the_email_and_reads_the_type() -> None:
    request = LinkRequest.model_validate({"email": " Buyer@Acme.TEST ", "redirectUrl": "ignored"})
    assert request.email == "buyer@acme.test" and not request.code_only
    assert LinkRequest.model_validate({"email": "a@b.test", "type": "code"}).code_only
    assert not LinkRequest.model_validate({"email": "a@b.test", "type": "link"}).code_only


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": ""},
        {"email": "not-an-email"},
        {"email": "a@b"},
        {"email": "x" * 400 + "@a.test"},
        {"email": 5},
    ],
)
def test_a_link_request_without_a_valid_email_is_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        LinkRequest.model_validate(body)


@pytest.mark.parametrize("code", ["12345", "1234567", "12a456", "١٢٣٤٥٦", "", "12 456", "123456" * 3])
def test_a_code_of_the_wrong_length_or_with_letters_is_refused(code: str) -> None:
    with pytest.raises(ValidationError):
        CodeRequest.model_validate({"code": code})
    with pytest.raises(ValidationError):
        RedeemRequest.model_validate({"email": "a@b.test", "code": code})


def test_a_code_is_kept_secret_and_trimmed() -> None:
    request = CodeRequest.model_validate({"code": " 012345 "})
    assert request.code.get_secret_value() == "012345" and "012345" not in repr(request)


def test_a_redeem_takes_a_token_or_an_email_and_a_code() -> None:
    assert RedeemRequest.model_validate({"token": "abc"}).token == SecretStr("abc")
    both = RedeemRequest.model_validate({"email": "A@B.test", "code": "123456"})
    assert both.email == "a@b.test" and both.code is not None
    for body in (
        {},
        {"email": "a@b.test"},
        {"code": "123456"},
        {"token": ""},
        {"token": "t" * (MAX_TOKEN_LENGTH + 1)},
    ):
        with pytest.raises(ValidationError):
            RedeemRequest.model_validate(body)


# -- the request cap's writes -------------------------------------------------------------------------------
class FakeLinkWrites:
    """Answers the link item's conditional updates in turn: True succeeds, False fails its condition."""

    def __init__(self, outcomes: list[bool]) -> None:
        self.outcomes = outcomes
        self.expressions: list[str] = []

    def change(self, operation: Update) -> None:
        self.expressions.append(operation.expression)
        if not self.outcomes.pop(0):
            raise ConditionFailed()


def store_link(outcomes: list[bool]) -> FakeLinkWrites:
    writes = FakeLinkWrites(outcomes)
    service = PasswordlessService(data=writes, events=object(), lockout=object(), auth=object())  # type: ignore[arg-type]
    key = signin_link_key("acme", "customer", "0" * 32)
    service._store_link(key, {"email": "a@b.test"}, NOW)
    return writes


def test_a_request_counts_in_the_window_or_starts_it() -> None:
    # Counted in the current window: one write, which adds to the count
    assert [" ADD #requests " in e for e in store_link([True]).expressions] == [True]
    # A first request (or a new window): the count fails, the start succeeds
    assert len(store_link([False, True]).expressions) == 2


def test_a_parallel_request_that_started_the_window_first_is_counted_in_it() -> None:
    writes = store_link([False, False, True])
    assert len(writes.expressions) == 3 and writes.expressions[0] == writes.expressions[2]


def test_a_full_window_is_429_until_it_ends() -> None:
    with pytest.raises(RateLimited) as refused:
        store_link([False, False, False])
    window_end = (request_window(NOW) + 1) * REQUEST_WINDOW_SECONDS
    assert 1 <= refused.value.retry_after_seconds <= window_end - NOW + 1
