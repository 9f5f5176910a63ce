"""Signing-key rotation, proven (issue 15): a compare-and-swap makes two concurrent rotations add one
key; a token signed before a rotation keeps working through the overlap, the JWKS lists both keys
meanwhile, and once the old key's ``retiresAt`` has passed its tokens are refused and it leaves the
JWKS. A key that never existed is refused."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from werkzeug.test import Client

from appengine_core.identity import signing
from appengine_core.identity.signing import ALGORITHM, KeyStore
from appengine_core.identity.tokens import TokenService
from appengine_core.infra import aws
from appengine_core.infra.errors import Unauthorized
from appengine_core.infra.settings import get_settings
from appengine_core.ops.cli import parser as admin_cli_parser
from appengine_local.gateway import LocalGateway
from appengine_local.runtime import LocalLambda
from appengine_local.template import load_template
from tests.conftest import load_event
from tests.integration.conftest import access_token_for, body_of

WHOAMI = "/profile/whoami"


def stored_keyset() -> list[dict[str, Any]]:
    secret = aws.secretsmanager().get_secret_value(SecretId=get_settings().signing_keys_secret)
    return list(json.loads(secret["SecretString"])["keys"])


def version_count() -> int:
    versions = aws.secretsmanager().list_secret_version_ids(
        SecretId=get_settings().signing_keys_secret, IncludeDeprecated=True
    )
    return len(versions["Versions"])


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def fresh_gateway() -> Client:
    """A gateway whose functions are freshly imported: no keyset cached from before."""
    template = load_template()
    return Client(LocalGateway(template, LocalLambda(template)))


def jwks_kids() -> list[str]:
    """The kids a fresh platform container publishes, in order."""
    response = LocalLambda(load_template()).invoke("PlatformFunction", load_event("platform-jwks"))
    assert response["statusCode"] == 200
    return [key["kid"] for key in body_of(response)["keys"]]


def whoami(gateway: Client, token: str, orgid: str = "acme") -> int:
    return int(gateway.get(WHOAMI, headers={"orgid": orgid, "authorization": f"Bearer {token}"}).status_code)


def move_signing_clock(monkeypatch: pytest.MonkeyPatch, to: float) -> None:
    """The signing module's clock (which decides retirement) at ``to``; every other clock is real."""
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: to, monotonic=time.monotonic))


# -- two rotations at once ---------------------------------------------------------------------------
def operator_rotation(*flags: str) -> bool:
    """``appengine-admin rotate-signing-key [flags]`` as the CLI runs it (its result, unprinted)."""
    args = admin_cli_parser().parse_args(["rotate-signing-key", *flags])
    return bool(args.run(args)["rotated"])


def scheduled_rotation(functions: LocalLambda) -> bool:
    """The jobs function run by its schedule's event."""
    answer = functions.invoke("JobsFunction", {"job": "rotate-signing-keys"})
    return bool(answer["changed"])


@pytest.mark.parametrize("case", ["two-operators-forcing", "operator-and-schedule-on-a-due-key"])
def test_two_concurrent_rotations_add_exactly_one_key(
    functions: LocalLambda, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    # Given the provisioned keyset with its first key (for the scheduled case, one past its age)
    (first,) = stored_keyset()
    runs: list[Callable[[], bool]]
    if case == "two-operators-forcing":
        runs = [lambda: operator_rotation("--force"), lambda: operator_rotation("--force")]
    else:
        first["createdAt"] -= (get_settings().signing_key_rotation_days + 1) * 86400
        aws.secretsmanager().put_secret_value(
            SecretId=get_settings().signing_keys_secret, SecretString=json.dumps({"keys": [first]})
        )
        runs = [operator_rotation, lambda: scheduled_rotation(functions)]
    versions_before = version_count()
    # And two runs that both read the secret before either writes (each thread's first read waits at
    # a barrier until the other thread has read too)
    client = aws.secretsmanager()
    original_read = client.get_secret_value
    both_read = threading.Barrier(2, timeout=10)
    per_thread = threading.local()

    def read_then_wait(**kwargs: Any) -> Any:
        answer = original_read(**kwargs)
        if not getattr(per_thread, "waited", False):
            per_thread.waited = True
            both_read.wait()
        return answer

    monkeypatch.setattr(client, "get_secret_value", read_then_wait)
    # When both run the rotation at once
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = [future.result(timeout=30) for future in [pool.submit(run) for run in runs]]
    monkeypatch.setattr(client, "get_secret_value", original_read)
    # Then exactly one of them wrote, and it wrote exactly one version
    assert sorted(results) == [False, True]
    assert version_count() == versions_before + 1
    # And the keyset holds exactly two keys: one new current key, the old one retiring
    new, old = stored_keyset()
    assert old["kid"] == first["kid"] and old["retiresAt"] is not None
    assert new["kid"] != first["kid"] and new["retiresAt"] is None
    # And what a fresh signer uses is that new key
    assert KeyStore().current().kid == new["kid"]


def test_a_rotation_that_lost_the_race_leaves_the_winners_key_in_place(aws_stack: dict[str, str]) -> None:
    # Given a run that read the keyset, then another run that rotated meanwhile (it read the same version)
    client = aws.secretsmanager()
    name = get_settings().signing_keys_secret
    read = client.get_secret_value(SecretId=name)
    assert KeyStore().rotate(force=True) is True
    winner = stored_keyset()
    # When the first run writes its own rotation of what it read, as the compare-and-swap asks
    (first,) = json.loads(read["SecretString"])["keys"]
    own = {"keys": [signing.new_key_entry(int(time.time())), first | {"retiresAt": int(time.time()) + 60}]}
    with pytest.raises(client.exceptions.ResourceExistsException):
        client.put_secret_value(
            SecretId=name,
            SecretString=json.dumps(own),
            ClientRequestToken=signing.successor_version(read["VersionId"]),
        )
    # Then the winner's keyset is still the one stored: no key it published was lost
    assert stored_keyset() == winner


# -- the overlap -------------------------------------------------------------------------------------
def test_a_token_signed_before_a_rotation_verifies_through_the_overlap(
    gateway: Client, tenants: dict[str, Any]
) -> None:
    admin = tenants["acme_admin"]
    # Given a token signed with the first key, accepted by a warm gateway
    old_token = access_token_for(admin)
    assert whoami(gateway, old_token) == 200
    # When an operator forces a rotation
    assert KeyStore().rotate(force=True) is True
    # Then the token still verifies, in the service and end to end through the authorizer, both in the
    # warm containers (keyset cached from before) and in fresh ones (the rotated keyset)
    assert TokenService().verify(old_token).sub == admin.sk
    assert whoami(gateway, old_token) == 200
    assert whoami(fresh_gateway(), old_token) == 200
    # And a token signed after the rotation carries the new key, which the warm authorizer (whose cache
    # does not know it yet) accepts at once
    new_token = access_token_for(admin)
    assert kid_of(new_token) != kid_of(old_token)
    assert kid_of(new_token) == stored_keyset()[0]["kid"]
    assert whoami(gateway, new_token) == 200


def test_the_jwks_lists_both_keys_during_the_overlap(functions: LocalLambda, tenants: dict[str, Any]) -> None:
    admin = tenants["acme_admin"]
    old_token = access_token_for(admin)
    # When the keys rotate
    assert KeyStore().rotate(force=True) is True
    new_token = access_token_for(admin)
    # Then the JWKS publishes two keys with distinct kids, the new one (which signs new tokens) first
    response = LocalLambda(load_template()).invoke("PlatformFunction", load_event("platform-jwks"))
    keys = body_of(response)["keys"]
    assert [k["kid"] for k in keys] == [kid_of(new_token), kid_of(old_token)]
    assert len({k["kid"] for k in keys}) == 2
    assert all("d" not in k for k in keys), "never a private part"
    # And each published key verifies the tokens of its kid (a client verifying with the JWKS)
    settings = get_settings()
    for token in (new_token, old_token):
        jwk = next(k for k in keys if k["kid"] == kid_of(token))
        claims = jwt.decode(
            token,
            jwt.PyJWK(jwk).key,
            algorithms=[ALGORITHM],
            audience=settings.token_audience,
            issuer=settings.token_issuer,
        )
        assert claims["sub"] == admin.sk


# -- after the overlap -------------------------------------------------------------------------------
def test_after_its_retirement_the_old_keys_tokens_are_refused_and_it_leaves_the_jwks(
    gateway: Client, tenants: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = tenants["acme_admin"]
    # Given a token of the first key, a rotation, and a token of the new key
    old_token = access_token_for(admin)
    assert KeyStore().rotate(force=True) is True
    new_token = access_token_for(admin)
    retires_at = stored_keyset()[1]["retiresAt"]
    # When the clock is one second before the old key's retiresAt, both tokens work
    move_signing_clock(monkeypatch, retires_at - 1)
    assert whoami(gateway, old_token) == 200 and whoami(gateway, new_token) == 200
    assert jwks_kids() == [kid_of(new_token), kid_of(old_token)]
    # When it reaches retiresAt (the tokens themselves are not expired: only the key is retired)
    move_signing_clock(monkeypatch, retires_at)
    # Then the old key's token is refused, in the service and through the authorizer, warm or fresh
    with pytest.raises(Unauthorized):
        TokenService().verify(old_token)
    for through in (gateway, fresh_gateway()):
        response = through.get(WHOAMI, headers={"orgid": "acme", "authorization": f"Bearer {old_token}"})
        assert response.status_code == 401
        assert json.loads(response.get_data())["error"] == "unauthorized"
    # And the JWKS no longer lists it, while the new key's token still works
    assert jwks_kids() == [kid_of(new_token)]
    assert whoami(gateway, new_token) == 200
    # And the next rotation check drops it from the secret, without adding a key
    assert KeyStore().rotate() is True
    assert [k["kid"] for k in stored_keyset()] == [kid_of(new_token)]


# -- a key that never existed ------------------------------------------------------------------------
@pytest.mark.parametrize("kid", ["never-existed", "current"])
def test_a_token_of_a_key_that_never_existed_is_refused(
    gateway: Client, tenants: dict[str, Any], kid: str
) -> None:
    # Given a well-formed token with every right claim of a real session, signed by a key this service
    # never had, under an unknown kid or under the current key's kid
    admin = tenants["acme_admin"]
    genuine = access_token_for(admin)
    claims = jwt.decode(genuine, options={"verify_signature": False})
    header_kid = kid_of(genuine) if kid == "current" else kid
    forged = jwt.encode(
        claims,
        Ed25519PrivateKey.generate(),
        algorithm=ALGORITHM,
        headers={"kid": header_kid, "typ": "at+jwt"},
    )
    # Then it is refused, in the service and through the authorizer, while the genuine one works
    with pytest.raises(Unauthorized):
        TokenService().verify(forged)
    assert whoami(gateway, forged) == 401
    assert whoami(gateway, genuine) == 200
