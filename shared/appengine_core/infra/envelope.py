"""The BaseModel envelope every record (built-in or custom) is stored and returned as (contract §2)."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from appengine_core.infra.tenancy import DATATYPE_PATTERN, TenantKey

# Attributes that are part of the public envelope. Anything else on a stored item (password hashes,
# key hashes, TOTP seeds, bookkeeping) is never copied into a response.
ENVELOPE_FIELDS = (
    "pk",
    "sk",
    "datatype",
    "name",
    "data",
    "version",
    "state",
    "createdate",
    "modifydate",
    "author",
    "owner",
    "requiredRole",
)


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    """32 hex digits: 12 of milliseconds since the epoch, then 80 random bits.

    Ids sort by creation time, so a collection's natural key order is its creation order (cheap
    "oldest first"/"newest first" pages) and two ids never collide in practice.
    """
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


class Record(BaseModel):
    pk: str
    sk: str
    datatype: str
    name: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    version: int = 1
    state: str = "new"
    createdate: str
    modifydate: str
    author: str | None = None
    owner: str | None = None
    requiredRole: str | None = None  # noqa: N815 - the contract's field name

    @property
    def key(self) -> TenantKey:
        return TenantKey.parse(self.sk)

    @property
    def orgid(self) -> str:
        return self.key.orgid

    @classmethod
    def new(
        cls,
        *,
        orgid: str,
        datatype: str,
        data: dict[str, Any],
        name: str = "",
        state: str = "new",
        author: str | None = None,
        required_role: str | None = None,
        record_id: str | None = None,
    ) -> Record:
        record_id = record_id or new_id()
        key = TenantKey(orgid, datatype, record_id)
        now = utc_now_iso()
        return cls(
            pk=record_pk(datatype, record_id),
            sk=key.sort,
            datatype=datatype,
            name=name,
            data=data,
            state=state,
            createdate=now,
            modifydate=now,
            author=author,
            owner=author,
            requiredRole=required_role,
        )

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Record:
        return cls.model_validate({k: item[k] for k in ENVELOPE_FIELDS if k in item})

    def to_item(self) -> dict[str, Any]:
        return self.model_dump()


def record_pk(datatype: str, record_id: str) -> str:
    return f"{datatype}-{record_id}"


def is_valid_datatype(datatype: str) -> bool:
    return DATATYPE_PATTERN.fullmatch(datatype) is not None


def record_key_from_path_id(orgid: str, datatype: str, path_id: str) -> TenantKey | None:
    """Resolve a path ``{id}`` given as the record's ``pk`` or its ``sk`` (AppEngine's clients send the sk).

    Returns None for anything that does not name a record of ``datatype`` in ``orgid``: the caller
    answers 404 without revealing whether it exists elsewhere.
    """
    prefix = f"{orgid}:{datatype}:"
    if path_id.startswith(prefix):
        record_id = path_id[len(prefix) :]
    elif path_id.startswith(f"{datatype}-"):
        record_id = path_id[len(datatype) + 1 :]
    else:
        return None
    if not record_id or ":" in record_id:
        return None
    return TenantKey(orgid, datatype, record_id)
