"""The authorizer's warm JWT path.

- verify: ``TokenService.verify`` (header checks, warm key lookup, EdDSA signature, claims) as a ratio to
  a bare ``jwt.decode`` with the same key: the overhead our rules add to the cryptography.
- decide: the whole decision (verify + principal and session read) against moto in-process, and the
  number of DynamoDB calls per decision (target: 1, a BatchGetItem).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import jwt

from bench.emulated import emulated_stack

ROUNDS = 2000


def _per_call_us(fn: Callable[[], Any], rounds: int = ROUNDS) -> float:
    for _ in range(50):
        fn()
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            fn()
        samples.append((time.perf_counter() - start) / rounds * 1e6)
    return statistics.median(samples)


def run() -> dict[str, Any]:
    from appengine_core.edge.authorizer import AuthorizerService
    from appengine_core.identity.directory import DirectoryService, NewUser
    from appengine_core.identity.sessions import SessionStore
    from appengine_core.identity.signing import ALGORITHM, KeyStore
    from appengine_core.identity.tokens import TokenService
    from appengine_core.infra import aws
    from appengine_core.infra.settings import get_settings

    with emulated_stack():
        directory = DirectoryService()
        directory.create_org("acme", "Acme")
        user = directory.create_user("acme", NewUser(email="b@acme.test", password="bench-password"))
        session, _ = SessionStore().create(
            principal_sk=user.sk,
            kind="user",
            method="password",
            lifetime_seconds=3600,
            user_agent=None,
            source_ip=None,
        )
        keys = KeyStore()
        tokens = TokenService(keys)
        token, _ = tokens.issue(subject=user.sk, kind="user", session_id=session.id)
        public = keys.current().public_key
        settings = get_settings()

        bare = _per_call_us(
            lambda: jwt.decode(
                token,
                public,
                algorithms=[ALGORITHM],
                audience=settings.token_audience,
                issuer=settings.token_issuer,
            )
        )
        verify = _per_call_us(lambda: tokens.verify(token))

        service = AuthorizerService(tokens)
        headers = {"authorization": f"Bearer {token}", "orgid": "acme"}
        calls: list[str] = []
        aws.dynamodb().meta.client.meta.events.register(
            "before-call.dynamodb.*", lambda model, **_: calls.append(model.name)
        )
        service.decide(headers)
        calls.clear()
        decisions = 200
        decide = _per_call_us(lambda: service.decide(headers), rounds=decisions)
        per_decision = len(calls) / (decisions * 5 + 50)

        # The API-key path: checksum, then on a warm container the admission write alone (the rate-limit
        # counter, whose conditions prove the cached credential item still true).
        from appengine_core.identity.principal import Caller, Principal
        from appengine_core.keys.format import is_well_formed
        from appengine_core.keys.models import ApiKeyCreate
        from appengine_core.keys.service import ApiKeyService

        actor = Principal(kind="user", principal_id=user.sk, orgid="acme", permissions=("create",))
        limits = ApiKeyCreate(name="bench", scopes=["read"], rateLimits={"perMinute": 1_000_000})
        key = ApiKeyService().create(Caller(principal=actor, orgid="acme"), limits).key
        key_headers = {"x-api-key": key, "orgid": "acme"}
        checksum = _per_call_us(lambda: is_well_formed(key))
        service.decide(key_headers)
        calls.clear()
        key_decide = _per_call_us(lambda: service.decide(key_headers), rounds=decisions)
        key_calls = sorted(set(calls))
        key_per_decision = len(calls) / (decisions * 5 + 50)
        return {
            "bare_us": bare,
            "verify_us": verify,
            "decide_us": decide,
            "dynamodb_calls": per_decision,
            "checksum_us": checksum,
            "key_decide_us": key_decide,
            "key_calls": key_per_decision,
            "key_operations": ", ".join(key_calls),
        }


def main() -> None:
    result = run()
    bare = result["bare_us"]
    rows = [
        ("baseline: bare jwt.decode (EdDSA)", bare, ""),
        ("TokenService.verify", result["verify_us"], ""),
        ("whole decision (moto in-process)", result["decide_us"], "(moto's latency, not DynamoDB's)"),
    ]
    print("authorizer, warm JWT path (medians)")
    for name, micros, note in rows:
        print(f"  {name:<38} {micros:9.1f} us   x{micros / bare:6.2f}  {note}")
    print(f"  {'DynamoDB calls per decision':<38} {result['dynamodb_calls']:9.2f}      (one BatchGetItem)")
    print()
    print("authorizer, API-key path (medians)")
    for name, micros in (
        ("key checksum (refuses fakes, no I/O)", result["checksum_us"]),
        ("whole decision (moto in-process)", result["key_decide_us"]),
    ):
        print(f"  {name:<38} {micros:9.1f} us   x{micros / bare:6.2f}")
    print(
        f"  {'DynamoDB calls per request':<38} {result['key_calls']:9.2f}      ({result['key_operations']})"
    )


if __name__ == "__main__":
    main()
