"""The brute-force protection's schedule (contract §4): lock windows, escalation, what still counts."""

from __future__ import annotations

import pytest

from appengine_core.identity.data import failures_key, source_key
from appengine_core.identity.lockout import (
    ESCALATION_RESET_SECONDS,
    FAILURE_WINDOW_SECONDS,
    escalated_level,
    lock_window,
    recent_failures,
    retry_after,
)

NOW = 1_767_225_600.0
NANOS = 1_000_000_000


@pytest.mark.parametrize(
    ("level", "seconds"), [(1, 60), (2, 300), (3, 900), (4, 3600), (5, 3600), (40, 3600)]
)
def test_lock_windows_escalate_1_5_15_60_minutes_then_stay(level: int, seconds: int) -> None:
    assert lock_window(level) == seconds


def test_a_first_lock_is_level_1() -> None:
    assert escalated_level(0, None, NOW) == 1


def test_a_lock_within_a_day_of_the_last_one_escalates() -> None:
    # Given a level-2 lock that ended an hour ago, then one that ended just short of a day ago
    assert escalated_level(2, NOW - 3600, NOW) == 3
    assert escalated_level(3, NOW - ESCALATION_RESET_SECONDS + 1, NOW) == 4
    # And beyond the last window the level keeps counting (the window stays at 60 minutes)
    assert lock_window(escalated_level(4, NOW - 60, NOW)) == 3600


def test_a_day_without_a_lock_resets_the_escalation() -> None:
    assert escalated_level(4, NOW - ESCALATION_RESET_SECONDS, NOW) == 1
    assert escalated_level(4, NOW - 2 * ESCALATION_RESET_SECONDS, NOW) == 1


def test_a_failure_counts_for_15_minutes() -> None:
    # Given failures 16, 15 (to the second) and 1 minute ago
    old = int(NOW - FAILURE_WINDOW_SECONDS - 60) * NANOS
    edge = int(NOW - FAILURE_WINDOW_SECONDS) * NANOS
    fresh = int(NOW - 60) * NANOS + 123
    # Then the one older than 15 minutes no longer counts
    assert recent_failures([old, edge, fresh], NOW) == [edge, fresh]


def test_retry_after_is_whole_seconds_and_at_least_one() -> None:
    assert retry_after(NOW + 59.2, NOW) == 60
    assert retry_after(NOW + 0.01, NOW) == 1
    assert retry_after(NOW - 5, NOW) == 1


def test_counters_live_in_the_org_partition_and_keep_no_password() -> None:
    key = failures_key("acme", "customer", "buyer@acme.test")
    assert key.sort == "acme:#signin-failures:customer:buyer@acme.test"
    assert key.partition.startswith("acme:")
    assert source_key("acme", "10.0.0.1", 29_453_760).sort == "acme:#signin-source:10.0.0.1:29453760"


def test_an_email_too_long_for_a_key_is_keyed_by_its_digest() -> None:
    key = failures_key("acme", "user", "é" * 300 + "@acme.test")
    assert key.item_id.startswith("user:sha256:") and len(key.sort.encode()) < 200
