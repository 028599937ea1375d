"""Policy gate: checkov (terraform_json framework) on the synthesized stacks, judged against a baseline.

The baseline (TOML, see policy/checkov-baseline.toml) lists accepted findings: each [[suppress]] entry
names a check, gives a reason and may be scoped to resources and stacks. A failed check that no entry
covers fails the gate. checkov runs once for all stacks, offline (--skip-download), in a subprocess so
its import cost and global state stay out of the caller.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
import os
import subprocess
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepsentinel.synthesized import Resource, resources

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BASELINE = REPO_ROOT / "policy" / "checkov-baseline.toml"
UNKNOWN = "unknown"


class BaselineError(ValueError):
    pass


@dataclass(frozen=True)
class Suppression:
    check: str
    reason: str
    resources: tuple[str, ...] = ()
    stacks: tuple[str, ...] = ()

    def applies_to(self, stack: str) -> bool:
        """Whether the entry's stack scope includes `stack` (an entry without one applies to every stack)."""
        return not self.stacks or any(fnmatch.fnmatchcase(stack, s) for s in self.stacks)

    def covers(self, finding: Finding) -> bool:
        if finding.check_id != self.check:
            return False
        if not self.applies_to(finding.stack):
            return False
        return not self.resources or any(
            fnmatch.fnmatchcase(finding.path, g) or fnmatch.fnmatchcase(finding.address, g) for g in self.resources
        )

    def describe(self) -> str:
        scope = []
        if self.resources:
            scope.append("resources " + ", ".join(self.resources))
        if self.stacks:
            scope.append("stacks " + ", ".join(self.stacks))
        return self.check + (f" ({'; '.join(scope)})" if scope else "")


@dataclass(frozen=True)
class Baseline:
    suppressions: tuple[Suppression, ...]
    severities: dict[str, str]
    path: str = ""

    @classmethod
    def load(cls, path: Path = DEFAULT_BASELINE) -> Baseline:
        doc = tomllib.loads(Path(path).read_text())
        problems, entries = [], []
        for i, entry in enumerate(doc.get("suppress", []), 1):
            check, reason = str(entry.get("check", "")).strip(), str(entry.get("reason", "")).strip()
            if not check:
                problems.append(f"suppression #{i} names no check")
            if len(reason) < 10:
                problems.append(f"suppression #{i} ({check or '?'}) gives no reason")
            unknown = set(entry) - {"check", "reason", "resources", "stacks"}
            if unknown:
                problems.append(f"suppression #{i} ({check}) has unknown keys {sorted(unknown)}")
            entries.append(
                Suppression(check, reason, tuple(entry.get("resources", ())), tuple(entry.get("stacks", ())))
            )
        if problems:
            raise BaselineError(f"{path}: " + "; ".join(problems))
        severities = {k: str(v).upper() for k, v in doc.get("severity", {}).items()}
        return cls(tuple(entries), severities, str(path))

    @classmethod
    def empty(cls) -> Baseline:
        return cls((), {}, "")

    def severity(self, check_id: str, reported: str | None) -> str:
        """checkov's own severity when it has one (online only), else the project's table, else unknown."""
        if reported:
            return str(reported).upper()
        return self.severities.get(check_id, UNKNOWN)


@dataclass(frozen=True)
class Finding:
    stack: str
    check_id: str
    check_name: str
    address: str
    path: str
    module: str
    severity: str
    suppression: Suppression | None = None

    @property
    def baselined(self) -> bool:
        return self.suppression is not None


@dataclass
class PolicyResult:
    findings: list[Finding] = field(default_factory=list)
    passed: int = 0
    stale: list[Suppression] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    checkov_version: str = ""

    @property
    def new(self) -> list[Finding]:
        return [f for f in self.findings if not f.baselined]

    @property
    def ok(self) -> bool:
        return self.error is None and not self.new

    def by_check(self) -> list[tuple[str, str, str, int, int]]:
        """(check, severity, name, failed, of which baselined), worst first."""
        total: Counter[str] = Counter()
        covered: Counter[str] = Counter()
        info: dict[str, tuple[str, str]] = {}
        for f in self.findings:
            total[f.check_id] += 1
            covered[f.check_id] += f.baselined
            info[f.check_id] = (f.severity, f.check_name)
        order = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3, UNKNOWN.upper(): 4, UNKNOWN: 4}
        rows = [(c, info[c][0], info[c][1], total[c], covered[c]) for c in total]
        return sorted(rows, key=lambda r: (r[3] == r[4], order.get(r[1], 5), -r[3], r[0]))

    def by_severity(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for f in self.findings:
            n, new = out.get(f.severity, (0, 0))
            out[f.severity] = (n + 1, new + (not f.baselined))
        return out


# Reports of this process's checkov runs, by what decides one: the files (path and content), the command, the
# working directory (checkov reads its .checkov.yaml there) and checkov's own environment variables. A review
# runs checkov once, but a caller judging the same stacks twice (as the tests do) need not run it twice.
_REPORTS: dict[str, dict[str, Any]] = {}
_REPORTS_KEPT = 4


def _report_key(files: dict[str, Path], command: list[str]) -> str:
    digest = hashlib.sha256()
    settings = sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith(("CKV_", "BC_")))
    for part in (*command, os.getcwd(), *settings):
        digest.update(part.encode() + b"\0")
    for name, path in files.items():
        digest.update(f"{name}\0{path}\0".encode() + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def run_checkov(stack_files: dict[str, Path], *, timeout: float = 600) -> dict[str, Any]:
    """One checkov process for all stacks; returns its JSON report (one framework: a dict). The same files,
    unchanged, in the same process get the report again (a copy) without a second run."""
    files = {name: Path(path).resolve() for name, path in stack_files.items()}
    command = [
        sys.executable,
        "-m",
        "checkov.main",
        "--framework",
        "terraform_json",
        "-o",
        "json",
        "--quiet",
        "--compact",
        "--skip-download",
        "--skip-results-upload",
    ]
    for path in files.values():
        command += ["-f", str(path)]
    try:
        key = _report_key(files, command)
    except OSError:  # a missing file: checkov says so
        key = None
    if key in _REPORTS:
        return copy.deepcopy(_REPORTS[key])
    report = _run_checkov(command, timeout)
    if key is not None:
        while len(_REPORTS) >= _REPORTS_KEPT:
            del _REPORTS[next(iter(_REPORTS))]
        _REPORTS[key] = copy.deepcopy(report)
    return report


def _run_checkov(command: list[str], timeout: float) -> dict[str, Any]:
    # exit 1 is checkov's "some check failed", a report like exit 0's
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"checkov exited {done.returncode}: {(done.stderr or done.stdout).strip()[-2000:]}")
    out = done.stdout.strip()
    try:
        report = json.loads(out[min(i for i in (out.find("{"), out.find("["), len(out)) if i >= 0) :] or "{}")
    except ValueError as error:
        raise RuntimeError(f"checkov printed no JSON report: {out[-500:]} {done.stderr[-1500:]}") from error
    if isinstance(report, list):  # several frameworks: keep terraform_json
        report = next((r for r in report if r.get("check_type") == "terraform_json"), {})
    return report


def _stack_of(file_path: str, files: dict[str, Path]) -> str | None:
    for name, path in files.items():
        resolved = str(Path(path).resolve())
        if resolved.endswith(file_path) or file_path.endswith(f"/{name}/cdk.tf.json") or file_path == resolved:
            return name
    return None


def evaluate(
    stack_files: dict[str, Path],
    documents: dict[str, dict[str, Any]],
    baseline: Baseline,
    *,
    report: dict[str, Any] | None = None,
    all_stacks: Iterable[str] = (),
) -> PolicyResult:
    """Run checkov (unless a report is given) and judge every failed check against the baseline.

    An unused entry is stale only when every stack it applies to was reviewed: `all_stacks` names the stacks
    the baseline serves (a review of one environment does not see the other's findings); left empty, the
    reviewed stacks are taken to be all of them."""
    started = time.perf_counter()
    result = PolicyResult()
    try:
        report = run_checkov(stack_files) if report is None else report
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as error:
        result.error = str(error)
        return result
    by_name: dict[str, dict[str, Resource]] = {
        stack: {r.name: r for r in resources(doc)} for stack, doc in documents.items()
    }
    summary = report.get("summary", {})
    result.passed = int(summary.get("passed", 0))
    result.checkov_version = str(summary.get("checkov_version", ""))
    if int(summary.get("parsing_errors", 0)):
        result.error = f"checkov could not parse {summary['parsing_errors']} stack file(s)"
    for raw in report.get("results", {}).get("failed_checks", []):
        stack = _stack_of(raw.get("file_path", ""), stack_files) or "?"
        name = str(raw.get("resource", "")).split(".", 1)[-1]
        r = by_name.get(stack, {}).get(name)
        address = r.address if r else str(raw.get("resource", ""))
        path = r.path.split("/", 1)[1] if r and "/" in r.path else (r.path if r else name)
        check_id = raw["check_id"]
        finding = Finding(
            stack,
            check_id,
            raw.get("check_name", ""),
            address,
            path,
            r.module if r else "?",
            baseline.severity(check_id, raw.get("severity")),
        )
        cover = next((s for s in baseline.suppressions if s.covers(finding)), None)
        result.findings.append(Finding(**{**finding.__dict__, "suppression": cover}))
    used = {f.suppression for f in result.findings if f.suppression}
    reviewed = set(stack_files)
    unreviewed = set(all_stacks) - reviewed
    result.stale = [
        s
        for s in baseline.suppressions
        if s not in used
        and not any(s.applies_to(n) for n in unreviewed)
        and (any(s.applies_to(n) for n in reviewed) or bool(all_stacks))
    ]
    result.seconds = time.perf_counter() - started
    return result
