"""Key layout rules that make cross-tenant addressing impossible by construction."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appengine_core.infra.envelope import record_key_from_path_id
from appengine_core.infra.tenancy import InvalidOrgid, TenantKey, org_prefix, validate_orgid

orgids = st.from_regex(r"[a-z0-9][a-z0-9-]{1,62}", fullmatch=True)


@pytest.mark.parametrize("orgid", ["", "a", "Acme", "acme:x", "-acme", "acme corp", "a" * 64, "acme\n"])
def test_invalid_orgids_are_refused(orgid: str) -> None:
    with pytest.raises(InvalidOrgid):
        validate_orgid(orgid)
    with pytest.raises(InvalidOrgid):
        TenantKey(orgid, "product", "1")


@given(orgid=orgids, other=orgids, item=st.text(min_size=1, max_size=20))
def test_a_key_of_one_org_never_falls_under_another_orgs_prefix(orgid: str, other: str, item: str) -> None:
    key = TenantKey(orgid, "product", item)
    assert key.sort.startswith(org_prefix(orgid))
    assert key.partition.startswith(org_prefix(orgid))
    if other != orgid:
        assert not key.sort.startswith(org_prefix(other))
        assert not key.partition.startswith(org_prefix(other))


def test_keys_round_trip_through_their_sort_key() -> None:
    key = TenantKey("acme", "#user-email", "a:b@acme.test")
    assert TenantKey.parse(key.sort) == key
    assert key.as_item_key() == {"PK": "acme:#user-email", "SK": "acme:#user-email:a:b@acme.test"}


@pytest.mark.parametrize(
    ("path_id", "expected"),
    [
        ("product-abc", "acme:product:abc"),
        ("acme:product:abc", "acme:product:abc"),
        ("globex:product:abc", None),  # another org's sk
        ("acme:order:abc", None),  # another datatype's sk
        ("order-abc", None),
        ("product-", None),
        ("acme:product:a:b", None),
    ],
)
def test_a_path_id_is_a_pk_or_an_sk_of_this_org_and_datatype(path_id: str, expected: str | None) -> None:
    key = record_key_from_path_id("acme", "product", path_id)
    assert (key.sort if key else None) == expected
