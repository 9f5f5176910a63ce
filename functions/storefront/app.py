"""The storefront (contract §7): public browse by ``orgid``, and carts, pricing, checkout and orders for
customers (their own) and staff users (as operators for any customer of the org)."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from appengine_core.commerce.carts import CartService
from appengine_core.commerce.catalog import CatalogService
from appengine_core.commerce.checkout import CheckoutService
from appengine_core.commerce.data import StorefrontData
from appengine_core.commerce.giftcards import GiftCardService
from appengine_core.commerce.models import (
    MAX_CART_ID,
    MAX_CATEGORIES,
    MAX_CODE,
    MAX_CUSTOMER_ID,
    MAX_FILTER_TEXT,
    MAX_ORDER_NUMBER,
    Cart,
    CartAdd,
    CartRemove,
    CartUpdate,
    CheckoutRequest,
    GiftCardBalance,
    PaymentMethod,
    PriceRequest,
    Quote,
    ShippingOptions,
)
from appengine_core.commerce.orders import OrderService
from appengine_core.commerce.quotes import QuoteService
from appengine_core.commerce.settings import SettingsService
from appengine_core.edge.guard import header
from appengine_core.edge.http import PUBLIC, Access, HttpFunction
from appengine_core.infra.envelope import Record
from appengine_core.infra.paging import Page, PageRequest

api = HttpFunction("storefront")
app = api.app
SHOPPER = Access(credentials=("jwt",))
# Declared so the OpenAPI document states the limits (contract §1); the service reads the query itself.
PageNumber = Annotated[str | None, Query(max_length=10)]
Filter = Annotated[str | None, Query(max_length=MAX_FILTER_TEXT)]


@cache
def data() -> StorefrontData:
    return StorefrontData()


@cache
def catalog() -> CatalogService:
    return CatalogService(data())


@cache
def settings() -> SettingsService:
    return SettingsService(data())


@cache
def gift_cards() -> GiftCardService:
    return GiftCardService(data())


@cache
def carts() -> CartService:
    return CartService(data())


@cache
def quotes() -> QuoteService:
    return QuoteService(data())


@cache
def checkouts() -> CheckoutService:
    return CheckoutService(data())


@cache
def orders_of() -> OrderService:
    return OrderService(data())


def query() -> dict[str, str]:
    return dict(app.current_event.query_string_parameters or {})


def source_ip() -> str:
    return app.current_event.request_context.identity.source_ip or "unknown"


@api.get(
    "/storefront/products",
    PUBLIC,
    summary="Published products (?p=&ps=&categories=&brand=&sort=)",
    tags=["storefront"],
)
def products(
    p: PageNumber = None,
    ps: PageNumber = None,
    page: PageNumber = None,
    page_size: Annotated[str | None, Query(alias="pageSize", max_length=10)] = None,
    categories: Annotated[
        str | None,
        Query(
            max_length=MAX_CATEGORIES * (MAX_FILTER_TEXT + 1),
            description=f"comma-separated, at most {MAX_CATEGORIES}, "
            f"each at most {MAX_FILTER_TEXT} characters",
        ),
    ] = None,
    brand: Filter = None,
    sort: Annotated[str | None, Query(max_length=20)] = None,
) -> Page[Record]:
    return catalog().products(api.context().orgid, query())


@api.get(
    "/storefront/product/<slug_or_sku>",
    PUBLIC,
    summary="One published product by slug or SKU",
    tags=["storefront"],
)
def product(slug_or_sku: Annotated[str, Path(max_length=MAX_FILTER_TEXT)]) -> Record:
    return catalog().product(api.context().orgid, slug_or_sku)


@api.get(
    "/storefront/categories", PUBLIC, summary="Categories of the published products", tags=["storefront"]
)
def categories() -> Page[str]:
    return catalog().categories(api.context().orgid)


@api.get("/storefront/brands", PUBLIC, summary="Brands of the published products", tags=["storefront"])
def brands() -> Page[str]:
    return catalog().brands(api.context().orgid)


@api.get(
    "/storefront/gift-card/balance/<code>",
    PUBLIC,
    summary="Gift card balance (unknown codes rate-limited per source)",
    tags=["storefront"],
)
def gift_card_balance(code: Annotated[str, Path(max_length=MAX_CODE)]) -> GiftCardBalance:
    return gift_cards().balance(api.context().orgid, code, source_ip())


@api.get(
    "/storefront/payment-gateways", PUBLIC, summary="The org's enabled payment methods", tags=["storefront"]
)
def payment_gateways() -> Page[PaymentMethod]:
    return settings().payment_gateways(api.context().orgid)


@api.post(
    "/shipping/options", PUBLIC, summary="Shipping options from the org's settings", tags=["storefront"]
)
def shipping_options(body: Annotated[dict[str, Any], Body()]) -> ShippingOptions:
    return settings().shipping_options(api.context().orgid, body)


@api.get("/storefront/cart/get/<customer_id>/<cart_id>", SHOPPER, summary="A cart", tags=["cart"])
def cart_get(
    customer_id: Annotated[str, Path(max_length=MAX_CUSTOMER_ID)],
    cart_id: Annotated[str, Path(max_length=MAX_CART_ID)],
) -> Cart:
    return carts().get(api.caller(), customer_id, cart_id)


@api.post("/storefront/cart/add", SHOPPER, summary="Add a product (no cartId starts a cart)", tags=["cart"])
def cart_add(request: CartAdd) -> Cart:
    return carts().add(api.caller(), request)


@api.post(
    "/storefront/cart/update", SHOPPER, summary="Set a product's quantity (0 removes it)", tags=["cart"]
)
def cart_update(request: CartUpdate) -> Cart:
    return carts().update(api.caller(), request)


@api.post("/storefront/cart/remove", SHOPPER, summary="Remove a product from a cart", tags=["cart"])
def cart_remove(request: CartRemove) -> Cart:
    return carts().update(api.caller(), request)


@api.post(
    "/storefront/pricing/calculate-cart",
    Access(credentials=("jwt",), reads=True),
    summary="Server-side prices, coupon, tax, shipping",
    tags=["cart"],
)
def calculate(request: PriceRequest) -> Quote:
    return quotes().calculate(api.caller(), request, source_ip())


@api.post(
    "/storefront/checkout-cart",
    SHOPPER,
    summary="Check a cart out (idempotent; Idempotency-Key replays): 201 with the new order, "
    "200 with the order of a cart checked out before",
    tags=["orders"],
)
def checkout(request: CheckoutRequest) -> Response[Record]:
    key = header(app.current_event, "idempotency-key")
    result = checkouts().checkout(api.caller(), request, key.strip()[:128] if key else None, source_ip())
    # The body stays the model (not JSON text) so the resolver checks and serializes it as ``Record``.
    return Response(status_code=result.status, content_type=content_types.APPLICATION_JSON, body=result.order)


@api.get("/storefront/order/get", SHOPPER, summary="An order by ?orderNumber=", tags=["orders"])
def order_get(
    order_number: Annotated[str, Query(alias="orderNumber", max_length=MAX_ORDER_NUMBER)] = "",
) -> Record:
    return orders_of().by_number(api.caller(), order_number)


@api.get(
    "/storefront/orders/get",
    SHOPPER,
    summary="The caller's orders (staff: the org's), newest first",
    tags=["orders"],
)
def orders() -> Page[Record]:
    return orders_of().page(api.caller(), PageRequest.from_query(query()))


lambda_handler = api.handler
