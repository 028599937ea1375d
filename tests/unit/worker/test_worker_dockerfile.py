"""No Docker engine here: parse the Dockerfile and check it agrees with the package it installs."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

WORKER = Path(__file__).resolve().parents[3] / "worker_image"


def _instructions() -> list[tuple[str, str]]:
    text = (WORKER / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)  # join continuation lines
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, arg = line.partition(" ")
            out.append((op.upper(), arg.strip()))
    return out


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return _instructions()


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((WORKER / "pyproject.toml").read_text())


def _ops(dockerfile: list[tuple[str, str]], op: str) -> list[str]:
    return [arg for o, arg in dockerfile if o == op]


def test_worker_image_base_is_cuda_runtime_with_python311(dockerfile: list[tuple[str, str]]) -> None:
    args = dict(a.split("=", 1) for a in _ops(dockerfile, "ARG") if "=" in a)
    (base,) = _ops(dockerfile, "FROM")
    base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
    assert base.startswith("nvidia/cuda:") and "runtime" in base
    run = " ".join(_ops(dockerfile, "RUN"))
    assert "python3.11" in run and "ffmpeg" in run


def test_worker_image_entrypoint_runs_the_installed_package(
    dockerfile: list[tuple[str, str]], pyproject: dict
) -> None:
    command = json.loads(_ops(dockerfile, "ENTRYPOINT")[-1]) + sum(
        (json.loads(c) for c in _ops(dockerfile, "CMD")), [])
    assert command == ["python", "-m", "video_worker"]
    module = command[2]
    # The module the entry point runs is the one the pyproject packages, and it has a __main__.
    assert pyproject["tool"]["setuptools"]["packages"]["find"]["where"] == ["src"]
    assert (WORKER / "src" / module / "__main__.py").is_file()
    spec = importlib.util.find_spec(f"{module}.__main__")
    assert spec is not None and Path(spec.origin).resolve() == (WORKER / "src" / module / "__main__.py").resolve()
    assert "schema.sql" in pyproject["tool"]["setuptools"]["package-data"][module]
    # The Dockerfile installs this directory's pyproject and verifies that exact distribution name.
    run = " ".join(_ops(dockerfile, "RUN"))
    assert "pip install --no-deps ." in run
    assert f"m.version('{pyproject['project']['name']}')" in run
    assert pyproject["project"]["requires-python"].startswith(">=3.11")


def test_worker_image_runs_unprivileged(dockerfile: list[tuple[str, str]]) -> None:
    users = _ops(dockerfile, "USER")
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert [o for o, _ in dockerfile].index("USER") > max(
        i for i, (o, _) in enumerate(dockerfile) if o == "RUN")  # installs as root; the job never
    assert "YOLO_OFFLINE=1" in " ".join(_ops(dockerfile, "ENV"))


def test_worker_image_layers_are_cache_friendly_and_weightless(dockerfile: list[tuple[str, str]]) -> None:
    steps = [f"{o} {a}" for o, a in dockerfile]
    idx = lambda needle: next(i for i, s in enumerate(steps) if needle in s)  # noqa: E731
    assert idx("COPY pyproject.toml") < idx("-r /tmp/requirements.txt") < idx("COPY src") < idx("pip install --no-deps")
    copies = " ".join(_ops(dockerfile, "COPY") + _ops(dockerfile, "ADD"))
    assert not re.search(r"\.(pt|onnx|engine)\b", copies)
    assert not re.search(r"(wget|curl)\b", " ".join(_ops(dockerfile, "RUN")))
    assert "*.pt" in (WORKER / ".dockerignore").read_text()


def test_worker_module_entry_point_exits_65_on_bad_config() -> None:
    """The real ``python -m video_worker`` process: an invalid job environment -> 65, one JSON line."""
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(WORKER / "src")}
    proc = subprocess.run([sys.executable, "-m", "video_worker"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 65
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["event"] == "config_error" and "VIDEO_ID is required" in line["reason"]
