"""Sign-in, sign-up, refresh rotation and sign-out through the signin/refresh handlers (contract §3)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from appengine_core.infra.envelope import Record
from appengine_local.runtime import LocalLambda
from tests.conftest import load_event
from tests.integration.conftest import body_of


def post(functions: LocalLambda, function: str, sample: str, body: Any, **headers: str) -> dict[str, Any]:
    event = load_event(sample)
    event["headers"] = {"content-type": "application/json", **headers}
    event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    event["body"] = body if isinstance(body, str) else json.dumps(body)
    return functions.invoke(function, event)


def sign_in(
    functions: LocalLambda, email: str, password: str, orgid: str = "acme", sample: str = "signin-user"
) -> dict[str, Any]:
    return post(functions, "SigninFunction", sample, {"email": email, "password": password}, orgid=orgid)


def refresh(
    functions: LocalLambda, token: str, sample: str = "refresh-user", orgid: str = "acme"
) -> dict[str, Any]:
    return post(functions, "RefreshFunction", sample, {"refreshToken": token}, orgid=orgid)


def test_user_sign_in_returns_the_compatibility_envelope(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    response = sign_in(functions, "Admin@Acme.test", "acme-admin-pass")
    assert response["statusCode"] == 200
    body = body_of(response)
    assert body["token"] and body["refreshToken"]
    assert body["user"]["sk"] == tenants["acme_admin"].sk
    assert body["data"] == {
        "token": body["token"],
        "refreshToken": body["refreshToken"],
        "refresh_token": body["refreshToken"],
        "user": body["user"],
    }
    assert "passwordHash" not in json.dumps(body) and "acme-admin-pass" not in json.dumps(body)


def test_wrong_password_unknown_email_and_wrong_kind_look_the_same(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    attempts = [
        sign_in(functions, "admin@acme.test", "wrong-password"),
        sign_in(functions, "nobody@acme.test", "acme-admin-pass"),
        sign_in(
            functions, "admin@acme.test", "acme-admin-pass", sample="signin-customer"
        ),  # a User at the customer door
        sign_in(functions, "buyer@acme.test", "acme-buyer-pass"),  # a Customer at the staff door
        sign_in(functions, "admin@acme.test", "acme-admin-pass", orgid="globex"),  # not a member there
    ]
    for response in attempts:
        assert response["statusCode"] == 401
        body = body_of(response)
        body.pop("requestId")
        assert body == {
            "statusCode": 401,
            "error": "invalid_credentials",
            "code": "invalid_credentials",
            "reason": "invalid_credentials",
            "message": "invalid email or password",
        }


def test_sign_in_needs_the_orgid_before_the_body_is_looked_at(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    response = post(functions, "SigninFunction", "signin-user", "{not json")
    assert response["statusCode"] == 400
    assert body_of(response)["error"] == "orgid_required"


def test_bad_bodies_are_400_or_422_and_change_nothing(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    assert (
        body_of(post(functions, "SigninFunction", "signin-user", "{not json", orgid="acme"))["error"]
        == "invalid_json"
    )
    response = post(functions, "SigninFunction", "signin-user", {"email": "admin@acme.test"}, orgid="acme")
    assert response["statusCode"] == 422
    assert body_of(response)["details"] == [{"field": "password", "problem": "Field required"}]


def test_customer_sign_up_then_sign_in(functions: LocalLambda, tenants: dict[str, Record]) -> None:
    body = {"email": "new@acme.test", "password": "new-customer-pass", "firstName": "Nia", "phone": "+1 555"}
    response = post(functions, "SigninFunction", "signup-customer", body, orgid="acme")
    assert response["statusCode"] == 201
    customer = body_of(response)["customer"]
    assert customer["sk"].startswith("acme:customer:") and customer["data"]["phone"] == "+1 555"
    assert "password" not in customer["data"]
    again = post(functions, "SigninFunction", "signup-customer", body, orgid="acme")
    assert again["statusCode"] == 409
    assert (
        sign_in(functions, "new@acme.test", "new-customer-pass", sample="signin-customer")["statusCode"]
        == 200
    )


def test_customer_sign_up_validates_the_body(functions: LocalLambda, tenants: dict[str, Record]) -> None:
    response = post(
        functions,
        "SigninFunction",
        "signup-customer",
        {"email": "not-an-email", "password": "short"},
        orgid="acme",
    )
    assert response["statusCode"] == 422
    fields = {d["field"] for d in body_of(response)["details"]}
    assert fields == {"email", "password"}


def test_staff_sign_up_is_off_unless_the_org_allows_it(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    from appengine_core.identity.directory import DirectoryService

    body = {"email": "self@acme.test", "password": "self-signup-pass", "roles": ["RootAdmin"]}
    assert post(functions, "SigninFunction", "signup-user", body, orgid="acme")["statusCode"] == 403
    DirectoryService().create_org("open", "Open", {"allowUserSignup": True})
    response = post(functions, "SigninFunction", "signup-user", body, orgid="open")
    assert response["statusCode"] == 201
    user = body_of(response)["user"]
    assert user["data"]["roles"] == ["User"] and user["data"]["permissions"] == {"content": ["read"]}
    assert user["data"]["orgs"] == ["open"]


def test_refresh_rotates_and_reuse_revokes_the_whole_session(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    first = body_of(sign_in(functions, "admin@acme.test", "acme-admin-pass"))
    second = body_of(refresh(functions, first["refreshToken"]))
    assert second["refreshToken"] != first["refreshToken"] and second["token"] != first["token"]
    assert second["data"]["refresh_token"] == second["refreshToken"]
    third = body_of(refresh(functions, second["refreshToken"]))
    # The first token is two rotations old: reuse. The family dies, including the newest token.
    assert refresh(functions, first["refreshToken"])["statusCode"] == 401
    assert refresh(functions, third["refreshToken"])["statusCode"] == 401


def test_a_concurrent_refresh_within_the_grace_window_gets_a_sibling(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    first = body_of(sign_in(functions, "admin@acme.test", "acme-admin-pass"))
    winner = body_of(refresh(functions, first["refreshToken"]))
    sibling = body_of(refresh(functions, first["refreshToken"]))  # the same token again, within 10 s
    assert sibling["refreshToken"] not in (winner["refreshToken"], first["refreshToken"])
    # Both successors are live members of the same session.
    assert refresh(functions, sibling["refreshToken"])["statusCode"] == 200


def test_reuse_after_the_grace_window_is_refused(
    functions: LocalLambda, tenants: dict[str, Record], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = body_of(sign_in(functions, "admin@acme.test", "acme-admin-pass"))
    body_of(refresh(functions, first["refreshToken"]))
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 11)
    assert refresh(functions, first["refreshToken"])["statusCode"] == 401


def test_a_user_refresh_token_is_refused_at_the_customer_endpoint(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    user = body_of(sign_in(functions, "admin@acme.test", "acme-admin-pass"))
    assert refresh(functions, user["refreshToken"], sample="refresh-customer")["statusCode"] == 401
    # ...and refusing it did not burn the family.
    assert refresh(functions, user["refreshToken"])["statusCode"] == 200
    customer = body_of(sign_in(functions, "buyer@acme.test", "acme-buyer-pass", sample="signin-customer"))
    assert refresh(functions, customer["refreshToken"])["statusCode"] == 401
    assert refresh(functions, customer["refreshToken"], sample="refresh-customer")["statusCode"] == 200


def test_refresh_accepts_refresh_token_snake_case(functions: LocalLambda, tenants: dict[str, Record]) -> None:
    first = body_of(sign_in(functions, "admin@acme.test", "acme-admin-pass"))
    response = post(
        functions, "RefreshFunction", "refresh-user", {"refresh_token": first["refreshToken"]}, orgid="acme"
    )
    assert response["statusCode"] == 200
    assert post(functions, "RefreshFunction", "refresh-user", {}, orgid="acme")["statusCode"] == 422
    assert (
        post(functions, "RefreshFunction", "refresh-user", {"refreshToken": "garbage"}, orgid="acme")[
            "statusCode"
        ]
        == 401
    )


def test_sign_in_rehashes_a_password_made_with_old_parameters(
    functions: LocalLambda, tenants: dict[str, Record]
) -> None:
    from passlib.hash import argon2

    from appengine_core.infra.store import TenantStore, Update

    admin = tenants["acme_admin"]
    weak = argon2.using(type="ID", memory_cost=1024, rounds=1, parallelism=1).hash("acme-admin-pass")
    TenantStore().update(Update(admin.key, "SET passwordHash = :h", values={":h": weak}))
    assert sign_in(functions, "admin@acme.test", "acme-admin-pass")["statusCode"] == 200
    stored = TenantStore().get(admin.key)
    assert stored is not None and stored["passwordHash"] != weak and "m=19456" in stored["passwordHash"]


def test_auth_events_reach_the_bus_without_secrets(
    functions: LocalLambda, tenants: dict[str, Record], bus_messages: Any
) -> None:
    good = body_of(sign_in(functions, "admin@acme.test", "acme-admin-pass"))
    sign_in(functions, "admin@acme.test", "wrong-password")
    events = bus_messages()
    kinds = [e["detail-type"] for e in events]
    assert kinds.count("auth.signed_in") == 1 and kinds.count("auth.sign_in_failed") == 1
    dump = json.dumps(events)
    for secret in ("acme-admin-pass", "wrong-password", good["refreshToken"], good["token"], "$argon2"):
        assert secret not in dump


def test_reuse_publishes_session_compromised(
    functions: LocalLambda, tenants: dict[str, Record], bus_messages: Any
) -> None:
    first = body_of(sign_in(functions, "admin@acme.test", "acme-admin-pass"))
    second = body_of(refresh(functions, first["refreshToken"]))
    body_of(refresh(functions, second["refreshToken"]))
    assert refresh(functions, first["refreshToken"])["statusCode"] == 401
    compromised = [e for e in bus_messages() if e["detail-type"] == "session.compromised"]
    assert len(compromised) == 1
    assert compromised[0]["detail"]["principal"] == tenants["acme_admin"].sk


def test_no_secret_is_logged(
    functions: LocalLambda,
    tenants: dict[str, Record],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Our code and Powertools at DEBUG (an operator may set LogLevel=DEBUG); the SDK's wire log is not ours.
    caplog.set_level("DEBUG")
    for sdk in ("botocore", "boto3", "urllib3"):
        caplog.set_level("WARNING", logger=sdk)
    good = body_of(sign_in(functions, "admin@acme.test", "acme-admin-pass"))
    sign_in(functions, "admin@acme.test", "a-wrong-password")
    rotated = body_of(refresh(functions, good["refreshToken"]))
    refresh(functions, good["refreshToken"])
    captured = capfd.readouterr()
    logs = captured.out + captured.err + caplog.text
    for secret in (
        "acme-admin-pass",
        "a-wrong-password",
        good["refreshToken"],
        rotated["refreshToken"],
        good["token"],
        rotated["token"],
        "$argon2id$",
    ):
        assert secret not in logs


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\xff\xfe\x00garbage", "application/json"),
        ("not json", "text/plain"),
        ("x=1", "multipart/form-data"),
    ],
)
def test_bodies_that_are_not_json_text_are_400_not_500(
    gateway: Any, tenants: dict[str, Record], body: Any, content_type: str
) -> None:
    # Found by schemathesis: non-UTF-8 bytes and non-JSON content types used to end in a 500.
    response = gateway.post(
        "/profile/signin", headers={"orgid": "acme", "content-type": content_type}, data=body
    )
    assert response.status_code == 400 and response.json["error"] == "invalid_json"


def test_a_json_body_is_read_as_json_whatever_the_declared_type(
    gateway: Any, tenants: dict[str, Record]
) -> None:
    # `curl -d '{...}'` without -H declares application/x-www-form-urlencoded.
    body = '{"email": "admin@acme.test", "password": "acme-admin-pass"}'
    headers = {"orgid": "acme", "content-type": "application/x-www-form-urlencoded"}
    response = gateway.post("/profile/signin", headers=headers, data=body)
    assert response.status_code == 200 and response.json["token"]


@pytest.mark.parametrize(
    ("sample", "function", "body"),
    [
        ("signin-user", "SigninFunction", '{"email": "admin@acme.test", "password": "pass\\ud800word"}'),
        ("signup-customer", "SigninFunction", '{"email": "x\\udc00@acme.test", "password": "long-enough-1"}'),
        ("refresh-user", "RefreshFunction", '{"refreshToken": "\\ud83d"}'),
    ],
)
def test_a_lone_surrogate_in_a_body_is_invalid_input_not_a_failure(
    functions: LocalLambda, tenants: dict[str, Record], sample: str, function: str, body: str
) -> None:
    # Given a body whose JSON spells half of a UTF-16 pair (no UTF-8 text can hold it)
    # When it is sent to a route that hashes or stores it
    response = post(functions, function, sample, body, orgid="acme")

    # Then it is refused as invalid input, and a well-formed pair (an emoji) is not
    assert response["statusCode"] == 422, response["body"]
    assert body_of(response)["details"][0]["field"] == "body"
    emoji = post(
        functions,
        "SigninFunction",
        "signin-user",
        '{"email": "a@acme.test", "password": "\\ud83d\\ude00"}',
        orgid="acme",
    )
    assert emoji["statusCode"] == 401
