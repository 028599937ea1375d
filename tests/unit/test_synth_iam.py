"""IAM module and people: least-privilege roles, no wildcard actions on data services, people."""

from __future__ import annotations

from tests.unit.synth_helpers import of_type, policy

DATA_SERVICES = ("s3", "dynamodb", "sqs", "secretsmanager", "rds", "sns", "kms", "logs")


def inline_policies(document):
    for resource_type in ("aws_iam_role_policy", "aws_iam_group_policy", "aws_iam_user_policy"):
        for name, config in of_type(document, resource_type).items():
            yield name, policy(config)


def test_no_wildcard_actions_on_data_services(platform):
    for name, document in inline_policies(platform.dev):
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            for action in actions:
                service, _, verb = action.partition(":")
                assert action != "*" and not (service in DATA_SERVICES and "*" in verb), (name, action)
                if service in DATA_SERVICES:
                    assert statement["Resource"] != "*", (name, action)


def test_one_role_per_lambda_with_only_its_own_permissions(platform):
    roles = {r["name"].removeprefix("deepsentinel-dev-"): r for r in of_type(platform.dev, "aws_iam_role").values()}
    assert {"lambda-sqs-to-batch", "lambda-batch-failure-monitor", "lambda-ecr-cleanup"} <= set(roles)
    policies = {n.split("_")[1]: p for n, p in inline_policies(platform.dev)}
    sqs_actions = {a for s in policies["lambda-sqs-to-batch-policy"]["Statement"] for a in s["Action"]}
    assert "batch:SubmitJob" in sqs_actions and not any(a.startswith("sns:") for a in sqs_actions)
    monitor_actions = {a for s in policies["lambda-batch-failure-monitor-policy"]["Statement"] for a in s["Action"]}
    assert "sns:Publish" in monitor_actions and "batch:SubmitJob" not in monitor_actions


def test_batch_job_role_reads_raw_and_writes_highlights(platform):
    policies = {n.split("_")[1]: p for n, p in inline_policies(platform.dev)}
    statements = {s["Sid"]: s for s in policies["batch-job-policy"]["Statement"]}
    assert statements["ReadInputs"]["Action"] == ["s3:GetObject"]
    assert statements["WriteResults"]["Action"] == ["s3:PutObject"]


def test_the_backend_and_its_task_start_may_read_the_django_key_and_nothing_else_of_the_account(platform):
    """The ECS task execution role fetches container secrets at task start and the backend reads them
    ("Required IAM permissions for Amazon ECS secrets", ECS Developer Guide: secretsmanager:GetSecretValue on the
    secret; kms:Decrypt only for a custom KMS key, not the default one). The Django key's secret is the account
    stack's, encrypted with the AWS managed aws/secretsmanager key (its policy lets the account's principals use it
    through Secrets Manager, "AWS managed keys", KMS Developer Guide). Only these two roles may read it; neither
    may read another environment's key or list secrets."""
    from tests.unit.policy_eval import ACCOUNT_ID, ALLOW, IMPLICIT_DENY, identity_decision, resolve
    from tests.unit.synth_helpers import named

    (lookup,) = platform.dev["data"]["aws_secretsmanager_secret"]
    arn = f"arn:aws:secretsmanager:ap-northeast-2:{ACCOUNT_ID}:secret:deepsentinel/{{}}/django-secret-key-AbCdEf"
    django, prod = arn.format("dev"), arn.format("prod")
    reference = f"data.aws_secretsmanager_secret.{lookup}.arn"
    readers = {n for n, c in of_type(platform.dev, "aws_iam_role_policy").items() if reference in c["policy"]}
    assert readers == {named(platform.dev, "aws_iam_role_policy", f"{r}-policy")[0]
                       for r in ("ecs-task-execution", "backend-task")}
    for name in readers:
        document = resolve(policy(of_type(platform.dev, "aws_iam_role_policy")[name]), {reference: django},
                           default="arn:aws:s3:::unrelated")
        assert identity_decision([document], "secretsmanager:GetSecretValue", django) == ALLOW, name
        assert identity_decision([document], "secretsmanager:GetSecretValue", prod) == IMPLICIT_DENY, name
        assert identity_decision([document], "secretsmanager:ListSecrets", "*") == IMPLICIT_DENY, name


def test_groups_and_users_and_no_ci_user(platform):
    """CI has no IAM user with long-lived keys: the workflows assume OIDC roles (tests/unit/test_github_oidc.py)."""
    account = platform.documents["deepsentinel-account"]
    groups = {g["name"] for g in of_type(account, "aws_iam_group").values()}
    assert groups == {"deepsentinel-admins", "deepsentinel-developers"}
    users = {u["name"] for u in of_type(account, "aws_iam_user").values()}
    assert users == {"alice", "bob", "carol"}
    assert of_type(account, "aws_iam_user_policy") == {} and of_type(account, "aws_iam_user_policy_attachment") == {}


def test_the_worker_can_tell_a_missing_model_from_a_forbidden_one(platform):
    """S3 answers a GetObject of a missing key with 404 NoSuchKey only to a caller allowed s3:ListBucket on the
    bucket, else with 403 AccessDenied ("GetObject", Amazon S3 API Reference, Permissions). The worker's ModelMissing
    says to run `deepsentinel model publish` on a 404, so the job role may list the models bucket (and the raw one),
    evaluated with principalmapper; it may not list the others."""
    from tests.unit.policy_eval import ALLOW, IMPLICIT_DENY, identity_decision, resolve
    from tests.unit.synth_helpers import named, of_type

    references = {}
    for name, bucket in of_type(platform.dev, "aws_s3_bucket").items():
        references |= {f"aws_s3_bucket.{name}.arn": f"arn:aws:s3:::{bucket['bucket']}",
                       f"aws_s3_bucket.{name}.bucket": bucket["bucket"], f"aws_s3_bucket.{name}.id": bucket["bucket"]}
    _, policy = named(platform.dev, "aws_iam_role_policy", "batch-job-policy")
    document = resolve(policy["policy"], references, default="arn:aws:unresolved:::x")
    decision = {purpose: identity_decision([document], "s3:ListBucket", f"arn:aws:s3:::deepsentinel-dev-{purpose}")
                for purpose in ("analysis-models", "raw-videos", "thumbnails", "terraform-state")}
    assert decision == {"analysis-models": ALLOW, "raw-videos": ALLOW, "thumbnails": IMPLICIT_DENY,
                        "terraform-state": IMPLICIT_DENY}
    assert identity_decision([document], "s3:GetObject",
                             "arn:aws:s3:::deepsentinel-dev-analysis-models/models/yolov8n.pt") == ALLOW
