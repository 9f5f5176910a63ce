"""A bounded load run on a fresh local stack (a report, not a gate; issue #18): a few concurrent clients
on loopback over a realistic mix for ``BENCH_LOAD_SECONDS`` (default 30), printing requests per second,
p50/p95/p99 latency per kind and overall, and errors (any status other than the kind's expected one;
the run must end with none).

The stack is ``appengine-dev`` in a subprocess (the contract tests' ``local_stack``, demo seed): one
Python process serving every function, with moto behind it answering one request at a time, on the
same cores as the clients. Its figures compare runs of this project with each other; they say nothing
of DynamoDB's or Lambda's latency.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_SECONDS = 30
DEFAULT_CLIENTS = 10
MAX_CLIENTS = 20
CUSTOMER_PASSWORD = "load-customer-pass"
PRODUCT = {"name": "Load pen", "sku": "LOAD-PEN", "slug": "load-pen", "price": 2.5, "stock": 10_000_000}


@dataclass
class Sample:
    kind: str
    seconds: float
    error: str | None  # None when the status was the expected one


@dataclass
class Shared:
    """What every client uses: the stack, an API key, the ids of a few records."""

    api: Any
    key: dict[str, str]
    notes: list[str]


@dataclass
class Client:
    """One simulated user: its own customer account, its token, its samples."""

    index: int
    shared: Shared
    email: str
    customer: dict[str, str] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    random: random.Random = field(default_factory=random.Random)

    def call(self, kind: str, expected: int, method: str, path: str, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            response = self.shared.api.request(method, path, **kwargs)
        except Exception as error:  # a refused or timed-out connection is an error of the run
            self.samples.append(
                Sample(kind, time.perf_counter() - started, f"{type(error).__name__}: {error}")
            )
            return None
        elapsed = time.perf_counter() - started
        error_text = None if response.status == expected else f"{response.status}: {response.text[:300]}"
        self.samples.append(Sample(kind, elapsed, error_text))
        return response.json() if error_text is None else None

    # -- the mix ----------------------------------------------------------------------------------
    def browse(self) -> None:
        self.call("browse products", 200, "GET", "/storefront/products?ps=10", headers={"orgid": "acme"})

    def product(self) -> None:
        path = f"/storefront/product/{PRODUCT['slug']}"
        self.call("product by slug", 200, "GET", path, headers={"orgid": "acme"})

    def sign_in(self) -> None:
        body = {"email": self.email, "password": CUSTOMER_PASSWORD}
        signed_in = self.call(
            "customer sign-in", 200, "POST", "/profile/customer/signin", headers={"orgid": "acme"}, body=body
        )
        if signed_in:
            self.customer = {"orgid": "acme", "authorization": f"Bearer {signed_in['token']}"}

    def whoami(self) -> None:
        self.call("whoami (JWT)", 200, "GET", "/profile/whoami", headers=self.customer)

    def find_with_key(self) -> None:
        body = {"options": {"pageSize": 10}}
        self.call(
            "repository find (key)", 200, "POST", "/repository/find/note", headers=self.shared.key, body=body
        )

    def get_with_key(self) -> None:
        note = self.random.choice(self.shared.notes)
        self.call("repository get (key)", 200, "GET", f"/repository/get/note/{note}", headers=self.shared.key)

    def whoami_with_key(self) -> None:
        self.call("whoami (key)", 200, "GET", "/profile/whoami", headers=self.shared.key)

    def cart(self) -> str | None:
        body = {"sku": PRODUCT["sku"], "quantity": 1}
        cart = self.call("cart add", 200, "POST", "/storefront/cart/add", headers=self.customer, body=body)
        return str(cart["cartId"]) if cart else None

    def cart_and_price(self) -> None:
        if self.cart() is None:
            return
        body = {"productItems": [{"sku": PRODUCT["sku"], "quantity": 1}]}
        self.call(
            "calculate-cart",
            200,
            "POST",
            "/storefront/pricing/calculate-cart",
            headers=self.customer,
            body=body,
        )

    def checkout(self) -> None:
        cart = self.cart()
        if cart is None:
            return
        headers = self.customer | {"Idempotency-Key": str(uuid.uuid4())}
        self.call(
            "checkout", 201, "POST", "/storefront/checkout-cart", headers=headers, body={"cartId": cart}
        )


# Weights of the actions: mostly browsing and reads, API-key traffic, some carts, few checkouts, and
# sign-in (argon2, the heaviest CPU of all) a small share.
MIX: list[tuple[Callable[[Client], None], int]] = [
    (Client.browse, 20),
    (Client.product, 20),
    (Client.whoami, 8),
    (Client.find_with_key, 10),
    (Client.get_with_key, 12),
    (Client.whoami_with_key, 5),
    (Client.cart_and_price, 10),
    (Client.checkout, 5),
    (Client.sign_in, 2),
]


def _setup(api: Any, clients: int) -> tuple[Shared, list[Client]]:
    def ok(response: Any, status: int) -> Any:
        if response.status != status:
            raise RuntimeError(f"load setup: expected {status}, got {response.status}: {response.text}")
        return response.json()

    acme = {"orgid": "acme"}
    admin = {"email": "admin@acme.test", "password": "acme-admin-pass"}
    staff = acme | {
        "authorization": f"Bearer {ok(api.post('/profile/signin', headers=acme, body=admin), 200)['token']}"
    }
    ok(
        api.post(
            "/repository/create",
            headers=staff,
            body={"datatype": "product", "state": "published", "data": PRODUCT},
        ),
        201,
    )
    notes = [
        str(
            ok(
                api.post("/repository/create", headers=staff, body={"datatype": "note", "data": {"n": n}}),
                201,
            )["sk"]
        )
        for n in range(20)
    ]
    limits = {"perMinute": 1_000_000, "perHour": 10_000_000, "perDay": 100_000_000}
    created = api.post(
        "/api-key/create", headers=staff, body={"name": "load", "scopes": ["read"], "rateLimits": limits}
    )
    shared = Shared(api=api, key=acme | {"x-api-key": ok(created, 201)["key"]}, notes=notes)
    simulated = []
    for index in range(clients):
        email = f"load-{index}-{uuid.uuid4().hex[:8]}@acme.test"
        body = {"email": email, "password": CUSTOMER_PASSWORD}
        token = ok(api.post("/profile/customer/signup", headers=acme, body=body), 201)["token"]
        client = Client(index=index, shared=shared, email=email, random=random.Random(index))
        client.customer = acme | {"authorization": f"Bearer {token}"}
        simulated.append(client)
    return shared, simulated


def _percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of ``values`` (seconds)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))]


@dataclass
class Report:
    clients: int
    seconds: float
    warm_up_seconds: float
    samples: list[Sample]  # the timed run's
    warm_up_errors: list[Sample]

    def rows(self) -> list[tuple[str, int, float, float, float, int]]:
        kinds: dict[str, list[Sample]] = {}
        for sample in self.samples:
            kinds.setdefault(sample.kind, []).append(sample)
        rows = []
        for kind, samples in [*sorted(kinds.items()), ("all", self.samples)]:
            if not samples:
                continue
            times = [s.seconds * 1000 for s in samples]
            errors = sum(1 for s in samples if s.error)
            rows.append(
                (
                    kind,
                    len(samples),
                    _percentile(times, 0.5),
                    _percentile(times, 0.95),
                    _percentile(times, 0.99),
                    errors,
                )
            )
        return rows

    @property
    def errors(self) -> list[Sample]:
        return self.warm_up_errors + [s for s in self.samples if s.error]


def run(seconds: float, clients: int) -> Report:
    from tests.contract.conftest import local_stack

    with local_stack("load") as api:
        _, simulated = _setup(api, clients)
        actions = [action for action, _ in MIX]
        weights = [weight for _, weight in MIX]

        # A warm-up pass, not counted: every client runs every action once, so the stack's function
        # containers exist before the clock starts (a cold start is measured by the cold-start benches).
        warm_started = time.perf_counter()

        def every_action(client: Client) -> None:
            for action in actions:
                action(client)

        warm_threads = [threading.Thread(target=every_action, args=(c,)) for c in simulated]
        for thread in warm_threads:
            thread.start()
        for thread in warm_threads:
            thread.join()
        warm_up = time.perf_counter() - warm_started
        warm_errors = [s for c in simulated for s in c.samples if s.error]
        for client in simulated:
            client.samples.clear()

        deadline = time.monotonic() + seconds

        def work(client: Client) -> None:
            while time.monotonic() < deadline:
                client.random.choices(actions, weights)[0](client)

        started = time.perf_counter()
        threads = [threading.Thread(target=work, args=(c,)) for c in simulated]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    samples = [s for c in simulated for s in c.samples]
    return Report(clients, elapsed, warm_up, samples, warm_errors)


def main() -> None:
    seconds = float(os.environ.get("BENCH_LOAD_SECONDS") or DEFAULT_SECONDS)
    clients = min(MAX_CLIENTS, int(os.environ.get("BENCH_LOAD_CLIENTS") or DEFAULT_CLIENTS))
    report = run(seconds, clients)
    print(
        f"load on the local stack (appengine-dev, moto; loopback): {report.clients} clients, "
        f"{report.seconds:.1f} s after a {report.warm_up_seconds:.1f} s warm-up pass"
    )
    print(f"  {'kind':<24} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for kind, count, p50, p95, p99, errors in report.rows():
        print(f"  {kind:<24} {count:>8} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f} {errors:>7}")
    total = len(report.samples)
    print(f"  {total} requests, {total / report.seconds:.1f} requests/second, {len(report.errors)} errors")
    for sample in report.errors[:20]:
        print(f"  error: {sample.kind}: {sample.error}")
    if report.errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
