"""Property: whatever two orgs do, neither ever sees, changes or deletes the other's records."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appengine_core.identity.principal import Caller, Principal
from appengine_core.infra.errors import NotFound
from appengine_core.records.models import CreateRecord, FindRequest, UpdateRecord
from appengine_core.records.service import RepositoryService

ORGS = ("acme", "acme2")  # a prefix of each other on purpose
EVERYTHING = ("create", "read", "update", "delete")
operations = st.lists(
    st.tuples(
        st.sampled_from(["create", "update", "delete", "peek"]), st.sampled_from(ORGS), st.integers(0, 5)
    ),
    min_size=1,
    max_size=12,
)
collection_numbers = itertools.count()


def admin_of(orgid: str) -> Caller:
    principal = Principal(
        kind="user", principal_id=f"{orgid}:user:admin", orgid=orgid, roles=("User",), permissions=EVERYTHING
    )
    return Caller(principal=principal, orgid=orgid)


@pytest.fixture
def repository(aws_stack: dict[str, str]) -> RepositoryService:
    from appengine_core.identity.directory import DirectoryService

    for orgid in ORGS:
        DirectoryService().create_org(orgid, orgid)
    return RepositoryService()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
def test_two_orgs_never_see_each_other(
    repository: RepositoryService, steps: list[tuple[str, str, int]]
) -> None:
    datatype = f"t{next(collection_numbers)}"  # a fresh collection per example
    model: dict[str, dict[str, dict[str, Any]]] = {orgid: {} for orgid in ORGS}
    for action, orgid, pick in steps:
        actor, other = admin_of(orgid), ORGS[1 - ORGS.index(orgid)]
        own, theirs = list(model[orgid]), list(model[other])
        if action == "create":
            record = repository.create(actor, CreateRecord(datatype=datatype, data={"v": pick}))
            model[orgid][record.sk] = record.data
        elif action == "update" and own:
            sk = own[pick % len(own)]
            model[orgid][sk] = repository.update(
                actor, datatype, sk, UpdateRecord(data={"v": pick}), deep=False
            ).data
        elif action == "delete" and own:
            sk = own[pick % len(own)]
            repository.delete(actor, datatype, [sk])
            del model[orgid][sk]
        if theirs:
            # Reaching for the other org's record by its sk or pk, with this org's identity, finds nothing.
            target = theirs[pick % len(theirs)]
            for path_id in (target, f"{datatype}-{target.rsplit(':', 1)[1]}"):
                with pytest.raises(NotFound):
                    repository.get(actor, datatype, path_id)
                with pytest.raises(NotFound):
                    repository.update(actor, datatype, path_id, UpdateRecord(data={"x": 1}), deep=False)
                with pytest.raises(NotFound):
                    repository.delete(actor, datatype, [path_id])
        for each in ORGS:
            page = repository.find(
                admin_of(each), datatype, FindRequest.model_validate({"options": {"pageSize": 100}})
            )
            assert {r.sk: r.data for r in page.data} == model[each]
            assert page.total == len(model[each])
