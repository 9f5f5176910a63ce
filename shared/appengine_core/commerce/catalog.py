"""The public catalog (contract §7): published products, one product, categories and brands.

Only ``published`` products are visible; products are ``product`` records managed through the
repository.
"""

from __future__ import annotations

from collections.abc import Mapping

from appengine_core.commerce.data import StorefrontData
from appengine_core.commerce.models import MAX_CATEGORIES, MAX_FILTER_TEXT
from appengine_core.commerce.rules import bounded
from appengine_core.infra.envelope import Record
from appengine_core.infra.errors import Conflict, NotFound, invalid_field
from appengine_core.infra.paging import Page, PageRequest

PAGING_PARAMETERS = ("p", "ps", "page", "pageSize")
SORTABLE = ("price", "name")


class CatalogService:
    def __init__(self, data: StorefrontData | None = None) -> None:
        self._data = data or StorefrontData()

    def products(self, orgid: str, params: Mapping[str, str]) -> Page[Record]:
        """Published products (``?p=&ps=&categories=&brand=&sort=``), every match counted in ``total``."""
        page = PageRequest.from_query({k: v for k, v in params.items() if k in PAGING_PARAMETERS})
        brand = bounded(params.get("brand") or "", "brand", MAX_FILTER_TEXT)
        categories = [c for c in (params.get("categories") or "").split(",") if c]
        if len(categories) > MAX_CATEGORIES:
            raise invalid_field("categories", f"at most {MAX_CATEGORIES} categories")
        categories = [bounded(c, "categories", MAX_FILTER_TEXT) for c in categories]
        items = self._data.published(orgid, brand=brand, categories=categories)
        sort = params.get("sort") or ""
        field = sort.lstrip("-")
        if field in SORTABLE:
            items.sort(
                key=lambda r: (r.data.get(field) is None, r.data.get(field) or 0, r.sk),
                reverse=sort.startswith("-"),
            )
        start = (page.page - 1) * page.page_size
        return Page[Record](
            data=items[start : start + page.page_size],
            total=len(items),
            page=page.page,
            pageSize=page.page_size,
            hasNext=start + page.page_size < len(items),
            next=None,
        )

    def product(self, orgid: str, slug_or_sku: str) -> Record:
        bounded(slug_or_sku, "slugOrSku", MAX_FILTER_TEXT)
        found = self._data.published_by_slug_or_sku(orgid, slug_or_sku)
        if found is None:
            raise NotFound("no such product")
        return found

    def facets(self, orgid: str, facet: str) -> Page[str]:
        """The distinct values of ``data.<facet>`` (one value or a list) over the published products."""
        values: set[str] = set()
        for product in self._data.published(orgid):
            value = product.data.get(facet)
            values.update(str(v) for v in (value if isinstance(value, list) else [value]) if v)
        names = sorted(values)
        return Page[str](data=names, total=len(names), page=1, pageSize=max(1, len(names)), hasNext=False)

    def categories(self, orgid: str) -> Page[str]:
        return self.facets(orgid, "categories")

    def brands(self, orgid: str) -> Page[str]:
        return self.facets(orgid, "brand")

    # -- for carts, quotes and checkout --------------------------------------------------------
    def on_sale(self, orgid: str, sku: str) -> Record:
        """The published product with this SKU; 404 if there is none."""
        found = self._data.published_by_sku(orgid, sku)
        if found is None:
            raise NotFound(f"no product {sku}")
        return found

    def check_stock(self, orgid: str, sku: str, quantity: int) -> Record:
        """The product, or 409 unless ``quantity`` of it is in stock (any quantity when not tracked)."""
        product = self.on_sale(orgid, sku)
        stock = product.data.get("stock")
        if stock is None:
            return product  # not stock-tracked: any quantity (contract §7)
        try:
            available = int(stock)
        except (TypeError, ValueError) as exc:
            raise Conflict(f"product {sku} has no valid stock") from exc
        if available < quantity:
            raise Conflict(f"only {stock} of {sku} in stock")
        return product
