"""Who sees which records in lists (contract §6): a role holder sees and counts the records of its role,
nobody else's; admins see and count everything (issue 13, item 5)."""

from __future__ import annotations

from typing import Any

from appengine_core.identity.directory import DirectoryService, NewUser
from appengine_core.infra.envelope import Record
from tests.integration.conftest import access_token_for, bearer_for


def user_with_roles(roles: list[str]) -> dict[str, str]:
    created = DirectoryService().create_user(
        "acme",
        NewUser(email=f"{'-'.join(roles).lower()}@acme.test", password="role-pass-123", roles=roles),
    )
    found = DirectoryService().principal_by_email("acme", "user", created.data["email"])
    assert found is not None
    record = found.record
    return {"orgid": "acme", "authorization": f"Bearer {access_token_for(record)}"}


def find(gateway: Any, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = gateway.post("/repository/find/payroll", headers=headers, json=body)
    assert response.status_code == 200, response.text
    return dict(response.json)


def test_each_caller_sees_and_counts_exactly_the_records_it_may_read(
    gateway: Any, tenants: dict[str, Record]
) -> None:
    # Given open records, records for Finance, for Legal, and one with an empty requiredRole
    admin = bearer_for(tenants["acme_admin"])
    for role, count in ((None, 2), ("Finance", 3), ("Legal", 1), ("", 1)):
        for i in range(count):
            body = {"datatype": "payroll", "data": {"i": i, "role": role or "open"}}
            created = gateway.post("/repository/create", headers=admin, json=body | {"requiredRole": role})
            assert created.status_code == 201, created.text
    finance = user_with_roles(["Finance"])
    both = user_with_roles(["Finance", "Legal"])
    reader = bearer_for(tenants["acme_reader"])
    # When each pages through the collection, unfiltered, filtered and sorted
    for headers, expected in ((reader, 3), (finance, 6), (both, 7), (admin, 7)):
        unfiltered = find(gateway, headers, {"options": {"pageSize": 2}})
        filtered = find(gateway, headers, {"query": {"i": {"$gte": 0}}, "options": {"pageSize": 100}})
        by_field = find(gateway, headers, {"options": {"sort": "i", "pageSize": 100}})
        # Then each total is the number of records it may read, and so is what the pages hold
        assert unfiltered["total"] == filtered["total"] == by_field["total"] == expected
        assert len(filtered["data"]) == len(by_field["data"]) == expected
        assert unfiltered["hasNext"] is True
    # And a reader filtering on a field of hidden records finds nothing and counts nothing
    assert find(gateway, reader, {"query": {"role": "Finance"}}) == find(
        gateway, reader, {"query": {"role": "nobody"}}
    )
