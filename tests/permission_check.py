"""Decide recorded calls (tests/recorded_calls.py) with the synthesized policies, as AWS's evaluation logic does.

For one role of a synthesized stack: its inline policies, the real documents of its attached AWS managed policies
(moto's copy of them, pinned with moto; each carries its DefaultVersionId), its permissions boundary when it has
one, and the policy of the resource the call touches (bucket, queue, topic, KMS key). Statements are matched by
principalmapper (tests/unit/policy_eval.py: conditions as the IAM User Guide documents them). The order is the
IAM User Guide's "Policy evaluation logic" for one account:

- an explicit Deny in any of them wins;
- KMS: the key policy must allow the principal itself, or name the account (which "enables IAM policies") and an
  identity policy allows it ("Default key policy", KMS Developer Guide);
- otherwise an Allow in an identity policy (within the boundary, when there is one) or a resource policy statement
  naming the role allows it (same account: "either is enough");
- else implicit deny.

The decision names the statement that decided it; an implicit deny names the statements that would have allowed
the request but for their Condition, if any. `unused_grants` is the least-privilege report: each Allow statement's
actions that no allowed request used.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.recorded_calls import Authorization
from tests.unit.policy_eval import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, CaseInsensitiveDict, \
    policy_has_matching_statement, resolve

AWS_MANAGED_PREFIX = "arn:aws:iam::aws:policy/"
_ACCOUNT_REFERENCE = re.compile(r"\$\{data\.aws_caller_identity\.[^}.]+\.account_id\}")


def aws_managed_policy(arn: str) -> tuple[dict[str, Any], str]:
    """The document and version id of an AWS managed policy, from moto's copy of AWS's managed policies."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    name = arn.removeprefix(AWS_MANAGED_PREFIX).rsplit("/", 1)[-1]
    entry = json.loads(aws_managed_policies_data)[name]
    return entry["Document"], entry["DefaultVersionId"]


def resolved(document: str | dict[str, Any], references: dict[str, str], account: str) -> dict[str, Any]:
    """A synthesized policy with the account and every `${...}` reference replaced by its deployed value."""
    text = document if isinstance(document, str) else json.dumps(document)
    return resolve(_ACCOUNT_REFERENCE.sub(account, text), references)


@dataclass(frozen=True)
class Policy:
    name: str  # where it comes from: "inline <name>", "AWS managed <name> <version>", "bucket policy <bucket>", ...
    document: dict[str, Any]

    def statements(self) -> list[dict[str, Any]]:
        statements = self.document["Statement"]
        return statements if isinstance(statements, list) else [statements]


@dataclass(frozen=True)
class Identity:
    name: str  # the role's name
    arn: str
    policies: tuple[Policy, ...]
    boundary: Policy | None = None


def managed_policy(stack: dict[str, Any], arn: str, references: dict[str, str], account: str,
                   kind: str = "") -> Policy:
    """An attached policy by ARN: AWS managed (moto's copy, with its version) or one of the stack's own
    (aws_iam_policy, by name)."""
    if arn.startswith(AWS_MANAGED_PREFIX):
        document, version = aws_managed_policy(arn)
        return Policy(f"{kind}AWS managed {arn.removeprefix(AWS_MANAGED_PREFIX)} {version}", document)
    name = arn.rsplit("/", 1)[-1]
    own = [c for c in stack["resource"].get("aws_iam_policy", {}).values() if c["name"] == name]
    if not own:
        raise NotImplementedError(f"policy {arn} is neither AWS managed nor in the stack")
    return Policy(f"{kind}customer managed {name}", resolved(own[0]["policy"], references, account))


def _attached(stack: dict[str, Any], kind: str, own: set[str], references: dict[str, str],
              account: str) -> list[Policy]:
    """Inline and attached policies of the role/group/user whose reference is in `own`."""
    resources = stack["resource"]
    policies = [Policy(f"inline {c['name']}", resolved(c["policy"], references, account))
                for c in resources.get(f"aws_iam_{kind}_policy", {}).values() if c[kind] in own]
    for attachment in resources.get(f"aws_iam_{kind}_policy_attachment", {}).values():
        if attachment[kind] in own:
            arn = resolved(json.dumps(attachment["policy_arn"]), references, account)
            policies.append(managed_policy(stack, arn, references, account))
    return policies


def role_identity(stack: dict[str, Any], role_name: str, references: dict[str, str], account: str) -> Identity:
    """The role named `role_name` in a synthesized stack, with its inline and attached managed policies (AWS
    managed, or the stack's own) and its permissions boundary."""
    resources = stack["resource"]
    [(logical, role)] = [(n, c) for n, c in resources["aws_iam_role"].items() if c["name"] == role_name]
    own = {f"${{aws_iam_role.{logical}.{attribute}}}" for attribute in ("id", "name")} | {role_name}
    policies = _attached(stack, "role", own, references, account)
    boundary = None
    if role.get("permissions_boundary"):
        arn = resolved(json.dumps(role["permissions_boundary"]), references, account)
        boundary = managed_policy(stack, arn, references, account, kind="boundary ")
    return Identity(role_name, f"arn:aws:iam::{account}:role/{role_name}", tuple(policies), boundary)


def group_identity(stack: dict[str, Any], group_name: str, references: dict[str, str], account: str,
                   member: str) -> Identity:
    """A user whose only permissions come from the group `group_name` (its inline and attached policies)."""
    [logical] = [n for n, c in stack["resource"]["aws_iam_group"].items() if c["name"] == group_name]
    own = {f"${{aws_iam_group.{logical}.{attribute}}}" for attribute in ("id", "name")} | {group_name}
    return Identity(f"{group_name} (user {member})", f"arn:aws:iam::{account}:user/{member}",
                    tuple(_attached(stack, "group", own, references, account)))


@dataclass(frozen=True)
class Decision:
    authorization: Authorization
    outcome: str  # ALLOW, EXPLICIT_DENY, IMPLICIT_DENY
    deciding: tuple[str, ...]  # "<policy>: <Sid or statement number>" of the statements that decided
    allowed_by: tuple[tuple[Policy, dict[str, Any]], ...] = field(default=(), repr=False)

    def describe(self) -> str:
        a = self.authorization
        why = "; ".join(self.deciding) or "no statement allows it"
        return (f"{a.call.identity} {self.outcome}: {a.action} on {a.resource} (call {a.call.service}."
                f"{a.call.operation}) decided by {why}")


def _label(policy: Policy, statement: dict[str, Any]) -> str:
    return f"{policy.name}: {statement.get('Sid') or 'statement ' + str(policy.statements().index(statement) + 1)}"


def _matches(statement: dict[str, Any], effect: str, authorization: Authorization, *,
             ignore_condition: bool = False) -> bool:
    if statement.get("Effect") != effect:
        return False
    single = {k: v for k, v in statement.items() if k not in ("Principal", "NotPrincipal")}
    if ignore_condition:
        single.pop("Condition", None)
    return policy_has_matching_statement({"Statement": [single]}, effect, authorization.action,
                                         authorization.resource, CaseInsensitiveDict(authorization.context))


def _principal(statement: dict[str, Any], identity: Identity, account: str) -> str | None:
    """'self' when the statement's Principal is the role (or anyone), 'account' when it is the account (which
    delegates to identity policies), None when the statement is for someone else."""
    principal = statement.get("Principal")
    if principal == "*":
        return "self"
    values = principal.get("AWS", []) if isinstance(principal, dict) else []
    values = [values] if isinstance(values, str) else values
    if "*" in values or identity.arn in values:
        return "self"
    if f"arn:aws:iam::{account}:root" in values or account in values:
        return "account"
    return None


def decide(authorization: Authorization, identity: Identity, resource_policy: Policy | None,
           account: str) -> Decision:
    identity_statements = [(p, s) for p in identity.policies for s in p.statements()]
    boundary_statements = [(identity.boundary, s) for s in identity.boundary.statements()] if identity.boundary else []
    resource_statements = [(resource_policy, s) for s in resource_policy.statements()
                           if _principal(s, identity, account)] if resource_policy else []
    denies = [(p, s) for p, s in [*identity_statements, *boundary_statements, *resource_statements]
              if _matches(s, "Deny", authorization)]
    if denies:
        return Decision(authorization, EXPLICIT_DENY, tuple(_label(p, s) for p, s in denies))
    identity_allows = [(p, s) for p, s in identity_statements if _matches(s, "Allow", authorization)]
    if identity.boundary and not any(_matches(s, "Allow", authorization) for _, s in boundary_statements):
        identity_allows = []
    resource_allows = {kind: [(p, s) for p, s in resource_statements if _principal(s, identity, account) == kind
                              and _matches(s, "Allow", authorization)] for kind in ("self", "account")}
    # A key's own actions; kms:CreateKey, kms:ListAliases, ... have no key resource and IAM alone decides them.
    is_key = authorization.action.lower().startswith("kms:") and ":kms:" in authorization.resource
    if is_key:
        allowed_by = resource_allows["self"] or (identity_allows if resource_allows["account"] else [])
    else:
        allowed_by = identity_allows + resource_allows["self"]
    if allowed_by:
        return Decision(authorization, ALLOW, tuple(_label(p, s) for p, s in allowed_by), tuple(allowed_by))
    near = [(p, s) for p, s in [*identity_statements, *resource_statements]
            if "Condition" in s and _matches(s, "Allow", authorization, ignore_condition=True)]
    deciding = tuple(f"{_label(p, s)} (its Condition is not met)" for p, s in near)
    if is_key and identity_allows and not resource_allows["account"]:
        deciding += ("the key policy (it neither names the role nor lets IAM policies decide)",)
    return Decision(authorization, IMPLICIT_DENY, deciding)


def unused_grants(identity: Identity, decisions: Iterable[Decision]) -> dict[str, list[str]]:
    """Per Allow statement of the identity's policies: its actions (as written) that no allowed request used."""
    used: dict[int, set[str]] = {}
    for decision in decisions:
        for _, statement in decision.allowed_by:
            used.setdefault(id(statement), set()).add(decision.authorization.action.lower())
    report: dict[str, list[str]] = {}
    for policy in identity.policies:
        for statement in policy.statements():
            if statement.get("Effect") != "Allow" or "Action" not in statement:
                continue
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            seen = used.get(id(statement), set())
            unused = [a for a in actions if not any(fnmatch.fnmatchcase(u, a.lower()) for u in seen)]
            if unused:
                report[_label(policy, statement)] = unused
    return report


def without_action(policy: Policy, action: str) -> Policy:
    """`policy` with `action` removed from every statement (a statement left with none is dropped)."""
    document = copy.deepcopy(policy.document)
    kept = []
    for statement in Policy(policy.name, document).statements():
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        statement["Action"] = [a for a in actions if a.lower() != action.lower()]
        if statement["Action"]:
            kept.append(statement)
    document["Statement"] = kept
    return Policy(policy.name, document)


def aws_managed_key_policy(account: str, region: str, service: str) -> Policy:
    """The key policy AWS gives its AWS managed keys (`alias/aws/<service>`): every principal of the account may use
    the key through that service, and the account's IAM policies decide Describe*/Get*/List* ("AWS managed keys",
    AWS KMS Developer Guide; the policy a GetKeyPolicy of such a key returns)."""
    return Policy(f"AWS managed key policy alias/aws/{service}", {"Version": "2012-10-17", "Statement": [
        {"Sid": f"Allow access through {service} for all principals in the account that are authorized to use it",
         "Effect": "Allow", "Principal": {"AWS": "*"},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
         "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": account,
                                                          "kms:ViaService": f"{service}.{region}.amazonaws.com"}}},
        {"Sid": "Allow direct access to key metadata to the account", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
         "Action": ["kms:Describe*", "kms:Get*", "kms:List*"], "Resource": "*"}]})
