"""Writes the API Gateway sample events in ``events/`` (``python -m appengine_local.sample_events``).

They are built by the local gateway's own event builder, so they have the shape the deployed gateway
sends; ``<access token>`` placeholders are for ``sam local invoke`` users to replace, and the tests
fill them in.
"""

from __future__ import annotations

import json
from typing import Any

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from appengine_local.gateway import LocalGateway
from appengine_local.runtime import LocalLambda
from appengine_local.template import REPO_ROOT, load_template

EVENTS_DIR = REPO_ROOT / "events"
REQUEST_ID = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
BEARER = {"authorization": "Bearer <access token>"}
ACME = {"orgid": "acme"}
JSON = {"content-type": "application/json"}

# name -> (method, path, headers, body)
SAMPLES: dict[str, tuple[str, str, dict[str, str], Any]] = {
    "platform-health": ("GET", "/monitoring/health", {}, None),
    "platform-jwks": ("GET", "/.well-known/jwks.json", {}, None),
    "platform-openapi": ("GET", "/openapi.json", {}, None),
    "signin-user": (
        "POST",
        "/profile/signin",
        ACME | JSON,
        {"email": "admin@acme.test", "password": "acme-admin-pass"},
    ),
    "signin-customer": (
        "POST",
        "/profile/customer/signin",
        ACME | JSON,
        {"email": "buyer@acme.test", "password": "acme-buyer-pass"},
    ),
    "signup-customer": (
        "POST",
        "/profile/customer/signup",
        ACME | JSON,
        {"email": "new@acme.test", "password": "new-buyer-pass", "firstName": "Nia"},
    ),
    "signup-user": (
        "POST",
        "/profile/user/signup",
        ACME | JSON,
        {"email": "self@acme.test", "password": "self-signup-pass"},
    ),
    "refresh-user": ("POST", "/profile/user/refresh", ACME | JSON, {"refreshToken": "<refresh token>"}),
    "refresh-customer": (
        "POST",
        "/profile/customer/refresh",
        ACME | JSON,
        {"refreshToken": "<refresh token>"},
    ),
    "signout": ("POST", "/profile/signout", ACME | BEARER, None),
    "profile-whoami": ("GET", "/profile/whoami", ACME | BEARER, None),
    "profile-customer-get": ("GET", "/profile/customer/profile", ACME | BEARER, None),
    "profile-customer-update": (
        "POST",
        "/profile/customer/update",
        ACME | BEARER | JSON,
        {"firstName": "Bea", "phone": "+1 555"},
    ),
    "user-create": (
        "POST",
        "/user/create",
        ACME | BEARER | JSON,
        {
            "email": "editor@acme.test",
            "password": "editor-pass-1",
            "roles": ["ContentAdmin"],
            "permissions": ["read", "create"],
        },
    ),
    "user-list-org": ("GET", "/user/org/acme", ACME | BEARER, None),
    "user-update": ("POST", "/user/update/user-<id>", ACME | BEARER | JSON, {"disabled": True}),
    "profile-usage": ("GET", "/profile/usage", ACME | BEARER, None),
    "audit-list": ("GET", "/profile/security/audit?type=auth.sign_in_failed&ps=20", ACME | BEARER, None),
    "app-token": (
        "POST",
        "/profile/app/key",
        ACME | JSON,
        {"appId": "<api key id>", "key": "<api key prefix>", "secret": "<api key>"},
    ),
    "magic-link-customer": ("POST", "/profile/magic-link", ACME | JSON, {"email": "buyer@acme.test"}),
    "magic-link-customer-query": ("GET", "/profile/magic-link?email=buyer@acme.test&type=code", ACME, None),
    "magic-link-user": ("POST", "/profile/user/magic-link", ACME | JSON, {"email": "admin@acme.test"}),
    "magic-link-user-query": ("GET", "/profile/user/magic-link?email=admin@acme.test", ACME, None),
    "magic-code-customer": ("POST", "/profile/code/buyer@acme.test", ACME, None),
    "magic-code-customer-verify": (
        "POST",
        "/profile/code/buyer@acme.test/verify",
        ACME | JSON,
        {"code": "<6-digit code>"},
    ),
    "magic-link-customer-open": ("GET", "/profile/magic-link/redirect?token=<token>&orgid=acme", {}, None),
    "magic-link-customer-redeem": (
        "POST",
        "/profile/magic-link/redirect",
        ACME | JSON,
        {"email": "buyer@acme.test", "code": "<6-digit code>"},
    ),
    "magic-link-user-open": ("GET", "/profile/user/magic-link/redirect?token=<token>&orgid=acme", {}, None),
    "magic-link-user-redeem": (
        "POST",
        "/profile/user/magic-link/redirect",
        ACME | JSON,
        {"token": "<token>"},
    ),
    "user-unlock": ("POST", "/user/unlock", ACME | BEARER | JSON, {"email": "reader@acme.test"}),
    "customer-unlock": ("POST", "/customer/unlock", ACME | BEARER | JSON, {"email": "buyer@acme.test"}),
    "customer-list": ("GET", "/customer/list?email=buyer@acme.test", ACME | BEARER, None),
    "customer-update": ("POST", "/customer/update/customer-<id>", ACME | BEARER | JSON, {"disabled": True}),
    "two-factor-setup": ("POST", "/profile/security/2fa/setup", ACME | BEARER, None),
    "two-factor-enable": (
        "POST",
        "/profile/security/2fa/enable",
        ACME | BEARER | JSON,
        {"code": "<6-digit code>"},
    ),
    "two-factor-recovery-codes": (
        "POST",
        "/profile/security/2fa/recovery-codes",
        ACME | BEARER | JSON,
        {"code": "<6-digit code>"},
    ),
    "two-factor-disable": (
        "POST",
        "/profile/security/2fa/disable",
        ACME | BEARER | JSON,
        {"code": "<6-digit code>"},
    ),
    "two-factor-verify": (
        "POST",
        "/profile/security/2fa/verify",
        ACME | JSON,
        {"partialToken": "<partial token>", "code": "<6-digit code>"},
    ),
    "two-factor-challenge-verify": (
        "POST",
        "/profile/security/challenge/verify",
        ACME | JSON,
        {"challengeToken": "<partial token>", "recoveryCode": "<recovery code>"},
    ),
    "two-factor-challenge-send": (
        "POST",
        "/profile/security/challenge/send",
        ACME | JSON,
        {"challengeToken": "<partial token>", "method": "email"},
    ),
    "sessions-own": ("GET", "/profile/security/sessions", ACME | BEARER, None),
    "sessions-own-revoke": ("DELETE", "/profile/security/sessions/<session id>", ACME | BEARER, None),
    "sessions-revoke-others": ("POST", "/profile/security/sessions/revoke-others", ACME | BEARER, None),
    "sessions-user": ("GET", "/user/user-<id>/sessions", ACME | BEARER, None),
    "sessions-user-revoke": ("DELETE", "/user/user-<id>/sessions/<session id>", ACME | BEARER, None),
    "sessions-customer": ("GET", "/customer/customer-<id>/sessions", ACME | BEARER, None),
    "sessions-customer-revoke": (
        "DELETE",
        "/customer/customer-<id>/sessions/<session id>",
        ACME | BEARER,
        None,
    ),
    "oauth-providers-list": ("GET", "/profile/oauth/providers", ACME | BEARER, None),
    "oauth-provider-put": (
        "PUT",
        "/profile/oauth/providers/google",
        ACME | BEARER | JSON,
        {
            "clientId": "1234567890-acme.apps.googleusercontent.com",
            "clientSecret": "<client secret>",
            "kinds": ["customer"],
            "redirectUris": ["https://shop.acme.test/auth/callback"],
            "allowedDomains": ["acme.test"],
        },
    ),
    "oauth-provider-get": ("GET", "/profile/oauth/providers/google", ACME | BEARER, None),
    "oauth-provider-delete": ("DELETE", "/profile/oauth/providers/google", ACME | BEARER, None),
    "identities-own": ("GET", "/profile/security/identities", ACME | BEARER, None),
    "identities-own-unlink": ("DELETE", "/profile/security/identities/google", ACME | BEARER, None),
    # The sign-in flow (a browser navigation, the provider's callback, the application's exchange).
    "oauth-start": (
        "GET",
        "/profile/google?orgid=acme&kind=customer&redirectUri=https://shop.acme.test/auth/callback",
        {},
        None,
    ),
    "oauth-callback": ("GET", "/profile/google/redirect?code=<provider code>&state=<state>", {}, None),
    "oauth-exchange": ("POST", "/profile/oauth/exchange", ACME | JSON, {"code": "<one-time code>"}),
    "repository-create": (
        "POST",
        "/repository/create",
        ACME | BEARER | JSON,
        {"datatype": "note", "data": {"title": "hello"}, "isNew": True},
    ),
    "repository-create-of-datatype": (
        "PUT",
        "/repository/create/note",
        ACME | BEARER | JSON,
        {"title": "hello"},
    ),
    "repository-get": ("GET", "/repository/get/product/acme:product:<id>", ACME | BEARER, None),
    "repository-find": (
        "POST",
        "/repository/find/product",
        ACME | BEARER | JSON,
        {"query": {"price": {"$lt": 20}}, "options": {"pageSize": 20, "sort": "price", "sortType": "asc"}},
    ),
    "repository-find-by-attribute": (
        "GET",
        "/repository/find-by-attribute/product/sku/MUG-1",
        ACME | BEARER,
        None,
    ),
    "repository-update": (
        "POST",
        "/repository/update/product/acme:product:<id>",
        ACME | BEARER | JSON,
        {"data": {"stock": 9}, "version": 1},
    ),
    "repository-update-partial": (
        "POST",
        "/repository/update-partial/product/acme:product:<id>",
        ACME | BEARER | JSON,
        {"data": {"stock": 8}},
    ),
    "repository-delete": ("DELETE", "/repository/delete/note/acme:note:<id>", ACME | BEARER, None),
    "repository-delete-many": ("POST", "/repository/delete/note", ACME | BEARER | JSON, ["acme:note:<id>"]),
    "storefront-products": ("GET", "/storefront/products?ps=10&sort=-price", ACME, None),
    "storefront-product": ("GET", "/storefront/product/mug", ACME, None),
    "storefront-categories": ("GET", "/storefront/categories", ACME, None),
    "storefront-brands": ("GET", "/storefront/brands", ACME, None),
    "storefront-gift-card-balance": ("GET", "/storefront/gift-card/balance/GIFT-50", ACME, None),
    "storefront-payment-gateways": ("GET", "/storefront/payment-gateways", ACME, None),
    "shipping-options": (
        "POST",
        "/shipping/options",
        ACME | JSON,
        {"items": [], "toAddress": {}, "orderTotal": 20},
    ),
    "cart-add": ("POST", "/storefront/cart/add", ACME | BEARER | JSON, {"sku": "MUG-1", "quantity": 2}),
    "cart-update": (
        "POST",
        "/storefront/cart/update",
        ACME | BEARER | JSON,
        {"cartId": "<cart id>", "sku": "MUG-1", "quantity": 1},
    ),
    "cart-remove": (
        "POST",
        "/storefront/cart/remove",
        ACME | BEARER | JSON,
        {"cartId": "<cart id>", "sku": "MUG-1"},
    ),
    "cart-get": ("GET", "/storefront/cart/get/customer-<id>/<cart id>", ACME | BEARER, None),
    "pricing-calculate-cart": (
        "POST",
        "/storefront/pricing/calculate-cart",
        ACME | BEARER | JSON,
        {"productItems": [{"sku": "MUG-1", "quantity": 2}], "couponCode": "WELCOME10"},
    ),
    "checkout-cart": (
        "POST",
        "/storefront/checkout-cart",
        ACME | BEARER | JSON | {"idempotency-key": "checkout-1"},
        {"cartId": "<cart id>"},
    ),
    "order-get": ("GET", "/storefront/order/get?orderNumber=00000001", ACME | BEARER, None),
    "orders-get": ("GET", "/storefront/orders/get", ACME | BEARER, None),
    "api-key-create": (
        "POST",
        "/api-key/create",
        ACME | BEARER | JSON,
        {"name": "deploy bot", "scopes": ["read", "write"], "rateLimit": {"requestsPerMinute": 120}},
    ),
    "api-key-list": ("GET", "/api-key/list", ACME | BEARER, None),
    "api-key-get": ("GET", "/api-key/<key id>", ACME | BEARER, None),
    "api-key-regenerate": ("POST", "/api-key/regenerate/<key id>", ACME | BEARER, None),
    "api-key-revoke": ("DELETE", "/api-key/<key id>", ACME | BEARER, None),
}

# What Lambda's event source mapping hands the publisher: one outbox insert from the table stream.
STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/AppTable/stream/2026-01-01T00:00:00.000"
PUBLISHER_SAMPLE: dict[str, Any] = {
    "Records": [
        {
            "eventID": "1",
            "eventName": "INSERT",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "eventSourceARN": STREAM_ARN,
            "dynamodb": {
                "ApproximateCreationDateTime": 1767225600,
                "Keys": {
                    "PK": {"S": "acme:#outbox"},
                    "SK": {"S": "acme:#outbox:019b7a7f4c00a1b2c3d4e5f6a7b8c9d0"},
                },
                "NewImage": {
                    "PK": {"S": "acme:#outbox"},
                    "SK": {"S": "acme:#outbox:019b7a7f4c00a1b2c3d4e5f6a7b8c9d0"},
                    "recordType": {"S": "outbox"},
                    "eventId": {"S": "019b7a7f4c00a1b2c3d4e5f6a7b8c9d0"},
                    "orgid": {"S": "acme"},
                    "detailType": {"S": "record.created"},
                    "detail": {
                        "M": {
                            "datatype": {"S": "note"},
                            "id": {"S": "note-019b7a7f4c00"},
                            "sk": {"S": "acme:note:019b7a7f4c00"},
                            "version": {"N": "1"},
                            "actor": {"S": "acme:user:019b7a7f0000"},
                        }
                    },
                    "createdAt": {"S": "2026-01-01T00:00:00.000Z"},
                    "ttl": {"N": "1767398400"},
                },
                "SequenceNumber": "100000000000000000001",
                "SizeBytes": 400,
                "StreamViewType": "NEW_IMAGE",
            },
        }
    ]
}

# What the audit rule hands the audit function: one security event, as EventBridge delivers it.
AUDIT_SAMPLE: dict[str, Any] = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "auth.sign_in_failed",
    "source": "appengine",
    "account": "123456789012",
    "time": "2026-01-01T00:00:00Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {
        "orgid": "acme",
        "time": "2026-01-01T00:00:00.000Z",
        "kind": "user",
        "email": "admin@acme.test",
        "reason": "wrong_password",
    },
}

# What the mailer's rule hands the mailer: one message to a person, as EventBridge delivers it.
MAILER_SAMPLE: dict[str, Any] = {
    "version": "0",
    "id": "0b4c6a7e-2f1d-4c55-9a3e-5d2f1e0c9b8a",
    "detail-type": "notification.requested",
    "source": "appengine",
    "account": "123456789012",
    "time": "2026-01-01T00:00:00Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {
        "orgid": "acme",
        "time": "2026-01-01T00:00:00.000Z",
        "to": "buyer@acme.test",
        "subject": "Your sign-in link",
        "text": (
            "Sign in to Acme with this link:\nhttps://app.acme.test/magic?token=<token>&orgid=acme\n\n"
            "Or enter the code 123456."
        ),
        "link": "https://app.acme.test/magic?token=<token>&orgid=acme",
        "code": "123456",
        "purpose": "magic_link",
    },
}

# The authorizer's own event, as API Gateway sends it for GET /profile/whoami.
AUTHORIZER_SAMPLE = "profile-whoami"


def _proxy_event(
    gateway: LocalGateway, method: str, path: str, headers: dict[str, str], body: Any
) -> dict[str, Any]:
    data = json.dumps(body) if body is not None else None
    path, _, query = path.partition("?")
    request = Request(
        EnvironBuilder(
            method=method,
            path=path,
            query_string=query,
            headers=[("User-Agent", "curl/8.5.0"), *headers.items()],
            data=data,
        ).get_environ()
    )
    route, parameters = gateway.match(method, path)
    if route is None:
        raise ValueError(f"no route for {method} {path}")
    event = gateway.proxy_event(request, route, parameters or {}, REQUEST_ID)
    # Deterministic files: fixed times, and header names as curl sends them (lower case).
    event["requestContext"].update(requestTimeEpoch=1767225600000, requestTime="01/Jan/2026:00:00:00 +0000")
    event["headers"] = {k.lower(): v for k, v in event["headers"].items()}
    event["multiValueHeaders"] = {k.lower(): v for k, v in event["multiValueHeaders"].items()}
    return event


def _usage_lines_sample() -> dict[str, Any]:
    """What the functions' log group's subscription filter hands the metering function: three usage
    lines of acme on 1 January 2026, as CloudWatch Logs delivers them (gzip, base64)."""
    import base64
    import gzip

    lines = [
        {
            "level": "INFO",
            "location": "count_request:61",
            "message": "request metered",
            "timestamp": f"2026-01-01 00:00:0{n},000+0000",
            "service": "appengine-usage",
            "meter": "request",
            "orgid": "acme",
        }
        for n in range(3)
    ]
    body = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/aws/lambda/appengine-functions",
        "logStream": "2026/01/01/[$LATEST]0123456789abcdef",
        "subscriptionFilters": ["MeteringFunctionUsageLines"],
        "logEvents": [
            {
                "id": f"3746283749283749283749283749283749283749283749283749283{n}",
                "timestamp": 1767225600000 + n,
                "message": json.dumps(line),
            }
            for n, line in enumerate(lines)
        ],
    }
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(body).encode(), mtime=0)).decode()}}


def build_all() -> dict[str, dict[str, Any]]:
    template = load_template()
    gateway = LocalGateway(template, lambdas=LocalLambda.__new__(LocalLambda))
    samples = {name: _proxy_event(gateway, *spec) for name, spec in SAMPLES.items()}
    whoami = samples[AUTHORIZER_SAMPLE]
    samples["authorizer-request"] = gateway.authorizer_event(whoami)
    samples["jobs-rotate-signing-keys"] = {"job": "rotate-signing-keys"}
    samples["jobs-expire-api-keys"] = {"job": "expire-api-keys"}
    samples["publisher-stream-batch"] = PUBLISHER_SAMPLE
    samples["audit-event"] = AUDIT_SAMPLE
    samples["mailer-notification"] = MAILER_SAMPLE
    samples["metering-usage-lines"] = _usage_lines_sample()
    return samples


def main() -> None:
    for name, event in build_all().items():
        (EVENTS_DIR / f"{name}.json").write_text(json.dumps(event, indent=2) + "\n", encoding="utf-8")
        print(f"events/{name}.json")


if __name__ == "__main__":
    main()
