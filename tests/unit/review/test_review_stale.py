"""Stale baseline entries: only a review that saw every stack an entry applies to may call it stale.

The baseline's own contract (policy/checkov-baseline.toml, header): `stacks` are globs over stack names and an
entry without them applies to every stack. `review --env dev` sees the dev stack only, so an entry prod's findings
use is not stale there; removing it, as the old report advised, fails the gate of the next prod review.
"""

from __future__ import annotations

import json
from pathlib import Path

from deepsentinel.review.policy import Baseline, Suppression, evaluate

PROJECT_STACKS = ["deepsentinel-dev", "deepsentinel-prod", "deepsentinel-account"]


def _failed(check: str, stack: str) -> dict:
    """One failed check as checkov's terraform_json report lists it."""
    return {"check_id": check, "check_name": check, "resource": "aws_s3_bucket.b", "file_path": f"/{stack}/cdk.tf.json"}


def test_an_entry_is_stale_only_when_every_stack_it_applies_to_was_reviewed(tmp_path: Path):
    unscoped_used_by_prod = Suppression("CKV_A", "prod's finding, accepted")
    dev_unused = Suppression("CKV_B", "dev only, fixed since", stacks=("deepsentinel-dev",))
    prod_scoped = Suppression("CKV_C", "prod only", stacks=("deepsentinel-prod",))
    no_such_stack = Suppression("CKV_D", "a stack that does not exist", stacks=("deepsentinel-staging",))
    baseline = Baseline((unscoped_used_by_prod, dev_unused, prod_scoped, no_such_stack), {})
    dev_file = tmp_path / "deepsentinel-dev" / "cdk.tf.json"
    dev_only = {"summary": {"passed": 1}, "results": {"failed_checks": []}}

    dev_review = evaluate({"deepsentinel-dev": dev_file}, {"deepsentinel-dev": {}}, baseline, report=dev_only,
                          all_stacks=PROJECT_STACKS)
    assert dev_review.stale == [dev_unused, no_such_stack]

    files = {n: tmp_path / n / "cdk.tf.json" for n in PROJECT_STACKS}
    everything = {"summary": {"passed": 1}, "results": {"failed_checks": [
        _failed("CKV_A", "deepsentinel-prod"), _failed("CKV_C", "deepsentinel-prod")]}}
    full_review = evaluate(files, {n: {} for n in files}, baseline, report=everything, all_stacks=PROJECT_STACKS)
    assert full_review.stale == [dev_unused, no_such_stack]
    assert [f.suppression for f in full_review.findings] == [unscoped_used_by_prod, prod_scoped]

    nothing_in_prod_either = evaluate(files, {n: {} for n in files}, baseline, report=dev_only,
                                      all_stacks=PROJECT_STACKS)
    assert nothing_in_prod_either.stale == list(baseline.suppressions)


def test_review_of_dev_judges_the_repository_baseline_against_dev_only(platform, capsys):
    """`review --env dev` on the synthesized platform with the repository's baseline (checkov runs on dev): no
    entry is called stale, and the report says which stacks it did not review."""
    from deepsentinel.cli import main

    code = main(["review", "--env", "dev", "--head", str(platform.outdir), "--base", "none", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == data["exit_code"] == 0
    assert data["policy"]["status"] == "pass" and {f["stack"] for f in data["policy"]["findings"]} == {
        "deepsentinel-dev"}
    assert data["policy"]["stale_baseline_entries"] == []
    assert ("Not reviewed: deepsentinel-account, deepsentinel-prod; baseline entries that apply to them are not "
            "judged stale here.") in data["notes"]
    # The same checkov run judged without knowing the other stacks exist: what the old report told to remove.
    dev = {"deepsentinel-dev": platform.paths["deepsentinel-dev"]}
    blind = evaluate(dev, {"deepsentinel-dev": platform.dev}, Baseline.load())
    assert blind.stale and all(not s.stacks for s in blind.stale)

def test_project_stacks_are_the_apps_stacks():
    from deepsentinel.stacks.names import ACCOUNT_STACK
    from deepsentinel.commands.review import project_stacks

    assert project_stacks() == PROJECT_STACKS and ACCOUNT_STACK in project_stacks()
