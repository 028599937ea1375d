"""The committed snapshot of every resource address per stack (zero-downtime refactor guard).

A stateful resource (RDS, S3, secret, ECR, DynamoDB, log group) whose address changes would be
destroyed and recreated. Moving one on purpose: keep the new construct id, call
`resource.move_from_id("<old address>")` on it (cdktf's move API writes a `moved` block), then
`deepsentinel addresses --update` to record the new address.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deepsentinel.errors import OperationFailed
from deepsentinel.synthesized import STATEFUL_TYPES, load, resources

DEFAULT_SNAPSHOT_DIR = Path("addresses")


@dataclass(frozen=True)
class AddressDrift:
    stack: str
    removed_stateful: list[str]
    removed: list[str]
    added: list[str]

    @property
    def clean(self) -> bool:
        return not (self.removed_stateful or self.removed or self.added)

    def as_dict(self) -> dict[str, object]:
        return {
            "clean": self.clean,
            "removed_stateful": self.removed_stateful,
            "removed": self.removed,
            "added": self.added,
        }

    def explain(self) -> str:
        lines = [f"{self.stack}: resource addresses differ from {DEFAULT_SNAPSHOT_DIR}/{self.stack}.txt"]
        if self.removed_stateful:
            lines.append("  stateful resources that would be DESTROYED and recreated (data loss):")
            lines += [f"    - {a}" for a in self.removed_stateful]
            lines.append(
                "  If this move is intended, keep the data: on the resource's new construct call\n"
                '    resource.move_from_id("<old address above>")\n'
                "  (cdktf emits a `moved` block), then run `deepsentinel addresses --update`.\n"
                "  Otherwise restore the old construct id/path."
            )
        if self.removed:
            lines += ["  removed:"] + [f"    - {a}" for a in self.removed]
        if self.added:
            lines += ["  added:"] + [f"    + {a}" for a in self.added]
        if not self.removed_stateful:
            lines.append("  Intended? Run `deepsentinel addresses --update` and commit the snapshot.")
        return "\n".join(lines)


def compare(stack: str, stack_json: Path, snapshot_dir: Path = DEFAULT_SNAPSHOT_DIR) -> AddressDrift:
    document = load(stack_json)
    current = {r.address for r in resources(document)}
    snapshot_file = snapshot_dir / f"{stack}.txt"
    if not snapshot_file.is_file():
        raise OperationFailed(
            f"no address snapshot of {stack} at {snapshot_file}: record one with "
            "`deepsentinel addresses --update` (and commit it), or pass --snapshot-dir"
        )
    recorded = set(snapshot_file.read_text().split())
    # A moved resource still appears under its new address; its old one is covered by the moved block.
    moved_from = {m["from"] for m in document.get("moved", [])}
    gone = sorted(recorded - current - moved_from)
    return AddressDrift(
        stack=stack,
        removed_stateful=[a for a in gone if a.split(".")[0] in STATEFUL_TYPES],
        removed=[a for a in gone if a.split(".")[0] not in STATEFUL_TYPES],
        added=sorted(current - recorded),
    )


def write_snapshot(stack: str, stack_json: Path, snapshot_dir: Path = DEFAULT_SNAPSHOT_DIR) -> Path:
    snapshot_dir.mkdir(parents=True, exist_ok=True)
    path = snapshot_dir / f"{stack}.txt"
    path.write_text("".join(f"{r.address}\n" for r in sorted(resources(load(stack_json)), key=lambda r: r.address)))
    return path
