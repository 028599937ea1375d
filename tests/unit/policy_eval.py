"""Evaluate synthesized IAM policies as AWS does, with a real evaluator: principalmapper's local policy simulation.

principalmapper (NCC Group, `principalmapper.querying.local_policy_simulation`) implements Action/NotAction,
Resource/NotResource and the condition operators as AWS's "IAM JSON policy elements: Condition operators" page
documents them (StringEquals/StringLike, ...IfExists, Null, Bool, Arn*, ForAnyValue/ForAllValues, a missing key).
This module adds only the order of evaluation from "Policy evaluation logic" (IAM User Guide), for one account,
no SCPs, no session policies:

- identity: an explicit Deny in any identity policy or the permissions boundary wins; otherwise the request is
  allowed only if an identity policy allows it and, when the principal has a boundary, the boundary allows it too;
- AssumeRoleWithWebIdentity: the role's trust policy decides alone ("Role trust policies"); only the statements
  whose Principal names the identity provider apply, and the token's claims are the condition keys
  `<provider host>:aud` / `:sub` (AWS reads no custom claims of GitHub's tokens: "Configuring OpenID Connect in
  Amazon Web Services", GitHub Docs).

Limits worth knowing: principalmapper matches Action and Resource case-insensitively (AWS: actions yes, ARNs no),
so a test must not hinge on the case of an ARN.
"""

from __future__ import annotations

import collections
import collections.abc
import json
import re
from typing import Any

# principalmapper 1.1.5 imports Mapping/MutableMapping from `collections` (moved to collections.abc in 3.3, removed
# from collections in 3.10).
for _name in ("Mapping", "MutableMapping"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

import functools  # noqa: E402

from principalmapper.querying import local_policy_simulation  # noqa: E402
from principalmapper.querying.local_policy_simulation import policy_has_matching_statement  # noqa: E402

# principalmapper compiles every Action/Resource pattern through an lru_cache of 2,048 entries; the AWS managed
# policies a Terraform identity carries (ReadOnlyAccess alone lists thousands of actions) overflow it, and the
# recompiling took two thirds of the live platform's evaluation (py-spy, 2026-12-02). Same function, cache unbounded.
local_policy_simulation._compose_pattern = functools.lru_cache(maxsize=None, typed=True)(
    local_policy_simulation._compose_pattern.__wrapped__)
from principalmapper.util.case_insensitive_dict import CaseInsensitiveDict  # noqa: E402

ACCOUNT_ID = "111122223333"
ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "allow", "explicit deny", "implicit deny"
_REFERENCE = re.compile(r"\$\{([^}]*)\}")


def resolve(document: dict[str, Any] | str, references: dict[str, str] | None = None, *,
            default: str | None = None) -> Any:
    """A synthesized policy (or any JSON value) with its Terraform references (`${...}`) replaced: the caller
    identity's account id by ACCOUNT_ID, others from `references` (resource.name.attribute -> value), the rest by
    `default`. Without a default an unknown reference fails the test rather than matching by accident."""
    text = document if isinstance(document, str) else json.dumps(document)
    known = {**(references or {})}

    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression.startswith("data.aws_caller_identity.") and expression.endswith(".account_id"):
            return ACCOUNT_ID
        if expression in known:
            return known[expression]
        if default is not None:
            return default
        raise AssertionError(f"unresolved Terraform reference ${{{expression}}} in a policy")

    return json.loads(_REFERENCE.sub(value, text))


def identity_decision(policies: list[dict[str, Any]], action: str, resource: str,
                      context: dict[str, Any] | None = None, boundary: dict[str, Any] | None = None) -> str:
    """allow / explicit deny / implicit deny for a principal with these identity policies (inline and managed
    documents) and an optional permissions boundary."""
    keys = CaseInsensitiveDict(context or {})
    documents = [*policies, *([boundary] if boundary is not None else [])]
    if any(policy_has_matching_statement(d, "Deny", action, resource, keys) for d in documents):
        return EXPLICIT_DENY
    if not any(policy_has_matching_statement(d, "Allow", action, resource, keys) for d in policies):
        return IMPLICIT_DENY
    if boundary is not None and not policy_has_matching_statement(boundary, "Allow", action, resource, keys):
        return IMPLICIT_DENY
    return ALLOW


def principal_decision(document: dict[str, Any], *, kind: str, principal: str, action: str, resource: str,
                       context: dict[str, Any] | None = None) -> str:
    """allow / explicit deny / implicit deny for a request by `principal` on a resource policy (a trust policy, a key
    policy): only the statements whose Principal names it under `kind` ("Service", "Federated", ...) or is "*"
    apply ("IAM JSON policy elements: Principal")."""
    def names_principal(statement: dict[str, Any]) -> bool:
        named = statement.get("Principal")
        if named == "*":
            return True
        values = named.get(kind, []) if isinstance(named, dict) else []
        return principal in ([values] if isinstance(values, str) else values)

    applicable = {"Statement": [s for s in _statements(document) if names_principal(s)]}
    keys = CaseInsensitiveDict(context or {})
    if policy_has_matching_statement(applicable, "Deny", action, resource, keys):
        return EXPLICIT_DENY
    if policy_has_matching_statement(applicable, "Allow", action, resource, keys):
        return ALLOW
    return IMPLICIT_DENY


def web_identity_decision(trust_policy: dict[str, Any], *, provider_arn: str, provider_host: str,
                          claims: dict[str, str], role_arn: str) -> str:
    """allow / explicit deny / implicit deny for sts:AssumeRoleWithWebIdentity with a token carrying `claims`
    (only aud and sub become condition keys), issued by the provider `provider_arn`."""
    keys = {f"{provider_host}:{claim}": claims[claim] for claim in ("aud", "sub") if claim in claims}
    return principal_decision(trust_policy, kind="Federated", principal=provider_arn,
                              action="sts:AssumeRoleWithWebIdentity", resource=role_arn, context=keys)


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document["Statement"]
    return statements if isinstance(statements, list) else [statements]
