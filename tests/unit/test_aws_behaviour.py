"""What AWS does that moto does not: each test names the AWS documentation it follows.

moto accepts API calls in any order, does not evaluate IAM or KMS key policies and stores whatever a
test gives it, so these expectations come from AWS's documentation and are checked on the stacks as
synthesized (and, where a policy decides, by evaluating the synthesized policy documents with moto's
IAM policy evaluator, which follows AWS's Allow/explicit-Deny logic for Action and Resource).
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.iam.aws_managed_policies import aws_managed_policies_data

from tests.unit.synth_helpers import named, of_type, only, policy, ref

ACCOUNT_WIDE_NAMES = {  # resource type -> the attribute that holds an account-wide (or global) name
    "aws_iam_user": "name", "aws_iam_group": "name", "aws_iam_role": "name", "aws_iam_policy": "name",
    "aws_iam_instance_profile": "name", "aws_s3_bucket": "bucket",
}


def resolved(text: str) -> str:
    """Terraform references as plain words: moto's matcher reads a policy's Resource as a regex (after
    turning * into .*), where `${...}` would not match itself."""
    return re.sub(r"\$\{([^}]*)\}", lambda m: "tok-" + re.sub(r"[^A-Za-z0-9-]", "-", m.group(1)), text)


def permits(document: dict, action: str, resource: str) -> PermissionResult:
    return IAMPolicy(resolved(json.dumps(document))).is_action_permitted(action, resolved(resource))


def container_environment(document, kind):
    _, definition = named(document, "aws_batch_job_definition", f"{kind}-job-definition")
    return {e["name"]: e["value"] for e in json.loads(definition["container_properties"])["environment"]}


@pytest.mark.parametrize("kind", ["gpu", "cpu"])
def test_job_definitions_pass_the_database_endpoint_the_secret_does_not_hold(platform, kind):
    """RDS-managed master secrets hold only the user name and password: "Password management with Amazon
    RDS and AWS Secrets Manager", https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-secrets-manager.html
    (the secret value is {"username", "password"}; the endpoint is an attribute of the DB instance)."""
    db_name, db = only(platform.dev, "aws_db_instance")
    environment = container_environment(platform.dev, kind)
    assert environment["DB_SECRET_ARN"] == "${aws_db_instance." + db_name + ".master_user_secret[0].secret_arn}"
    assert environment["DB_HOST"] == ref("aws_db_instance", db_name, "address")
    assert environment["DB_PORT"] == ref("aws_db_instance", db_name, "port")
    assert environment["DB_NAME"] == db["db_name"]


def test_alerts_topic_uses_a_customer_managed_key_that_alarms_and_budgets_may_use(platform):
    """CloudWatch alarms and AWS Budgets can publish to an encrypted topic only if the key policy lets
    their service principals use the key, which the AWS managed key alias/aws/sns cannot: "Encryption at
    rest", section "Enable compatibility between event sources from AWS services and encrypted topics",
    https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html (each service's call on the key is
    evaluated in tests/unit/test_key_policy.py). Rotation: "Rotate AWS KMS keys",
    https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html."""
    key_name, key = only(platform.dev, "aws_kms_key")
    _, topic = named(platform.dev, "aws_sns_topic", "alerts")
    assert topic["kms_master_key_id"] == ref("aws_kms_key", key_name, "arn")
    assert key["enable_key_rotation"] is True
    statements = policy(key)["Statement"]
    roles = next(s for s in statements if s["Sid"] == "AllowPublishingRoles")
    role_arn = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:role/deepsentinel-dev-"
    assert roles["Condition"]["ArnLike"]["aws:PrincipalArn"] == [
        f"{role_arn}lambda-batch-failure-monitor", f"{role_arn}batch-job"]
    for publisher in ("lambda-batch-failure-monitor-policy", "batch-job-policy"):
        document = policy(named(platform.dev, "aws_iam_role_policy", publisher)[1])
        assert permits(document, "kms:GenerateDataKey", ref("aws_kms_key", key_name, "arn")) == PermissionResult.PERMITTED


def test_every_topic_is_encrypted_with_the_environments_key(platform):
    """Same page as above: no topic may use the AWS managed key."""
    key_name, _ = only(platform.dev, "aws_kms_key")
    for name, topic in of_type(platform.dev, "aws_sns_topic").items():
        assert topic["kms_master_key_id"] == ref("aws_kms_key", key_name, "arn"), name


def test_ecs_services_wait_for_the_listeners_and_rules(platform):
    """ECS rejects CreateService with a target group that has no load balancer yet: "Troubleshooting service
    load balancers in Amazon ECS", https://docs.aws.amazon.com/AmazonECS/latest/developerguide/troubleshoot-service-load-balancers.html
    ("The target group ... does not have an associated load balancer"); the Terraform aws_ecs_service docs ask
    for depends_on on the listener for the same reason."""
    for document in (platform.dev, platform.prod):
        listeners = {f"aws_lb_listener.{n}" for n in of_type(document, "aws_lb_listener")}
        rules = {f"aws_lb_listener_rule.{n}" for n in of_type(document, "aws_lb_listener_rule")}
        for name, service in of_type(document, "aws_ecs_service").items():
            assert listeners | rules <= set(service["depends_on"]), name


def test_no_account_wide_name_is_in_two_stacks(platform):
    """IAM user, group, role, policy and instance profile names are unique in an account ("IAM identifiers",
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html) and S3 bucket names are
    global ("General purpose bucket naming rules", https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html):
    dev and prod may share an account only if no such name appears in two stacks."""
    owners: Counter[tuple[str, str]] = Counter()
    for stack, document in platform.documents.items():
        for resource_type, attribute in ACCOUNT_WIDE_NAMES.items():
            for config in of_type(document, resource_type).values():
                owners[(resource_type, config[attribute])] += 1
    assert [key for key, count in owners.items() if count > 1] == []
    for env in ("dev", "prod"):
        for resource_type, attribute in ACCOUNT_WIDE_NAMES.items():
            for config in of_type(platform.documents[f"deepsentinel-{env}"], resource_type).values():
                assert config[attribute].startswith(f"deepsentinel-{env}-"), (resource_type, config[attribute])


def test_people_live_in_the_account_stack(platform):
    """Same IAM identifiers page: the people are created once per account, whatever the environments."""
    account = platform.documents["deepsentinel-account"]
    assert {u["name"] for u in of_type(account, "aws_iam_user").values()} == {"alice", "bob", "carol"}
    assert {g["name"] for g in of_type(account, "aws_iam_group").values()} == {
        "deepsentinel-admins", "deepsentinel-developers"}
    for env in ("dev", "prod"):
        document = platform.documents[f"deepsentinel-{env}"]
        assert not of_type(document, "aws_iam_user") and not of_type(document, "aws_iam_group")


def test_db_secret_rotation_restarts_the_backend(platform):
    """RDS rotates a managed master secret every 7 days by default ("Password management with Amazon RDS
    and AWS Secrets Manager", rotation section, https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-secrets-manager.html),
    and ECS reads a secret into an environment variable only when the container starts ("Pass Secrets Manager
    secrets through Amazon ECS environment variables", https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html:
    "... you must launch new tasks or force a new deployment"). Secrets Manager sends RotationSucceeded to
    EventBridge ("Match AWS Secrets Manager events with Amazon EventBridge",
    https://docs.aws.amazon.com/secretsmanager/latest/userguide/monitoring-eventbridge.html)."""
    db_name, _ = only(platform.dev, "aws_db_instance")
    rule_name, rule = named(platform.dev, "aws_cloudwatch_event_rule", "db-secret-rotated")
    # What the pattern matches is evaluated against the documented event in test_event_patterns.py; here: it is
    # this instance's secret it names.
    assert "${aws_db_instance." + db_name + ".master_user_secret[0].secret_arn}" in rule["event_pattern"]
    _, target = named(platform.dev, "aws_cloudwatch_event_target", "db-secret-rotated")
    function_name, function = named(platform.dev, "aws_lambda_function", "ecs_redeploy")
    assert target["arn"] == ref("aws_lambda_function", function_name, "arn")
    assert target["rule"] == ref("aws_cloudwatch_event_rule", rule_name, "name")
    # by name (the function is created beside the instance, not after it): the deployed services' names, and the
    # instance whose master secret it checks a rotation against (lambdas/ecs_redeploy)
    variables = function["environment"]["variables"]
    services = {service["name"] for service in of_type(platform.dev, "aws_ecs_service").values()}
    assert set(variables["SERVICES"].split(",")) == services
    assert variables["CLUSTER"] == only(platform.dev, "aws_ecs_cluster")[1]["name"]
    assert variables["DB_INSTANCE"] == only(platform.dev, "aws_db_instance")[1]["identifier"]
    role_policy = policy(named(platform.dev, "aws_iam_role_policy", "lambda-ecs-redeploy")[1])
    for service in ("frontend", "backend"):
        service_arn = ("arn:aws:ecs:ap-northeast-2:${data.aws_caller_identity.current.account_id}:"
                       f"service/deepsentinel-dev-cluster/deepsentinel-dev-{service}")
        assert permits(role_policy, "ecs:UpdateService", service_arn) == PermissionResult.PERMITTED
    instance_arn = ("arn:aws:rds:ap-northeast-2:${data.aws_caller_identity.current.account_id}:db:"
                    + variables["DB_INSTANCE"])
    assert permits(role_policy, "rds:DescribeDBInstances", instance_arn) == PermissionResult.PERMITTED


def test_job_role_may_list_the_raw_bucket_so_a_missing_video_is_a_404(platform):
    """Without s3:ListBucket, S3 answers GetObject of a missing key with 403 AccessDenied, with it 404
    NoSuchKey: "GetObject", Permissions, https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html."""
    raw = next(ref("aws_s3_bucket", n, "arn") for n, b in of_type(platform.dev, "aws_s3_bucket").items()
               if b["bucket"] == "deepsentinel-dev-raw-videos")
    highlights = next(ref("aws_s3_bucket", n, "arn") for n, b in of_type(platform.dev, "aws_s3_bucket").items()
                      if b["bucket"] == "deepsentinel-dev-highlights")
    job = policy(named(platform.dev, "aws_iam_role_policy", "batch-job-policy")[1])
    assert permits(job, "s3:ListBucket", raw) == PermissionResult.PERMITTED
    assert permits(job, "s3:ListBucket", highlights) == PermissionResult.NEUTRAL  # implicit deny


def test_ecr_lifecycle_never_expires_tagged_images(platform):
    """An imageCountMoreThan rule over tagStatus "any" expires the oldest images whatever uses them
    ("Lifecycle policy properties", https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html),
    and a task or job whose image is gone fails with CannotPullContainerError."""
    for name, config in of_type(platform.dev, "aws_ecr_lifecycle_policy").items():
        rules = json.loads(config["policy"])["rules"]
        assert rules and all(r["selection"]["tagStatus"] == "untagged" for r in rules), name


def test_deletion_and_mapping_order_follows_the_roles(platform):
    """A Batch compute environment whose service role policy is removed first sticks in DELETING (Terraform
    aws_batch_compute_environment docs, and "AWS Batch service IAM role",
    https://docs.aws.amazon.com/batch/latest/userguide/service_IAM_role.html); CreateEventSourceMapping checks
    that the function's role may read the queue ("Amazon SQS execution role permissions",
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html#events-sqs-permissions)."""
    _, environment = only(platform.dev, "aws_batch_compute_environment")
    attachment = named(platform.dev, "aws_iam_role_policy_attachment", "batch-service")[0]
    assert f"aws_iam_role_policy_attachment.{attachment}" in environment["depends_on"]
    _, mapping = only(platform.dev, "aws_lambda_event_source_mapping")
    role_policy = named(platform.dev, "aws_iam_role_policy", "lambda-sqs-to-batch")[0]
    assert f"aws_iam_role_policy.{role_policy}" in mapping["depends_on"]


def test_prod_serves_https_only_by_default(platform):
    """An ALB listener on HTTP carries the API and the Django admin in clear text; "Create an HTTPS listener
    for your Application Load Balancer", https://docs.aws.amazon.com/elasticloadbalancing/latest/application/create-https-listener.html."""
    listeners = {c["port"]: c for c in of_type(platform.prod, "aws_lb_listener").values()}
    assert listeners[443]["protocol"] == "HTTPS" and listeners[443]["ssl_policy"].startswith("ELBSecurityPolicy-TLS13")
    assert listeners[80]["default_action"][0]["type"] == "redirect"
    assert listeners[80]["default_action"][0]["redirect"]["protocol"] == "HTTPS"


def test_ecr_cleanup_runs_in_the_schedule_time_zone(platform):
    """EventBridge rule cron expressions are UTC ("Creating a rule that runs on a schedule",
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-rule-schedule.html); EventBridge Scheduler
    takes a time zone ("Schedule types", https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html)."""
    assert not [n for n, r in of_type(platform.dev, "aws_cloudwatch_event_rule").items() if "schedule_expression" in r]
    _, schedule = named(platform.dev, "aws_scheduler_schedule", "ecr-cleanup")
    assert schedule["schedule_expression_timezone"] == "Asia/Seoul"
    function_name, _ = named(platform.dev, "aws_lambda_function", "ecr_cleanup")
    assert schedule["target"]["arn"] == ref("aws_lambda_function", function_name, "arn")
    role = policy(named(platform.dev, "aws_iam_role_policy", "scheduler-policy")[1])
    function_arn = "arn:aws:lambda:ap-northeast-2:${data.aws_caller_identity.current.account_id}:function:deepsentinel-dev-ecr-cleanup"
    assert permits(role, "lambda:InvokeFunction", function_arn) == PermissionResult.PERMITTED


def _evaluate(documents, action, resource):
    """AWS's evaluation: an explicit Deny in any policy wins, else an Allow in any policy
    ("Policy evaluation logic", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html)."""
    results = [permits(d, action, resource) for d in documents]
    if PermissionResult.DENIED in results:
        return "deny"
    return "allow" if PermissionResult.PERMITTED in results else "implicit deny"


def test_developers_read_no_data_and_can_plan(platform):
    """ReadOnlyAccess grants s3:Get* on every bucket (the AWS managed policy); an explicit Deny overrides it
    ("Policy evaluation logic", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
    Evaluated on the policies as synthesized plus the managed policy's real document."""
    account = platform.documents["deepsentinel-account"]
    read_only = json.loads(aws_managed_policies_data)["ReadOnlyAccess"]["Document"]
    documents = [read_only, *(policy(c) for n, c in of_type(account, "aws_iam_group_policy").items())]
    assert documents[1:], "no inline policies found"
    for env in ("dev", "prod"):
        for purpose in ("raw-videos", "highlights", "thumbnails", "analysis-models"):
            obj = f"arn:aws:s3:::deepsentinel-{env}-{purpose}/videos/cam-1/clip.mp4"
            assert _evaluate(documents, "s3:GetObject", obj) == "deny", obj
            assert _evaluate(documents, "s3:GetObjectVersion", obj) == "deny", obj
    state = "arn:aws:s3:::deepsentinel-tfstate"
    assert _evaluate(documents, "s3:GetObject", f"{state}/deepsentinel-dev/terraform.tfstate") == "allow"
    assert _evaluate(documents, "s3:GetObjectVersion", f"{state}/deepsentinel-dev/terraform.tfstate") == "deny"
    assert _evaluate(documents, "s3:ListBucketVersions", state) == "deny"
    assert _evaluate(documents, "s3:PutObject", f"{state}/deepsentinel-dev/terraform.tfstate") != "allow"
    # A plan takes the lock. It opens no ephemeral key: the Django key is the account stack's, which administrators
    # apply, so developers get neither GetRandomPassword nor a secret's value (ReadOnlyAccess has neither).
    assert _evaluate(documents, "s3:PutObject", f"{state}/deepsentinel-dev/terraform.tfstate.tflock") == "allow"
    assert _evaluate(documents, "secretsmanager:GetRandomPassword", "*") == "implicit deny"
    django = "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:deepsentinel/dev/django-secret-key-AbCdEf"
    assert _evaluate(documents, "secretsmanager:GetSecretValue", django) == "implicit deny"
