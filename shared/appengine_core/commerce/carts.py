"""Carts (contract §7): a customer's own, or a customer's for a staff operator; lines are checked
against the stock when they change and priced from the current products when shown."""

from __future__ import annotations

from typing import Any

from appengine_core.commerce.catalog import CatalogService
from appengine_core.commerce.data import CartChanged, StorefrontData
from appengine_core.commerce.models import (
    MAX_CART_ID,
    MAX_LINES,
    Cart,
    CartAdd,
    CartItem,
    CartRemove,
    CartUpdate,
    StoredCart,
)
from appengine_core.commerce.quotes import QuoteService
from appengine_core.commerce.rules import bounded
from appengine_core.commerce.shoppers import Shoppers
from appengine_core.identity.principal import Caller
from appengine_core.infra.envelope import Record, new_id, utc_now_iso
from appengine_core.infra.errors import Conflict, NotFound, invalid_field


class CartService:
    def __init__(self, data: StorefrontData | None = None) -> None:
        self._data = data or StorefrontData()
        self._catalog = CatalogService(self._data)
        self._quotes = QuoteService(self._data)
        self._shoppers = Shoppers(self._data)

    def get(self, caller: Caller, customer_id: str, cart_id: str) -> Cart:
        bounded(cart_id, "cartId", MAX_CART_ID)
        customer = self._shoppers.customer_of(caller, customer_id, need="read")
        cart, settings = self._stored_and_settings(caller.orgid, customer, cart_id)
        return self._view(caller.orgid, cart, settings=settings)

    def add(self, caller: Caller, request: CartAdd) -> Cart:
        """Add ``quantity`` of a product; no ``cartId`` starts a cart."""
        orgid = caller.orgid
        customer = self._shoppers.customer_of(caller, request.customerId, need="update")
        settings: dict[str, Any] | None = None  # a new cart's answer reads them
        if request.cartId:
            cart, settings = self._stored_and_settings(orgid, customer, request.cartId)
            expected: int | None = cart.version or 1
        else:
            cart = StoredCart(cartId=new_id(), customerId=customer, status="open", createdAt=utc_now_iso())
            expected = None
        self._require_open(cart)
        items = {i.sku: i.quantity for i in cart.items}
        wanted = items.get(request.sku, 0) + request.quantity
        product = self._catalog.check_stock(orgid, request.sku, wanted)
        items[request.sku] = wanted
        if len(items) > MAX_LINES:
            raise invalid_field("sku", f"a cart holds at most {MAX_LINES} products")
        return self._save(orgid, cart, items, expected, known={request.sku: product}, settings=settings)

    def update(self, caller: Caller, request: CartUpdate | CartRemove) -> Cart:
        """Set a product's quantity (0, or a remove request, takes it out)."""
        orgid = caller.orgid
        customer = self._shoppers.customer_of(caller, request.customerId, need="update")
        cart, settings = self._stored_and_settings(orgid, customer, request.cartId)
        self._require_open(cart)
        items = {i.sku: i.quantity for i in cart.items}
        if request.sku not in items:
            raise NotFound(f"{request.sku} is not in the cart")
        quantity = request.quantity if isinstance(request, CartUpdate) else 0
        known: dict[str, Record] = {}
        if quantity:
            known[request.sku] = self._catalog.check_stock(orgid, request.sku, quantity)
            items[request.sku] = quantity
        else:
            del items[request.sku]
        return self._save(orgid, cart, items, cart.version or 1, known=known, settings=settings)

    def stored(self, orgid: str, customer: str, cart_id: str) -> StoredCart:
        """The cart as stored (read consistently); 404 if the customer has no such cart."""
        cart = self._data.cart(orgid, customer, cart_id)
        if cart is None:
            raise NotFound("no such cart")
        return cart

    def _stored_and_settings(
        self, orgid: str, customer: str, cart_id: str
    ) -> tuple[StoredCart, dict[str, Any] | None]:
        """The cart as stored and the org's pricing settings, read together (consistently); 404 if the
        customer has no such cart."""
        cart, settings = self._data.cart_and_settings(orgid, customer, cart_id)
        if cart is None:
            raise NotFound("no such cart")
        return cart, settings

    @staticmethod
    def _require_open(cart: StoredCart) -> None:
        if cart.status != "open":
            raise Conflict("the cart was checked out")

    def _save(
        self,
        orgid: str,
        cart: StoredCart,
        items: dict[str, int],
        expected: int | None,
        *,
        known: dict[str, Record] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> Cart:
        saved = cart.model_copy(
            update={
                "items": [CartItem(sku=s, quantity=q) for s, q in items.items()],
                "updatedAt": utc_now_iso(),
                "version": (expected or 0) + 1,
            }
        )
        try:
            self._data.save_cart(orgid, saved, expected)
        except CartChanged as exc:
            raise Conflict("the cart changed or was checked out meanwhile") from exc
        return self._view(orgid, saved, known, settings)

    def _view(
        self,
        orgid: str,
        cart: StoredCart,
        known: dict[str, Record] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> Cart:
        # The products just checked for stock and the settings read with the cart are not read again.
        shown = self._quotes.price_as_shown(orgid, cart.items, known, settings).as_quote()
        return Cart(
            cartId=cart.cartId,
            customerId=cart.customerId,
            items=shown.items,
            subtotal=shown.subtotal,
            currency=shown.currency,
            status=cart.status,
            orderNumber=cart.orderNumber,
        )
