"""A real OpenID Connect provider on loopback for the contract tests: ``oidc-provider-mock`` (Authlib's
authorization server behind a Flask app) in a thread on ``127.0.0.1:<free port>``.

What it gives the tests:
- ``issuer``: ``http://127.0.0.1:<port>`` (its discovery document, JWKS, token and userinfo endpoints are
  there; the local stack accepts http on loopback for OAuth);
- ``set_user(sub, claims)``: the claims its ID tokens and userinfo carry for a subject (``PUT /users/<sub>``);
- ``authorize(url, sub)``: what a person does on its authorization page, headless: the form posted to
  the authorization URL the API redirected to, answered by a 302 back to the API's callback with
  ``code`` and ``state``. (Its Deny button answers without the ``state``, so a declined sign-in
  cannot come back to a callback from it: the unit tests cover ``access_denied``.)

The mock ignores PKCE (Authlib's ``CodeChallenge`` extension is not registered there), so it is wrapped
here in ``PkceEnforcer``: the challenge of each authorization request is kept with the code the mock
issues, and a token request whose ``code_verifier`` does not hash to it (or has none) is answered
``400 invalid_grant``, as a real provider would. It also requires a ``nonce``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import oidc_provider_mock
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

StartResponse = Callable[..., Any]


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class PkceEnforcer:
    """WSGI middleware: the S256 challenge of each authorization request is checked at the token
    endpoint against the verifier, for the code the authorization request produced."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.challenges: dict[str, str] = {}  # code -> challenge
        self.refused: list[str] = []  # why token requests were refused (for the tests' messages)
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        if request.path == "/oauth2/token" and request.method == "POST":
            body = request.get_data(cache=True)
            environ["wsgi.input"] = io.BytesIO(body)
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            with self._lock:
                challenge = self.challenges.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            if challenge is None or not verifier or s256(verifier) != challenge:
                self.refused.append("no challenge for the code" if challenge is None else "wrong verifier")
                answer = Response(
                    json.dumps({"error": "invalid_grant", "error_description": "PKCE verification failed"}),
                    status=400,
                    content_type="application/json",
                )
                return answer(environ, start_response)
        if request.path == "/oauth2/authorize":
            challenge = request.args.get("code_challenge")
            if request.args.get("code_challenge_method") != "S256" or not challenge:
                answer = Response("PKCE S256 required", status=400)
                return answer(environ, start_response)

            def remembering(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
                for name, value in headers:
                    if name.lower() == "location":
                        code = parse_qs(urlsplit(value).query).get("code", [None])[0]
                        if code:
                            with self._lock:
                                self.challenges[code] = str(challenge)
                return start_response(status, headers, *args)

            result: Iterable[bytes] = self.app(environ, remembering)
            return result
        result = self.app(environ, start_response)
        return result


@dataclass
class LocalOidcProvider:
    issuer: str
    pkce: PkceEnforcer

    def set_user(self, sub: str, claims: dict[str, Any]) -> None:
        """The claims of ``sub`` (``email``, ``email_verified``, ``given_name``, ...): PUT /users/<sub>."""
        response = requests.put(f"{self.issuer}/users/{quote(sub, safe='')}", json=claims, timeout=10)
        assert response.status_code == 204, response.text

    def authorize(self, authorization_url: str, sub: str) -> str:
        """The person authorizes as ``sub`` on the provider's page: the URL the provider sends the
        browser back to (the API's callback with ``code`` and ``state``)."""
        assert authorization_url.startswith(self.issuer + "/"), authorization_url
        response = requests.post(authorization_url, data={"sub": sub}, allow_redirects=False, timeout=10)
        assert response.status_code == 302, response.text
        return str(response.headers["Location"])


@contextmanager
def local_oidc_provider() -> Iterator[LocalOidcProvider]:
    """The provider on a free loopback port, in a thread, for the duration of the block."""
    pkce = PkceEnforcer(oidc_provider_mock.app(require_nonce=True))
    server = make_server("127.0.0.1", 0, pkce, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield LocalOidcProvider(issuer=f"http://127.0.0.1:{server.server_port}", pkce=pkce)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
