"""Risks of a change, each with the resource address and why.

Destroy/replace risks come from the diff (or the plan). Condition risks (world-open security group, IAM
wildcards on data services, public bucket, prod protection off, shorter retention) are reported when
the condition holds in the head and did not hold in the base, so a review talks about what the change
introduces; standing findings are the policy gate's job.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from deepsentinel.review.diff import REMOVE, REPLACE, UPDATE, StackDiff, index, short_path
from deepsentinel.synthesized import Resource

HIGH, MEDIUM, LOW = "high", "medium", "low"
SEVERITY_ORDER = {HIGH: 0, MEDIUM: 1, LOW: 2}
WORLD = {"0.0.0.0/0", "::/0"}
WEB_PORTS = {80, 443}
# Services whose resources hold data: a wildcard action or resource on them is a risk.
DATA_SERVICES = frozenset(
    {
        "s3",
        "dynamodb",
        "secretsmanager",
        "rds",
        "rds-data",
        "rds-db",
        "sqs",
        "kms",
        "ssm",
        "glacier",
        "backup",
        "elasticfilesystem",
        "ecr",
        "sns",
        "logs",
    }
)
# AWS managed policies that grant wildcards on data services.
BROAD_MANAGED_POLICIES = frozenset(
    {
        "AdministratorAccess",
        "PowerUserAccess",
        "AmazonS3FullAccess",
        "AmazonDynamoDBFullAccess",
        "SecretsManagerReadWrite",
        "AmazonRDSFullAccess",
        "AmazonSQSFullAccess",
        "AmazonRDSDataFullAccess",
        "AWSKeyManagementServicePowerUser",
    }
)
# Actions that only accept Resource "*" and expose no stored data (AWS service authorization reference).
STAR_ONLY_ACTIONS = frozenset(
    a.lower()
    for a in (
        "ecr:GetAuthorizationToken",
        "s3:ListAllMyBuckets",
        "sqs:ListQueues",
        "secretsmanager:GetRandomPassword",
        "secretsmanager:ListSecrets",
        "dynamodb:ListTables",
        "kms:ListKeys",
        "kms:ListAliases",
        "ssm:DescribeParameters",
        "logs:DescribeLogGroups",
        "rds:DescribeDBInstances",
        "sns:ListTopics",
        "ecr:DescribeRegistry",
    )
)
POLICY_TYPES = (
    "aws_iam_role_policy",
    "aws_iam_policy",
    "aws_iam_user_policy",
    "aws_iam_group_policy",
    "aws_s3_bucket_policy",
    "aws_sqs_queue_policy",
)
ATTACHMENT_TYPES = (
    "aws_iam_role_policy_attachment",
    "aws_iam_user_policy_attachment",
    "aws_iam_group_policy_attachment",
    "aws_iam_policy_attachment",
)
REF = re.compile(r"\$\{([a-z0-9_]+)\.([A-Za-z0-9_-]+)")


@dataclass(frozen=True)
class Risk:
    severity: str
    stack: str
    address: str
    path: str
    why: str
    kind: str  # destroy | replace | network | iam | public | protection | retention | restart


def _list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _port(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _open_ingress(rule: dict[str, Any]) -> str | None:
    """The description of a world-open ingress on a port other than 80/443, or None."""
    cidrs = set(_list(rule.get("cidr_blocks"))) | set(_list(rule.get("ipv6_cidr_blocks")))
    cidrs |= {c for c in (rule.get("cidr_ipv4"), rule.get("cidr_ipv6")) if c}
    world = cidrs & WORLD
    if not world:
        return None
    protocol = str(rule.get("ip_protocol", rule.get("protocol", "tcp")))
    low, high = _port(rule.get("from_port"), 0), _port(rule.get("to_port"), 65535)
    if protocol in ("-1", "all"):
        return f"all traffic open to {', '.join(sorted(world))}"
    if low == high and low in WEB_PORTS:
        return None
    ports = str(low) if low == high else f"{low}-{high}"
    return f"{protocol} {ports} open to {', '.join(sorted(world))} (only 80/443 may face the internet)"


def network_conditions(r: Resource) -> Iterator[str]:
    if r.type == "aws_security_group":
        for rule in _list(r.config.get("ingress")):
            if isinstance(rule, dict) and (why := _open_ingress(rule)):
                yield why
    elif (
        (r.type == "aws_security_group_rule" and r.config.get("type") == "ingress")
        or r.type == "aws_vpc_security_group_ingress_rule"
    ) and (why := _open_ingress(r.config)):
        yield why


def _service(action: str) -> str:
    return action.split(":", 1)[0].lower() if ":" in action else "*"


def _wildcard_resource(resource: str) -> bool:
    if resource == "*":
        return True
    if "${" in resource:
        return False  # anchored on a specific resource's attribute, e.g. ${bucket.arn}/*
    parts = resource.split(":", 5)
    return (len(parts) == 6 and parts[5] in ("*", "table/*", "secret:*", "repository/*", "key/*", "parameter/*")) or (
        len(parts) == 6 and parts[2] == "s3" and parts[5].split("/", 1)[0] in ("*", "")
    )


def statement_conditions(document: Any) -> Iterator[str]:
    document = json.loads(document) if isinstance(document, str) else document
    if not isinstance(document, dict):
        return
    for i, st in enumerate(_list(document.get("Statement"))):
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        sid = st.get("Sid") or f"#{i}"
        if "NotAction" in st:
            yield f"statement {sid}: Allow with NotAction grants everything not listed"
            continue
        actions = [str(a) for a in _list(st.get("Action"))]
        resources_ = [str(r) for r in _list(st.get("Resource"))]
        data_actions = [a for a in actions if a == "*" or _service(a) in DATA_SERVICES]
        wild_actions = [a for a in data_actions if "*" in a]
        scoped = [a for a in data_actions if a.lower() not in STAR_ONLY_ACTIONS]
        wild_resources = [r for r in resources_ if _wildcard_resource(r)] if scoped else []
        problems = []
        if wild_actions:
            problems.append(f"wildcard action {', '.join(wild_actions)}")
        if wild_resources:
            services = ", ".join(sorted(set(map(_service, scoped))))
            problems.append(f"{services} actions on wildcard resource {', '.join(wild_resources)}")
        if problems:
            yield f"statement {sid}: " + "; ".join(problems) + " (data service)"


def iam_conditions(r: Resource) -> Iterator[str]:
    if r.type in ("aws_iam_role_policy", "aws_iam_policy", "aws_iam_user_policy", "aws_iam_group_policy"):
        yield from statement_conditions(r.config.get("policy"))
    elif r.type == "aws_iam_role":
        for inline in _list(r.config.get("inline_policy")):
            if isinstance(inline, dict):
                yield from statement_conditions(inline.get("policy"))
    elif r.type in ATTACHMENT_TYPES:
        arn = str(r.config.get("policy_arn", ""))
        name = arn.rsplit("/", 1)[-1]
        if arn.startswith("arn:aws:iam::aws:policy/") and name in BROAD_MANAGED_POLICIES:
            yield f"attaches the AWS managed policy {name} (wildcards on data services)"


def _principal_public(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return any(p == "*" or (isinstance(p, list) and "*" in p) for p in principal.values())
    return False


def _refs(value: Any) -> set[str]:
    return {f"{t}.{n}" for t, n in REF.findall(json.dumps(value))}


def public_conditions(r: Resource, document_index: dict[str, Resource]) -> Iterator[str]:
    if r.type == "aws_s3_bucket_public_access_block":
        off = [
            k
            for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
            if r.config.get(k) is not True
        ]
        if off:
            yield f"public access block does not set {', '.join(off)}"
    elif r.type == "aws_s3_bucket_acl":
        if str(r.config.get("acl", "")) in ("public-read", "public-read-write", "authenticated-read"):
            yield f"bucket ACL {r.config['acl']}"
    elif r.type == "aws_s3_bucket_policy":
        doc = r.config.get("policy")
        doc = json.loads(doc) if isinstance(doc, str) else doc
        for st in _list((doc or {}).get("Statement")):
            if isinstance(st, dict) and st.get("Effect") == "Allow" and _principal_public(st.get("Principal")):
                yield f"bucket policy allows Principal * ({', '.join(map(str, _list(st.get('Action'))))})" + (
                    " with a condition" if st.get("Condition") else ""
                )
    elif r.type == "aws_s3_bucket":
        blocks = [
            x
            for x in document_index.values()
            if x.type == "aws_s3_bucket_public_access_block" and r.address in _refs(x.config.get("bucket"))
        ]
        if not blocks:
            yield "no public access block for this bucket"


PROD_PROTECTION = {
    "aws_db_instance": (("deletion_protection", "deletion protection"), ("multi_az", "Multi-AZ")),
    "aws_rds_cluster": (("deletion_protection", "deletion protection"),),
    "aws_lb": (("enable_deletion_protection", "deletion protection"),),
    "aws_dynamodb_table": (("deletion_protection_enabled", "deletion protection"),),
}


# Switches that let `terraform destroy` take data with it: fine in dev, a risk in prod.
PROD_DATA_LOSS_SWITCHES = {
    "aws_s3_bucket": ("force_destroy", "force_destroy on: destroy deletes every object"),
    "aws_ecr_repository": ("force_delete", "force_delete on: destroy deletes every image"),
    "aws_db_instance": ("skip_final_snapshot", "skip_final_snapshot on: no snapshot when the database is destroyed"),
}


def protection_conditions(r: Resource, prod: bool) -> Iterator[str]:
    if not prod:
        return
    for key, label in PROD_PROTECTION.get(r.type, ()):
        if r.config.get(key) is not True:
            yield f"{label} off in prod"
    if r.type in PROD_DATA_LOSS_SWITCHES:
        key, why = PROD_DATA_LOSS_SWITCHES[r.type]
        if r.config.get(key) is True:
            yield f"{why} (prod)"


def _days(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def retention_of(r: Resource) -> dict[str, float]:
    """Retention knobs (days or counts; inf = kept forever) by name, for comparison base vs head."""
    inf = float("inf")
    if r.type == "aws_cloudwatch_log_group":
        days = _days(r.config.get("retention_in_days")) or 0
        return {"retention_in_days": days if days > 0 else inf}
    if r.type == "aws_db_instance":
        return {"backup_retention_period": _days(r.config.get("backup_retention_period")) or 0}
    if r.type == "aws_s3_bucket_lifecycle_configuration":
        out = {}
        for rule in _list(r.config.get("rule")):
            if not isinstance(rule, dict):
                continue
            rid = rule.get("id", "?")
            enabled = rule.get("status") == "Enabled"
            exp = [_days(e.get("days")) for e in _list(rule.get("expiration")) if isinstance(e, dict)]
            nce = [
                _days(e.get("noncurrent_days"))
                for e in _list(rule.get("noncurrent_version_expiration"))
                if isinstance(e, dict)
            ]
            out[f"rule {rid} expiration days"] = min([d for d in exp if d] or [inf]) if enabled else inf
            out[f"rule {rid} noncurrent expiration days"] = min([d for d in nce if d] or [inf]) if enabled else inf
        return out
    if r.type == "aws_ecr_lifecycle_policy":
        policy = r.config.get("policy")
        policy = json.loads(policy) if isinstance(policy, str) and "{" in policy else {}
        out = {}
        for rule in _list(policy.get("rules")):
            sel = rule.get("selection", {})
            key = f"rule {rule.get('rulePriority')} ({sel.get('tagStatus')}, {sel.get('countType')})"
            out[key] = _days(sel.get("countNumber")) or 0
        return out
    return {}


def _fmt(v: float) -> str:
    return "forever" if v == float("inf") else f"{v:g}"


def _conditions(r: Resource, idx: dict[str, Resource], prod: bool) -> list[tuple[str, str, str]]:
    out = [(HIGH, "network", w) for w in network_conditions(r)]
    out += [(HIGH, "iam", w) for w in iam_conditions(r)]
    out += [(HIGH, "public", w) for w in public_conditions(r, idx)]
    out += [(MEDIUM, "protection", w) for w in protection_conditions(r, prod)]
    return out


RESTART_ATTRIBUTES = {"aws_db_instance": {"instance_class", "engine_version", "storage_type", "multi_az"}}


def assess(diff: StackDiff, base: dict[str, Any] | None, head: dict[str, Any] | None, *, prod: bool) -> list[Risk]:
    risks: list[Risk] = []
    stack = diff.stack
    for change in diff.changes:
        if change.stateful and change.action == REMOVE:
            risks.append(
                Risk(
                    HIGH,
                    stack,
                    change.address,
                    change.path,
                    f"destroys a stateful {change.type}: its data is lost unless it is moved "
                    "(a `moved` block) or retained",
                    "destroy",
                )
            )
        elif change.stateful and change.action == REPLACE:
            forced = [a.path for a in change.attributes if a.forces_replacement]
            risks.append(
                Risk(
                    HIGH,
                    stack,
                    change.address,
                    change.path,
                    f"replaces a stateful {change.type} (new resource, data not carried over)"
                    + (f": {', '.join(forced)} forces replacement" if forced else ""),
                    "replace",
                )
            )
        elif change.action == UPDATE:
            hot = [a.path for a in change.attributes if a.path in RESTART_ATTRIBUTES.get(change.type, ())]
            if hot:
                risks.append(
                    Risk(
                        LOW,
                        stack,
                        change.address,
                        change.path,
                        f"{', '.join(hot)} change modifies the running database (restart or failover; "
                        "applied in the maintenance window unless apply_immediately)",
                        "restart",
                    )
                )
    before, after = index(base), index(head)
    for address, r in after.items():
        old = before.get(address)
        old_conditions = {c[2] for c in _conditions(old, before, prod)} if old else set()
        for severity, kind, why in _conditions(r, after, prod):
            if why not in old_conditions:
                risks.append(Risk(severity, stack, address, short_path(r.path), why, kind))
        if old is not None:
            was, now = retention_of(old), retention_of(r)
            for key, value in now.items():
                if key in was and value < was[key]:
                    risks.append(
                        Risk(
                            MEDIUM,
                            stack,
                            address,
                            short_path(r.path),
                            f"retention shortened: {key} {_fmt(was[key])} -> {_fmt(value)}",
                            "retention",
                        )
                    )
                elif (
                    key not in was
                    and value != float("inf")
                    and was
                    and r.type == "aws_s3_bucket_lifecycle_configuration"
                ):
                    risks.append(
                        Risk(
                            MEDIUM,
                            stack,
                            address,
                            short_path(r.path),
                            f"retention shortened: new {key} {_fmt(value)} (was kept)",
                            "retention",
                        )
                    )
    risks.sort(key=lambda x: (SEVERITY_ORDER[x.severity], x.stack, x.address, x.why))
    return risks
