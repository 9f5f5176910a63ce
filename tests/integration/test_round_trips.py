"""Round trips per route are pinned (issue #18): one warm request of each route makes exactly the AWS
calls below, the authorizer's included. More calls is a regression; fewer means the pin must come down,
so the table stays the documentation of what each route costs. ``make bench`` prints the same counts
beside issue #18's targets (bench/round_trips.py, whose measuring code this test uses).

Names: ``Operation(collections)``, the collections the call's keys address (``#count`` a collection
counter, ``#outbox`` the transactional outbox, ``#apikey-hh`` a key's credential item, ``note`` /
``product`` / ``user`` records); ``authorizer:`` marks a call made by the authorizer.
"""

from __future__ import annotations

from bench.round_trips import AUTHORIZER_PREFIX, Measured, measure

AUTH_JWT_USER = AUTHORIZER_PREFIX + "BatchGetItem(#session,user)"
AUTH_JWT_CUSTOMER = AUTHORIZER_PREFIX + "BatchGetItem(#session,customer)"
# Warm, the key's credential item comes from the authorizer container's cache: the one admission write
# (the owner's version checked, the rate-limit counter, usage recorded) proves it still true. A container
# that has not seen the key reads it first (GetItem(#apikey-hh)), as does any request whose write fails.
AUTH_KEY = [AUTHORIZER_PREFIX + "TransactWriteItems(#apikey-hh,user)"]

# DynamoDB calls of one warm request, in order.
PINNED: dict[str, list[str]] = {
    "authorizer decision (JWT)": ["BatchGetItem(#session,user)"],
    "authorizer decision (API key)": ["TransactWriteItems(#apikey-hh,user)"],
    "profile whoami (JWT)": [AUTH_JWT_USER, "GetItem(user)"],
    "profile whoami (API key)": [*AUTH_KEY, "GetItem(user)"],
    "repository get": [AUTH_JWT_USER, "BatchGetItem(#org,note)"],
    "repository get (API key)": [*AUTH_KEY, "BatchGetItem(#org,note)"],
    "repository create": [
        AUTH_JWT_USER,
        "GetItem(#org)",
        "TransactWriteItems(#count,#outbox,note)",
    ],
    "repository update": [
        AUTH_JWT_USER,
        "BatchGetItem(#org,note)",
        "TransactWriteItems(#outbox,note)",
    ],
    "repository delete": [
        AUTH_JWT_USER,
        "BatchGetItem(#org,note)",
        "TransactWriteItems(#count,#outbox,note)",
    ],
    # An unfiltered find's first page also reads the collection's counter (the total).
    # The collection's role and its counter come in one BatchGetItem before the Query.
    "repository find": [AUTH_JWT_USER, "BatchGetItem(#count,#org)", "Query(note)"],
    "repository find (filtered)": [AUTH_JWT_USER, "BatchGetItem(#count,#org)", "Query(note)"],
    "repository find-by-attribute": [AUTH_JWT_USER, "BatchGetItem(#count,#org)", "Query(note)"],
    "storefront products": ["Query(product)"],
    "storefront product": ["Query(product)"],
    # The product checked for stock prices the cart too (not read twice).
    "storefront cart add": [
        AUTH_JWT_CUSTOMER,
        "Query(product)",
        "PutItem(#cart)",
        "GetItem(#org)",
    ],
    # A write to an existing cart reads it and the org's settings in one BatchGetItem.
    "storefront cart add (to a cart)": [
        AUTH_JWT_CUSTOMER,
        "BatchGetItem(#cart,#org)",
        "Query(product)",
        "PutItem(#cart)",
    ],
    "storefront calculate-cart": [AUTH_JWT_CUSTOMER, "Query(product)", "GetItem(#org)"],
    # The idempotency record and the cart come in one BatchGetItem; the org's pricing settings come from
    # the container's cache, proved current by a check on #org inside the order's transaction.
    "storefront checkout": [
        AUTH_JWT_CUSTOMER,
        "BatchGetItem(#cart,#idempotency)",
        "Query(product)",
        "UpdateItem(#sequence)",
        "TransactWriteItems(#cart,#count,#customer-order,#idempotency,#order-number,#org,#outbox,order,product)",
    ],
    # The user and its 2FA item come in one BatchGetItem (the first factor's end needs both).
    "sign-in (password)": [
        "BatchGetItem(#signin-failures,#signin-source)",
        "GetItem(#user-email)",
        "BatchGetItem(#2fa,user)",
        "TransactWriteItems(#principal-session,#session)",
    ],
    # The session read first (to find its principal) is the one the rotation decides on.
    "refresh": [
        "GetItem(#session)",
        "GetItem(user)",
        "TransactWriteItems(#refresh-spent,#session)",
    ],
    "api-key create": [
        AUTH_JWT_USER,
        "GetItem(user)",
        "TransactWriteItems(#apikey-hh,#apikey-id,#count)",
    ],
}
# Calls to Secrets Manager, KMS, EventBridge and SES of one warm request; a route not listed makes none.
PINNED_OTHER: dict[str, list[str]] = {
    "sign-in (password)": ["events:PutEvents"],  # auth.signed_in, straight to the bus
    "api-key create": ["events:PutEvents"],  # apikey.created
}


def _mismatch(route: str, kind: str, pinned: list[str], counted: list[str]) -> str | None:
    if counted == pinned:
        return None
    if len(counted) > len(pinned):
        verdict = f"regression: {len(counted)} {kind} calls, pinned {len(pinned)}"
    elif len(counted) < len(pinned):
        verdict = f"{len(counted)} {kind} calls, fewer than the pinned {len(pinned)}: lower the pin"
    else:
        verdict = f"the {kind} calls changed (same number): update the pin if this is intended"
    return f"{route}: {verdict}\n    pinned:  {pinned}\n    counted: {counted}"


def test_each_route_makes_exactly_its_pinned_round_trips(aws_stack: dict[str, str]) -> None:
    # Given every pinned route requested once to warm its containers
    # When the second, identical-shaped request of each is counted
    measured: dict[str, Measured] = measure()

    # Then every route is pinned, and each makes exactly its pinned calls, in order
    assert set(measured) == set(PINNED), "every measured route needs a pin (and every pin a route)"
    problems = [
        problem
        for route, counted in measured.items()
        for problem in (
            _mismatch(route, "DynamoDB", PINNED[route], counted.dynamodb),
            _mismatch(route, "other-service", PINNED_OTHER.get(route, []), counted.other),
        )
        if problem is not None
    ]
    assert not problems, "\n".join(problems)
