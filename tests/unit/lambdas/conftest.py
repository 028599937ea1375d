"""Fixtures for the Lambda handler tests (moto in-process, no network, no Docker)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambda_testkit import REGION, FakeLambdaContext, load_handler


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region, so nothing can reach a real account."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    # An endpoint override (the live tests' moto server) would send requests past the in-process mock.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def aws(aws_credentials: None) -> Iterator[None]:
    """moto's in-process mock; Batch runs without Docker (a submitted job simply succeeds)."""
    # Keeping boto3's default session across tests keeps its parsed service models (~0.1 s a client).
    with mock_aws(config={"batch": {"use_docker": False}, "core": {"reset_boto3_session": False}}):
        yield


@pytest.fixture
def handler_module(request: pytest.FixtureRequest, aws: None) -> Iterator[ModuleType]:
    """The handler named by the test module's ``FUNCTION``, its client cache emptied.

    Emptying the cache makes the handler build its clients inside this test's mock.
    """
    module = load_handler(request.module.FUNCTION)
    module.clients.cache_clear()
    yield module
    module.clients.cache_clear()


@pytest.fixture
def boto_client(aws: None) -> Callable[[str], Any]:
    """A factory for test-side clients (separate from the handler's own)."""

    def _make(service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    return _make
