"""What deploy, destroy and bootstrap share: the compact progress of a Terraform run, the saved plan a user
confirms, and the confirmation itself."""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass

CONFIRMED_PLAN = "deepsentinel.tfplan"

# What Terraform prints when one resource action ends, and the kind the counter names.
FINISHED_ACTIONS = {
    ": Creation complete": "created",
    ": Modifications complete": "modified",
    ": Destruction complete": "destroyed",
    ": Import complete": "imported",
}


def planned_actions(plan_line: str) -> int:
    """Resource actions an apply of this plan will finish, from Terraform's summary line ("Plan: 2 to add,
    1 to change, 2 to destroy."): a replacement is in both "add" and "destroy", as it finishes twice."""
    return sum(int(n) for n, _ in re.findall(r"(\d+) to (add|change|destroy|import)\b", plan_line))


@dataclass
class Progress:
    """Prints one line per finished resource action with a running count and the elapsed time."""

    verb: str  # the run's own verb (created, destroyed); each counted line names its action's kind
    started: float = 0.0
    done: int = 0
    total: int | None = None  # every action the "Plan: N to add, M to change, K to destroy." line announces
    verbose: bool = False  # print Terraform's every line as it comes instead

    def __post_init__(self) -> None:
        self.started = time.perf_counter()

    def __call__(self, line: str) -> None:
        text = line.strip()
        if text.startswith("Plan: "):
            self.total = planned_actions(text)
        if self.verbose:
            print(line, flush=True)
            return
        if not text:
            return
        if text.startswith("Plan: "):
            print(f"{text}", flush=True)
            return
        kind = next((kind for marker, kind in FINISHED_ACTIONS.items() if marker in text), None)
        elapsed = f"[{time.perf_counter() - self.started:6.1f}s]"
        if kind is not None:
            self.done += 1
            count = f"{self.done:>3}/{self.total}" if self.total else f"{self.done:>3}"
            print(f"{elapsed} {count} {kind}  {text}", flush=True)
        elif text.startswith(("Error", "│ Error", "Apply complete", "Destroy complete")):
            # No count: the last action's line already showed it (the summary would repeat it).
            print(f"{elapsed} {text}", flush=True)


def confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        print(f"{question} (not a terminal: pass --yes to confirm)", file=sys.stderr)
        return False
    return input(f"{question} Type 'yes' to continue: ").strip() == "yes"
