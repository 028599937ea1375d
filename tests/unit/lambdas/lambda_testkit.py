"""Helpers shared by the Lambda handler tests and benchmarks/lambdas.py (no pytest dependency)."""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from botocore.awsrequest import AWSResponse

REPO_ROOT = Path(__file__).resolve().parents[3]
REGION = "ap-northeast-2"
ACCOUNT_ID = "123456789012"  # moto's default account


def load_handler(function: str) -> ModuleType:
    """Import ``lambdas/<function>/handler.py`` under a unique module name.

    The Lambda runtime imports each file as top-level ``handler``; three such files cannot share that
    name in one process, and loading by path keeps the tests independent of package layout.
    """
    name = f"lambda_{function}_handler"
    if name not in sys.modules:
        path = REPO_ROOT / "lambdas" / function / "handler.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@dataclass
class FakeLambdaContext:
    """The attributes of the Lambda context object that handlers may read."""

    function_name: str = "test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:test-function"
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "2026/01/01/[$LATEST]0123456789abcdef"
    remaining_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def fail_call(
    client: Any,
    operation: str,
    *,
    code: str = "ClientException",
    message: str = "injected failure",
    status: int = 400,
    when: Callable[[dict[str, Any]], bool] = lambda params: True,
) -> list[dict[str, Any]]:
    """Make ``client.<operation>`` fail as AWS would, for calls whose JSON params satisfy ``when``.

    A ``before-call`` handler that returns a response short-circuits that one request, so the rest of
    the client keeps talking to moto. Returns the list of intercepted params.
    """
    seen: list[dict[str, Any]] = []
    service = client.meta.service_model.service_id.hyphenize()

    def _hook(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        parsed = _decode(params.get("body"))
        if not when(parsed):
            return None
        seen.append(parsed)
        http = AWSResponse(url="https://injected.invalid", status_code=status, headers={}, raw=None)
        return http, {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {}}

    client.meta.events.register(f"before-call.{service}.{operation}", _hook)
    return seen


def _decode(body: Any) -> dict[str, Any]:
    if isinstance(body, bytes):
        body = body.decode()
    if isinstance(body, str) and body:
        try:
            decoded = json.loads(body)
        except ValueError:
            return {}
        return decoded if isinstance(decoded, dict) else {}
    return body if isinstance(body, dict) else {}


def count_calls(*clients: Any) -> list[str]:
    """Record every API call the given clients make, as ``Service.Operation`` strings."""
    calls: list[str] = []

    def _hook(model: Any, **_: Any) -> None:
        calls.append(f"{model.service_model.service_id}.{model.name}")

    for client in clients:
        client.meta.events.register("before-parameter-build", _hook)
    return calls
