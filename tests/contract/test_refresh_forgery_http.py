"""Contract §3 over HTTP: only a refresh token the service issued and rotated counts as reuse (issue 13,
item 9). A session id is in every access token, so a made-up token of the right shape naming a real
session must be a plain 401 that revokes nothing."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

import pytest

from tests.contract.conftest import HttpResponse, LocalApi, sign_in
from tests.contract.test_platform_http import assert_error

PEOPLE = {
    "user": ("admin@acme.test", "acme-admin-pass", "/profile/user/refresh"),
    "customer": ("buyer@acme.test", "acme-buyer-pass", "/profile/customer/refresh"),
}


def session_id_of(access_token: str) -> str:
    payload = access_token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sid"])


def refresh(api: LocalApi, path: str, token: str) -> HttpResponse:
    return api.post(path, headers={"orgid": "acme"}, body={"refreshToken": token})


def whoami(api: LocalApi, token: str) -> HttpResponse:
    return api.get("/profile/whoami", headers={"orgid": "acme", "authorization": token})


@pytest.mark.parametrize("kind", ["user", "customer"])
def test_a_forged_refresh_token_naming_a_real_session_revokes_nothing(api: LocalApi, kind: str) -> None:
    # Given a signed-in session, whose id anyone holding its access token can read
    email, password, path = PEOPLE[kind]
    session = sign_in(api, email, password, "acme", kind=kind)
    home, sid = "acme", session_id_of(session["token"])

    # When someone presents made-up tokens of the right shape naming that session
    for _ in range(3):
        forged = f"{home}.{sid}.{secrets.token_urlsafe(32)}"
        assert forged != session["refreshToken"]
        # Then each is a plain 401
        assert_error(refresh(api, path, forged), 401, "unauthorized")

    # And the session is untouched: its access token works and its real refresh token rotates
    assert whoami(api, session["token"]).status == 200
    rotated = refresh(api, path, session["refreshToken"])
    assert rotated.status == 200, rotated.text
    assert whoami(api, rotated.json()["token"]).status == 200


def test_a_forged_token_after_a_rotation_revokes_nothing(api: LocalApi) -> None:
    # Given a session that has rotated once (so it has a spent token and a grace window)
    email, password, path = PEOPLE["user"]
    session = sign_in(api, email, password, "acme")
    rotated = refresh(api, path, session["refreshToken"]).json()
    sid = session_id_of(rotated["token"])

    # When a made-up token naming it comes / Then 401, and the current pair keeps working
    assert_error(refresh(api, path, f"acme.{sid}.{secrets.token_urlsafe(32)}"), 401, "unauthorized")
    assert whoami(api, rotated["token"]).status == 200
    assert refresh(api, path, rotated["refreshToken"]).status == 200


def test_a_genuine_spent_token_replayed_is_reuse_and_revokes_the_session(api: LocalApi) -> None:
    # Given a session rotated twice: its first token is spent and past its grace (two rotations old)
    email, password, path = PEOPLE["user"]
    session = sign_in(api, email, password, "acme")
    first = refresh(api, path, session["refreshToken"]).json()
    second = refresh(api, path, first["refreshToken"]).json()

    # When the first token, which this service issued and rotated, comes back
    assert_error(refresh(api, path, session["refreshToken"]), 401, "unauthorized")

    # Then it is reuse: the session with all its tokens is revoked
    assert_error(whoami(api, second["token"]), 401, "unauthorized")
    assert_error(refresh(api, path, second["refreshToken"]), 401, "unauthorized")
