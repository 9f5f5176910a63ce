"""The storefront's data access: every DynamoDB read, write, condition and update expression of the
commerce wing, built here and run through ``infra.store`` (the only DynamoDB caller).

Services hold the business rules and speak in records and models; this module knows the keys
(``#cart``, ``#order-number``, ``#customer-order``, ``#idempotency``, ``#giftcard-probe``,
``#sequence``), the filters of catalog and code lookups, and the one transaction that places an order.

It also keeps, per container, the org's pricing settings as last read (``SettingsCache``): a checkout
prices with them and proves in its transaction that they are still the stored ones (a condition on
their values, so any writer of the org item is covered), else reads them again and prices again.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Attr

from appengine_core.commerce.models import Replay, StoredCart
from appengine_core.identity.directory import org_key
from appengine_core.infra.counters import counter_change, counter_key
from appengine_core.infra.envelope import Record, record_key_from_path_id
from appengine_core.infra.outbox import outbox_put, record_event
from appengine_core.infra.paging import PageRequest, PageResult, fetch_page
from appengine_core.infra.store import Check, ConditionFailed, Operation, Put, TenantStore, Update
from appengine_core.infra.tenancy import TenantKey

CATALOG_CAP = 1000  # products (or codes) examined per storefront lookup (see README: storefront costs)
IDEMPOTENCY_SECONDS = 24 * 3600
# The org settings pricing reads (``commerce.pricing.price_settings``): what a checkout proves unchanged.
PRICING_FIELDS = ("currency", "taxPercent", "shipping")
# A cached entry only saves a read: a checkout's transaction proves it current, so its age bounds how
# long a container keeps an org it no longer serves, not how stale a price may be.
SETTINGS_TTL_SECONDS = 60.0
# Bounded: one entry per org this container priced for.
SETTINGS_CACHE_SIZE = 1024


def all_of(conditions: Sequence[Any]) -> Any:
    """The AND of filter conditions as a balanced tree: boto3 renders expressions recursively, so a
    left-deep chain would recurse once per term."""
    if not conditions:
        return None
    if len(conditions) == 1:
        return conditions[0]
    middle = len(conditions) // 2
    return all_of(conditions[:middle]) & all_of(conditions[middle:])


def cart_key(orgid: str, customer_id: str, cart_id: str) -> TenantKey:
    return TenantKey(orgid, "#cart", f"{customer_id}:{cart_id}")


class CartChanged(Exception):
    """The cart was written or checked out since it was read."""


class ProbeRefused(Exception):
    """A subject's allowance of gift-card lookups for the minute is used up."""


class OrderNotPlaced(Exception):
    """The checkout transaction was cancelled. ``line`` is the index of the priced line whose product
    failed its condition (``stock_tracked``: the stock ran short; else the product changed), or None
    when the cart, a coupon, a gift card, the idempotency key or (``settings_changed``) the org's
    pricing settings did."""

    def __init__(
        self, line: int | None = None, *, stock_tracked: bool = True, settings_changed: bool = False
    ) -> None:
        super().__init__(f"order not placed (line {line})")
        self.line = line
        self.stock_tracked = stock_tracked
        self.settings_changed = settings_changed


def pricing_fields(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of an org's settings that pricing reads, those present."""
    return {name: settings[name] for name in PRICING_FIELDS if name in settings}


class SettingsCache:
    """The pricing fields of orgs' settings as this container last read them: bounded (least recently
    stored out first), each entry kept ``ttl`` seconds, safe to share between threads (the local stack
    runs several copies of a handler in one process)."""

    def __init__(
        self,
        ttl: float = SETTINGS_TTL_SECONDS,
        size: int = SETTINGS_CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, orgid: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(orgid)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[orgid]
                return None
            return dict(entry[1])

    def put(self, orgid: str, fields: Mapping[str, Any]) -> None:
        with self._lock:
            self._entries.pop(orgid, None)
            self._entries[orgid] = (self._clock() + self._ttl, dict(fields))
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def drop(self, orgid: str) -> None:
        with self._lock:
            self._entries.pop(orgid, None)


@dataclass(frozen=True)
class Placement:
    """Everything one checkout writes, for ``StorefrontData.place_order``."""

    order: Record
    customer: str
    cart_id: str
    actor: str
    products: Sequence[tuple[Record, int]]  # each priced line's product and quantity, in line order
    coupon: Record | None  # a coupon with a usage limit, whose use this order counts
    gift_card: Record | None
    gift_card_used: float  # in major units, as the gift card's balance is held
    idempotency_key: str | None
    event: Mapping[str, Any]  # the ``order.placed`` detail
    settings: Mapping[str, Any]  # the pricing fields of the org's settings the order was priced with


class StorefrontData:
    def __init__(self, store: TenantStore | None = None, settings_cache: SettingsCache | None = None) -> None:
        self._store = store or TenantStore()
        self._settings_cache = settings_cache or SettingsCache()

    # -- org -----------------------------------------------------------------------------------
    def org_settings(self, orgid: str, *, consistent: bool = False) -> dict[str, Any] | None:
        """The org's settings (empty when it has none); None when there is no such org. Every read
        refreshes the container's cache of the pricing fields."""
        return self._settings_of(orgid, self._store.get(org_key(orgid), consistent=consistent))

    def _settings_of(self, orgid: str, org: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if org is None:
            self._settings_cache.drop(orgid)
            return None
        settings = org.get("settings")
        settings = dict(settings) if isinstance(settings, dict) else {}
        self._settings_cache.put(orgid, pricing_fields(settings))
        return settings

    def pricing_settings(
        self, orgid: str, *, cached: bool = False, consistent: bool = False
    ) -> dict[str, Any] | None:
        """The pricing fields of the org's settings (``PRICING_FIELDS``, those present): with ``cached``,
        as this container last read them if it did recently (only for a write that proves them with
        ``settings_unchanged``); else read. None when there is no such org."""
        if cached and (fields := self._settings_cache.get(orgid)) is not None:
            return fields
        settings = self.org_settings(orgid, consistent=consistent)
        return None if settings is None else pricing_fields(settings)

    def forget_settings(self, orgid: str) -> None:
        self._settings_cache.drop(orgid)

    @staticmethod
    def settings_unchanged(orgid: str, fields: Mapping[str, Any]) -> Check:
        """A transaction's check that the org's pricing fields are still ``fields`` (each equal, or
        absent when ``fields`` lacks it): whoever wrote the org item since, and however, fails it."""
        names = {"#s": "settings"}
        values: dict[str, Any] = {}
        terms = ["attribute_exists(PK)"]
        for index, name in enumerate(PRICING_FIELDS):
            path = f"#s.#f{index}"
            names[f"#f{index}"] = name
            if name not in fields:
                terms.append(f"attribute_not_exists({path})")
            elif fields[name] is None:
                terms.append(f"attribute_type({path}, :null)")
                values[":null"] = "NULL"
            else:
                terms.append(f"{path} = :v{index}")
                values[f":v{index}"] = fields[name]
        return Check(org_key(orgid), " AND ".join(terms), values=values, names=names)

    # -- catalog -------------------------------------------------------------------------------
    def _published(self, orgid: str, extra: Any = None) -> list[Record]:
        condition = Attr("state").eq("published")
        if extra is not None:
            condition = condition & extra
        page = self._store.query(orgid, "product", limit=CATALOG_CAP, filter_condition=condition)
        return [Record.from_item(item) for item in page.items]

    def published(self, orgid: str, *, brand: str = "", categories: Sequence[str] = ()) -> list[Record]:
        """Published products, of ``brand`` if given, in every one of ``categories``."""
        conditions: list[Any] = [Attr("data.brand").eq(brand)] if brand else []
        conditions += [Attr("data.categories").contains(c) for c in categories]
        return self._published(orgid, all_of(conditions))

    def published_by_sku(self, orgid: str, sku: str) -> Record | None:
        found = self._published(orgid, Attr("data.sku").eq(sku))
        return found[0] if found else None

    def published_by_slug_or_sku(self, orgid: str, slug_or_sku: str) -> Record | None:
        found = self._published(orgid, Attr("data.slug").eq(slug_or_sku) | Attr("data.sku").eq(slug_or_sku))
        return found[0] if found else None

    # -- coupons and gift cards ----------------------------------------------------------------
    def records_with_code(self, orgid: str, collection: str, code: str) -> list[Record]:
        """The ``coupon`` or ``giftcard`` records whose ``data.code`` is ``code``, active or not."""
        page = self._store.query(
            orgid, collection, limit=CATALOG_CAP, filter_condition=Attr("data.code").eq(code)
        )
        return [Record.from_item(item) for item in page.items]

    @staticmethod
    def _probe_key(orgid: str, subject: str, window: int) -> TenantKey:
        return TenantKey(orgid, "#giftcard-probe", f"{subject}:{window}")

    def take_probe(self, orgid: str, subject: str, window: int, limit: int) -> None:
        """Use one of ``subject``'s ``limit`` gift-card lookups of the minute ``window``; raises
        ``ProbeRefused`` when they are used up."""
        try:
            self._store.update(
                Update(
                    self._probe_key(orgid, subject, window),
                    "ADD probes :one SET #ttl = :ttl",
                    values={":one": 1, ":ttl": (window + 2) * 60, ":limit": limit},
                    names={"#ttl": "ttl"},
                    condition="attribute_not_exists(probes) OR probes < :limit",
                ),
                return_new=False,
            )
        except ConditionFailed as exc:
            raise ProbeRefused(subject) from exc

    def give_back_probe(self, orgid: str, subject: str, window: int) -> None:
        self._store.update(
            Update(self._probe_key(orgid, subject, window), "ADD probes :back", values={":back": -1}),
            return_new=False,
        )

    # -- customers and carts -------------------------------------------------------------------
    def customer(self, orgid: str, customer_id: str) -> tuple[str, Record] | None:
        """The customer a path or body names (its pk or sk) in ``orgid``: its id and record, or None."""
        key = record_key_from_path_id(orgid, "customer", customer_id)
        item = self._store.get(key) if key is not None else None
        if key is None or item is None:
            return None
        return key.item_id, Record.from_item(item)

    def cart(self, orgid: str, customer: str, cart_id: str) -> StoredCart | None:
        item = self._store.get(cart_key(orgid, customer, cart_id), consistent=True)
        return None if item is None else StoredCart.model_validate(item)

    def cart_and_settings(
        self, orgid: str, customer: str, cart_id: str
    ) -> tuple[StoredCart | None, dict[str, Any] | None]:
        """The cart and the pricing fields of the org's settings (None for no such org), consistently
        and in one round trip."""
        key, org = cart_key(orgid, customer, cart_id), org_key(orgid)
        found = self._store.batch_get([key, org], consistent=True)
        cart, settings = found.get(key.sort), self._settings_of(orgid, found.get(org.sort))
        return (
            None if cart is None else StoredCart.model_validate(cart),
            None if settings is None else pricing_fields(settings),
        )

    def save_cart(self, orgid: str, cart: StoredCart, expected_version: int | None) -> None:
        """Write ``cart`` as a new cart (``expected_version`` None) or over the open cart of that
        version; raises ``CartChanged`` when it is neither."""
        key = cart_key(orgid, cart.customerId, cart.cartId)
        try:
            if expected_version is None:
                self._store.put(
                    Put(key, cart.to_item(), must_not_exist=False, condition="attribute_not_exists(PK)")
                )
            else:
                self._store.put(
                    Put(
                        key,
                        cart.to_item(),
                        must_not_exist=False,
                        condition="#v = :v AND #s = :open",
                        values={":v": expected_version, ":open": "open"},
                        names={"#v": "version", "#s": "status"},
                    )
                )
        except ConditionFailed as exc:
            raise CartChanged() from exc

    # -- orders --------------------------------------------------------------------------------
    @staticmethod
    def _replay_key(orgid: str, customer: str, idempotency_key: str) -> TenantKey:
        return TenantKey(orgid, "#idempotency", f"{customer}:{idempotency_key}")

    def replay(self, orgid: str, customer: str, idempotency_key: str) -> Replay | None:
        item = self._store.get(self._replay_key(orgid, customer, idempotency_key), consistent=True)
        return None if item is None else Replay.model_validate(item)

    def replay_and_cart(
        self, orgid: str, customer: str, idempotency_key: str | None, cart_id: str
    ) -> tuple[Replay | None, StoredCart | None]:
        """What a checkout reads first, consistently and in one round trip: the first answer given
        with ``idempotency_key`` (if one is given) and the cart."""
        if idempotency_key is None:
            return None, self.cart(orgid, customer, cart_id)
        replay_key, key = (
            self._replay_key(orgid, customer, idempotency_key),
            cart_key(orgid, customer, cart_id),
        )
        found = self._store.batch_get([replay_key, key], consistent=True)
        replay, cart = found.get(replay_key.sort), found.get(key.sort)
        return (
            None if replay is None else Replay.model_validate(replay),
            None if cart is None else StoredCart.model_validate(cart),
        )

    def order(self, order_sk: str) -> Record | None:
        item = self._store.get(TenantKey.parse(order_sk), consistent=True)
        return None if item is None else Record.from_item(item)

    def order_sk_of_number(self, orgid: str, number: str) -> str | None:
        pointer = self._store.get(TenantKey(orgid, "#order-number", number))
        return None if pointer is None else str(pointer["order"])

    def next_order_number(self, orgid: str) -> int:
        # A counter hands out numbers; the conditional put of #order-number in the checkout transaction
        # is what guarantees uniqueness (a gap after a failed checkout is harmless).
        counter = (
            self._store.update(
                Update(
                    TenantKey(orgid, "#sequence", "order"),
                    "ADD #n :one",
                    values={":one": 1},
                    names={"#n": "next"},
                )
            )
            or {}
        )
        return int(counter.get("next", 1))

    def orders_page(
        self, orgid: str, page: PageRequest, customer: str | None
    ) -> tuple[list[Record], PageResult]:
        """Newest first: the orders of ``customer`` (through its order index), or of the whole org."""
        if customer is not None:
            collection = "#customer-order"
            prefix: str | None = f"{orgid}:{collection}:{customer}:"
        else:
            collection, prefix = "order", None
        result = fetch_page(
            page,
            orgid,
            collection,
            lambda limit, after: self._store.query(
                orgid, collection, limit=limit, after_sort_key=after, sort_prefix=prefix, newest_first=True
            ),
        )
        keys = [TenantKey.parse(str(i.get("order") or i["sk"])) for i in result.items]
        found = self._store.batch_get(keys)
        return [Record.from_item(found[k.sort]) for k in keys if k.sort in found], result

    def order_count(self, orgid: str) -> int:
        return int((self._store.get(counter_key(orgid, "order")) or {}).get("total", 0))

    def place_order(self, placement: Placement) -> None:
        """One transaction: each product's stock decrement (or, if not stock-tracked, a check that it is
        still on sale and untracked), the cart's switch to ``ordered``, the order, its counter, number
        and customer index, the ``record.created`` and ``order.placed`` events, the coupon's use, the
        gift card's debit and the idempotency record, and last the check that the org's pricing
        settings are still those the order was priced with. Raises ``OrderNotPlaced`` if any condition
        fails."""
        order, orgid, customer = placement.order, placement.order.orgid, placement.customer
        number = str(order.data["orderNumber"])
        operations: list[Operation] = [
            self._reserve(product, quantity) for product, quantity in placement.products
        ]
        operations += [
            Update(
                cart_key(orgid, customer, placement.cart_id),
                "SET #s = :ordered, orderSk = :order, orderNumber = :n",
                values={":ordered": "ordered", ":open": "open", ":order": order.sk, ":n": number},
                names={"#s": "status"},
                condition="#s = :open",
            ),
            Put(order.key, order.to_item()),
            counter_change(orgid, "order", 1),
            Put(TenantKey(orgid, "#order-number", number), {"order": order.sk}),
            Put(TenantKey(orgid, "#customer-order", f"{customer}:{order.key.item_id}"), {"order": order.sk}),
            record_event(order, "created", placement.actor),
            outbox_put(orgid, "order.placed", dict(placement.event)),
        ]
        if placement.coupon is not None:
            operations.append(
                Update(
                    placement.coupon.key,
                    "SET #d.usedCount = if_not_exists(#d.usedCount, :zero) + :one",
                    values={":zero": 0, ":one": 1, ":limit": int(placement.coupon.data["usageLimit"])},
                    names={"#d": "data"},
                    condition="attribute_not_exists(#d.usedCount) OR #d.usedCount < :limit",
                )
            )
        if placement.gift_card is not None:
            operations.append(
                Update(
                    placement.gift_card.key,
                    "SET #d.balance = #d.balance - :used",
                    values={":used": placement.gift_card_used},
                    names={"#d": "data"},
                    condition="#d.balance >= :used",
                )
            )
        if placement.idempotency_key is not None:
            operations.append(
                Put(
                    self._replay_key(orgid, customer, placement.idempotency_key),
                    {
                        "cartId": placement.cart_id,
                        "order": order.sk,
                        "status": 201,
                        "ttl": int(time.time()) + IDEMPOTENCY_SECONDS,
                    },
                )
            )
        # With it: at most MAX_LINES (40) products and 11 other items, far below a transaction's 100.
        operations.append(self.settings_unchanged(orgid, placement.settings))
        try:
            self._store.transact(operations)
        except ConditionFailed as exc:
            if exc.index is not None and exc.index < len(placement.products):
                raise OrderNotPlaced(
                    exc.index, stock_tracked=not isinstance(operations[exc.index], Check)
                ) from exc
            raise OrderNotPlaced(settings_changed=exc.index == len(operations) - 1) from exc

    @staticmethod
    def _reserve(product: Record, quantity: int) -> Operation:
        if product.data.get("stock") is None:
            # Not stock-tracked: nothing to decrement, but it must still be on sale and must not have
            # become stock-tracked since it was priced.
            return Check(
                product.key,
                "#state = :published AND "
                "(attribute_not_exists(#d.#stock) OR attribute_type(#d.#stock, :null))",
                values={":published": "published", ":null": "NULL"},
                names={"#d": "data", "#stock": "stock", "#state": "state"},
            )
        return Update(
            product.key,
            "SET #d.#stock = #d.#stock - :q, #v = #v + :one",
            values={":q": quantity, ":one": 1, ":published": "published"},
            names={"#d": "data", "#stock": "stock", "#v": "version", "#state": "state"},
            condition="#d.#stock >= :q AND #state = :published",
        )
