"""Tenant identifiers and the physical key layout that makes cross-tenant reads impossible by construction.

Every tenant item lives under a partition key ``<orgid>:<collection>`` and a sort key
``<orgid>:<collection>:<id>``. An orgid never contains ``:``, so a key built for ``acme`` can never
address ``acme2`` (``begins_with`` included), and IAM ``dynamodb:LeadingKeys`` can pin a caller to
``<orgid>:*`` below the application.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ORGID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
# Public datatypes are identifiers; internal collections start with "#", which no datatype can.
DATATYPE_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
SEPARATOR = ":"


class InvalidOrgid(ValueError):
    pass


def validate_orgid(orgid: str) -> str:
    if not isinstance(orgid, str) or not ORGID_PATTERN.fullmatch(orgid):
        raise InvalidOrgid("orgid must match [a-z0-9][a-z0-9-]{1,62}")
    return orgid


def is_valid_orgid(orgid: str | None) -> bool:
    return isinstance(orgid, str) and ORGID_PATTERN.fullmatch(orgid) is not None


@dataclass(frozen=True, slots=True)
class TenantKey:
    """The primary key of one tenant item. Constructing one validates the orgid."""

    orgid: str
    collection: str
    item_id: str

    def __post_init__(self) -> None:
        validate_orgid(self.orgid)
        if not self.collection or SEPARATOR in self.collection:
            raise ValueError(f"invalid collection name: {self.collection!r}")
        if not self.item_id:
            raise ValueError("item id must not be empty")

    @property
    def partition(self) -> str:
        return collection_partition(self.orgid, self.collection)

    @property
    def sort(self) -> str:
        return f"{self.orgid}{SEPARATOR}{self.collection}{SEPARATOR}{self.item_id}"

    def as_item_key(self) -> dict[str, str]:
        return {"PK": self.partition, "SK": self.sort}

    @classmethod
    def parse(cls, sort_key: str) -> TenantKey:
        """Rebuild a key from a stored sort key (``<orgid>:<collection>:<id>``)."""
        orgid, collection, item_id = sort_key.split(SEPARATOR, 2)
        return cls(orgid, collection, item_id)


def collection_partition(orgid: str, collection: str) -> str:
    validate_orgid(orgid)
    return f"{orgid}{SEPARATOR}{collection}"


def org_prefix(orgid: str) -> str:
    """The prefix every sort key of ``orgid`` starts with."""
    return validate_orgid(orgid) + SEPARATOR
