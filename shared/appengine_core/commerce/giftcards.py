"""Gift cards (contract §7): lookups by code, limited per customer and per source, and the balance."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from appengine_core.commerce.data import ProbeRefused, StorefrontData
from appengine_core.commerce.models import MAX_CODE, GiftCardBalance
from appengine_core.commerce.rules import bounded, is_active
from appengine_core.infra.envelope import Record
from appengine_core.infra.errors import NotFound, RateLimited

GIFT_CARD_PROBES_PER_MINUTE = 10  # unknown or inactive codes, per customer and per source IP


def active_with_code(data: StorefrontData, orgid: str, collection: str, code: str) -> Record | None:
    """The first active ``coupon`` or ``giftcard`` with this code: inactive and expired ones answer
    exactly as unknown ones do (contract §7)."""
    now = datetime.now(UTC)
    return next(
        (r for r in data.records_with_code(orgid, collection, code) if is_active(r.state, r.data, now)), None
    )


class GiftCardService:
    def __init__(self, data: StorefrontData | None = None) -> None:
        self._data = data or StorefrontData()

    def lookup(self, orgid: str, code: str, subjects: Sequence[str]) -> Record | None:
        """The active gift card with this code, or None; a lookup that finds none uses up one of the
        minute's allowance of every subject (customer, source IP) (contract §7).

        The allowance is taken before the lookup and given back when the code is good: counting only
        after a miss would let a burst of parallel guesses all be looked up before the counter moved.
        """
        window = int(time.time() // 60)
        taken: list[str] = []
        try:
            for subject in subjects:
                self._data.take_probe(orgid, subject, window, GIFT_CARD_PROBES_PER_MINUTE)
                taken.append(subject)
        except ProbeRefused as exc:
            self._give_back(orgid, taken, window)
            raise RateLimited(
                int((window + 1) * 60 - time.time()) + 1, "too many unknown gift card codes"
            ) from exc
        card = active_with_code(self._data, orgid, "giftcard", code)
        if card is not None:
            self._give_back(orgid, taken, window)
        return card

    def _give_back(self, orgid: str, subjects: Sequence[str], window: int) -> None:
        for subject in subjects:
            self._data.give_back_probe(orgid, subject, window)

    def balance(self, orgid: str, code: str, source_ip: str) -> GiftCardBalance:
        bounded(code, "code", MAX_CODE)
        card = self.lookup(orgid, code, [f"ip:{source_ip}"])
        if card is None:
            raise NotFound("no such gift card")
        return GiftCardBalance(
            code=code, balance=card.data.get("balance", 0), currency=str(card.data.get("currency", "USD"))
        )
