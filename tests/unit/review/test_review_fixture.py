"""Review of a small hand-written change: risks, changes, cost delta, not-priced and the exit code."""

from __future__ import annotations

import json
import re

import pytest

from deepsentinel.review.cost import PriceTable, Usage, estimate
from deepsentinel.review.diff import REMOVE, REPLACE, UPDATE, diff_documents, diff_plan
from deepsentinel.review.risks import HIGH, LOW, MEDIUM, assess

from .conftest import STACK, base_document, head_document, res

# With test_review_outputs.py on one xdist worker: the fixture's checkov runs (conftest.py) happen once.
pytestmark = pytest.mark.xdist_group("review_fixture")

@pytest.fixture(scope="module")
def fixture_risks():
    base, head = base_document(), head_document()
    return assess(diff_documents(STACK, base, head), base, head, prod=False)


def test_diff_reports_changed_attributes_per_module():
    diff = diff_documents(STACK, base_document(), head_document())
    by_module = diff.by_module()
    db = next(c for c in by_module["storage"] if c.address == "aws_db_instance.storage_db")
    assert db.action == UPDATE
    assert [(a.path, a.before, a.after) for a in db.attributes] == [("instance_class", "db.t3.micro", "db.t3.small")]
    removed = {c.address for c in diff.changes if c.action == REMOVE}
    assert removed == {"aws_s3_bucket.storage_highlights", "aws_s3_bucket_public_access_block.storage_highlights-pab"}
    policy = next(c for c in diff.changes if c.address == "aws_iam_role_policy.iam_lambda-policy")
    assert [a.path for a in policy.attributes] == ["policy.Statement[1]"]  # JSON strings are compared parsed
    assert diff.counts() == {"create": 2, "update": 3, "replace": 0, "delete": 2}


def test_expected_risks(fixture_risks):
    found = {(r.severity, r.address, r.kind) for r in fixture_risks}
    assert (HIGH, "aws_s3_bucket.storage_highlights", "destroy") in found
    assert (HIGH, "aws_vpc_security_group_ingress_rule.security_alb-ssh", "network") in found
    assert (HIGH, "aws_iam_role_policy.iam_lambda-policy", "iam") in found
    assert (MEDIUM, "aws_s3_bucket_lifecycle_configuration.storage_raw-videos-lifecycle", "retention") in found
    assert (LOW, "aws_db_instance.storage_db", "restart") in found
    # unchanged 443-from-the-world rule, pre-existing state: no risk
    assert not any(r.address.endswith("alb-https") for r in fixture_risks)
    why = {r.address: r.why for r in fixture_risks if r.kind in ("network", "retention")}
    assert "tcp 22 open to 0.0.0.0/0" in why["aws_vpc_security_group_ingress_rule.security_alb-ssh"]
    assert "365 -> 30" in why["aws_s3_bucket_lifecycle_configuration.storage_raw-videos-lifecycle"]
    assert [r.severity for r in fixture_risks] == sorted((r.severity for r in fixture_risks),
                                                         key=[HIGH, MEDIUM, LOW].index)


def test_prod_protection_and_replacement():
    base = base_document()
    head = json.loads(json.dumps(base).replace("deepsentinel-dev-postgres", "deepsentinel-dev-pg"))
    base["resource"]["aws_db_instance"]["storage_db"]["deletion_protection"] = True
    base["resource"]["aws_db_instance"]["storage_db"]["multi_az"] = True
    head["resource"]["aws_s3_bucket"]["storage_raw-videos"]["force_destroy"] = True
    risks = assess(diff_documents("deepsentinel-prod", base, head), base, head, prod=True)
    whys = {(r.kind, r.why.split(":")[0]) for r in risks if r.address == "aws_db_instance.storage_db"}
    assert ("replace", "replaces a stateful aws_db_instance (new resource, data not carried over)") in whys
    assert ("protection", "deletion protection off in prod") in whys
    assert ("protection", "Multi-AZ off in prod") in whys
    assert any(r.address == "aws_s3_bucket.storage_raw-videos" and r.why.startswith("force_destroy on") for r in risks)
    # the same change in dev raises no protection risk
    assert not [r for r in assess(diff_documents(STACK, base, head), base, head, prod=False) if r.kind == "protection"]


def test_public_bucket_is_a_risk():
    base, head = base_document(), base_document()
    head["resource"]["aws_s3_bucket_public_access_block"]["storage_raw-videos-pab"]["block_public_policy"] = False
    head["resource"]["aws_s3_bucket_policy"] = {"storage_raw-public": res(
        "storage", "raw-public", bucket="${aws_s3_bucket.storage_raw-videos.id}",
        policy=json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                          "Resource": "arn:aws:s3:::deepsentinel-dev-raw-videos/*"},
                                         {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                                          "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}))}
    risks = assess(diff_documents(STACK, base, head), base, head, prod=False)
    assert {r.address for r in risks if r.kind == "public"} == {
        "aws_s3_bucket_public_access_block.storage_raw-videos-pab", "aws_s3_bucket_policy.storage_raw-public"}


def test_plan_actions_override_the_synthesized_diff():
    base, head = base_document(), head_document()
    plan = {"resource_changes": [
        {"address": "aws_db_instance.storage_db", "mode": "managed", "type": "aws_db_instance", "name": "storage_db",
         "change": {"actions": ["delete", "create"], "before": {"instance_class": "db.t3.micro", "id": "a"},
                    "after": {"instance_class": "db.t3.small"}, "after_unknown": {"id": True},
                    "replace_paths": [["instance_class"]]}},
        {"address": "aws_sqs_queue.pipeline_jobs-queue", "mode": "managed", "type": "aws_sqs_queue",
         "name": "pipeline_jobs-queue", "change": {"actions": ["no-op"], "before": {}, "after": {}}}]}
    diff = diff_plan(STACK, plan, base, head)
    assert diff.source == "plan"
    assert [(c.address, c.action, c.module) for c in diff.changes] == [("aws_db_instance.storage_db", REPLACE, "storage")]
    attrs = {a.path: (a.after, a.forces_replacement) for a in diff.changes[0].attributes}
    assert attrs == {"instance_class": ("db.t3.small", True), "id": ("(known after apply)", False)}
    risks = assess(diff, base, head, prod=False)
    assert any(r.kind == "replace" and r.address == "aws_db_instance.storage_db" for r in risks)
    assert not any(r.kind == "destroy" for r in risks)  # the plan does not delete the bucket


def test_cost_delta_and_not_priced(fixture_dirs):
    table, usage = PriceTable.load(), Usage.load(fixture_dirs["usage"])
    base = estimate(STACK, base_document(), table, usage)
    head = estimate(STACK, head_document(), table, usage)
    assert base.not_priced == []
    assert [(u.address, u.type) for u in head.not_priced] == [("aws_mq_broker.pipeline_broker", "aws_mq_broker")]
    hours = table.hours_per_month
    expected = ((table.usd("rds_postgres.db.t3.small") - table.usd("rds_postgres.db.t3.micro")) * hours
                - 100 * table.usd("s3_standard_gb_month"))  # RDS class up, highlights bucket (100 GB) gone
    assert head.total - base.total == pytest.approx(expected)
    assert head.by_module()["network"][0] == pytest.approx(hours * table.usd("nat_gateway_hour"))
    lam = next(v for v in head.variable if v.item.startswith("Lambda"))
    assert lam.usd_per_video == pytest.approx(0.25 * table.usd("lambda_gb_second") + table.usd("lambda_request"))
    assert not any(v.item.startswith("GPU") for v in head.variable)  # no Batch compute environment here


def test_missing_price_is_not_priced_never_zero(fixture_dirs):
    table = PriceTable.load()
    prices = {k: v for k, v in table.prices.items() if k != "rds_postgres.db.t3.small"}
    thin = PriceTable(table.version, table.region, table.currency, table.hours_per_month, prices, table.free)
    cost = estimate(STACK, head_document(), thin, Usage.load(fixture_dirs["usage"]))
    missing = {u.address: u.reason for u in cost.not_priced}
    assert "rds_postgres.db.t3.small" in missing["aws_db_instance.storage_db"]
    assert not any(line.address == "aws_db_instance.storage_db" for line in cost.lines)


def test_review_command_on_the_fixture(fixture_review):
    md = fixture_review["markdown"]
    assert fixture_review["code"] == 1  # SSH open to the world is a failed check the baseline does not cover
    headline = md.split("### Risks")[0]
    assert "2 to add, 3 to change, 2 to destroy" in headline
    assert "🔴 3 high" in headline and "🟠 1 medium" in headline and "⚪ 1 low" in headline
    assert "❌" in headline and "not in the baseline" in headline
    assert "CKV_AWS_24" in md.split("### Policy")[1].split("<details>")[0]
    assert "`aws_mq_broker.pipeline_broker` (aws_mq_broker): no pricing rule" in md
    assert "`instance_class`: \"db.t3.micro\" → \"db.t3.small\"" in md
    visible = re.sub(r"<details>.*?</details>", "", md, flags=re.S)  # collapsed in the PR comment
    assert len([line for line in visible.splitlines() if line.strip()]) < 60


def test_fixture_base_passes_its_own_baseline(fixture_dirs, fixture_baseline):
    from deepsentinel.cli import main

    out = fixture_dirs["root"] / "base-review.md"
    code = main(["review", "--head", str(fixture_dirs["base"]), "--base", str(fixture_dirs["base"]),
                 "--usage", str(fixture_dirs["usage"]), "--baseline", str(fixture_baseline), "--out", str(out)])
    assert code == 0, out.read_text()
    assert "✅ no new failures" in out.read_text()


def test_iam_wildcards_on_data_services_only():
    from deepsentinel.review.risks import statement_conditions

    def check(*statements):
        return list(statement_conditions({"Statement": list(statements)}))

    assert check({"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}) == []  # "*"-only action
    assert check({"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"}) == []  # not a data service
    assert check({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "${aws_s3_bucket.b.arn}/*"}) == []
    assert check({"Effect": "Deny", "Action": "s3:*", "Resource": "*"}) == []
    assert check({"Sid": "Read", "Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"}) == [
        "statement Read: dynamodb actions on wildcard resource * (data service)"]
    assert check({"Sid": "All", "Effect": "Allow", "Action": "secretsmanager:*",
                  "Resource": "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:app-db"}) == [
        "statement All: wildcard action secretsmanager:* (data service)"]
