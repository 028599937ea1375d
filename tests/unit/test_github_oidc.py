"""The GitHub OIDC roles of the account stack, evaluated (tests/unit/policy_eval.py) against GitHub's documented
token claims and AWS's documented evaluation, on the stacks as synthesized with `github_repository` set.

Claims: "OpenID Connect reference" (GitHub Docs, https://docs.github.com/en/actions/reference/security/oidc),
"Example subject claims": a job that references an environment gets `repo:ORG/REPO:environment:NAME` whatever
its event; otherwise a pull_request event gets `repo:ORG/REPO:pull_request` and a push
`repo:ORG/REPO:ref:refs/heads/BRANCH`. The audience is what the action asks for: aws-actions/configure-aws-credentials
asks for `sts.amazonaws.com` ("Configuring OpenID Connect in Amazon Web Services", GitHub Docs); GitHub's default
audience is the owner's URL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from moto.iam.aws_managed_policies import aws_managed_policies_data

from deepsentinel.settings import SettingsError, load_settings
from tests.unit.policy_eval import (ACCOUNT_ID, ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, identity_decision, resolve,
                                    web_identity_decision)
from tests.unit.synth_helpers import of_type

REPO_ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = "acme/deepsentinel"
HOST = "token.actions.githubusercontent.com"
PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{HOST}"
BOUNDARY_ARN = f"arn:aws:iam::{ACCOUNT_ID}:policy/deepsentinel-permissions-boundary"
STATE = "arn:aws:s3:::deepsentinel-tfstate"
ROLES = [(env, kind) for env in ("dev", "prod") for kind in ("plan", "publish", "deploy")]
MANAGED = json.loads(aws_managed_policies_data)  # AWS managed policy documents as moto ships them


def token(sub: str, aud: str = "sts.amazonaws.com") -> dict[str, str]:
    return {"sub": sub, "aud": aud, "iss": f"https://{HOST}"}


# GitHub's documented subject formats, for this repository and others.
PULL_REQUEST = token(f"repo:{REPOSITORY}:pull_request")
PUSH_TO_MAIN = token(f"repo:{REPOSITORY}:ref:refs/heads/main")
PUSH_TO_A_BRANCH = token(f"repo:{REPOSITORY}:ref:refs/heads/feature")
DEV_ENVIRONMENT = token(f"repo:{REPOSITORY}:environment:dev")
PROD_ENVIRONMENT = token(f"repo:{REPOSITORY}:environment:prod")
ANOTHER_REPOSITORY = [token("repo:mallory/deepsentinel:environment:prod"),
                      token(f"repo:{REPOSITORY}-fork:environment:prod"),
                      token("repo:mallory/deepsentinel:pull_request")]
DEFAULT_AUDIENCE = token(f"repo:{REPOSITORY}:environment:prod", aud="https://github.com/acme")


@pytest.fixture(scope="module")
def github(tmp_path_factory):
    """dev and the account stack, synthesized with github_repository (and no failure-monitor token)."""
    from tests.synth_cache import synthesized

    return synthesized(tmp_path_factory, [("dev", [f"github_repository={REPOSITORY}"])]).documents


def _provider_references(account: dict) -> dict[str, str]:
    return {f"aws_iam_openid_connect_provider.{name}.arn": PROVIDER_ARN
            for name in of_type(account, "aws_iam_openid_connect_provider")}


def _boundary_references(account: dict) -> dict[str, str]:
    return {f"aws_iam_policy.{name}.arn": BOUNDARY_ARN for name in of_type(account, "aws_iam_policy")}


def _role(account: dict, env: str, kind: str) -> tuple[str, dict]:
    (match,) = [(n, r) for n, r in of_type(account, "aws_iam_role").items()
                if r["name"] == f"deepsentinel-{env}-github-{kind}"]
    return match


def assume(account: dict, env: str, kind: str, claims: dict[str, str]) -> str:
    _, role = _role(account, env, kind)
    trust = resolve(role["assume_role_policy"], _provider_references(account))
    return web_identity_decision(trust, provider_arn=PROVIDER_ARN, provider_host=HOST, claims=claims,
                                 role_arn=f"arn:aws:iam::{ACCOUNT_ID}:role/{role['name']}")


def identity(account: dict, env: str, kind: str) -> tuple[list[dict], dict | None]:
    """The role's identity policies (inline + AWS managed documents) and its permissions boundary."""
    name, role = _role(account, env, kind)
    reference = f"${{aws_iam_role.{name}.name}}"
    inline = [resolve(p["policy"]) for p in of_type(account, "aws_iam_role_policy").values() if p["role"] == reference]
    managed = [MANAGED[a["policy_arn"].rsplit("/", 1)[1]]["Document"]
               for a in of_type(account, "aws_iam_role_policy_attachment").values() if a["role"] == reference]
    boundary = None
    if role.get("permissions_boundary"):
        assert resolve(json.dumps(role["permissions_boundary"]), _boundary_references(account)) == BOUNDARY_ARN
        (policy,) = of_type(account, "aws_iam_policy").values()
        boundary = resolve(policy["policy"])
    return inline + managed, boundary


@pytest.mark.parametrize(("claims", "allowed"), [
    (PULL_REQUEST, {("dev", "plan"), ("prod", "plan")}),
    (PUSH_TO_MAIN, {("dev", "publish")}),
    (DEV_ENVIRONMENT, {("dev", "publish"), ("dev", "deploy")}),
    (PROD_ENVIRONMENT, {("prod", "publish"), ("prod", "deploy")}),
    (PUSH_TO_A_BRANCH, set()),
    *((claims, set()) for claims in ANOTHER_REPOSITORY),
    (DEFAULT_AUDIENCE, set()),
], ids=["pull-request", "push-to-main", "environment-dev", "environment-prod", "push-to-a-branch",
        "another-owner", "a-fork-named-like-it", "another-repositorys-pull-request", "default-audience"])
def test_each_run_may_assume_exactly_its_roles(github, claims, allowed):
    """Trust: Federated = the provider, sts:AssumeRoleWithWebIdentity, aud = sts.amazonaws.com and the exact `sub`
    (GitHub's "Configuring OpenID Connect in Amazon Web Services"; IAM's "Create a role for OpenID Connect
    federation"). A pull request asking for a deploy role and any other repository are refused."""
    account = github["deepsentinel-account"]
    decisions = {(env, kind): assume(account, env, kind, claims) for env, kind in ROLES}
    assert {role for role, decision in decisions.items() if decision == ALLOW} == allowed
    assert set(decisions.values()) <= {ALLOW, IMPLICIT_DENY}


def test_trust_conditions_use_string_equals_on_aud_and_sub(github):
    """GitHub's AWS page: StringEquals on `...:aud` and `...:sub` (not ForAllValues, not a wildcard `sub`)."""
    account = github["deepsentinel-account"]
    for env, kind in ROLES:
        (statement,) = json.loads(_role(account, env, kind)[1]["assume_role_policy"])["Statement"]
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert set(statement["Condition"]) == {"StringEquals"}
        assert set(statement["Condition"]["StringEquals"]) == {f"{HOST}:aud", f"{HOST}:sub"}


def test_the_workflows_assume_roles_their_jobs_may_assume(github):
    """Each configure-aws-credentials step names a repository variable the account stack outputs, and the sub claim
    its job gets (GitHub's rules above: the job's `environment`, else the workflow's event) is trusted by that role."""
    account = github["deepsentinel-account"]
    variables = {}
    for name, reference in account["output"]["github_role_arns"]["value"].items():
        role_name = next(r["name"] for n, r in of_type(account, "aws_iam_role").items()
                         if reference == f"${{aws_iam_role.{n}.arn}}")
        env, _, kind = role_name.removeprefix("deepsentinel-").partition("-github-")
        variables[name] = (env, kind)
    assumed = []
    for workflow in ("pull-request.yml", "release.yml"):
        document = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / workflow).read_text())
        events = document[True]  # PyYAML reads the key `on` as True
        for job in document["jobs"].values():
            for step in job.get("steps", []):
                if not str(step.get("uses", "")).startswith("aws-actions/configure-aws-credentials"):
                    continue
                variable = step["with"]["role-to-assume"].removeprefix("${{ vars.").removesuffix(" }}")
                assert variable in variables, f"{workflow}: {variable} is no output of the account stack"
                environment = job.get("environment")
                if isinstance(environment, dict):
                    environment = environment["name"]
                if environment:
                    sub = f"repo:{REPOSITORY}:environment:{environment}"
                elif "pull_request" in events:
                    sub = f"repo:{REPOSITORY}:pull_request"
                else:
                    sub = f"repo:{REPOSITORY}:ref:refs/heads/main"
                assert assume(account, *variables[variable], token(sub)) == ALLOW, (workflow, variable, sub)
                assumed.append(variables[variable])
    assert set(assumed) >= {("dev", "plan"), ("dev", "publish"), ("dev", "deploy"), ("prod", "publish"),
                            ("prod", "deploy")}


def test_immutable_subject_format(tmp_path):
    """Repositories created after 2026-07-15 get `repo:OWNER@OWNER-ID/REPO@REPO-ID:...` ("OpenID Connect
    reference", Immutable subject claims): with github_repository_ids the roles trust that format only."""
    from deepsentinel.app import synth_account
    from deepsentinel.stacks.provider import StackOptions
    from deepsentinel.synthesized import load

    settings = load_settings("dev", overrides=[f"github_repository={REPOSITORY}",
                                               "github_repository_ids=123456/456789"])
    account = load(synth_account(settings, outdir=tmp_path, options=StackOptions()))
    assert assume(account, "prod", "deploy", token("repo:acme@123456/deepsentinel@456789:environment:prod")) == ALLOW
    assert assume(account, "prod", "deploy", PROD_ENVIRONMENT) == IMPLICIT_DENY
    another_owner = token("repo:acme@999/deepsentinel@456789:environment:prod")
    assert assume(account, "prod", "deploy", another_owner) == IMPLICIT_DENY


def test_an_existing_provider_is_used_not_created(tmp_path):
    """An account has at most one IAM OIDC provider per URL (CreateOpenIDConnectProvider fails with
    EntityAlreadyExists): github_oidc_provider_arn names it and the roles trust it."""
    from deepsentinel.app import synth_account
    from deepsentinel.stacks.provider import StackOptions
    from deepsentinel.synthesized import load

    existing = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{HOST}"
    settings = load_settings("dev", overrides=[f"github_repository={REPOSITORY}",
                                               f"github_oidc_provider_arn={existing}"])
    account = load(synth_account(settings, outdir=tmp_path, options=StackOptions()))
    assert of_type(account, "aws_iam_openid_connect_provider") == {}
    assert assume(account, "dev", "plan", PULL_REQUEST) == ALLOW


def test_the_plan_role_can_plan_and_read_no_data(github):
    """What `terraform plan` with the S3 backend and use_lockfile calls ("Backend Type: s3", Permissions Required:
    s3:ListBucket, s3:GetObject on the state, s3:GetObject/PutObject/DeleteObject on `<key>.tflock`) and the reads
    ReadOnlyAccess gives a refresh; an explicit Deny on data objects wins ("Policy evaluation logic"). Nothing of
    Secrets Manager beyond ReadOnlyAccess' metadata reads: the Django key is the account stack's, so an environment's
    plan neither opens the ephemeral random password (GetRandomPassword) nor refreshes a secret version
    (GetSecretValue), and the pull request's code, which runs in this job, may do neither (recorded in
    tests/unit/test_recorded_terraform_calls.py)."""
    policies, boundary = identity(github["deepsentinel-account"], "dev", "plan")
    assert boundary is None

    def decide(action: str, resource: str) -> str:
        return identity_decision(policies, action, resource)

    state = f"{STATE}/deepsentinel-dev/terraform.tfstate"
    assert decide("s3:ListBucket", STATE) == ALLOW
    assert decide("s3:GetObject", state) == ALLOW
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
        assert decide(action, f"{state}.tflock") == ALLOW
    assert decide("secretsmanager:GetRandomPassword", "*") == IMPLICIT_DENY
    assert decide("ec2:DescribeVpcs", "*") == ALLOW
    assert decide("s3:PutObject", state) == IMPLICIT_DENY
    assert decide("s3:GetObjectVersion", state) == EXPLICIT_DENY
    assert decide("s3:GetObject", "arn:aws:s3:::deepsentinel-dev-raw-videos/videos/cam-1/clip.mp4") == EXPLICIT_DENY
    assert decide("secretsmanager:GetSecretValue", "*") == IMPLICIT_DENY
    django = f"arn:aws:secretsmanager:ap-northeast-2:{ACCOUNT_ID}:secret:deepsentinel/dev/django-secret-key-AbCdEf"
    assert decide("secretsmanager:GetSecretValue", django) == IMPLICIT_DENY
    assert decide("secretsmanager:DescribeSecret", django) == ALLOW  # the environment's lookup of it


def test_the_publish_roles_push_only_to_their_worker_repository(github):
    """ECR's "Pushing a Docker image" lists the push actions; the repository ARN is the resource (Service
    Authorization Reference, Amazon ECR); GetAuthorizationToken takes "*". Prod's role also pulls dev's image, which
    promotion copies by digest."""
    account = github["deepsentinel-account"]

    def repository(env: str, name: str = "video-analysis") -> str:
        return f"arn:aws:ecr:ap-northeast-2:{ACCOUNT_ID}:repository/deepsentinel-{env}/{name}"

    dev, _ = identity(account, "dev", "publish")
    prod, _ = identity(account, "prod", "publish")
    assert identity_decision(dev, "ecr:GetAuthorizationToken", "*") == ALLOW
    for action in ("ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage",
                   "ecr:BatchCheckLayerAvailability"):
        assert identity_decision(dev, action, repository("dev")) == ALLOW
        assert identity_decision(dev, action, repository("prod")) == IMPLICIT_DENY
        assert identity_decision(dev, action, repository("dev", "backend")) == IMPLICIT_DENY
        assert identity_decision(prod, action, repository("prod")) == ALLOW
    assert identity_decision(prod, "ecr:PutImage", repository("dev")) == IMPLICIT_DENY
    for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"):
        assert identity_decision(prod, action, repository("dev")) == ALLOW
    assert identity_decision(dev, "ecr:DeleteRepository", repository("dev")) == IMPLICIT_DENY
    assert identity_decision(dev, "s3:GetObject", f"{STATE}/deepsentinel-dev/terraform.tfstate") == IMPLICIT_DENY


def test_the_deploy_role_creates_roles_only_with_the_boundary_and_inside_the_project(github):
    """"Permissions boundaries for IAM entities" (IAM User Guide): the effective permissions are the intersection of
    the identity policies and the boundary, an explicit Deny in either wins, and the delegation pattern allows
    iam:CreateRole only with the condition iam:PermissionsBoundary = the boundary's ARN."""
    policies, boundary = identity(github["deepsentinel-account"], "dev", "deploy")
    assert boundary is not None

    def decide(action: str, resource: str, context: dict | None = None) -> str:
        return identity_decision(policies, action, resource, context, boundary)

    def role(name: str) -> str:
        return f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"

    with_boundary = {"iam:PermissionsBoundary": BOUNDARY_ARN}
    assert decide("iam:CreateRole", role("deepsentinel-dev-batch-job"), with_boundary) == ALLOW
    assert decide("iam:PutRolePolicy", role("deepsentinel-dev-batch-job"), with_boundary) == ALLOW
    assert decide("iam:CreateRole", role("deepsentinel-dev-batch-job")) == IMPLICIT_DENY
    other = {"iam:PermissionsBoundary": f"arn:aws:iam::{ACCOUNT_ID}:policy/some-other-boundary"}
    assert decide("iam:CreateRole", role("deepsentinel-dev-batch-job"), other) == IMPLICIT_DENY
    assert decide("iam:CreateRole", role("admin"), with_boundary) == IMPLICIT_DENY
    assert decide("iam:CreateRole", role("deepsentinel-prod-batch-job"), with_boundary) == IMPLICIT_DENY
    assert decide("iam:AttachRolePolicy", role("admin"), with_boundary) == IMPLICIT_DENY
    assert decide("iam:DeleteRolePermissionsBoundary", role("deepsentinel-dev-batch-job")) == EXPLICIT_DENY
    assert decide("iam:CreatePolicyVersion", BOUNDARY_ARN) == EXPLICIT_DENY
    for target in ("deepsentinel-dev-github-deploy", "deepsentinel-prod-github-deploy"):
        assert decide("iam:UpdateAssumeRolePolicy", role(target)) == EXPLICIT_DENY
    assert decide("iam:CreateUser", f"arn:aws:iam::{ACCOUNT_ID}:user/deepsentinel-dev-x") == IMPLICIT_DENY
    assert decide("iam:CreateOpenIDConnectProvider", "*") == IMPLICIT_DENY
    assert decide("sts:AssumeRole", role("OrganizationAccountAccessRole")) == EXPLICIT_DENY
    # What a deploy does: the environment's resources, passing its roles, service-linked roles, its state.
    assert decide("ec2:CreateVpc", "*") == ALLOW
    assert decide("iam:PassRole", role("deepsentinel-dev-batch-job")) == ALLOW
    assert decide("iam:CreateInstanceProfile",
                  f"arn:aws:iam::{ACCOUNT_ID}:instance-profile/deepsentinel-dev-batch-instance") == ALLOW
    assert decide("iam:CreateServiceLinkedRole",
                  role("aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS")) == ALLOW
    state = f"{STATE}/deepsentinel-dev/terraform.tfstate"
    for action in ("s3:GetObject", "s3:PutObject"):
        assert decide(action, state) == ALLOW
    assert decide("s3:PutObject", f"{STATE}/deepsentinel-prod/terraform.tfstate") == EXPLICIT_DENY
    assert decide("s3:PutObject", f"{STATE}/account/terraform.tfstate") == EXPLICIT_DENY
    assert decide("s3:DeleteBucket", STATE) == EXPLICIT_DENY


def test_every_role_of_the_environment_carries_the_boundary_the_deploy_role_needs(github):
    """The deploy role may create exactly the roles that carry the boundary, so every role of the environment stack
    must have it, and the deploy role must be allowed to create each of them; the boundary must not cut what the
    roles' own policies grant (effective permissions are the intersection)."""
    account, dev = github["deepsentinel-account"], github["deepsentinel-dev"]
    policies, boundary = identity(account, "dev", "deploy")
    roles = of_type(dev, "aws_iam_role")
    assert roles
    for name, role in roles.items():
        assert resolve(json.dumps(role["permissions_boundary"])) == BOUNDARY_ARN, name
        arn = f"arn:aws:iam::{ACCOUNT_ID}:role/{role['name']}"
        assert identity_decision(policies, "iam:CreateRole", arn, {"iam:PermissionsBoundary": BOUNDARY_ARN},
                                 boundary) == ALLOW, role["name"]
    everything = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    for name, policy in of_type(dev, "aws_iam_role_policy").items():
        for statement in resolve(policy["policy"], default="ref")["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            actions, resources = (statement[k] if isinstance(statement[k], list) else [statement[k]]
                                  for k in ("Action", "Resource"))
            for action in actions:
                for resource in resources:
                    assert identity_decision([everything], action, resource, None, boundary) == ALLOW, \
                        (name, action, resource)


def test_without_github_repository_there_are_no_oidc_roles_and_no_boundary(platform):
    account = platform.documents["deepsentinel-account"]
    assert of_type(account, "aws_iam_openid_connect_provider") == {}
    assert of_type(account, "aws_iam_role") == {}
    assert all("permissions_boundary" not in r for r in of_type(platform.dev, "aws_iam_role").values())


@pytest.mark.parametrize(("overrides", "message"), [
    (["github_token_secret_arn=arn:aws:secretsmanager:ap-northeast-2:111122223333:secret:gh"],
     "github_token_secret_arn: needs github_repository"),
    ([f"github_repository={REPOSITORY}", "github_oidc_provider_arn=arn:aws:iam::1:oidc-provider/example.com"],
     "github_oidc_provider_arn: .* is not an IAM OIDC provider ARN"),
    ([f"github_repository={REPOSITORY}", "github_repository_ids=acme/deepsentinel"],
     "github_repository_ids: .* must be <owner id>/<repository id>"),
    (["ci_user_name=ci"], "ci_user_name: no longer a setting"),
])
def test_github_settings_are_checked(overrides, message):
    with pytest.raises(SettingsError, match=message):
        load_settings("dev", overrides=overrides)


def test_the_repository_alone_is_enough():
    """The token is only for the failure monitor's issues; the OIDC roles need just the repository."""
    assert load_settings("dev", overrides=[f"github_repository={REPOSITORY}"]).github_token_secret_arn is None


def test_bootstrap_prints_the_repository_variables_to_set(monkeypatch, capsys):
    """The account stack's output github_role_arns becomes one `gh variable set` line per role."""
    import argparse

    import deepsentinel.commands.bootstrap as bootstrap_command
    import deepsentinel.target as target_module

    class Target:
        local, where = False, "AWS"

    arns = {"DEEPSENTINEL_DEV_PLAN_ROLE_ARN": f"arn:aws:iam::{ACCOUNT_ID}:role/deepsentinel-dev-github-plan"}
    monkeypatch.setattr(target_module, "target_from_args", lambda *a, **k: Target())
    monkeypatch.setattr(bootstrap_command, "bootstrap", lambda target, confirm: {
        "state_bucket": "deepsentinel-tfstate", "github_role_arns": arns})
    args = argparse.Namespace(env=None, settings=None, overrides=[f"github_repository={REPOSITORY}"], yes=True)
    assert bootstrap_command.run(args) == 0
    assert (f"gh variable set DEEPSENTINEL_DEV_PLAN_ROLE_ARN --body {arns['DEEPSENTINEL_DEV_PLAN_ROLE_ARN']}"
            in capsys.readouterr().out)
