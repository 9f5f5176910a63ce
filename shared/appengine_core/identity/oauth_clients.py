"""The outbound side of social sign-in and enterprise SSO: the ONLY module that calls identity providers
(contract §4 "Social sign-in and enterprise SSO").

- the authorization URL (Authlib's ``OAuth2Session``: Authorization Code with PKCE S256, ``state``,
  ``nonce`` for OpenID Connect), built without a call;
- an OpenID provider's discovery document (cached per issuer for an hour);
- the code exchange at the token endpoint (client secret + PKCE verifier);
- ID-token validation with joserfc (what Authlib 1.6+ uses and recommends) and Authlib's ``CodeIDToken``
  claims: signature from the issuer's JWKS (cached an hour; fetched again once when a token names a key
  the cached set lacks, as providers rotate), ``iss``, ``aud`` (the org's client id), ``exp``, ``nonce``;
  a token without ``kid`` is checked against the set's only key when it holds exactly one (OpenID
  Connect Core §10.1), and refused otherwise; only asymmetric algorithms are accepted;
- the profile APIs of GitHub (``/user`` and ``/user/emails``: the primary address and whether GitHub
  verified it) and Facebook (``/me?fields=id,name,email``), and an OpenID provider's userinfo endpoint
  when its ID token carries no email.

Every call has a timeout (5 s), follows no redirect and reads at most 1 MiB; a URL that is not https (or
http on a loopback address where the setting ``oauth_allow_loopback_http`` allows it) is never called.
A failure of any kind (network, status, garbage, a token that does not verify) raises ``ProviderError``,
which the flow turns into a ``#error=provider_error`` redirect and a warning in the log: never a 500.
Nothing here logs or returns a token, code, verifier or secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from appengine_core.identity.oauth_providers import url_scheme_problem, url_shape_problem

if TYPE_CHECKING:
    from joserfc.jwk import KeySet

# requests, Authlib and joserfc are imported by the methods that call a provider: the OAuth function's
# other routes (provider settings, identities, the exchange) never need them, and they would double its
# cold start (bench.cold_instructions).

TIMEOUT_SECONDS = 5.0
MAX_BODY_BYTES = 1024 * 1024
METADATA_TTL_SECONDS = 3600
JWKS_TTL_SECONDS = 3600
# A token naming an unknown key makes the set be fetched again, at most this often per set.
JWKS_REFETCH_SECONDS = 10
ID_TOKEN_LEEWAY_SECONDS = 60
# Asymmetric signatures only: an HMAC "signed" with the client secret or "none" is never accepted.
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
TENANT_PLACEHOLDER = "{tenantid}"  # in the issuer of Microsoft's multi-tenant discovery documents
USER_AGENT = "appengine-oauth"


class ProviderError(Exception):
    """An identity provider failed, answered something unusable, or sent a token that does not verify.
    ``message`` is safe to log (no token, code or secret)."""

    def __init__(self, message: str, reason: str = "provider_error") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


# -- URLs --------------------------------------------------------------------------------------------
def usable_url(url: Any, *, allow_loopback_http: bool) -> bool:
    """An issuer or endpoint this service may call: https, or http on a loopback address when allowed
    (the local stack); the shape the provider settings take (no user info, no fragment)."""
    if not isinstance(url, str) or url_shape_problem(url) is not None:
        return False
    return url_scheme_problem(url, allow_loopback_http=allow_loopback_http) is None


# -- what providers answer ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ProviderMetadata:
    """What an OpenID provider's discovery document says (the part the flow uses)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    algorithms: tuple[str, ...] = ("RS256",)
    token_auth_methods: tuple[str, ...] = ("client_secret_basic",)

    def token_auth_method(self) -> str:
        """client_secret_basic where offered (the default of OpenID Connect), else client_secret_post."""
        if "client_secret_basic" in self.token_auth_methods or not self.token_auth_methods:
            return "client_secret_basic"
        if "client_secret_post" in self.token_auth_methods:
            return "client_secret_post"
        raise ProviderError("the provider offers no client-secret authentication at its token endpoint")


@dataclass(frozen=True)
class ProviderIdentity:
    """Who the provider says signed in: its subject, and an email only if one was given."""

    subject: str
    email: str | None = None
    email_verified: bool = False
    given_name: str | None = None
    family_name: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)


def _verified(value: Any) -> bool:
    """``email_verified`` as OpenID Connect says (a boolean); some providers send the string."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _text(value: Any, limit: int = 200) -> str | None:
    return value.strip()[:limit] or None if isinstance(value, str) else None


def identity_from_claims(claims: Mapping[str, Any]) -> ProviderIdentity:
    """An OpenID Connect identity from ID-token (or userinfo) claims."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise ProviderError("the ID token has no usable subject")
    email = claims.get("email")
    return ProviderIdentity(
        subject=subject,
        email=email if isinstance(email, str) and email else None,
        email_verified=_verified(claims.get("email_verified")),
        given_name=_text(claims.get("given_name")),
        family_name=_text(claims.get("family_name")),
        claims=dict(claims),
    )


def _split_name(name: Any) -> tuple[str | None, str | None]:
    text = _text(name, 401)
    if not text:
        return None, None
    first, _, rest = text.partition(" ")
    return first[:200] or None, rest.strip()[:200] or None


# -- caches (per Lambda container) ---------------------------------------------------------------------
class _TimedCache:
    def __init__(self) -> None:
        self._items: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, now: float) -> tuple[float, Any] | None:
        with self._lock:
            entry = self._items.get(key)
        return entry if entry is not None and entry[0] > now else None

    def put(self, key: str, value: Any, until: float) -> None:
        with self._lock:
            self._items[key] = (until, value)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_METADATA = _TimedCache()
_JWKS = _TimedCache()
_JWKS_FETCHED = _TimedCache()  # when each set was last fetched, for the refetch pace


def clear_caches() -> None:
    """Forget every cached discovery document and key set (tests; a container starts empty)."""
    for cache in (_METADATA, _JWKS, _JWKS_FETCHED):
        cache.clear()


# -- the adapter ---------------------------------------------------------------------------------------
class OAuthClients:
    """Calls to identity providers. ``allow_loopback_http`` comes from the settings (local stack only)."""

    def __init__(
        self,
        *,
        allow_loopback_http: bool = False,
        timeout: float = TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._allow_loopback_http = allow_loopback_http
        self._timeout = timeout
        self._clock = clock

    def check_url(self, url: str, what: str) -> str:
        if not usable_url(url, allow_loopback_http=self._allow_loopback_http):
            raise ProviderError(f"the {what} is not an https URL")
        return url

    # -- the authorization request (no call) -------------------------------------------------------
    def authorization_url(
        self,
        endpoint: str,
        *,
        client_id: str,
        scope: str,
        callback: str,
        state: str,
        verifier: str,
        nonce: str | None,
        extra: Mapping[str, str] | None = None,
    ) -> str:
        """The provider's authorization URL: the code flow with PKCE S256, ``state`` and ``nonce``."""
        from authlib.integrations.requests_client import OAuth2Session

        self.check_url(endpoint, "authorization endpoint")
        with OAuth2Session(
            client_id=client_id, scope=scope, redirect_uri=callback, code_challenge_method="S256"
        ) as session:
            parameters = dict(extra or {}) | ({"nonce": nonce} if nonce else {})
            url, _ = session.create_authorization_url(
                endpoint, state=state, code_verifier=verifier, **parameters
            )
        return str(url)

    # -- discovery -----------------------------------------------------------------------------------
    def discover(self, issuer: str) -> ProviderMetadata:
        """The issuer's discovery document (cached an hour), checked: it names this issuer (or is one
        of Microsoft's multi-tenant documents, whose issuer holds ``{tenantid}``) and https endpoints."""
        issuer = self.check_url(issuer, "issuer")
        cached = _METADATA.get(issuer, self._clock())
        if cached is not None:
            metadata: ProviderMetadata = cached[1]
            return metadata
        document = self._get_json(issuer.rstrip("/") + "/.well-known/openid-configuration", what="discovery")
        if not isinstance(document, dict):
            raise ProviderError("the discovery document is not a JSON object")
        named = document.get("issuer")
        if not isinstance(named, str) or not (
            named.rstrip("/") == issuer.rstrip("/") or TENANT_PLACEHOLDER in named
        ):
            raise ProviderError("the discovery document names another issuer")

        def endpoint(name: str, required: bool = True) -> str | None:
            value = document.get(name)
            if value is None and not required:
                return None
            if not isinstance(value, str):
                raise ProviderError(f"the discovery document has no {name}")
            return self.check_url(value, name)

        algorithms = _strings(document.get("id_token_signing_alg_values_supported")) or ("RS256",)
        metadata = ProviderMetadata(
            issuer=named,
            authorization_endpoint=str(endpoint("authorization_endpoint")),
            token_endpoint=str(endpoint("token_endpoint")),
            jwks_uri=str(endpoint("jwks_uri")),
            userinfo_endpoint=endpoint("userinfo_endpoint", required=False),
            algorithms=tuple(a for a in algorithms if a in ASYMMETRIC_ALGORITHMS),
            token_auth_methods=_strings(document.get("token_endpoint_auth_methods_supported"))
            or ("client_secret_basic",),
        )
        if not metadata.algorithms:
            raise ProviderError("the provider signs ID tokens with no algorithm accepted here")
        _METADATA.put(issuer, metadata, self._clock() + METADATA_TTL_SECONDS)
        return metadata

    # -- the code exchange ---------------------------------------------------------------------------
    def exchange_code(
        self,
        token_endpoint: str,
        *,
        client_id: str,
        client_secret: str,
        code: str,
        verifier: str,
        callback: str,
        auth_method: str,
    ) -> dict[str, Any]:
        """The provider's token response for ``code`` (client secret + PKCE verifier)."""
        import requests
        from authlib.integrations.base_client.errors import OAuthError
        from authlib.integrations.requests_client import OAuth2Session
        from authlib.oauth2.base import OAuth2Error

        self.check_url(token_endpoint, "token endpoint")
        try:
            with OAuth2Session(
                client_id=client_id,
                client_secret=client_secret,
                token_endpoint_auth_method=auth_method,
                redirect_uri=callback,
                default_timeout=self._timeout,
            ) as session:
                session.headers["User-Agent"] = USER_AGENT
                token = session.fetch_token(
                    token_endpoint,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=verifier,
                    allow_redirects=False,
                )
        except (OAuthError, OAuth2Error) as error:
            # The provider's own error word (invalid_grant, bad_verification_code, ...) is safe to log.
            raise ProviderError(
                f"the token endpoint refused the code: {getattr(error, 'error', '')}"
            ) from error
        except (requests.RequestException, ValueError, TypeError, KeyError) as error:
            raise ProviderError(f"the token endpoint failed: {type(error).__name__}") from error
        access_token = token.get("access_token") if isinstance(token, dict) else None
        if not isinstance(access_token, str) or not access_token:
            raise ProviderError("the token response has no access token")
        return dict(token)

    # -- ID tokens -----------------------------------------------------------------------------------
    def verified_claims(
        self,
        id_token: Any,
        metadata: ProviderMetadata,
        *,
        client_id: str,
        nonce: str,
        issuer_ok: Callable[[str, Mapping[str, Any]], bool],
        access_token: str | None = None,
    ) -> dict[str, Any]:
        """The claims of an ID token whose signature (the issuer's JWKS), ``iss`` (``issuer_ok``, given
        the claims), ``aud`` (``client_id``), ``exp`` and ``nonce`` hold."""
        from authlib.oidc.core import CodeIDToken
        from joserfc import jwt
        from joserfc.errors import InvalidKeyIdError, JoseError
        from joserfc.jws import JWSRegistry

        if not isinstance(id_token, str) or not id_token or len(id_token) > 16384:
            raise ProviderError("the token response has no ID token")
        registry = JWSRegistry(algorithms=list(metadata.algorithms), strict_check_header=False)
        try:
            try:
                decoded = jwt.decode(id_token, _key_set(self._jwks(metadata.jwks_uri)), registry=registry)
            except InvalidKeyIdError:
                # A key the cached set lacks: the provider may have rotated; fetch the set once more.
                fresh = self._jwks(metadata.jwks_uri, refetch=True)
                decoded = jwt.decode(id_token, _key_set(fresh), registry=registry)
            claims = dict(decoded.claims)
            options: dict[str, Any] = {
                "iss": {"essential": True, "validate": lambda found, iss: issuer_ok(str(iss), found)},
                "aud": {"essential": True, "value": client_id},
            }
            params = {"nonce": nonce, "client_id": client_id} | (
                {"access_token": access_token} if access_token else {}
            )
            CodeIDToken(claims, decoded.header, options, params).validate(leeway=ID_TOKEN_LEEWAY_SECONDS)
        except (JoseError, ValueError, TypeError, KeyError) as error:
            raise ProviderError(f"the ID token does not verify: {type(error).__name__}") from error
        if claims.get("nonce") != nonce:
            raise ProviderError("the ID token does not verify: no nonce")
        return claims

    def _jwks(self, uri: str, *, refetch: bool = False) -> dict[str, Any]:
        now = self._clock()
        cached = _JWKS.get(uri, now)
        if cached is not None and not refetch:
            keys: dict[str, Any] = cached[1]
            return keys
        if refetch and _JWKS_FETCHED.get(uri, now) is not None and cached is not None:
            raise ProviderError("the ID token names a key the provider does not publish")
        document = self._get_json(self.check_url(uri, "JWKS URI"), what="JWKS")
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ProviderError("the JWKS is not a key set")
        _JWKS.put(uri, document, now + JWKS_TTL_SECONDS)
        _JWKS_FETCHED.put(uri, True, now + JWKS_REFETCH_SECONDS)
        return document

    # -- profile APIs --------------------------------------------------------------------------------
    def userinfo(self, url: str, access_token: str) -> dict[str, Any]:
        """An OpenID provider's userinfo for ``access_token``."""
        answer = self._get_json(
            self.check_url(url, "userinfo endpoint"), what="userinfo", bearer=access_token
        )
        if not isinstance(answer, dict):
            raise ProviderError("the userinfo answer is not a JSON object")
        return answer

    def github_identity(self, user_url: str, access_token: str) -> ProviderIdentity:
        """GitHub's user (``/user``) and its primary email with GitHub's verified flag (``/user/emails``)."""
        self.check_url(user_url, "user endpoint")
        headers = {"Accept": "application/vnd.github+json"}
        user = self._get_json(user_url, what="GitHub user", bearer=access_token, headers=headers)
        if (
            not isinstance(user, dict)
            or isinstance(user.get("id"), bool)
            or not isinstance(user.get("id"), int)
        ):
            raise ProviderError("GitHub's user answer has no id")
        emails = self._get_json(
            user_url.rstrip("/") + "/emails", what="GitHub emails", bearer=access_token, headers=headers
        )
        if not isinstance(emails, list):
            raise ProviderError("GitHub's emails answer is not a list")
        primary = next((e for e in emails if isinstance(e, dict) and e.get("primary") is True), None)
        email = primary.get("email") if primary else None
        first, last = _split_name(user.get("name"))
        return ProviderIdentity(
            subject=str(user["id"]),
            email=email if isinstance(email, str) and email else None,
            email_verified=bool(primary and primary.get("verified") is True),
            given_name=first,
            family_name=last,
        )

    def facebook_identity(self, me_url: str, access_token: str, client_secret: str) -> ProviderIdentity:
        """Facebook's ``/me?fields=id,name,email``. Facebook gives an email only once its owner confirmed
        it, so an email it gives counts as verified (docs/decisions.md)."""
        self.check_url(me_url, "profile endpoint")
        # appsecret_proof: the Graph API's proof that the call comes from the app (an HMAC of the token).
        proof = hmac.new(client_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()
        parts = urlsplit(me_url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("fields", "appsecret_proof")]
        query += [("fields", "id,name,email"), ("appsecret_proof", proof)]
        url = urlunsplit(parts._replace(query=urlencode(query)))
        me = self._get_json(url, what="Facebook profile", bearer=access_token)
        subject = me.get("id") if isinstance(me, dict) else None
        if not isinstance(subject, str) or not subject.isdigit():
            raise ProviderError("Facebook's profile answer has no id")
        email = me.get("email")
        first, last = _split_name(me.get("name"))
        return ProviderIdentity(
            subject=subject,
            email=email if isinstance(email, str) and email else None,
            email_verified=isinstance(email, str) and bool(email),
            given_name=first,
            family_name=last,
        )

    # -- HTTP ----------------------------------------------------------------------------------------
    def _get_json(
        self, url: str, *, what: str, bearer: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        import requests

        sent = {"Accept": "application/json", "User-Agent": USER_AGENT} | dict(headers or {})
        if bearer is not None:
            sent["Authorization"] = f"Bearer {bearer}"
        try:
            with requests.get(
                url, headers=sent, timeout=self._timeout, allow_redirects=False, stream=True
            ) as response:
                if response.status_code != 200:
                    raise ProviderError(f"the {what} request answered {response.status_code}")
                body = response.raw.read(MAX_BODY_BYTES + 1, decode_content=True)
        except requests.RequestException as error:
            raise ProviderError(f"the {what} request failed: {type(error).__name__}") from error
        if len(body) > MAX_BODY_BYTES:
            raise ProviderError(f"the {what} answer is too large")
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as error:
            raise ProviderError(f"the {what} answer is not JSON") from error


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))


def _key_set(document: dict[str, Any]) -> KeySet:
    """A JWKS as joserfc's key set (a key it cannot read makes the whole set unusable: ValueError)."""
    from joserfc.jwk import KeySet, KeySetSerialization

    return KeySet.import_key_set(cast(KeySetSerialization, document))
