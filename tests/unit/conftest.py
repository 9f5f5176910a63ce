"""Fixtures of the unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from appengine_core.infra.settings import get_settings

# The settings every function needs, nothing optional set.
REQUIRED_SETTINGS = {
    "APPENGINE_TABLE": "t-1",
    "APPENGINE_EVENT_BUS": "b",
    "APPENGINE_SIGNING_KEYS_SECRET": "s",
}


@pytest.fixture
def required_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only the required settings, read afresh (optional ones such as the code pepper secret unset)."""
    for name, value in REQUIRED_SETTINGS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("APPENGINE_CODE_PEPPER_SECRET", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def pepper(monkeypatch: pytest.MonkeyPatch) -> bytes:
    """The code pepper, as the signin function reads it from its secret (infra.pepper)."""
    value = b"p" * 64
    monkeypatch.setattr("appengine_core.infra.pepper.code_pepper", lambda: value)
    return value
