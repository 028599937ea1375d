"""A pytest plugin for tests/unit/test_slow_tests_workflow.py: at the end of collection it writes to $SLOW_PROBE_OUT,
as JSON, the tests marked `slow` before any `-m` deselected them ("marked"), the tests the command selected
("selected") and which of tests/conftest.py's JSII_MODULES the collection imported ("jsii")."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import JSII_MODULES

_marked: list[str] = []


@pytest.hookimpl(tryfirst=True)  # before the mark plugin deselects by -m
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _marked[:] = [item.nodeid for item in items if item.get_closest_marker("slow")]


def pytest_collection_finish(session: pytest.Session) -> None:
    Path(os.environ["SLOW_PROBE_OUT"]).write_text(json.dumps(
        {"marked": _marked, "selected": [item.nodeid for item in session.items],
         "jsii": sorted(JSII_MODULES & set(sys.modules))}))
