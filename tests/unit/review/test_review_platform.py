"""The review on the real synthesized platform (synthesized once per session by tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepsentinel.review.cost import PriceTable, Usage, estimate
from deepsentinel.review.policy import Baseline, BaselineError, Finding, evaluate

# One xdist worker runs them all: checkov runs over the platform's three stacks once, not once per worker.
pytestmark = pytest.mark.xdist_group("review_platform")
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def platform_policy(platform):
    """checkov once on dev, prod and the account stack against the repository's baseline."""
    return evaluate(platform.paths, platform.documents, Baseline.load())


def test_repository_baseline_covers_the_platform(platform_policy):
    assert platform_policy.error is None
    new = [(f.stack, f.check_id, f.path) for f in platform_policy.new]
    assert new == [], f"failed checks not in policy/checkov-baseline.toml: {new}"
    assert platform_policy.passed > 500 and len(platform_policy.findings) > 50
    assert platform_policy.stale == [], [s.describe() for s in platform_policy.stale]
    # every finding is mapped back to its construct path and gets a severity from the table
    assert all(f.module in {"network", "security", "encryption", "access-logs", "storage", "iam", "compute", "pipeline",
                            "people", "app-secrets", "stack"}
               for f in platform_policy.findings)
    assert not [f.check_id for f in platform_policy.findings if f.severity == "unknown"]


def test_prod_only_suppressions_do_not_leak(platform_policy):
    """dev-scoped entries (deletion protection, Multi-AZ off) must not cover the same finding in prod."""
    dev_only = [s for s in Baseline.load().suppressions if s.stacks == ("deepsentinel-dev",)]
    assert {s.check for s in dev_only} >= {"CKV_AWS_157", "CKV_AWS_293"}
    for s in dev_only:
        probe = Finding("deepsentinel-prod", s.check, "", "aws_db_instance.x", "storage/db", "storage", "HIGH")
        assert not s.covers(probe)


def test_baseline_entries_need_a_check_and_a_reason(tmp_path):
    bad = tmp_path / "baseline.toml"
    bad.write_text('[[suppress]]\ncheck = "CKV_AWS_18"\n\n[[suppress]]\nreason = "because it is fine"\n')
    with pytest.raises(BaselineError, match=r"#1 \(CKV_AWS_18\) gives no reason.*#2 names no check"):
        Baseline.load(bad)


def test_every_platform_resource_is_priced_or_free(platform):
    table, usage = PriceTable.load(), Usage.load()
    for stack, document in platform.documents.items():
        cost = estimate(stack, document, table, usage)
        assert cost.not_priced == [], (stack, cost.not_priced)
    dev = estimate("deepsentinel-dev", platform.dev, table, usage)
    prod = estimate("deepsentinel-prod", platform.prod, table, usage)
    assert dev.by_module()["compute"][0] < dev.by_module()["compute"][1]  # Fargate min < max tasks
    assert prod.by_module()["storage"][0] > dev.by_module()["storage"][0]  # Multi-AZ, bigger class
    assert prod.by_module()["network"][0] > dev.by_module()["network"][0]  # NAT per AZ, endpoints
    gpu = next(v for v in dev.variable if v.item.startswith("GPU"))
    assert gpu.usd_per_video == pytest.approx(4.0 / 60 * table.usd("ec2.g5.xlarge"))
    batch_idle = [line for line in dev.lines if line.address.startswith("aws_batch_compute_environment.")]
    assert [line.monthly_min for line in batch_idle] == [0.0]


def test_price_table_entries_name_source_and_date():
    table = PriceTable.load()
    for price in table.prices.values():
        assert price.source.startswith("https://aws.amazon.com/"), price
        assert len(price.date) == 10 and price.usd > 0, price
    assert table.region == "ap-northeast-2"


def test_review_against_itself_is_quiet(platform, tmp_path):
    from deepsentinel.cli import main

    out = tmp_path / "review.md"
    code = main(["review", "--head", str(platform.outdir), "--base", str(platform.outdir), "--no-policy",
                 "--env", "dev", "--out", str(out)])
    md = out.read_text()
    assert code == 0
    assert "`deepsentinel-dev` no changes" in md and "| **Risks** | none |" in md
    assert "deepsentinel-prod" not in md  # --env dev keeps dev (and the account stack)


def test_review_with_a_git_base(tmp_path, monkeypatch, capsys):
    """--base REF: `git archive` into a temp dir, synthesized there in a subprocess (no policy, dev only); the
    command itself runs in this process, from the checkout."""
    from deepsentinel.cli import main

    out = tmp_path / "review.md"
    monkeypatch.chdir(REPO)
    code = main(["review", "--base", "HEAD", "--env", "dev", "--no-policy", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    md = out.read_text()
    assert "`HEAD (" in md.splitlines()[0]
    assert "Base synthesized from HEAD" in md
