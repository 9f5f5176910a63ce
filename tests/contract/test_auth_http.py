"""Contract §1, §3 and §4 over HTTP through the local gateway: every status path of the JWT guard."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.contract.conftest import LocalApi, sign_in
from tests.contract.test_platform_http import assert_error

ADMIN = ("admin@acme.test", "acme-admin-pass", "acme")
BUYER = ("buyer@acme.test", "acme-buyer-pass", "acme")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    decode = lambda part: json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # noqa: E731
    return decode(header), decode(payload), signature


def whoami(
    api: LocalApi, token: str | None, orgid: str | None = "acme", header: str = "authorization"
) -> Any:
    headers = {}
    if orgid is not None:
        headers["orgid"] = orgid
    if token is not None:
        headers[header] = token
    return api.get("/profile/whoami", headers=headers)


@pytest.fixture(scope="module")
def admin(api: LocalApi) -> dict[str, Any]:
    return sign_in(api, *ADMIN)


@pytest.fixture(scope="module")
def buyer(api: LocalApi) -> dict[str, Any]:
    return sign_in(api, *BUYER, kind="customer")


def current_private_key(keyset: dict[str, Any]) -> tuple[str, Ed25519PrivateKey]:
    entry = next(k for k in keyset["keys"] if k.get("retiresAt") is None)
    key = serialization.load_pem_private_key(entry["privateKey"].encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return entry["kid"], key


# -- success paths --------------------------------------------------------------------------------
def test_bearer_prefix_is_optional_and_x_client_authorization_works(
    api: LocalApi, admin: dict[str, Any]
) -> None:
    for token, header in (
        (f"Bearer {admin['token']}", "authorization"),
        (admin["token"], "authorization"),
        (admin["token"], "x-client-authorization"),
        (f"Bearer {admin['token']}", "x-client-authorization"),
    ):
        response = whoami(api, token, header=header)
        assert response.status == 200, response.text
        assert response.json()["principal"]["sk"] == admin["user"]["sk"]


# -- 401: credentials missing or invalid -------------------------------------------------------------
def test_no_credentials_is_401(api: LocalApi) -> None:
    assert_error(whoami(api, None), 401, "unauthorized")


def test_a_forged_signature_is_401(api: LocalApi, admin: dict[str, Any]) -> None:
    head, payload, signature = admin["token"].split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert_error(whoami(api, f"{head}.{payload}.{flipped}"), 401, "unauthorized")


def test_changed_claims_are_401(api: LocalApi, admin: dict[str, Any]) -> None:
    head, _, signature = admin["token"].split(".")
    _, claims, _ = segments(admin["token"])
    claims["sub"] = claims["sub"].replace("acme:user:", "acme:user:0")
    assert_error(whoami(api, f"{head}.{b64(json.dumps(claims).encode())}.{signature}"), 401, "unauthorized")


def test_alg_none_is_401(api: LocalApi, admin: dict[str, Any]) -> None:
    header, claims, _ = segments(admin["token"])
    header["alg"] = "none"
    token = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."
    assert_error(whoami(api, token), 401, "unauthorized")


def test_hmac_signed_with_the_public_key_is_401(api: LocalApi, admin: dict[str, Any]) -> None:
    header, claims, _ = segments(admin["token"])
    jwks = api.get("/.well-known/jwks.json").json()["keys"]
    public = next(k for k in jwks if k["kid"] == header["kid"])
    header["alg"] = "HS256"
    for secret in (json.dumps(public).encode(), base64.urlsafe_b64decode(public["x"] + "==")):
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        signature = b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())
        assert_error(whoami(api, f"{signing_input}.{signature}"), 401, "unauthorized")


def test_an_expired_token_is_401(
    api: LocalApi, admin: dict[str, Any], signing_keyset: dict[str, Any]
) -> None:
    kid, key = current_private_key(signing_keyset)
    _, claims, _ = segments(admin["token"])
    claims.update(iat=int(time.time()) - 7200, nbf=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    token = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, "typ": "at+jwt"})
    assert_error(whoami(api, token), 401, "unauthorized")


def test_a_token_signed_by_an_unknown_key_is_401(api: LocalApi, admin: dict[str, Any]) -> None:
    header, claims, _ = segments(admin["token"])
    token = jwt.encode(
        claims,
        Ed25519PrivateKey.generate(),
        algorithm="EdDSA",
        headers={"kid": header["kid"], "typ": "at+jwt"},
    )
    assert_error(whoami(api, token), 401, "unauthorized")


def test_a_refresh_token_used_as_access_is_401(api: LocalApi, admin: dict[str, Any]) -> None:
    assert_error(whoami(api, admin["refreshToken"]), 401, "unauthorized")


def test_a_partial_token_used_as_access_is_401(
    api: LocalApi, admin: dict[str, Any], signing_keyset: dict[str, Any]
) -> None:
    kid, key = current_private_key(signing_keyset)
    _, claims, _ = segments(admin["token"])
    for typ, use in (("partial+jwt", "partial"), ("at+jwt", "partial"), ("partial+jwt", "access")):
        token = jwt.encode(claims | {"use": use}, key, algorithm="EdDSA", headers={"kid": kid, "typ": typ})
        assert_error(whoami(api, token), 401, "unauthorized")


def test_a_customer_token_passed_off_as_a_user_is_401(
    api: LocalApi, buyer: dict[str, Any], signing_keyset: dict[str, Any]
) -> None:
    kid, key = current_private_key(signing_keyset)
    _, claims, _ = segments(buyer["token"])
    token = jwt.encode(
        claims | {"kind": "user"}, key, algorithm="EdDSA", headers={"kid": kid, "typ": "at+jwt"}
    )
    assert_error(whoami(api, token), 401, "unauthorized")


# -- 400: orgid ---------------------------------------------------------------------------------------
def test_a_valid_token_without_orgid_is_400(api: LocalApi, admin: dict[str, Any]) -> None:
    assert_error(whoami(api, admin["token"], orgid=None), 400, "orgid_required")


def test_invalid_credentials_win_over_a_missing_orgid(api: LocalApi) -> None:
    assert_error(whoami(api, "garbage", orgid=None), 401, "unauthorized")


def test_public_routes_need_the_orgid_too(api: LocalApi) -> None:
    assert_error(
        api.post("/profile/signin", body={"email": ADMIN[0], "password": ADMIN[1]}), 400, "orgid_required"
    )


# -- 403: org and principal kind ----------------------------------------------------------------------
def test_a_user_on_an_org_not_in_its_list_is_403(api: LocalApi, admin: dict[str, Any]) -> None:
    assert_error(whoami(api, admin["token"], orgid="globex"), 403, "forbidden")


def test_a_customer_token_with_another_orgid_is_403(api: LocalApi, buyer: dict[str, Any]) -> None:
    assert_error(whoami(api, buyer["token"], orgid="globex"), 403, "forbidden")


def test_a_customer_token_on_a_staff_route_is_403(api: LocalApi, buyer: dict[str, Any]) -> None:
    response = api.post(
        "/user/create",
        headers={"orgid": "acme", "authorization": buyer["token"]},
        body={"email": "x@acme.test", "password": "password-123"},
    )
    assert_error(response, 403, "forbidden")
    assert_error(
        api.get("/user/org/acme", headers={"orgid": "acme", "authorization": buyer["token"]}),
        403,
        "forbidden",
    )


def test_the_platform_root_may_act_on_any_org(api: LocalApi) -> None:
    root = sign_in(api, "root@platform.test", "platform-root-pass", "platform")
    response = whoami(api, root["token"], orgid="globex")
    assert response.status == 200 and response.json()["orgid"] == "globex"


# -- 400 / 422 bodies ---------------------------------------------------------------------------------
def test_a_body_that_is_not_json_is_400_and_a_wrong_one_422(api: LocalApi) -> None:
    assert_error(
        api.request(
            "POST",
            "/profile/signin",
            headers={"orgid": "acme", "content-type": "application/json"},
            raw=b"{oops",
        ),
        400,
        "invalid_json",
    )
    response = api.post("/profile/signin", headers={"orgid": "acme"}, body={"email": "a@acme.test"})
    assert_error(response, 422, "validation_error")
    assert response.json()["details"] == [{"field": "password", "problem": "Field required"}]


def test_wrong_password_is_401_invalid_credentials(api: LocalApi) -> None:
    assert_error(
        api.post("/profile/signin", headers={"orgid": "acme"}, body={"email": ADMIN[0], "password": "nope"}),
        401,
        "invalid_credentials",
    )


# -- revocation -----------------------------------------------------------------------------------------
def test_sign_out_revokes_access_and_refresh_from_the_next_request(api: LocalApi) -> None:
    session = sign_in(api, *ADMIN)
    headers = {"orgid": "acme", "authorization": session["token"]}
    assert api.post("/profile/signout", headers=headers).json() == {"ok": True}
    assert_error(whoami(api, session["token"]), 401, "unauthorized")
    refreshed = api.post(
        "/profile/user/refresh", headers={"orgid": "acme"}, body={"refreshToken": session["refreshToken"]}
    )
    assert_error(refreshed, 401, "unauthorized")


def test_refresh_token_reuse_kills_the_session(api: LocalApi) -> None:
    session = sign_in(api, *ADMIN)
    rotated = api.post(
        "/user/refresh", headers={"orgid": "acme"}, body={"refresh_token": session["refreshToken"]}
    ).json()
    again = api.post(
        "/user/refresh", headers={"orgid": "acme"}, body={"refresh_token": rotated["refreshToken"]}
    ).json()
    # The first token, two rotations old, comes back: reuse.
    reuse = api.post(
        "/user/refresh", headers={"orgid": "acme"}, body={"refreshToken": session["refreshToken"]}
    )
    assert_error(reuse, 401, "unauthorized")
    assert_error(whoami(api, again["token"]), 401, "unauthorized")


def test_customer_sign_up_answers_201_with_the_envelope(api: LocalApi) -> None:
    email = f"new-{time.time_ns()}@acme.test"
    response = api.post(
        "/profile/customer/signup",
        headers={"orgid": "acme"},
        body={"email": email, "password": "long-enough-pw", "firstName": "N"},
    )
    assert response.status == 201
    body = response.json()
    assert body["customer"]["data"]["email"] == email and body["data"]["customer"] == body["customer"]
    assert whoami(api, body["token"]).json()["kind"] == "customer"
