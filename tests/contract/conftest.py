"""Contract fixtures: the real local stack (`appengine-dev`) in a subprocess, reached over HTTP."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import REPO_ROOT


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class LocalApi:
    base_url: str
    aws_endpoint: str

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: Any = None,
        raw: bytes | None = None,
    ) -> HttpResponse:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=headers or {}
        )
        if data is not None and raw is None:
            request.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return HttpResponse(
                    response.status,
                    {k.lower(): v for k, v in response.headers.items()},
                    response.read().decode(),
                )
        except urllib.error.HTTPError as error:
            return HttpResponse(
                error.code, {k.lower(): v for k, v in error.headers.items()}, error.read().decode()
            )

    def get(self, path: str, **kwargs: Any) -> HttpResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> HttpResponse:
        return self.request("POST", path, **kwargs)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def local_stack(name: str) -> Iterator[LocalApi]:
    """`appengine-dev` in a subprocess on a free port, with its own emulated AWS and the demo seed."""
    port = _free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update({"PORT": str(port), "PYTHONUNBUFFERED": "1"})
    log_path = REPO_ROOT / f".pytest-local-stack-{name}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "appengine_local.dev"],
            cwd=REPO_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    local = LocalApi(f"http://127.0.0.1:{port}", aws_endpoint="")
    deadline = time.monotonic() + 60
    while True:
        try:
            if local.get("/monitoring/health").status == 200:
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the local stack did not start:\n" + log_path.read_text())
        time.sleep(0.2)
    banner = re.search(r"AWS emulated at (http://127\.0\.0\.1:\d+)", log_path.read_text())
    assert banner, "the local stack must print its AWS endpoint"
    local.aws_endpoint = banner.group(1)
    try:
        yield local
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def api() -> Iterator[LocalApi]:
    with local_stack("shared") as local:
        yield local


def sign_in(api: LocalApi, email: str, password: str, orgid: str, kind: str = "user") -> dict[str, Any]:
    path = "/profile/signin" if kind == "user" else "/profile/customer/signin"
    response = api.post(path, headers={"orgid": orgid}, body={"email": email, "password": password})
    assert response.status == 200, response.text
    return dict(response.json())


@pytest.fixture(scope="session")
def signing_keyset(api: LocalApi) -> dict[str, Any]:
    """The local stack's signing keyset, read from its emulated Secrets Manager (to forge tokens with)."""
    import boto3

    client = boto3.client(
        "secretsmanager",
        endpoint_url=api.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    secret = client.get_secret_value(SecretId="appengine-local-SigningKeysSecret")
    return dict(json.loads(secret["SecretString"]))
