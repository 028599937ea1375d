"""What changed between two synthesized stacks (or, with a plan JSON, what terraform says will change)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from deepsentinel.synthesized import Resource, resources

ADD, REMOVE, UPDATE, REPLACE = "create", "delete", "update", "replace"
SYMBOL = {ADD: "+", REMOVE: "-", UPDATE: "~", REPLACE: "-/+"}

# Attributes that force a new resource (provider hashicorp/aws 5.x), for the stateful types and a few
# others whose replacement matters. Used only when no plan JSON is given; a plan's own actions win.
FORCE_NEW: dict[str, frozenset[str]] = {
    "aws_db_instance": frozenset(
        {
            "identifier",
            "identifier_prefix",
            "engine",
            "db_name",
            "username",
            "storage_encrypted",
            "kms_key_id",
            "availability_zone",
            "character_set_name",
            "snapshot_identifier",
            "custom_iam_instance_profile",
            "timezone",
            "nchar_character_set_name",
        }
    ),
    "aws_s3_bucket": frozenset({"bucket", "bucket_prefix", "object_lock_enabled"}),
    "aws_secretsmanager_secret": frozenset({"name", "name_prefix"}),
    "aws_ecr_repository": frozenset({"name"}),
    "aws_dynamodb_table": frozenset({"name", "hash_key", "range_key"}),
    "aws_cloudwatch_log_group": frozenset({"name", "name_prefix"}),
    "aws_sqs_queue": frozenset({"name", "name_prefix", "fifo_queue"}),
    "aws_vpc": frozenset({"cidr_block"}),
    "aws_subnet": frozenset({"cidr_block", "availability_zone", "vpc_id"}),
    "aws_lb": frozenset({"name", "internal", "load_balancer_type"}),
    "aws_efs_file_system": frozenset({"creation_token", "encrypted"}),
}
IGNORED = frozenset({"//"})
SENSITIVE = "(sensitive)"


@dataclass(frozen=True)
class AttributeChange:
    path: str  # e.g. instance_class, rule[0].expiration[0].days, policy.Statement[1].Action
    before: Any
    after: Any
    forces_replacement: bool = False


@dataclass(frozen=True)
class Change:
    action: str  # create | delete | update | replace
    address: str
    type: str
    module: str
    path: str  # construct path without the stack, e.g. storage/db
    attributes: tuple[AttributeChange, ...] = ()
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None

    @property
    def stateful(self) -> bool:
        from deepsentinel.synthesized import STATEFUL_TYPES

        return self.type in STATEFUL_TYPES


@dataclass
class StackDiff:
    stack: str
    changes: list[Change] = field(default_factory=list)
    source: str = "synth"  # synth | plan
    base_missing: bool = False  # the stack does not exist in the base

    def by_module(self) -> dict[str, list[Change]]:
        out: dict[str, list[Change]] = {}
        for change in sorted(self.changes, key=lambda c: (c.module, c.path, c.address)):
            out.setdefault(change.module, []).append(change)
        return out

    def counts(self) -> dict[str, int]:
        counts = {ADD: 0, UPDATE: 0, REPLACE: 0, REMOVE: 0}
        for change in self.changes:
            counts[change.action] += 1
        return counts


def index(document: dict[str, Any] | None) -> dict[str, Resource]:
    return {r.address: r for r in resources(document or {})}


def short_path(resource_path: str) -> str:
    return resource_path.split("/", 1)[1] if "/" in resource_path else resource_path


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[" and value[-1:] in "}]":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def attribute_changes(before: Any, after: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Leaf-level differences; JSON strings (policies, container definitions) are compared parsed."""
    before, after = _maybe_json(before), _maybe_json(after)
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after)):
            if key in IGNORED:
                continue
            sub = f"{prefix}.{key}" if prefix else str(key)
            if key not in before:
                out.append((sub, None, after[key]))
            elif key not in after:
                out.append((sub, before[key], None))
            else:
                out.extend(attribute_changes(before[key], after[key], sub))
        return out
    if (
        isinstance(before, list)
        and isinstance(after, list)
        and (len(before) == len(after) or all(isinstance(x, (dict, list)) for x in before + after))
    ):
        out = []
        for i, (b, a) in enumerate(zip(before, after, strict=False)):  # the longer one's rest: below
            out.extend(attribute_changes(b, a, f"{prefix}[{i}]"))
        out += [(f"{prefix}[{i}]", before[i], None) for i in range(len(after), len(before))]
        out += [(f"{prefix}[{i}]", None, after[i]) for i in range(len(before), len(after))]
        return out
    return [] if before == after else [(prefix, before, after)]


def _top(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


def diff_documents(stack: str, base: dict[str, Any] | None, head: dict[str, Any] | None) -> StackDiff:
    """Changes by address between two cdk.tf.json documents (None: the stack does not exist there)."""
    before, after = index(base), index(head)
    changes = []
    for address in sorted(set(before) | set(after)):
        b, a = before.get(address), after.get(address)
        r = a or before[address]  # in one of them at least
        common: dict[str, Any] = dict(
            address=address,
            type=r.type,
            module=r.module,
            path=short_path(r.path),
            before=b.config if b else None,
            after=a.config if a else None,
        )
        if b is None:
            changes.append(Change(ADD, **common))
        elif a is None:
            changes.append(Change(REMOVE, **common))
        else:
            force_new = FORCE_NEW.get(r.type, frozenset())
            attrs = tuple(
                AttributeChange(p, x, y, _top(p) in force_new) for p, x, y in attribute_changes(b.config, a.config)
            )
            if attrs:
                action = REPLACE if any(c.forces_replacement for c in attrs) else UPDATE
                changes.append(Change(action, attributes=attrs, **common))
    return StackDiff(stack, changes, "synth", base_missing=base is None)


def plan_action(actions: Iterable[str]) -> str | None:
    actions = list(actions)
    if "delete" in actions and "create" in actions:
        return REPLACE
    for action in (ADD, REMOVE, UPDATE):
        if action in actions:
            return action
    return None  # no-op, read


def _unknown_paths(unknown: Any, prefix: str = "") -> set[str]:
    if unknown is True:
        return {prefix}
    out: set[str] = set()
    if isinstance(unknown, dict):
        for k, v in unknown.items():
            out |= _unknown_paths(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(unknown, list):
        for i, v in enumerate(unknown):
            out |= _unknown_paths(v, f"{prefix}[{i}]")
    return out


def _contains_true(mask: Any) -> bool:
    if mask is True:
        return True
    if isinstance(mask, dict):
        return any(_contains_true(v) for v in mask.values())
    if isinstance(mask, list):
        return any(_contains_true(v) for v in mask)
    return False


def path_tokens(path: str) -> list[str | int]:
    tokens: list[str | int] = []
    for part in path.split("."):
        name, *indexes = part.split("[")
        if name:
            tokens.append(name)
        tokens += [int(i.rstrip("]")) for i in indexes if i.rstrip("]").isdigit()]
    return tokens


def is_sensitive(mask: Any, path: str) -> bool:
    """Whether the value at `path` (diff.py's `a.b[0].c`) is or holds a value the mask marks sensitive. A key the
    mask lacks is not sensitive (the mask names every sensitive value); a key with dots in it (`tags.team.io/x`) is
    found by joining path parts; where mask and path do not fit each other, any sensitive value below counts."""
    tokens = path_tokens(path)
    node, i = mask, 0
    while i < len(tokens):
        if node is True:
            return True
        token = tokens[i]
        if isinstance(node, list) and isinstance(token, int) and token < len(node):
            node, i = node[token], i + 1
        elif isinstance(node, dict) and isinstance(token, str):
            for j in range(len(tokens), i, -1):  # the longest dotted key first
                parts = tokens[i:j]
                key = ".".join(str(p) for p in parts)
                if all(isinstance(p, str) for p in parts) and key in node:
                    node, i = node[key], j
                    break
            else:
                return False
        else:
            return _contains_true(node)
    return _contains_true(node)


def diff_plan(stack: str, plan: dict[str, Any], base: dict[str, Any] | None, head: dict[str, Any] | None) -> StackDiff:
    """Changes from `terraform show -json` output; modules and construct paths come from the documents."""
    known = {**index(base), **index(head)}
    changes = []
    for rc in plan.get("resource_changes", []):
        if rc.get("mode", "managed") != "managed":
            continue
        change = rc.get("change", {})
        action = plan_action(change.get("actions", []))
        if action is None:
            continue
        address = rc["address"]
        r = known.get(address)
        before, after = change.get("before"), change.get("after")
        attrs: tuple[AttributeChange, ...] = ()
        if action in (UPDATE, REPLACE):
            unknown = _unknown_paths(change.get("after_unknown", {}))
            replace_tops = {str(p[0]) for p in change.get("replace_paths", []) if p}
            # Terraform's JSON plan carries sensitive values in clear, marked in before/after_sensitive
            # ("JSON Output Format", Terraform docs): the report shows that a value changed, never the value.
            before_mask, after_mask = change.get("before_sensitive"), change.get("after_sensitive")
            rows = [
                (
                    p,
                    SENSITIVE if is_sensitive(before_mask, p) else b,
                    "(known after apply)" if p in unknown else SENSITIVE if is_sensitive(after_mask, p) else a,
                )
                for p, b, a in attribute_changes(before or {}, after or {})
            ]
            rows += [
                (p, (before or {}).get(p), "(known after apply)")
                for p in sorted(unknown)
                if "." not in p and "[" not in p and p not in {x[0] for x in rows} and (before or {}).get(p) is not None
            ]
            attrs = tuple(AttributeChange(p, b, a, _top(p) in replace_tops) for p, b, a in rows)
        changes.append(
            Change(
                action,
                address,
                rc.get("type", address.split(".")[0]),
                r.module if r else "unknown",
                short_path(r.path) if r else address,
                attrs,
                before,
                after,
            )
        )
    return StackDiff(stack, changes, "plan", base_missing=base is None)


def plan_match_score(plan: dict[str, Any], document: dict[str, Any]) -> int:
    """How many of the plan's addresses the stack defines (to pick a stack for an unlabeled plan)."""
    addresses = set(index(document))
    return sum(1 for rc in plan.get("resource_changes", []) if rc.get("address") in addresses)
