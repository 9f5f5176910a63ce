"""The storefront's models: what its routes take, what they answer (contract §7), and what it stores.

Field names are the contract's (camelCase); optional fields a body leaves out when they do not apply
(a cart's ``orderNumber``, keys a payment method does not set) stay out of the JSON instead of showing
as null (``exclude_if``, which keeps them in the documented schema).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_LINES = 40
MAX_QUANTITY = 999
MAX_CATEGORIES = 20
MAX_FILTER_TEXT = 100  # a brand, a category, a slug or SKU in a storefront lookup
MAX_CODE = 64
MAX_CUSTOMER_ID = 100
MAX_CART_ID = 64
MAX_ORDER_NUMBER = 32


# -- requests ----------------------------------------------------------------------------------
class CartAdd(BaseModel):
    model_config = ConfigDict(extra="ignore")
    cartId: str | None = Field(default=None, max_length=MAX_CART_ID)  # noqa: N815
    customerId: str | None = Field(default=None, max_length=MAX_CUSTOMER_ID)  # noqa: N815 - staff for a customer
    sku: str = Field(min_length=1, max_length=100)
    quantity: int = Field(default=1, ge=1, le=MAX_QUANTITY)


class CartUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    cartId: str = Field(min_length=1, max_length=MAX_CART_ID)  # noqa: N815
    customerId: str | None = Field(default=None, max_length=MAX_CUSTOMER_ID)  # noqa: N815
    sku: str = Field(min_length=1, max_length=100)
    quantity: int = Field(ge=0, le=MAX_QUANTITY)


class CartRemove(BaseModel):
    model_config = ConfigDict(extra="ignore")
    cartId: str = Field(min_length=1, max_length=MAX_CART_ID)  # noqa: N815
    customerId: str | None = Field(default=None, max_length=MAX_CUSTOMER_ID)  # noqa: N815
    sku: str = Field(min_length=1, max_length=100)


class ItemRequest(BaseModel):
    sku: str = Field(min_length=1, max_length=100)
    quantity: int = Field(ge=1, le=MAX_QUANTITY)


class PriceRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    productItems: list[ItemRequest] | None = Field(default=None, max_length=MAX_LINES)  # noqa: N815
    cartId: str | None = Field(default=None, max_length=MAX_CART_ID)  # noqa: N815
    customerId: str | None = Field(default=None, max_length=MAX_CUSTOMER_ID)  # noqa: N815
    couponCode: str | None = Field(default=None, max_length=MAX_CODE)  # noqa: N815
    giftCardCode: str | None = Field(default=None, max_length=MAX_CODE)  # noqa: N815
    shippingAddress: dict[str, Any] | None = None  # noqa: N815


class CheckoutRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    cartId: str = Field(min_length=1, max_length=MAX_CART_ID)  # noqa: N815
    customerId: str | None = Field(default=None, max_length=MAX_CUSTOMER_ID)  # noqa: N815
    couponCode: str | None = Field(default=None, max_length=MAX_CODE)  # noqa: N815
    giftCardCode: str | None = Field(default=None, max_length=MAX_CODE)  # noqa: N815
    shippingAddress: dict[str, Any] | None = None  # noqa: N815


# -- answers -----------------------------------------------------------------------------------
class QuoteLine(BaseModel):
    """One priced line, in major units."""

    sku: str
    name: str
    quantity: int
    unitPrice: float  # noqa: N815
    lineTotal: float  # noqa: N815


class MinorUnits(BaseModel):
    """The quote's amounts in integer minor units (cents), exactly as computed."""

    subtotal: int
    discount: int
    tax: int
    shipping: int
    giftCard: int  # noqa: N815
    total: int


class Quote(BaseModel):
    """Server-side prices of a cart or of product items: lines, coupon, tax, shipping, gift card."""

    items: list[QuoteLine]
    currency: str
    subtotal: float
    discount: float
    tax: float
    shipping: float
    giftCard: float  # noqa: N815
    total: float
    couponCode: str | None = None  # noqa: N815
    minorUnits: MinorUnits  # noqa: N815


class Cart(BaseModel):
    """A cart as shown: its lines priced from the current products."""

    cartId: str  # noqa: N815
    customerId: str  # noqa: N815
    items: list[QuoteLine]
    subtotal: float
    currency: str
    status: str = "open"
    # Only once it was checked out: absent (not null) before.
    orderNumber: str | None = Field(default=None, exclude_if=lambda value: not value)  # noqa: N815


class GiftCardBalance(BaseModel):
    code: str
    balance: int | float | str | None = Field(description="in major units, as the gift card holds it")
    currency: str


class PaymentMethod(BaseModel):
    """An enabled payment method from the org's settings; keys the settings do not set stay out."""

    model_config = ConfigDict(extra="allow")
    id: str
    name: str | None = Field(default=None, exclude_if=lambda value: value is None)
    enabled: bool | None = Field(default=None, exclude_if=lambda value: value is None)


class ShippingOption(BaseModel):
    id: str
    name: str
    amount: float
    currency: str


class ShippingOptions(BaseModel):
    served: bool
    options: list[ShippingOption]
    currency: str


# -- stored ------------------------------------------------------------------------------------
class CartItem(BaseModel):
    sku: str
    quantity: int


class StoredCart(BaseModel):
    """A cart as the table holds it (``#cart``, one item per customer and cart)."""

    model_config = ConfigDict(extra="allow")
    cartId: str  # noqa: N815
    customerId: str  # noqa: N815
    items: list[CartItem] = Field(default_factory=list)
    status: str = "open"
    createdAt: str | None = None  # noqa: N815
    updatedAt: str | None = None  # noqa: N815
    version: int | None = None
    orderSk: str | None = None  # noqa: N815
    orderNumber: str | None = None  # noqa: N815

    def to_item(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class Replay(BaseModel):
    """What an ``Idempotency-Key`` first answered: its cart, the order and the status."""

    model_config = ConfigDict(extra="allow")
    cartId: str | None = None  # noqa: N815
    order: str
    status: int
