"""Runs the template's functions in-process, the way Lambda runs them in containers.

Each function gets a pool of independently imported copies of its handler module ("warm containers");
a request takes an idle copy or, up to a limit, imports a new one. As in Lambda, one copy serves one
request at a time, so per-invocation state such as a resolver's ``current_event`` is never shared.
"""

from __future__ import annotations

import importlib.util
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from appengine_local.resources import LOCAL_ACCOUNT, LOCAL_REGION
from appengine_local.template import Function, Template

MAX_CONTAINERS_PER_FUNCTION = 16
# One cold start at a time in this process: two threads importing the same packages at once (the first
# requests, the bus tap's rule targets) can see a module another thread has only half initialised.
_COLD_START = threading.Lock()


@dataclass
class LocalLambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str
    function_version: str = "$LATEST"

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.invoked_function_arn = (
            f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{self.function_name}"
        )
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionPool:
    def __init__(self, function: Function) -> None:
        self.function = function
        self._idle: list[ModuleType] = []
        self._count = 0
        self._available = threading.Condition()

    def _import(self) -> ModuleType:
        self._count += 1
        name = f"appengine_fn_{self.function.logical_id}_{self._count}"
        spec = importlib.util.spec_from_file_location(name, self.function.module_file)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {self.function.module_file}")
        module = importlib.util.module_from_spec(spec)
        with _COLD_START:
            spec.loader.exec_module(module)
        return module

    @contextmanager
    def container(self) -> Iterator[ModuleType]:
        with self._available:
            while not self._idle and self._count >= MAX_CONTAINERS_PER_FUNCTION:
                self._available.wait()
            module = self._idle.pop() if self._idle else None
            if module is None:
                module = self._import()
        try:
            yield module
        finally:
            with self._available:
                self._idle.append(module)
                self._available.notify()

    def invoke(self, event: dict[str, Any]) -> Any:
        with self.container() as module:
            handler: Callable[[dict[str, Any], Any], Any] = getattr(module, self.function.handler_name)
            context = LocalLambdaContext(
                function_name=self.function.logical_id,
                memory_limit_in_mb=self.function.memory,
                timeout_seconds=self.function.timeout,
                aws_request_id=str(uuid.uuid4()),
            )
            return handler(event, context)


class LocalLambda:
    """Every function of the template, invocable by logical id."""

    def __init__(self, template: Template) -> None:
        self._pools = {logical_id: FunctionPool(f) for logical_id, f in template.functions.items()}

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        return self._pools[logical_id].invoke(event)
