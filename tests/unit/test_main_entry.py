"""`python main.py` is what `cdktf synth` runs (cdktf.json): every environment plus the account stack."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

from tests.conftest import REPO_ROOT


def test_cdktf_json_runs_main_py_which_synthesizes_every_stack(tmp_path: Path, monkeypatch):
    """main.py run as `python main.py` runs it (as __main__, from the checkout, with cdktf's CDKTF_OUTDIR), in
    this process: what it does depends on its environment variables, not on a fresh interpreter."""
    assert json.loads((REPO_ROOT / "cdktf.json").read_text())["app"] == "python main.py"
    settings = tmp_path / "settings.toml"
    settings.write_text("[prod]\ngpu_max_instances = 6\n")
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("CDKTF_OUTDIR", str(tmp_path / "out"))
    monkeypatch.setenv("DEEPSENTINEL_SETTINGS", str(settings))
    runpy.run_path(str(REPO_ROOT / "main.py"), run_name="__main__")
    stacks = sorted(p.name for p in (tmp_path / "out" / "stacks").iterdir())
    assert stacks == ["deepsentinel-account", "deepsentinel-dev", "deepsentinel-prod"]
    prod = json.loads((tmp_path / "out" / "stacks" / "deepsentinel-prod" / "cdk.tf.json").read_text())
    compute_environment = next(iter(prod["resource"]["aws_batch_compute_environment"].values()))
    assert compute_environment["compute_resources"]["max_vcpus"] == 24
