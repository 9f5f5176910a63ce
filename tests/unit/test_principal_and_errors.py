"""Authorizer context encoding and the single domain-error -> HTTP table."""

from __future__ import annotations

import pytest

from appengine_core.edge.guard import require_scope
from appengine_core.edge.http import error_body
from appengine_core.identity.principal import Principal
from appengine_core.infra import errors


def test_principal_survives_the_flat_string_context() -> None:
    principal = Principal(
        kind="user",
        principal_id="acme:user:1",
        orgid="acme",
        roles=("RootAdmin", "User"),
        permissions=("read", "create"),
        platform_root=False,
        session_id="s1",
        scopes=("read",),
        credential="apikey",
        api_key_id="k1",
    )
    context = principal.to_context()
    assert all(isinstance(v, str) for v in context.values())
    assert Principal.from_context({**context, "principalId": "acme:user:1"}) == principal


def test_an_empty_scope_list_still_limits_the_key() -> None:
    principal = Principal(
        kind="user", principal_id="acme:user:1", orgid="acme", permissions=("read",), scopes=()
    )
    restored = Principal.from_context(principal.to_context())
    assert restored.scopes == ()
    # Scopes are checked at the edge, once per request, for reading and writing routes alike
    for scope in ("read", "write"):
        with pytest.raises(errors.Forbidden):
            require_scope(restored, scope)


def test_scopes_narrow_keys_and_leave_person_tokens_alone() -> None:
    reader = Principal(kind="user", principal_id="acme:user:1", orgid="acme", scopes=("read",))
    person = Principal(kind="user", principal_id="acme:user:1", orgid="acme")
    require_scope(reader, "read")
    with pytest.raises(errors.Forbidden):
        require_scope(reader, "write")
    require_scope(person, "write")


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.Unauthorized(), 401),
        (errors.InvalidCredentials(), 401),
        (errors.OrgidRequired(), 400),
        (errors.InvalidJson(), 400),
        (errors.Forbidden(), 403),
        (errors.ValidationFailed(), 422),
        (errors.NotFound(), 404),
        (errors.Conflict(), 409),
        (errors.RateLimited(3), 429),
        (errors.DomainError(), 500),
    ],
)
def test_each_domain_error_has_its_contract_status(error: errors.DomainError, status: int) -> None:
    assert errors.http_status_of(error) == status


def test_error_body_repeats_the_machine_word_for_appengine_clients() -> None:
    body = error_body(403, "forbidden", "no", "r-1")
    assert body == {
        "statusCode": 403,
        "error": "forbidden",
        "code": "forbidden",
        "reason": "forbidden",
        "message": "no",
        "requestId": "r-1",
    }
