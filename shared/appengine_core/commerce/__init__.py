"""The storefront: catalog, carts, pricing, checkout, orders, gift cards."""
