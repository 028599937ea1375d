"""Read synthesized stacks (cdk.tf.json): resources with their module, for reports, review and tests."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Resource types whose replacement or removal loses data; moving them needs a `moved` block.
STATEFUL_TYPES = (
    "aws_db_instance",
    "aws_s3_bucket",
    "aws_secretsmanager_secret",
    "aws_ecr_repository",
    "aws_dynamodb_table",
    "aws_cloudwatch_log_group",
)


@dataclass(frozen=True)
class Resource:
    type: str
    name: str  # the logical id inside its type, e.g. network_vpc_4E8F0223
    module: str  # first construct below the stack (network, storage, ...); "stack" for stack-level items
    path: str  # construct path, e.g. deepsentinel-dev/network/vpc
    config: dict[str, Any]

    @property
    def address(self) -> str:
        return f"{self.type}.{self.name}"

    @property
    def stateful(self) -> bool:
        return self.type in STATEFUL_TYPES


def load(stack_json: Path) -> dict[str, Any]:
    return json.loads(Path(stack_json).read_text())


def resources(document: dict[str, Any], *, kind: str = "resource") -> Iterator[Resource]:
    for rtype, by_name in document.get(kind, {}).items():
        for name, config in by_name.items():
            path = config.get("//", {}).get("metadata", {}).get("path", "")
            parts = path.split("/")
            module = parts[1] if len(parts) > 2 else "stack"
            yield Resource(rtype, name, module, path, {k: v for k, v in config.items() if k != "//"})


def count_by_module(document: dict[str, Any]) -> Counter[str]:
    return Counter(r.module for r in resources(document))


def stack_files(outdir: Path) -> dict[str, Path]:
    """Every synthesized stack below `outdir` (a cdktf.out directory), by name."""
    return {p.parent.name: p for p in sorted(Path(outdir).glob("stacks/*/cdk.tf.json"))}
