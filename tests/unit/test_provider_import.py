"""The provider binding is imported per service module, never through its 2,135-module `__init__`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SYNTH_AND_REPORT = """
import json, sys
{prelude}
from pathlib import Path
from deepsentinel.app import synth
from deepsentinel.settings import load_settings
synth([load_settings("dev")], outdir=Path(sys.argv[1]))
package = sys.modules["cdktf_cdktf_provider_aws"]
print(json.dumps({{"submodules": sorted(m for m in sys.modules if m.startswith("cdktf_cdktf_provider_aws.")),
                  "package_init_ran": hasattr(package, "__all__")}}))
"""


def run_synth(outdir: Path, prelude: str = "") -> dict:
    result = subprocess.run([sys.executable, "-c", SYNTH_AND_REPORT.format(prelude=prelude), str(outdir)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


# the two tests that read it run on one xdist worker, so the synth is made once
SHARES_THE_LAZY_SYNTH = pytest.mark.xdist_group("provider_import_lazy_synth")


@pytest.fixture(scope="module")
def lazy_synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One synth as the toolkit runs it, for both tests below: its output directory and its report."""
    outdir = tmp_path_factory.mktemp("lazy")
    return outdir, run_synth(outdir)


@SHARES_THE_LAZY_SYNTH
def test_synth_loads_only_the_service_modules_it_uses(lazy_synth: tuple[Path, dict]):
    _, report = lazy_synth
    assert report["package_init_ran"] is False
    services = {m.split(".")[1] for m in report["submodules"]}
    assert {"vpc", "db_instance", "lambda_function", "batch_compute_environment", "provider"} <= services
    assert len(services) < 100  # of 2,135


# ~20 CPU-s (a synth behind the whole binding's import), in the default suite: it proves the lazy import changes nothing
@SHARES_THE_LAZY_SYNTH
def test_synth_is_identical_to_one_with_the_whole_binding_imported(tmp_path: Path, lazy_synth: tuple[Path, dict]):
    report = run_synth(tmp_path / "full", prelude="import cdktf_cdktf_provider_aws")
    assert report["package_init_ran"] is True
    lazy = (lazy_synth[0] / "stacks" / "deepsentinel-dev" / "cdk.tf.json").read_text()
    full = (tmp_path / "full" / "stacks" / "deepsentinel-dev" / "cdk.tf.json").read_text()
    assert lazy == full


def test_a_resource_type_new_to_the_project_needs_only_its_import_line(tmp_path: Path):
    """In this process: deepsentinel's empty stand-in of the binding's package is in force here too (its `__init__`
    never ran; no test imports the whole binding but in a process of its own), and the synth uses the jsii runtime
    this worker already started instead of a new one (4-5 s)."""
    import deepsentinel  # noqa: F401 - registers the stand-in, as every toolkit process does
    from cdktf import App, TerraformStack
    from cdktf_cdktf_provider_aws.provider import AwsProvider
    from cdktf_cdktf_provider_aws.sqs_queue_policy import SqsQueuePolicy  # used nowhere in the platform

    assert not hasattr(sys.modules["cdktf_cdktf_provider_aws"], "__all__")
    app = App(outdir=str(tmp_path))
    stack = TerraformStack(app, "new-type")
    AwsProvider(stack, "aws", region="ap-northeast-2")
    SqsQueuePolicy(stack, "policy", queue_url="https://example/q", policy="{}")
    app.synth()
    document = json.loads((tmp_path / "stacks" / "new-type" / "cdk.tf.json").read_text())
    assert document["resource"]["aws_sqs_queue_policy"]["policy"]["queue_url"] == "https://example/q"
