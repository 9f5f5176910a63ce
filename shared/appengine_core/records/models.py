"""The repository's request models (contract §6): what a create, an update and a find take."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from appengine_core.infra.paging import MAX_CURSOR_LENGTH, MAX_PAGE_NUMBER, MAX_PAGE_SIZE

STATE_NAME = r"^[a-z][a-z0-9_-]{0,31}$"


class RecordFields(BaseModel):
    model_config = ConfigDict(extra="ignore")  # AppEngine's clients send isNew, which means nothing here

    name: str | None = Field(default=None, max_length=500)
    state: str | None = Field(default=None, pattern=STATE_NAME)
    requiredRole: str | None = Field(default=None, max_length=64)  # noqa: N815


class CreateRecord(RecordFields):
    datatype: str
    data: dict[str, Any]


class UpdateRecord(RecordFields):
    data: dict[str, Any] | None = None
    version: int | None = Field(default=None, ge=1)


class FindOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    pageSize: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE)  # noqa: N815
    page: int | None = Field(default=None, ge=1, le=MAX_PAGE_NUMBER)
    next: str | None = Field(default=None, max_length=MAX_CURSOR_LENGTH)
    sort: str | None = Field(default=None, max_length=200)
    sortType: Literal["asc", "desc"] = "asc"  # noqa: N815

    @field_validator("sortType", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class FindRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    query: dict[str, Any] = Field(default_factory=dict)
    options: FindOptions = Field(default_factory=FindOptions)
