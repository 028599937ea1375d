"""The review as markdown: a headline to read in seconds, then risks, changes, cost and policy."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from deepsentinel.review.cost import PriceTable, ResourceCost, StackCost, resource_costs
from deepsentinel.review.diff import ADD, REMOVE, REPLACE, SYMBOL, UPDATE, Change, StackDiff
from deepsentinel.review.policy import PolicyResult
from deepsentinel.review.risks import HIGH, LOW, MEDIUM, Risk

MAX_ATTRIBUTES = 8
MAX_VALUE = 70
MAX_GROUPED = 20  # resources named in one risk row; the rest are counted (all of them are in --json)
ICON = {HIGH: "🔴", MEDIUM: "🟠", LOW: "⚪"}
_SEVERITY_RANK = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3, "INFO": 4}
VERBS = {ADD: "to add", UPDATE: "to change", REPLACE: "to replace", REMOVE: "to destroy"}
COST_TOP_N = 10  # per-resource cost changes in the PR comment (and atop the full report, which lists all)
CENT = 0.005  # a monthly change below half a cent shows as ±$0.00: unchanged


@dataclass
class Review:
    base_label: str
    head_label: str
    diffs: list[StackDiff]
    risks: list[Risk]
    costs: dict[str, StackCost]  # head, by stack
    base_costs: dict[str, StackCost]
    prices: PriceTable
    usage_path: str
    policy: PolicyResult | None  # None: policy skipped
    notes: list[str] = field(default_factory=list)
    # tests/unit/test_recorded_calls.py's least-privilege report (identities -> unused grants); None: not given
    least_privilege: dict[str, Any] | None = None

    @property
    def policy_failed(self) -> bool:
        return self.policy is not None and not self.policy.ok


def money(value: float) -> str:
    return f"${value:,.2f}"


def delta(value: float) -> str:
    if abs(value) < 0.005:
        return "±$0.00"
    return f"{'+' if value > 0 else '−'}${abs(value):,.2f}"


def _value(value: Any) -> str:
    text = (
        "(none)"
        if value is None
        else json.dumps(value, sort_keys=True)
        if not isinstance(value, str)
        else json.dumps(value)
    )
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def _counts(diff: StackDiff) -> str:
    counts = diff.counts()
    parts = [f"{n} {VERBS[a]}" for a, n in counts.items() if n]
    return ", ".join(parts) if parts else "no changes"


def headline(review: Review) -> list[str]:
    changes = " · ".join(
        f"`{d.stack}` {_counts(d)}" + (" (from plan)" if d.source == "plan" else "") for d in review.diffs
    )
    by = {s: sum(1 for r in review.risks if r.severity == s) for s in (HIGH, MEDIUM, LOW)}
    risks = " · ".join(f"{ICON[s]} {n} {s}" for s, n in by.items() if n) or "none"
    cost = " · ".join(
        f"`{stack}` {money(c.total)}/mo "
        f"({delta(c.total - review.base_costs[stack].total) if stack in review.base_costs else 'new'})"
        for stack, c in review.costs.items()
        if c.lines or c.variable
    )
    lines = [
        "| | |",
        "|---|---|",
        f"| **Changes** | {changes or 'none'} |",
        f"| **Risks** | {risks} |",
        f"| **Cost** | {cost or 'n/a'} |",
    ]
    p = review.policy
    if p is None:
        policy = "skipped (--no-policy)"
    elif p.error:
        policy = f"❌ checkov failed: {p.error.splitlines()[0][:150]}"
    elif p.new:
        policy = (
            f"❌ {len(p.new)} failed checks not in the baseline "
            f"({len(p.findings) - len(p.new)} baselined, {p.passed} passed)"
        )
    else:
        policy = f"✅ no new failures ({len(p.findings)} baselined, {p.passed} passed)"
    lines.append(f"| **Policy** | {policy} |")
    return lines


def risks_section(review: Review) -> list[str]:
    if not review.risks:
        return ["### Risks", "", "None found in this change."]
    groups: dict[tuple[str, str, str], list[Risk]] = {}
    for r in review.risks:  # the same reason on several resources is one row
        groups.setdefault((r.severity, r.stack, r.why), []).append(r)
    out = ["### Risks", "", "| | stack | resource | why |", "|---|---|---|---|"]
    for (severity, stack, why), items in groups.items():
        if len(items) == 1:
            where = f"`{items[0].path}`<br><sub>`{items[0].address}`</sub>"
        else:
            where = ", ".join(f"`{r.path}`" for r in items[:MAX_GROUPED])
            if len(items) > MAX_GROUPED:
                where += f" and {len(items) - MAX_GROUPED:,} more"
        out.append(f"| {ICON[severity]} {severity} | {stack} | {where} | {why} |")
    return out


def _change_line(change: Change) -> list[str]:
    head = f"- `{SYMBOL[change.action]}` `{change.path}` <sub>`{change.address}`</sub>"
    if change.action in (ADD, REMOVE):
        return [head]
    out = [head]
    for attr in change.attributes[:MAX_ATTRIBUTES]:
        mark = " **(forces replacement)**" if attr.forces_replacement else ""
        out.append(f"  - `{attr.path}`: {_value(attr.before)} → {_value(attr.after)}{mark}")
    if len(change.attributes) > MAX_ATTRIBUTES:
        out.append(f"  - … {len(change.attributes) - MAX_ATTRIBUTES} more attributes")
    return out


def changes_section(review: Review) -> list[str]:
    out = ["### Changes", ""]
    for diff in review.diffs:
        if not diff.changes:
            out.append(f"- `{diff.stack}`: no changes" + (" (new stack)" if diff.base_missing else ""))
            continue
        out += [
            "<details>",
            f"<summary><code>{diff.stack}</code>: {_counts(diff)}"
            + (" (actions from the plan)" if diff.source == "plan" else "")
            + "</summary>",
            "",
        ]
        for module, changes in diff.by_module().items():
            counts = {a: sum(1 for c in changes if c.action == a) for a in (ADD, UPDATE, REPLACE, REMOVE)}
            out.append(f"**{module}** ({' '.join(f'{SYMBOL[a]}{n}' for a, n in counts.items() if n)})")
            out.append("")
            for change in changes:
                out += _change_line(change)
            out.append("")
        out += ["</details>", ""]
    return out


def _per_thousand(value: float) -> str:
    return f"${value * 1000:,.2f}" if value * 1000 >= 0.01 else f"${value * 1000:.4f}"


def resource_rows(review: Review) -> list[ResourceCost]:
    """Every priced resource of the reviewed stacks (head or base), largest change first."""
    stacks = list(review.costs) + [s for s in review.base_costs if s not in review.costs]
    rows = [r for s in stacks for r in resource_costs(s, review.costs.get(s), review.base_costs.get(s))]
    return sorted(rows, key=lambda r: (-abs(r.delta), -(r.after or 0.0), r.stack, r.address))


def _resource_line(r: ResourceCost) -> str:
    where = f"`{r.path}`<br><sub>`{r.address}`</sub>"
    before = money(r.before) if r.before is not None else "— (new)"
    after = money(r.after) if r.after is not None else "— (removed)"
    share = f"{r.share:.1f}%" if r.share is not None else "—"
    return f"| {where} | {r.stack} | {before} | {after} | **{delta(r.delta)}** | {share} |"


def resource_cost_lines(review: Review, top: int | None = None) -> list[str]:
    """Infracost's per-resource lines: the `top` largest monthly changes, a total per stack, and (top None: the
    full report) every priced resource in a collapsed table; with `top` set (the PR comment) a note counts the
    rest instead."""
    rows = resource_rows(review)
    changed = [r for r in rows if abs(r.delta) >= CENT]
    shown = changed[: COST_TOP_N if top is None else top]
    header = ["| resource | stack | before | after | Δ | % of stack |", "|---|---|---:|---:|---:|---:|"]
    out = [
        (
            f"**By resource** (monthly at the usage file's assumptions, per-video costs included; the {len(shown)} "
            f"largest of {len(changed)} changes among {len(rows)} priced resources):"
        ),
        "",
    ]
    if shown:
        out += header + [_resource_line(r) for r in shown]
    else:
        out += ["No priced resource changes its monthly cost.", "", *header]
    for stack in list(review.costs) + [s for s in review.base_costs if s not in review.costs]:
        head, base = review.costs.get(stack), review.base_costs.get(stack)
        after = head.total if head else 0.0
        out.append(
            f"| **total** | {stack} | {money(base.total) if base else '— (new)'} | "
            f"{money(head.total) if head else '— (removed)'} | "
            f"**{delta(after - (base.total if base else 0.0))}** | {'100%' if head else '—'} |"
        )
    out.append("")
    if top is None:
        out += [
            "<details>",
            f"<summary>All {len(rows)} priced resources</summary>",
            "",
            *header,
            *[_resource_line(r) for r in rows],
            "",
            "</details>",
            "",
        ]
    elif len(rows) > len(shown):
        out += [
            (
                f"{len(rows) - len(shown)} more priced resources ({len(changed) - len(shown)} of them changing) are "
                "in the full report (review.md) and in `--json`."
            ),
            "",
        ]
    return out


def cost_section(review: Review, top: int | None = None) -> list[str]:
    t = review.prices
    approx = sum(1 for p in t.prices.values() if p.approximate)
    out = [
        "### Cost (USD per month, offline estimate)",
        "",
        (
            f"Price table `{t.version}` ({t.region}, on-demand; {approx} of {len(t.prices)} prices marked "
            f"approximate), usage `{review.usage_path}`."
        ),
        "",
        "| stack | fixed (min–max tasks) | per video | videos | total | base | Δ |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for stack, cost in review.costs.items():
        base = review.base_costs.get(stack)
        video = f"${cost.per_video:.4f} | {cost.videos_per_month:,.0f}" if cost.variable else "— | —"
        out.append(
            f"| {stack} | {money(cost.fixed_min)}–{money(cost.fixed_max)} | {video} | **{money(cost.total)}** | "
            f"{money(base.total) if base else '—'} | **{delta(cost.total - (base.total if base else 0.0))}** |"
        )
    out.append("")
    out += resource_cost_lines(review, top)
    for stack, cost in review.costs.items():
        if cost.not_priced:
            out.append(f"**Not priced** in `{stack}` (not included above):")
            out += [f"- `{u.address}` ({u.type}): {u.reason}" for u in cost.not_priced]
            out.append("")
    out += [
        "<details>",
        "<summary>By module (Fargate at min and max tasks; Batch idle = min_vcpus) and per video</summary>",
        "",
    ]
    for stack, cost in review.costs.items():
        if not cost.lines and not cost.variable:
            continue
        base = review.base_costs.get(stack)
        base_modules = base.by_module() if base else {}
        out += [
            f"**{stack}**",
            "",
            "| module | fixed (min tasks) | fixed (max tasks) | base | Δ |",
            "|---|---:|---:|---:|---:|",
        ]
        for module in sorted(set(cost.by_module()) | set(base_modules)):
            lo, hi, _ = cost.by_module().get(module, (0.0, 0.0, 0.0))
            b = base_modules.get(module, (0.0, 0.0, 0.0))[0]
            out.append(f"| {module} | {money(lo)} | {money(hi)} | {money(b) if base else '—'} | {delta(lo - b)} |")
        if cost.variable:
            parts = "; ".join(f"{v.item} {_per_thousand(v.usd_per_video)}" for v in cost.variable)
            out += ["", f"Per 1,000 videos: {_per_thousand(cost.per_video)} = {parts}."]
        out.append("")
    out += ["</details>", ""]
    return out


def policy_section(review: Review) -> list[str]:
    p = review.policy
    if p is None:
        return ["### Policy", "", "Skipped (`--no-policy`)."]
    out = ["### Policy (checkov terraform_json)", ""]
    if p.error:
        return [*out, "checkov did not produce a report, so the gate fails:", "", "```", p.error[-1500:], "```"]
    sev = " · ".join(
        f"{s} {n}" + (f" ({new} new)" if new else "")
        for s, (n, new) in sorted(p.by_severity().items(), key=lambda kv: _SEVERITY_RANK.get(kv[0], 9))
    )
    out.append(
        f"checkov {p.checkov_version}: {p.passed} passed, {len(p.findings)} failed ({sev or 'none'}); "
        f"{len(p.findings) - len(p.new)} covered by the baseline. Severities are the project's triage table "
        f"(checkov gives none offline). {p.seconds:.1f}s."
    )
    out.append("")
    if p.new:
        out += [
            "**Not in the baseline** (fix, or add a `[[suppress]]` entry with a reason):",
            "",
            "| check | severity | stack | resource | |",
            "|---|---|---|---|---|",
        ]
        out += [f"| {f.check_id} | {f.severity} | {f.stack} | `{f.path}` | {f.check_name} |" for f in p.new]
        out.append("")
    rows = p.by_check()
    if rows:
        out += [
            "<details>",
            "<summary>Failed checks by check</summary>",
            "",
            "| check | severity | failed | baselined | |",
            "|---|---|---:|---:|---|",
        ]
        out += [f"| {c} | {s} | {n} | {b} | {name} |" for c, s, name, n, b in rows]
        out += ["", "</details>", ""]
    if p.stale:
        out.append(
            "Stale baseline entries (match nothing now; remove them): " + ", ".join(s.describe() for s in p.stale)
        )
    return out


def least_privilege_section(review: Review) -> list[str]:
    """Granted actions no recorded call used, per identity and statement (a report, never a failure)."""
    identities = (review.least_privilege or {}).get("identities", {})
    rows = [
        (identity, statement, actions)
        for identity, entry in sorted(identities.items())
        for statement, actions in entry.get("unused_grants", {}).items()
    ]
    out = ["### Least privilege (granted, no recorded call used it)", ""]
    if not rows:
        return [*out, "Every granted action was used by a recorded call."]
    out += [
        "<details><summary>" + f"{len(rows)} statements with unused actions" + "</summary>",
        "",
        "| identity | statement | unused actions |",
        "|---|---|---|",
    ]
    out += [f"| {i} | {s} | {', '.join(a)} |" for i, s, a in rows]
    not_recorded = (review.least_privilege or {}).get("not_recorded", {})
    out += ["", *[f"- not recorded: {who}: {why}" for who, why in not_recorded.items()], "", "</details>"]
    return out


def render(review: Review, *, cost_rows: int | None = None) -> str:
    """The full report; with cost_rows (the PR comment) the per-resource cost lines stop at that many changes."""
    lines = [f"## DeepSentinel plan review: `{review.base_label}` → `{review.head_label}`", ""]
    lines += [*headline(review), ""]
    lines += [*risks_section(review), ""]
    lines += [*changes_section(review), ""]
    lines += [*cost_section(review, cost_rows), ""]
    lines += policy_section(review)
    if review.least_privilege is not None:
        lines += ["", *least_privilege_section(review)]
    if review.notes:
        lines += ["", *[f"> {n}" for n in review.notes]]
    return "\n".join(lines).rstrip() + "\n"


# --- machine-readable data (`deepsentinel review --json`) -------------------------------------------------


def _round(value: float) -> float:
    return round(value, 6)


def _change_data(change: Change) -> dict[str, Any]:
    return {
        "action": change.action,
        "address": change.address,
        "type": change.type,
        "module": change.module,
        "path": change.path,
        "attributes": [
            {"path": a.path, "before": a.before, "after": a.after, "forces_replacement": a.forces_replacement}
            for a in change.attributes
        ],
    }


def _cost_data(cost: StackCost, base: StackCost | None) -> dict[str, Any]:
    return {
        "environment": cost.environment,
        "fixed_min": _round(cost.fixed_min),
        "fixed_max": _round(cost.fixed_max),
        "fixed_usage": _round(cost.fixed_usage),
        "per_video": _round(cost.per_video),
        "videos_per_month": cost.videos_per_month,
        "total": _round(cost.total),
        "base_total": _round(base.total) if base else None,
        "delta": _round(cost.total - (base.total if base else 0.0)),
        "by_module": {
            m: {"fixed_min": _round(lo), "fixed_max": _round(hi), "fixed_usage": _round(at)}
            for m, (lo, hi, at) in cost.by_module().items()
        },
        "per_video_items": [
            {"item": v.item, "usd_per_video": _round(v.usd_per_video), "prices": list(v.prices)} for v in cost.variable
        ],
        "lines": [
            {
                "module": line.module,
                "address": line.address,
                "path": line.path,
                "item": line.item,
                "monthly_min": _round(line.monthly_min),
                "monthly_max": _round(line.monthly_max),
                "monthly_usage": _round(line.monthly_usage),
                "prices": list(line.prices),
            }
            for line in cost.lines
        ],
        "not_priced": [
            {"module": u.module, "address": u.address, "type": u.type, "reason": u.reason} for u in cost.not_priced
        ],
    }


def _policy_data(p: PolicyResult | None) -> dict[str, Any]:
    if p is None:
        return {"status": "skipped"}
    status = "error" if p.error else "fail" if p.new else "pass"
    return {
        "status": status,
        "error": p.error,
        "checkov_version": p.checkov_version,
        "seconds": round(p.seconds, 3),
        "passed": p.passed,
        "failed": len(p.findings),
        "baselined": len(p.findings) - len(p.new),
        "not_in_baseline": len(p.new),
        "by_severity": {s: {"failed": n, "not_in_baseline": new} for s, (n, new) in p.by_severity().items()},
        "by_check": [
            {"check": c, "severity": s, "name": name, "failed": n, "baselined": b} for c, s, name, n, b in p.by_check()
        ],
        "findings": [
            {
                "check": f.check_id,
                "name": f.check_name,
                "severity": f.severity,
                "stack": f.stack,
                "address": f.address,
                "path": f.path,
                "module": f.module,
                "baselined": f.baselined,
                "reason": f.suppression.reason if f.suppression else None,
            }
            for f in p.findings
        ],
        "stale_baseline_entries": [s.describe() for s in p.stale],
    }


def review_data(review: Review) -> dict[str, Any]:
    """Everything the markdown shows, as plain data (the numbers unrounded to cents)."""
    totals = {action: sum(d.counts()[action] for d in review.diffs) for action in (ADD, UPDATE, REPLACE, REMOVE)}
    return {
        "base": review.base_label,
        "head": review.head_label,
        "summary": {
            "changes": totals,
            "risks": {s: sum(1 for r in review.risks if r.severity == s) for s in (HIGH, MEDIUM, LOW)},
            "cost": {
                stack: {
                    "total": _round(c.total),
                    "delta": _round(c.total - review.base_costs[stack].total) if stack in review.base_costs else None,
                }
                for stack, c in review.costs.items()
            },
            "policy": _policy_data(review.policy)["status"],
        },
        "changes": [
            {
                "stack": d.stack,
                "source": d.source,
                "base_missing": d.base_missing,
                "counts": d.counts(),
                "changes": [_change_data(c) for c in d.changes],
            }
            for d in review.diffs
        ],
        "risks": [
            {
                "severity": r.severity,
                "kind": r.kind,
                "stack": r.stack,
                "address": r.address,
                "path": r.path,
                "why": r.why,
            }
            for r in review.risks
        ],
        "cost": {
            "currency": review.prices.currency,
            "price_table": review.prices.version,
            "region": review.prices.region,
            "usage": review.usage_path,
            "stacks": {stack: _cost_data(c, review.base_costs.get(stack)) for stack, c in review.costs.items()},
            # Infracost's lines: every priced resource, largest monthly change first
            "resources": [
                {
                    "stack": r.stack,
                    "address": r.address,
                    "path": r.path,
                    "module": r.module,
                    "before": None if r.before is None else _round(r.before),
                    "after": None if r.after is None else _round(r.after),
                    "delta": _round(r.delta),
                    "share_percent": None if r.share is None else _round(r.share),
                    "items": list(r.items),
                }
                for r in resource_rows(review)
            ],
        },
        "policy": _policy_data(review.policy),
        "notes": list(review.notes),
    }


# --- the pull-request comment -------------------------------------------------------------------------------

GITHUB_COMMENT_LIMIT = 65_536  # GitHub rejects an issue or pull-request comment body longer than this
COMMENT_MAX_CHARS = 60_000  # default budget: the limit less room for the closing note and for counting differences
DEFAULT_ARTIFACT = "review"  # the workflow's artifact holding the full review.md


def comment_length(text: str) -> int:
    """Length in UTF-16 code units: never less than the character count, whichever way it is counted
    (an emoji such as 🔴 is one code point but two UTF-16 units)."""
    return len(text.encode("utf-16-le")) // 2


def truncate_for_comment(
    markdown: str, max_chars: int = COMMENT_MAX_CHARS, *, artifact: str = DEFAULT_ARTIFACT, run_url: str | None = None
) -> str:
    """The report as a PR comment body of at most max_chars: unchanged when it fits, else cut at a line
    boundary, open <details> blocks and code fences closed, and a closing note naming the artifact that
    holds the full report (and linking the workflow run when run_url is given)."""
    if comment_length(markdown) <= max_chars:
        return markdown
    lines = markdown.splitlines(keepends=True)

    def note(kept: int) -> str:
        where = (
            f"the `{artifact}` artifact of [this workflow run]({run_url})"
            if run_url
            else f"the `{artifact}` artifact of this workflow run"
        )
        return (
            f"\n> ✂️ **Truncated**: GitHub accepts at most {GITHUB_COMMENT_LIMIT:,} characters in a comment, so this "
            f"shows the first {kept:,} of {len(lines):,} lines. The full report (review.md) is {where}.\n"
        )

    def closing(kept_lines: list[str]) -> str:
        text = "".join(kept_lines)
        fence = "```\n" if sum(1 for line in kept_lines if line.lstrip().startswith("```")) % 2 else ""
        open_details = max(text.count("<details>") - text.count("</details>"), 0)
        return fence + "\n</details>\n" * open_details

    budget = max_chars - comment_length(note(len(lines))) - 200  # room for the closing tags
    if budget <= 0:
        raise ValueError(f"--max-chars {max_chars} leaves no room for the report and its note")
    kept, used = [], 0
    for line in lines:
        size = comment_length(line)
        if used + size > budget:
            break
        kept.append(line)
        used += size
    body = "".join(kept)
    if body and not body.endswith("\n"):
        body += "\n"
    result = body + closing(kept) + note(len(kept))
    while comment_length(result) > max_chars and kept:  # many open blocks: drop lines until it fits
        kept.pop()
        result = "".join(kept) + closing(kept) + note(len(kept))
    return result
