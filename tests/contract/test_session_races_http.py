"""Issue 15, races on one session over HTTP: a revoke (DELETE of the session, or sign-out) racing
refreshes of the same session's refresh token. Whatever the interleaving, the revoke succeeds and the
revocation holds from the next request: a refresh either fails (401) or succeeds, and then the pair it
returned is refused too (the refresh's rotation is conditioned on the session not being revoked, and
the authorizer reads the session on every request)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt

from tests.contract.conftest import HttpResponse, LocalApi
from tests.contract.test_platform_http import assert_error
from tests.contract.test_sessions_http import ORG, customer_sign_in, headers_of, new_customer

ROUNDS = 16
# The revoke starts this much later (negative: earlier) than the refreshes, round after round, so that
# the rounds sweep the interleavings from "revoked first" to "refreshed first".
OFFSETS_SECONDS = (-0.03, -0.015, 0.0, 0.0, 0.015, 0.03, 0.05, 0.08)


def session_id_of(signed_in: dict[str, Any]) -> str:
    return str(jwt.decode(signed_in["token"], options={"verify_signature": False})["sid"])


def refresh(api: LocalApi, token: str) -> HttpResponse:
    return api.post("/profile/customer/refresh", headers={"orgid": ORG}, body={"refreshToken": token})


def unauthorized(response: HttpResponse) -> bool:
    """A 401 with the contract's error body. (Only the status and the code are checked for answers given
    during the race: the local stack runs its function copies in one process, where Powertools keeps the
    current event in a class attribute, so a concurrent answer's ``requestId`` may name another request.)"""
    return response.status == 401 and response.json()["error"] == "unauthorized"


def race(api: LocalApi, pool: ThreadPoolExecutor, signed_in: dict[str, Any], round_number: int) -> list[Any]:
    """The revoke and two refreshes of ``signed_in``'s session, started together (the revoke shifted by
    the round's offset); their answers, the revoke's first."""
    session_id, own = session_id_of(signed_in), headers_of(signed_in)
    start = threading.Barrier(3, timeout=10)
    offset = OFFSETS_SECONDS[round_number % len(OFFSETS_SECONDS)]

    def revoke() -> HttpResponse:
        start.wait()
        time.sleep(max(offset, 0.0))
        if round_number % 2:
            return api.post("/profile/signout", headers=own)
        return api.request("DELETE", f"/profile/security/sessions/{session_id}", headers=own)

    def refreshing() -> HttpResponse:
        start.wait()
        time.sleep(max(-offset, 0.0))
        return refresh(api, signed_in["refreshToken"])

    racing = [pool.submit(revoke), pool.submit(refreshing), pool.submit(refreshing)]
    return [future.result(timeout=30) for future in racing]


def test_a_revoke_racing_refreshes_of_the_same_session_holds_from_the_next_request(api: LocalApi) -> None:
    customer = new_customer(api)
    keeper = headers_of(customer["signed_in"])  # the customer's sign-up session, never revoked here
    outcomes: Counter[str] = Counter()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=3) as pool:
        for round_number in range(ROUNDS):
            # Given a fresh session of the customer
            signed_in = customer_sign_in(api, customer["email"])
            session_id = session_id_of(signed_in)
            # When the session is revoked (DELETE of the session, or sign-out, alternately) while two
            # refreshes of its refresh token run (the same client refreshing twice at once, as the grace
            # window allows)
            revoked, *refreshed = race(api, pool, signed_in, round_number)

            # Then the revoke always succeeds
            assert revoked.status == 200 and revoked.json() == {"ok": True}, revoked.text
            # And each refresh either failed with 401 or returned a pair of the same session
            for answer in refreshed:
                assert answer.status == 200 or unauthorized(answer), answer.text
                outcomes["refreshed" if answer.status == 200 else "refused"] += 1
            pairs = [answer.json() for answer in refreshed if answer.status == 200]
            assert all(session_id_of(pair) == session_id for pair in pairs)
            # And from the next request on nothing of the session works: not its first pair, and not a
            # pair a refresh returned, whichever way the race went
            for pair in [signed_in, *pairs]:
                assert_error(api.get("/profile/whoami", headers=headers_of(pair)), 401, "unauthorized")
                assert_error(refresh(api, pair["refreshToken"]), 401, "unauthorized")
            # And the session is no longer listed
            listed = api.get("/profile/security/sessions", headers=keeper).json()["data"]
            assert session_id not in {s["id"] for s in listed}
    # And the customer's other session was untouched by all of it
    assert api.get("/profile/whoami", headers=keeper).status == 200
    # The sweep reached the interleaving where a refresh wins (its pair was then checked above), and
    # the rounds stay cheap on a shared machine
    assert outcomes["refreshed"] > 0, outcomes
    assert time.monotonic() - started < 60, "the race rounds must stay cheap"
