"""The OpenAPI document is good enough to generate a working client from: openapi-python-client (a
maintained generator) builds a Python package from the document the stack serves, and sign-in and a
repository find go through it, with typed success and error bodies."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.contract.conftest import LocalApi

PACKAGE = "appengine_client"
# No formatting pass over the generated code (the generator would look for ruff on PATH).
GENERATOR_CONFIG = f"package_name_override: {PACKAGE}\npost_hooks: []\n"


@pytest.fixture(scope="session")
def client_package(api: LocalApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client generated once per session from the served document, importable as ``appengine_client``."""
    workdir = tmp_path_factory.mktemp("generated-client")
    document = api.get("/openapi.json")
    assert document.status == 200
    (workdir / "openapi.json").write_text(document.text, encoding="utf-8")
    (workdir / "config.yaml").write_text(GENERATOR_CONFIG, encoding="utf-8")
    cli = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
    assert cli, "openapi-python-client is a dev dependency (pip install -e '.[dev]')"
    result = subprocess.run(
        [
            cli,
            "generate",
            "--path",
            str(workdir / "openapi.json"),
            "--config",
            str(workdir / "config.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(workdir / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=workdir,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout, result.stdout  # every operation and schema was understood
    sys.path.insert(0, str(workdir))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(workdir))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def operation(package: ModuleType, tag: str, name: str) -> ModuleType:
    return importlib.import_module(f"{package.__name__}.api.{tag}.{name}")


def models(package: ModuleType) -> ModuleType:
    return importlib.import_module(f"{package.__name__}.models")


def signed_in_token(package: ModuleType, base_url: str) -> str:
    sign_in = operation(package, "sign_in", "user_sign_in_profile_signin_post")
    credentials = models(package).Credentials(email="admin@acme.test", password="acme-admin-pass")
    response = sign_in.sync_detailed(client=package.Client(base_url=base_url), body=credentials, orgid="acme")
    assert response.status_code == 200, response.content
    return str(response.parsed.token)


def test_sign_in_through_the_generated_client(api: LocalApi, client_package: ModuleType) -> None:
    # Given the generated client and the demo admin's credentials
    sign_in = operation(client_package, "sign_in", "user_sign_in_profile_signin_post")
    schemas = models(client_package)
    client = client_package.Client(base_url=api.base_url)
    credentials = schemas.Credentials(email="admin@acme.test", password="acme-admin-pass")
    # When it signs in
    response = sign_in.sync_detailed(client=client, body=credentials, orgid="acme")
    # Then the envelope parses into the document's model, tokens at the top level and under data
    assert response.status_code == 200
    envelope = response.parsed
    assert isinstance(envelope, schemas.SignInEnvelope)
    assert envelope.token and envelope.refresh_token
    assert envelope.data.token == envelope.token
    assert envelope.data.refresh_token == envelope.refresh_token
    assert envelope.user.datatype == "user"
    assert envelope.user.data["email"] == "admin@acme.test"
    # And a wrong password parses into the contract's error body
    wrong = schemas.Credentials(email="admin@acme.test", password="not-the-password")
    refused = sign_in.sync_detailed(client=client, body=wrong, orgid="acme")
    assert refused.status_code == 401
    assert isinstance(refused.parsed, schemas.ErrorBody)
    assert refused.parsed.error == refused.parsed.code == "invalid_credentials"
    assert refused.parsed.status_code == 401 and refused.parsed.request_id


def test_repository_find_through_the_generated_client(api: LocalApi, client_package: ModuleType) -> None:
    # Given a client authenticated with the admin's access token
    find = operation(client_package, "repository", "find_records_repository_find_datatype_post")
    schemas = models(client_package)
    token = signed_in_token(client_package, api.base_url)
    client = client_package.AuthenticatedClient(base_url=api.base_url, token=token)
    query = schemas.FindRequestQuery.from_dict({"sku": "MUG-1"})
    # When it finds the org's products by SKU
    response = find.sync_detailed(
        "product",
        client=client,
        body=schemas.FindRequest(query=query, options=schemas.FindOptions(page_size=10)),
        orgid="acme",
    )
    # Then the page parses into the list shape with typed records
    assert response.status_code == 200, response.content
    page = response.parsed
    assert isinstance(page, schemas.PageRecord)
    assert page.has_next is False
    assert [record.data["sku"] for record in page.data] == ["MUG-1"]
    (record,) = page.data
    assert isinstance(record, schemas.Record)
    assert record.datatype == "product" and record.sk.startswith("acme:product:")
    # And an invalid page size parses into the 422 body with its details
    invalid = find.sync_detailed(
        "product",
        client=client,
        body=schemas.FindRequest(query=query, options=schemas.FindOptions(page_size=1000)),
        orgid="acme",
    )
    assert invalid.status_code == 422
    assert isinstance(invalid.parsed, schemas.ValidationErrorBody)
    assert invalid.parsed.error == "validation_error"
    assert [detail.field for detail in invalid.parsed.details] == ["options.pageSize"]
