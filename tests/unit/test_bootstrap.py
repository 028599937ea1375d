"""`deepsentinel bootstrap` when a run was interrupted, when the bucket lost the account's state, and what it prints.

The interrupted-run test takes about 30 s (an account-stack apply and two bootstraps on a moto server of its own); the
first bootstrap, a repeated one and the lock run on the live platform.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import deepsentinel_in_a_new_process, deepsentinel_in_process


# ~30 s of account-stack applies on a server of its own: back in the default suite since the unit tests end before
# the live deployment's path does (docs/testing.md#tests)
def test_an_interrupted_bootstrap_is_finished_and_a_lost_state_is_refused(tmp_path: Path):
    from deepsentinel import terraform
    from deepsentinel.commands.bootstrap import synth_account_stacks
    from deepsentinel.local.server import LocalAws
    from deepsentinel.settings import load_settings
    from deepsentinel.target import local_target

    with LocalAws.start(info_file=tmp_path / "server.json") as server:
        target = local_target(load_settings("dev"), tmp_path)
        stacks = synth_account_stacks(target)
        # The first half of a bootstrap, then the process died: the bucket exists, its state is only local.
        terraform.init(stacks.first_apply_dir, env=target.tf_env)
        terraform.apply(stacks.first_apply_dir, env=target.tf_env)
        assert stacks.local_state.is_file()

        # in this process: the synth uses the jsii runtime this test's synth started (a new process takes 4-5 s more)
        finished = deepsentinel_in_process("bootstrap", "--local", "--workdir", str(tmp_path))
        assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr
        assert f"found the state of an interrupted bootstrap in {stacks.local_state}: finishing it" in finished.stdout
        assert "deepsentinel-account: no changes" in finished.stdout  # the push kept every resource in the state
        assert not list(stacks.local_state.parent.glob("account.tfstate*"))
        s3 = target.client("s3")
        s3.head_object(Bucket="deepsentinel-tfstate", Key="account/terraform.tfstate")

        # The state object deleted (not versions: the current one), no local file: refuse to guess, before the
        # synth (from a clean checkout: nothing synthesized, nothing written).
        s3.delete_object(Bucket="deepsentinel-tfstate", Key="account/terraform.tfstate")
        shutil.rmtree(target.outdir)
        shutil.rmtree(stacks.first_apply_dir)
        refused, jsii = deepsentinel_in_a_new_process(tmp_path / "imported.json", "bootstrap", "--local",
                                                      "--workdir", str(tmp_path))
        assert refused.returncode == 1
        assert jsii == set()  # nothing of cdktf imported: the refusal comes before jsii's 4-5 s of start
        assert not target.outdir.exists() and not stacks.first_apply_dir.exists()
        assert refused.stderr.strip().splitlines() == [
            f"error: the state bucket deepsentinel-tfstate exists on the moto server on {server.endpoint_url} but holds "
            "no account state at account/terraform.tfstate: restore it from an earlier version of that object, or "
            "import the account stack's resources (docs/state-and-bootstrap.md: Recovering the account stack's state)"]


def test_bootstrap_prints_the_name_servers_to_delegate_to(monkeypatch, capsys):
    """A new public zone answers only once the registrar delegates to its name servers ("Making Amazon Route 53
    the DNS service for an existing domain", Route 53 Developer Guide), so bootstrap prints them per zone (the
    account stack's hosted_zone_name_servers output), beside the workflows' role variables."""
    from types import SimpleNamespace

    from deepsentinel import cli, target
    from deepsentinel.commands import bootstrap

    outputs = {"state_bucket": "deepsentinel-tfstate",
               "github_role_arns": {"DEEPSENTINEL_DEV_PLAN_ROLE_ARN": "arn:aws:iam::111122223333:role/p"},
               "hosted_zone_name_servers": {"deepsentinel.cloud": ["ns-2.awsdns-02.net", "ns-1.awsdns-01.com"]}}
    monkeypatch.setattr(target, "target_from_args",
                        lambda *a, **k: SimpleNamespace(local=True, where="the local server"))
    monkeypatch.setattr(bootstrap, "bootstrap", lambda target, confirm: outputs)
    args = cli.build_parser().parse_args(["bootstrap", "--local", "-c", "hosted_zones=deepsentinel.cloud"])
    assert args.run(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "  gh variable set DEEPSENTINEL_DEV_PLAN_ROLE_ARN --body arn:aws:iam::111122223333:role/p" in lines
    assert lines[-1] == ("hosted zone deepsentinel.cloud: set its name servers at the registrar: "
                         "ns-1.awsdns-01.com, ns-2.awsdns-02.net")
