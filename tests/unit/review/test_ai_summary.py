"""`deepsentinel review --ai`: the Bedrock summary on top of the report, on botocore's Stubber (which checks each
request and response against bedrock-runtime's service model) and, for an unreachable Bedrock, a real client
aimed at a closed local port. No call leaves the machine.

Shapes: "Converse" (Amazon Bedrock API Reference, bedrock-runtime): request modelId, system[].text,
messages[].role/content[].text, inferenceConfig.maxTokens/temperature; response output.message.content[].text,
stopReason, usage.inputTokens/outputTokens/totalTokens, metrics.latencyMs. Errors: the operation's error shapes in
botocore/data/bedrock-runtime/2023-09-30/service-2.json, with the messages the "Troubleshooting Amazon Bedrock API
Error Codes" page (Bedrock User Guide) and the Converse reference give for them.
Sensitive values: "JSON Output Format" (Terraform docs): a resource change's before_sensitive/after_sensitive mirror
the value with `true` where a value is sensitive.
"""

from __future__ import annotations

import copy
import json
import socket
import tomllib

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from deepsentinel.review import ai_summary
from deepsentinel.review.ai_summary import (DEFAULT_MODEL_ID, REDACTED, is_sensitive, markdown, plan_facts,
                                            summarize)
from deepsentinel.review.cost import DEFAULT_PRICES, PriceTable, Usage, estimate
from deepsentinel.review.diff import diff_documents, diff_plan
from deepsentinel.review.report import Review
from deepsentinel.review.risks import assess

from .conftest import STACK, USAGE, base_document, head_document, write_stacks

DB_PASSWORD = "n3w-Pa55word-from-the-plan"
MODEL_URI = "s3://deepsentinel-dev-models/detector-v2-TOPSECRET.pt"
DSN = "postgres://app:hunter2-in-a-dsn@db.internal:5432/app"

# `terraform show -json` of the fixture change with values the provider (or a sensitive variable) marks sensitive
PLAN = {"format_version": "1.2", "resource_changes": [
    {"address": "aws_db_instance.storage_db", "mode": "managed", "type": "aws_db_instance", "name": "storage_db",
     "change": {"actions": ["update"],
                "before": {"instance_class": "db.t3.micro", "password": "old-Pa55word"},
                "after": {"instance_class": "db.t3.small", "password": DB_PASSWORD},
                "after_unknown": {}, "before_sensitive": {"password": True}, "after_sensitive": {"password": True}}},
    {"address": "aws_ssm_parameter.pipeline_model-uri", "mode": "managed", "type": "aws_ssm_parameter",
     "name": "pipeline_model-uri",
     "change": {"actions": ["update"],
                "before": {"description": "model v1", "value": "s3://deepsentinel-dev-models/detector-v1.pt"},
                "after": {"description": "model v2", "value": MODEL_URI},
                "after_unknown": {}, "before_sensitive": {"value": True}, "after_sensitive": {"value": True}}},
    {"address": "aws_lambda_function.pipeline_sqs_to_batch", "mode": "managed", "type": "aws_lambda_function",
     "name": "pipeline_sqs_to_batch",
     "change": {"actions": ["update"],
                "before": {"environment": [{"variables": {"MODE": "slow", "DSN": "postgres://old"}}]},
                "after": {"environment": [{"variables": {"MODE": "fast", "DSN": DSN}}]},
                "after_unknown": {}, "before_sensitive": {"environment": [{"variables": {"DSN": True}}]},
                "after_sensitive": {"environment": [{"variables": {"DSN": True}}]}}},
]}

SUMMARY = "Safe to apply with care: the database class changes.\n\n- RDS restarts in the maintenance window."
CONVERSE_RESPONSE = {  # the Converse reference's response syntax
    "output": {"message": {"role": "assistant", "content": [{"text": SUMMARY}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 2140, "outputTokens": 96, "totalTokens": 2236},
    "metrics": {"latencyMs": 2310},
}


def _review(diff, base, head) -> Review:
    prices = PriceTable.load(DEFAULT_PRICES)
    usage = Usage(tomllib.loads(USAGE))
    return Review("base", "head", [diff], assess(diff, base, head, prod=False),
                  {STACK: estimate(STACK, head, prices, usage)}, {STACK: estimate(STACK, base, prices, usage)},
                  prices, "usage.toml", None)


@pytest.fixture(scope="module")
def plan_review() -> Review:
    base, head = base_document(), head_document()
    return _review(diff_plan(STACK, PLAN, base, head), base, head)


@pytest.fixture
def bedrock():
    """A bedrock-runtime client whose calls Stubber answers, and the Converse parameters each call sent."""
    client = boto3.client("bedrock-runtime", region_name="ap-northeast-2", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    sent: list[dict] = []
    client.meta.events.register("before-parameter-build.bedrock-runtime.Converse",
                                lambda params, **_: sent.append(copy.deepcopy(params)))
    with Stubber(client) as stubber:
        yield client, stubber, sent
        stubber.assert_no_pending_responses()


def test_the_summary_comes_from_converse(plan_review, bedrock):
    client, stubber, sent = bedrock
    stubber.add_response("converse", CONVERSE_RESPONSE)
    summary = summarize(client, plan_facts(plan_review, {STACK: PLAN}), model_id=DEFAULT_MODEL_ID, language="ko")
    assert summary.ok and summary.text == SUMMARY
    assert (summary.stop_reason, summary.input_tokens, summary.output_tokens) == ("end_turn", 2140, 96)
    (request,) = sent
    assert request["modelId"] == DEFAULT_MODEL_ID
    assert "Korean" in request["system"][0]["text"]
    assert request["messages"][0]["role"] == "user"
    assert request["inferenceConfig"]["maxTokens"] > 0
    facts = json.loads(request["messages"][0]["content"][0]["text"].split("\n\n", 1)[1])
    assert {c["address"] for c in facts["changes"]} == {
        "aws_db_instance.storage_db", "aws_ssm_parameter.pipeline_model-uri", "aws_lambda_function.pipeline_sqs_to_batch"}
    assert any(r["kind"] == "network" and "tcp 22 open" in r["why"] for r in facts["risks"])
    assert facts["cost"]["stacks"][STACK]["monthly_usd"] > 0
    md = markdown(summary)
    assert md.startswith(f"## AI summary ({DEFAULT_MODEL_ID}, ko)\n")
    assert SUMMARY in md


def test_sensitive_values_never_reach_the_model(plan_review, bedrock):
    client, stubber, sent = bedrock
    stubber.add_response("converse", CONVERSE_RESPONSE)
    summarize(client, plan_facts(plan_review, {STACK: PLAN}), language="en")
    request = json.dumps(sent[0], ensure_ascii=False)
    for secret in (DB_PASSWORD, "old-Pa55word", MODEL_URI, "detector-v1.pt", DSN, "postgres://old"):
        assert secret not in request
    facts = json.loads(sent[0]["messages"][0]["content"][0]["text"].split("\n\n", 1)[1])
    attrs = {(c["address"], a["path"]): a for c in facts["changes"] for a in c.get("attributes", [])}
    assert attrs[("aws_ssm_parameter.pipeline_model-uri", "value")]["after"] == REDACTED
    assert attrs[("aws_lambda_function.pipeline_sqs_to_batch", "environment[0].variables.DSN")]["after"] == REDACTED
    # what is not sensitive is what the model needs
    assert attrs[("aws_db_instance.storage_db", "instance_class")]["after"] == "db.t3.small"
    assert attrs[("aws_ssm_parameter.pipeline_model-uri", "description")]["after"] == "model v2"
    assert attrs[("aws_lambda_function.pipeline_sqs_to_batch", "environment[0].variables.MODE")]["after"] == "fast"


def test_the_report_itself_never_shows_a_value_terraform_marks_sensitive(plan_review):
    """`terraform show -json` writes sensitive values in clear and marks them in before_sensitive/after_sensitive
    ("JSON Output Format", Terraform docs): the markdown report (and its --json data) says the value changed and
    shows "(sensitive)" in its place, while other attributes keep their values."""
    from deepsentinel.review.report import render

    report = render(plan_review)
    for secret in (DB_PASSWORD, "old-Pa55word", MODEL_URI, DSN, "postgres://old"):
        assert secret not in report
    assert '`password`: "(sensitive)" → "(sensitive)"' in report
    assert "db.t3.micro" in report and "db.t3.small" in report
    changed = {a.path: (a.before, a.after) for d in plan_review.diffs for c in d.changes for a in c.attributes}
    assert changed["environment[0].variables.MODE"] == ("slow", "fast")
    assert changed["environment[0].variables.DSN"] == ("(sensitive)", "(sensitive)")


def test_secrets_without_plan_marks_are_withheld_by_name_and_shape():
    """A synthesized diff carries no sensitivity marks: secret-named attributes and secret-shaped values go too."""
    base, head = base_document(), head_document()
    head["resource"]["aws_db_instance"]["storage_db"]["password"] = "literal-in-the-config"
    head["resource"]["aws_sqs_queue"]["pipeline_jobs-queue"]["tags"] = {"Note": "key AKIAIOSFODNN7EXAMPLE"}
    facts = json.dumps(plan_facts(_review(diff_documents(STACK, base, head), base, head)))
    assert "literal-in-the-config" not in facts and "AKIAIOSFODNN7EXAMPLE" not in facts
    assert "db.t3.small" in facts


@pytest.mark.parametrize(("mask", "path", "sensitive"), [
    ({"password": True}, "password", True),
    ({"password": True}, "instance_class", False),
    (True, "anything.below[0]", True),  # the whole value is sensitive
    ({"environment": [{"variables": {"DSN": True}}]}, "environment[0].variables.DSN", True),
    ({"environment": [{"variables": {"DSN": True}}]}, "environment[0].variables.MODE", False),
    ({"environment": [{"variables": {"DSN": True}}]}, "environment", True),  # holds a sensitive value
    ({"tags": {"team.io/key": True}}, "tags.team.io/key", True),  # a dotted key: cannot follow, so withheld
    ({"tags": {"team.io/key": False}}, "tags.team.io/key", False),
    (None, "password", False),
    ({}, "value", False),
])
def test_sensitivity_by_path(mask, path, sensitive):
    assert is_sensitive(mask, path) is sensitive


# (error code, HTTP status, message as Bedrock words it, start of the heading's reason)
FAILURES = [
    ("AccessDeniedException", 403, "You don't have access to the model with the specified model ID.", "access denied"),
    ("ResourceNotFoundException", 404, "Model use case details have not been submitted for this account. Fill out "
     "the Anthropic use case details form before using the model.", "model not enabled"),
    ("ThrottlingException", 429, "Too many requests, please wait before trying again.", "throttled"),
    ("ValidationException", 400, "Invocation of model ID anthropic.claude-sonnet-4-5-20250929-v1:0 with on-demand "
     "throughput isn't supported. Retry your request with the ID or ARN of an inference profile that contains this "
     "model.", "request rejected"),
    ("ServiceUnavailableException", 503, "Bedrock is unable to process your request.", "Bedrock could not answer"),
    ("ModelNotReadyException", 429, "Model is not ready to serve inference requests.", "Bedrock could not answer"),
]


@pytest.mark.parametrize(("code", "status", "message", "heading"), FAILURES)
def test_a_failed_call_says_why_the_summary_is_missing(plan_review, bedrock, code, status, message, heading):
    client, stubber, _ = bedrock
    stubber.add_client_error("converse", service_error_code=code, service_message=message, http_status_code=status)
    summary = summarize(client, plan_facts(plan_review), language="en")
    assert not summary.ok and summary.error_code == code
    assert summary.reason.startswith(heading) and message in summary.reason
    assert markdown(summary).startswith(f"## AI summary unavailable: {heading}\n")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_bedrock_says_so(plan_review):
    client = boto3.client("bedrock-runtime", region_name="ap-northeast-2", aws_access_key_id="testing",
                          aws_secret_access_key="testing", endpoint_url=f"http://127.0.0.1:{_closed_port()}",
                          config=Config(retries={"max_attempts": 1}, connect_timeout=2))
    summary = summarize(client, plan_facts(plan_review), language="en")
    assert summary.error_code == "EndpointConnectionError"
    assert markdown(summary).startswith("## AI summary unavailable: Bedrock unreachable\n")


# --- through the command -----------------------------------------------------------------------------------------

@pytest.fixture
def stacks(tmp_path):
    (tmp_path / "usage.toml").write_text(USAGE)
    write_stacks(tmp_path / "base", {STACK: base_document()})
    write_stacks(tmp_path / "head", {STACK: head_document()})
    return tmp_path


def _review_cli(root, *extra: str) -> tuple[int, str]:
    from deepsentinel.cli import main

    out = root / f"review{len(list(root.glob('review*.md')))}.md"
    code = main(["review", "--head", str(root / "head"), "--base", str(root / "base"), "--usage",
                 str(root / "usage.toml"), "--no-policy", "--out", str(out), *extra])
    return code, out.read_text()


def test_the_summary_sits_atop_the_unchanged_report(stacks, monkeypatch, capsys):
    client = boto3.client("bedrock-runtime", region_name="ap-northeast-2", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    stubber = Stubber(client)
    stubber.add_response("converse", CONVERSE_RESPONSE)
    stubber.activate()
    monkeypatch.setattr(ai_summary, "bedrock_client", lambda region=None: client)
    code, plain = _review_cli(stacks)
    code_ai, with_ai = _review_cli(stacks, "--ai", "--ai-language", "ko", "--json")
    assert code == code_ai == 0
    top, rest = with_ai.split("---\n\n", 1)
    assert top.startswith(f"## AI summary ({DEFAULT_MODEL_ID}, ko)") and SUMMARY in top
    assert rest == plain
    data = json.loads(capsys.readouterr().out)
    assert data["ai_summary"]["status"] == "ok" and data["ai_summary"]["text"] == SUMMARY
    stubber.assert_no_pending_responses()


def test_the_review_succeeds_when_bedrock_is_unreachable(stacks, monkeypatch):
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(stacks / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(stacks / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", f"http://127.0.0.1:{_closed_port()}")
    code, plain = _review_cli(stacks)
    code_ai, with_ai = _review_cli(stacks, "--ai")
    assert code == code_ai == 0
    assert with_ai.startswith("## AI summary unavailable: Bedrock unreachable\n")
    assert with_ai.endswith(plain)


# --- the role the pull-request workflow calls Bedrock with --------------------------------------------------------

def test_dev_plan_role_may_converse_with_the_default_model_only(tmp_path_factory):
    """ReadOnlyAccess (as moto ships it) has no bedrock:InvokeModel, which Converse needs ("Carry out a
    conversation with the Converse API operations", Bedrock User Guide); dev's plan role gets it on the default
    model's inference profile and on the model in the Regions the global profile routes to ("Prerequisites for
    inference profiles"), prod's plan role not at all."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    from tests.synth_cache import synthesized
    from tests.unit.policy_eval import ACCOUNT_ID, ALLOW, IMPLICIT_DENY, identity_decision, resolve
    from tests.unit.synth_helpers import of_type

    # The account stack is built from the first environment's settings (test_github_oidc.py synthesizes the same).
    account = synthesized(tmp_path_factory, [("dev", ["github_repository=acme/deepsentinel"])]).documents[
        "deepsentinel-account"]
    read_only = json.loads(aws_managed_policies_data)["ReadOnlyAccess"]["Document"]

    def policies(role: str) -> list[dict]:
        (name,) = [n for n, r in of_type(account, "aws_iam_role").items() if r["name"] == role]
        return [resolve(p["policy"]) for p in of_type(account, "aws_iam_role_policy").values()
                if p["role"] == f"${{aws_iam_role.{name}.name}}"] + [read_only]

    dev, prod = policies("deepsentinel-dev-github-plan"), policies("deepsentinel-prod-github-plan")
    model = DEFAULT_MODEL_ID.split(".", 1)[1]
    profile = f"arn:aws:bedrock:ap-northeast-2:{ACCOUNT_ID}:inference-profile/{DEFAULT_MODEL_ID}"
    assert identity_decision([read_only], "bedrock:InvokeModel", profile) == IMPLICIT_DENY
    assert identity_decision(dev, "bedrock:InvokeModel", profile) == ALLOW
    for region in ("ap-northeast-2", "us-east-1", ""):  # a global profile's model ARN may carry no Region
        assert identity_decision(dev, "bedrock:InvokeModel", f"arn:aws:bedrock:{region}::foundation-model/{model}") == ALLOW
    assert identity_decision(dev, "bedrock:InvokeModel",
                             "arn:aws:bedrock:ap-northeast-2::foundation-model/anthropic.claude-opus-4-6-v1") == IMPLICIT_DENY
    assert identity_decision(dev, "bedrock:InvokeModelWithResponseStream", profile) == IMPLICIT_DENY
    assert identity_decision(prod, "bedrock:InvokeModel", profile) == IMPLICIT_DENY
