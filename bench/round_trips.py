"""Round trips per route: the AWS calls one warm request makes, the authorizer's included, beside the
targets of issue #18 (get 2 in all, create/update/delete 2-3, find at most 3, the authorizer 1).

Each route is requested twice through the local gateway in-process (moto): the first request warms the
containers (imports, signing keys, per-container caches), the second is counted. Every DynamoDB call
is named by its operation and the collections its keys address (``TransactWriteItems(#count,note)``);
a call made while the authorizer runs is prefixed ``authorizer:``. Calls to Secrets Manager, KMS,
EventBridge and SES are listed apart. ``tests/integration/test_round_trips.py`` pins these sequences.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

AUTHORIZER = "AuthorizerFunction"
AUTHORIZER_PREFIX = "authorizer: "
# The credential items of API keys are sharded by the hash's first two hex digits.
_SHARD = re.compile(r"^(#apikey)-[0-9a-f]{2}$")


@dataclass(frozen=True)
class Target:
    """A route's class in issue #18 and the calls in all (authorizer included) it may make."""

    kind: str
    most: int
    least: int = 1

    def describe(self) -> str:
        if self.kind == "find":
            return f"find <= {self.most}"
        if self.least == self.most:
            return f"{self.kind} {self.most}"
        return f"{self.kind} {self.least}-{self.most}"

    def met_by(self, calls: int) -> bool:
        return calls <= self.most


AUTHORIZER_TARGET = Target("authorizer", 1, 1)
GET = Target("get", 2, 2)
WRITE = Target("write", 3, 2)
FIND = Target("find", 3)


@dataclass(frozen=True)
class RouteCase:
    name: str
    target: Target | None  # None: not one of issue #18's classes (sign-in, refresh)
    call: Callable[[int], Any]  # the i-th request (0 warms, 1 is counted); returns the response
    status: int


@dataclass
class Measured:
    """One counted request: DynamoDB calls in order, and the other services' calls."""

    dynamodb: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    target: Target | None = None

    @property
    def in_all(self) -> int:
        return len(self.dynamodb)

    @property
    def authorizer(self) -> list[str]:
        return [c.removeprefix(AUTHORIZER_PREFIX) for c in self.dynamodb if c.startswith(AUTHORIZER_PREFIX)]


def _plain(value: Any) -> str:
    if isinstance(value, dict) and "S" in value:  # a low-level attribute value
        return str(value["S"])
    return str(value)


def _collection(key: dict[str, Any]) -> str:
    partition = _plain(key.get("PK", ""))
    collection = partition.split(":", 1)[1] if ":" in partition else partition
    return _SHARD.sub(r"\1-hh", collection)


def _collections(keys: list[dict[str, Any]]) -> str:
    return ",".join(sorted({_collection(k) for k in keys}))


def describe_call(operation: str, params: dict[str, Any]) -> str:
    """``Operation(collections)``: what one DynamoDB call addresses, without ids."""
    if operation == "BatchGetItem":
        keys = [k for request in params.get("RequestItems", {}).values() for k in request.get("Keys", [])]
        return f"{operation}({_collections(keys)})"
    if operation == "TransactWriteItems":
        keys = [
            next(iter(item.values())).get("Key") or next(iter(item.values())).get("Item") or {}
            for item in params.get("TransactItems", [])
        ]
        return f"{operation}({_collections(keys)})"
    if operation == "Query":
        condition = params.get("KeyConditionExpression")
        values = getattr(condition, "_values", ())
        partition = next((v for v in _flatten(values) if isinstance(v, str) and ":" in v), "")
        return f"{operation}({_collection({'PK': partition})})" if partition else operation
    if "Key" in params:
        return f"{operation}({_collection(params['Key'])})"
    if "Item" in params:
        return f"{operation}({_collection(params['Item'])})"
    return operation


def _flatten(values: Any) -> Iterator[Any]:
    for value in values:
        inner = getattr(value, "_values", None)
        if inner is not None:
            yield from _flatten(inner)
        else:
            yield value


class Recorder:
    """Records the AWS calls made in this thread while ``counting``, with the running function."""

    def __init__(self) -> None:
        self.function: str | None = None
        self.counting = False
        self.current = Measured()

    def on_dynamodb(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if self.counting:
            prefix = AUTHORIZER_PREFIX if self.function == AUTHORIZER else ""
            self.current.dynamodb.append(prefix + describe_call(model.name, params))

    def on_other(self, model: Any, **_: Any) -> None:
        if self.counting:
            prefix = AUTHORIZER_PREFIX if self.function == AUTHORIZER else ""
            self.current.other.append(f"{prefix}{model.service_model.service_name}:{model.name}")

    @contextmanager
    def count(self) -> Iterator[Measured]:
        self.current = Measured()
        self.counting = True
        try:
            yield self.current
        finally:
            self.counting = False


def _counting_gateway(recorder: Recorder) -> Any:
    from werkzeug.test import Client

    from appengine_core.infra import aws
    from appengine_local.gateway import LocalGateway
    from appengine_local.runtime import LocalLambda
    from appengine_local.template import load_template

    class CountingLambda(LocalLambda):
        def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
            outer, recorder.function = recorder.function, logical_id
            try:
                return super().invoke(logical_id, event)
            finally:
                recorder.function = outer

    aws.dynamodb().meta.client.meta.events.register("provide-client-params.dynamodb.*", recorder.on_dynamodb)
    for client in (aws.secretsmanager(), aws.kms(), aws.events(), aws.sesv2()):
        client.meta.events.register("before-call.*", recorder.on_other)
    template = load_template()
    return Client(LocalGateway(template, CountingLambda(template)))


def _cases(gateway: Any) -> list[RouteCase]:
    """The demo seed, a product with plenty of stock, tokens, a key and records; the routes to count."""
    from appengine_core.ops.seed import apply_seed, read_seed_file
    from appengine_core.records.writer import RecordWriter
    from appengine_local.dev import DEMO_SEED

    apply_seed(read_seed_file(DEMO_SEED))
    RecordWriter().create(
        "acme",
        "product",
        {"name": "Pen", "sku": "PEN-1", "slug": "pen", "price": 2.5, "stock": 1_000_000},
        state="published",
    )

    def ok(response: Any, status: int = 200) -> Any:
        if response.status_code != status:
            raise RuntimeError(f"setup request answered {response.status_code}: {response.text}")
        return response.json

    acme = {"orgid": "acme"}
    admin_signin = {"email": "admin@acme.test", "password": "acme-admin-pass"}
    signed_in = ok(gateway.post("/profile/signin", headers=acme, json=admin_signin))
    staff = acme | {"authorization": f"Bearer {signed_in['token']}"}
    buyer_signin = {"email": "buyer@acme.test", "password": "acme-buyer-pass"}
    buyer_token = ok(gateway.post("/profile/customer/signin", headers=acme, json=buyer_signin))["token"]
    buyer = acme | {"authorization": f"Bearer {buyer_token}"}
    key_request = {"name": "bench", "scopes": ["read", "write"], "rateLimits": {"perMinute": 1_000_000}}
    key = ok(gateway.post("/api-key/create", headers=staff, json=key_request), 201)["key"]
    with_key = acme | {"x-api-key": key}

    def note(n: int) -> str:
        created = gateway.post(
            "/repository/create", headers=staff, json={"datatype": "note", "data": {"n": n}}
        )
        return str(ok(created, 201)["sk"])

    kept = note(0)
    for n in range(1, 10):
        note(n)
    doomed = [note(100), note(101)]
    carts = [
        ok(gateway.post("/storefront/cart/add", headers=buyer, json={"sku": "PEN-1", "quantity": 1}))[
            "cartId"
        ]
        for _ in range(2)
    ]
    open_cart = ok(gateway.post("/storefront/cart/add", headers=buyer, json={"sku": "PEN-1", "quantity": 1}))[
        "cartId"
    ]
    refresh_token = [str(signed_in["refreshToken"])]

    def refresh(_: int) -> Any:
        response = gateway.post(
            "/profile/user/refresh", headers=acme, json={"refreshToken": refresh_token[0]}
        )
        refresh_token[0] = str(ok(response)["refreshToken"])
        return response

    find = {"options": {"pageSize": 20}}
    filtered = {"query": {"n": {"$gte": 5}}}
    return [
        RouteCase("profile whoami (JWT)", GET, lambda _: gateway.get("/profile/whoami", headers=staff), 200),
        RouteCase(
            "profile whoami (API key)", GET, lambda _: gateway.get("/profile/whoami", headers=with_key), 200
        ),
        RouteCase(
            "repository get", GET, lambda _: gateway.get(f"/repository/get/note/{kept}", headers=staff), 200
        ),
        RouteCase(
            "repository get (API key)",
            GET,
            lambda _: gateway.get(f"/repository/get/note/{kept}", headers=with_key),
            200,
        ),
        RouteCase(
            "repository create",
            WRITE,
            lambda i: gateway.post(
                "/repository/create", headers=staff, json={"datatype": "note", "data": {"n": 50 + i}}
            ),
            201,
        ),
        RouteCase(
            "repository update",
            WRITE,
            lambda i: gateway.post(
                f"/repository/update/note/{kept}", headers=staff, json={"data": {"n": 200 + i}}
            ),
            200,
        ),
        RouteCase(
            "repository delete",
            WRITE,
            lambda i: gateway.delete(f"/repository/delete/note/{doomed[i]}", headers=staff),
            200,
        ),
        RouteCase(
            "repository find",
            FIND,
            lambda _: gateway.post("/repository/find/note", headers=staff, json=find),
            200,
        ),
        RouteCase(
            "repository find (filtered)",
            FIND,
            lambda _: gateway.post("/repository/find/note", headers=staff, json=filtered),
            200,
        ),
        RouteCase(
            "repository find-by-attribute",
            FIND,
            lambda _: gateway.get("/repository/find-by-attribute/note/n/5", headers=staff),
            200,
        ),
        RouteCase(
            "storefront products", FIND, lambda _: gateway.get("/storefront/products", headers=acme), 200
        ),
        RouteCase(
            "storefront product", GET, lambda _: gateway.get("/storefront/product/pen", headers=acme), 200
        ),
        RouteCase(
            "storefront cart add",
            WRITE,
            lambda _: gateway.post(
                "/storefront/cart/add", headers=buyer, json={"sku": "PEN-1", "quantity": 1}
            ),
            200,
        ),
        RouteCase(
            "storefront cart add (to a cart)",
            WRITE,
            lambda _: gateway.post(
                "/storefront/cart/add",
                headers=buyer,
                json={"cartId": open_cart, "sku": "PEN-1", "quantity": 1},
            ),
            200,
        ),
        RouteCase(
            "storefront calculate-cart",
            FIND,
            lambda _: gateway.post(
                "/storefront/pricing/calculate-cart",
                headers=buyer,
                json={"productItems": [{"sku": "PEN-1", "quantity": 2}]},
            ),
            200,
        ),
        # The warming checkout (like the cart adds before it) leaves the org's pricing settings in the
        # container's cache, as on a warm container; the counted one's transaction proves them current.
        RouteCase(
            "storefront checkout",
            WRITE,
            lambda i: gateway.post(
                "/storefront/checkout-cart",
                headers=buyer | {"Idempotency-Key": f"bench-{i}"},
                json={"cartId": carts[i]},
            ),
            201,
        ),
        RouteCase(
            "sign-in (password)",
            None,
            lambda _: gateway.post("/profile/signin", headers=acme, json=admin_signin),
            200,
        ),
        RouteCase("refresh", None, refresh, 200),
        RouteCase(
            "api-key create",
            WRITE,
            lambda i: gateway.post(
                "/api-key/create", headers=staff, json=key_request | {"name": f"bench-{i}"}
            ),
            201,
        ),
    ]


def measure() -> dict[str, Measured]:
    """Every route's counted request by route name, the authorizer's own rows first (its part of the
    whoami requests). Needs the emulated AWS already up (``bench.emulated.emulated_stack`` or the
    tests' ``aws_stack``); runs in this thread."""
    recorder = Recorder()
    gateway = _counting_gateway(recorder)
    measured: dict[str, Measured] = {}
    for case in _cases(gateway):
        for attempt in range(2):
            with recorder.count() as counted:
                response = case.call(attempt)
            if response.status_code != case.status:
                raise RuntimeError(
                    f"{case.name}: expected {case.status}, got {response.status_code}: {response.text}"
                )
        counted.target = case.target
        measured[case.name] = counted
    decisions = {}
    for credential in ("JWT", "API key"):
        whoami = measured[f"profile whoami ({credential})"]
        decisions[f"authorizer decision ({credential})"] = Measured(
            dynamodb=whoami.authorizer,
            other=[
                c.removeprefix(AUTHORIZER_PREFIX) for c in whoami.other if c.startswith(AUTHORIZER_PREFIX)
            ],
            target=AUTHORIZER_TARGET,
        )
    return decisions | measured


def table(measured: dict[str, Measured]) -> list[str]:
    """The report: calls in all, the target of issue #18 (and whether it is met), the calls in order."""
    lines = [f"  {'route':<32} {'in all':>6}  {'target':<18} calls (other services after +)"]
    for name, counted in measured.items():
        target = counted.target
        shown = (
            "-" if target is None else target.describe() + ("" if target.met_by(counted.in_all) else " over")
        )
        others = f"  + {', '.join(counted.other)}" if counted.other else ""
        lines.append(f"  {name:<32} {counted.in_all:>6}  {shown:<18} {', '.join(counted.dynamodb)}{others}")
    return lines


def main() -> None:
    import warnings

    from bench.emulated import emulated_stack

    # Powertools warns when a function published no metric; not this report's business.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    with emulated_stack():
        measured = measure()
    print("round trips per route: DynamoDB calls of one warm request, authorizer included (moto in-process)")
    for line in table(measured):
        print(line)


if __name__ == "__main__":
    main()
