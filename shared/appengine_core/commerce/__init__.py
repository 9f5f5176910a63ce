"""The storefront (contract §7), one module per concern: ``catalog``, ``giftcards``, ``carts``,
``quotes`` (pricing of a cart; ``pricing`` holds the money math), ``checkout``, ``orders``,
``settings``; ``shoppers`` says whose cart a call is about, ``models`` and ``rules`` are shared, and
``data`` holds every DynamoDB operation of the wing."""
