"""Checkout (contract §7): a cart becomes an order once, in one DynamoDB transaction.

The transaction (``StorefrontData.place_order``) holds the stock decrements (conditional, so the last
unit is sold once), the cart's switch to ``ordered`` (so a cart is checked out once), the order, its
unique number, the customer's order index, coupon and gift-card use, the idempotency record and the
``order.placed`` and ``record.created`` events. Any failed condition cancels all of it.

Repeating the checkout of a cart answers its order with 200; a retry with the same ``Idempotency-Key``
replays the first answer (201); a lost race with a duplicate answers what the winner created.

The idempotency record and the cart are read in one round trip. The org's pricing settings are taken
as this container last read them, and the transaction also checks that they are still the stored
ones: if they changed, nothing was written, and the cart is priced again with the settings read anew
(under the order number already drawn), so no order is ever stored at a price of settings already
replaced.
"""

from __future__ import annotations

from pydantic import BaseModel

from appengine_core.commerce.carts import CartService
from appengine_core.commerce.data import OrderNotPlaced, Placement, StorefrontData
from appengine_core.commerce.models import CheckoutRequest, Replay, StoredCart
from appengine_core.commerce.orders import OrderService
from appengine_core.commerce.quotes import PricedCart, QuoteService, check_address
from appengine_core.commerce.shoppers import Shoppers, probers
from appengine_core.identity.principal import Caller
from appengine_core.infra.envelope import Record
from appengine_core.infra.errors import Conflict, NotFound, invalid_field

CREATED = 201
EXISTING = 200
# Attempts of the order's transaction when the org's pricing settings change under it (each attempt
# after the first reads them anew, consistently).
SETTINGS_ATTEMPTS = 3


class CheckedOut(BaseModel):
    """The order a checkout answers and its status: 201 when this call (or the first call with its
    ``Idempotency-Key``) placed it, 200 when the cart had been checked out before."""

    status: int
    order: Record


class CheckoutService:
    def __init__(self, data: StorefrontData | None = None) -> None:
        self._data = data or StorefrontData()
        self._shoppers = Shoppers(self._data)
        self._carts = CartService(self._data)
        self._quotes = QuoteService(self._data)
        self._orders = OrderService(self._data)

    def checkout(
        self,
        caller: Caller,
        request: CheckoutRequest,
        idempotency_key: str | None,
        source_ip: str = "unknown",
    ) -> CheckedOut:
        check_address(request.shippingAddress)
        orgid = caller.orgid
        customer = self._shoppers.customer_of(caller, request.customerId, need="update")
        replay, cart = self._data.replay_and_cart(orgid, customer, idempotency_key, request.cartId)
        if replay is not None:
            return self._replayed(request, replay)
        if cart is None:
            raise NotFound("no such cart")
        if (done := self._already_ordered(cart)) is not None:
            return done
        if not cart.items:
            raise invalid_field("cartId", "the cart is empty")
        priced = self._quotes.price(
            orgid,
            cart.items,
            request.couponCode,
            request.giftCardCode,
            probers(caller, source_ip),
            cached_settings=True,
        )
        number = self._orders.next_number(orgid)
        for attempt in range(SETTINGS_ATTEMPTS):
            if attempt:
                priced = self._quotes.reprice(orgid, priced)
            order = self._new_order(caller, customer, request, priced, number)
            try:
                self._data.place_order(
                    self._placement(caller, customer, request, priced, order, idempotency_key)
                )
            except OrderNotPlaced as failure:
                if not failure.settings_changed:
                    return self._after_failure(caller, customer, request, priced, idempotency_key, failure)
                # Priced with settings replaced meanwhile: nothing was written, so price again.
                self._data.forget_settings(orgid)
            else:
                return CheckedOut(status=CREATED, order=order)
        raise Conflict("the org's pricing settings changed meanwhile; try again")

    # -- the steps -----------------------------------------------------------------------------
    def _replayed(self, request: CheckoutRequest, replay: Replay) -> CheckedOut:
        """What the first call with this ``Idempotency-Key`` answered (for this cart)."""
        if replay.cartId != request.cartId:
            raise invalid_field("Idempotency-Key", "already used for another cart")
        return CheckedOut(status=replay.status, order=self._orders.record(replay.order))

    def _already_ordered(self, cart: StoredCart) -> CheckedOut | None:
        """The cart's order (200) if it was checked out before."""
        if cart.status != "ordered":
            return None
        return CheckedOut(status=EXISTING, order=self._orders.record(str(cart.orderSk)))

    @staticmethod
    def _new_order(
        caller: Caller, customer: str, request: CheckoutRequest, priced: PricedCart, number: str
    ) -> Record:
        shown = priced.breakdown.as_quote().model_dump()
        return Record.new(
            orgid=caller.orgid,
            datatype="order",
            name=number,
            state="placed",
            author=caller.principal.principal_id,
            data={
                "orderNumber": number,
                "customerId": customer,
                "cartId": request.cartId,
                "items": shown["items"],
                "currency": shown["currency"],
                "subtotal": shown["subtotal"],
                "discount": shown["discount"],
                "tax": shown["tax"],
                "shipping": shown["shipping"],
                "giftCard": shown["giftCard"],
                "total": shown["total"],
                "couponCode": request.couponCode,
                "shippingAddress": request.shippingAddress,
                "minorUnits": shown["minorUnits"],
            },
        )

    @staticmethod
    def _placement(
        caller: Caller,
        customer: str,
        request: CheckoutRequest,
        priced: PricedCart,
        order: Record,
        idempotency_key: str | None,
    ) -> Placement:
        breakdown = priced.breakdown
        coupon = priced.coupon
        gift = priced.gift_card
        return Placement(
            order=order,
            customer=customer,
            cart_id=request.cartId,
            actor=caller.principal.principal_id,
            products=[(priced.products[line.sku], line.quantity) for line in breakdown.lines],
            # A coupon's use is counted only when it has a usage limit.
            coupon=coupon if coupon is not None and coupon.data.get("usageLimit") is not None else None,
            gift_card=gift if gift is not None and breakdown.gift_card_minor else None,
            gift_card_used=breakdown.gift_card_minor / 100,
            idempotency_key=idempotency_key,
            event={
                "orderNumber": order.data["orderNumber"],
                "order": order.sk,
                "customerId": customer,
                "total": order.data["total"],
                "currency": order.data["currency"],
            },
            settings=priced.settings,
        )

    def _after_failure(
        self,
        caller: Caller,
        customer: str,
        request: CheckoutRequest,
        priced: PricedCart,
        idempotency_key: str | None,
        failure: OrderNotPlaced,
    ) -> CheckedOut:
        """A cancelled transaction: 409 for a product line; else, if a duplicate of this checkout won
        the race, what it created; else 409."""
        if failure.line is not None:
            sku = priced.breakdown.lines[failure.line].sku
            if not failure.stock_tracked:
                raise Conflict(f"{sku} changed meanwhile; try again") from failure
            raise Conflict(f"not enough stock for {sku}") from failure
        if idempotency_key is not None:
            replay = self._data.replay(caller.orgid, customer, idempotency_key)
            if replay is not None:
                return CheckedOut(status=replay.status, order=self._orders.record(replay.order))
        cart = self._carts.stored(caller.orgid, customer, request.cartId)
        if (done := self._already_ordered(cart)) is not None:
            return done
        raise Conflict("the cart, a coupon or a gift card changed meanwhile; try again") from failure
