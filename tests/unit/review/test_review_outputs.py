"""Machine-readable review outputs: --json (the report's data), --sarif (code scanning) and the PR comment
cut to GitHub's size limit (--comment / --max-chars)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from deepsentinel.review.policy import Finding, PolicyResult, Suppression
from deepsentinel.review.report import (GITHUB_COMMENT_LIMIT, comment_length, delta, money,
                                        truncate_for_comment)
from deepsentinel.review.sarif import SARIF_SCHEMA, region, resource_spans, to_sarif

from .conftest import STACK, base_document, head_document, res, write_stacks

# With test_review_fixture.py on one xdist worker: the fixture's checkov runs (conftest.py) happen once.
pytestmark = pytest.mark.xdist_group("review_fixture")
REPO = Path(__file__).resolve().parents[3]
SARIF_PAGE = ("SARIF support for code scanning, https://docs.github.com/en/code-security/code-scanning/"
              "integrating-with-code-scanning/sarif-support-for-code-scanning")

# A subset of the OASIS SARIF 2.1.0 schema (sarif-schema-2.1.0.json), transcribed: the required members and
# the types of every object the review writes. No schema is downloaded; jsonschema comes with checkov.
SARIF_SUBSET = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string", "format": "uri"},
        "version": {"enum": ["2.1.0"]},
        "runs": {"type": ["array", "null"], "items": {"$ref": "#/definitions/run"}},
    },
    "definitions": {
        "run": {"type": "object", "required": ["tool"], "properties": {
            "tool": {"$ref": "#/definitions/tool"},
            "results": {"type": ["array", "null"], "items": {"$ref": "#/definitions/result"}},
            "columnKind": {"enum": ["utf16CodeUnits", "unicodeCodePoints"]}}},
        "tool": {"type": "object", "required": ["driver"], "properties": {"driver": {"$ref": "#/definitions/toolComponent"}}},
        "toolComponent": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"}, "version": {"type": "string"},
            "informationUri": {"type": "string", "format": "uri"},
            "rules": {"type": "array", "uniqueItems": True, "items": {"$ref": "#/definitions/reportingDescriptor"}}}},
        "reportingDescriptor": {"type": "object", "required": ["id"], "properties": {
            "id": {"type": "string"}, "name": {"type": "string"},
            "shortDescription": {"$ref": "#/definitions/multiformatMessageString"},
            "fullDescription": {"$ref": "#/definitions/multiformatMessageString"},
            "help": {"$ref": "#/definitions/multiformatMessageString"},
            "defaultConfiguration": {"type": "object", "properties": {"level": {"$ref": "#/definitions/level"}}},
            "properties": {"type": "object"}}},
        "multiformatMessageString": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
        "message": {"type": "object", "anyOf": [{"required": ["text"]}, {"required": ["id"]}],
                    "properties": {"text": {"type": "string"}, "id": {"type": "string"}}},
        "level": {"enum": ["none", "note", "warning", "error"]},
        "result": {"type": "object", "required": ["message"], "properties": {
            "ruleId": {"type": "string"}, "ruleIndex": {"type": "integer", "minimum": -1},
            "level": {"$ref": "#/definitions/level"}, "message": {"$ref": "#/definitions/message"},
            "locations": {"type": "array", "items": {"$ref": "#/definitions/location"}},
            "partialFingerprints": {"type": "object", "additionalProperties": {"type": "string"}},
            "properties": {"type": "object"}}},
        "location": {"type": "object", "properties": {
            "physicalLocation": {"$ref": "#/definitions/physicalLocation"},
            "logicalLocations": {"type": "array", "items": {"$ref": "#/definitions/logicalLocation"}}}},
        "physicalLocation": {"type": "object", "anyOf": [{"required": ["address"]}, {"required": ["artifactLocation"]}],
                             "properties": {"artifactLocation": {"$ref": "#/definitions/artifactLocation"},
                                            "region": {"$ref": "#/definitions/region"}}},
        "artifactLocation": {"type": "object", "properties": {"uri": {"type": "string", "format": "uri-reference"}}},
        "region": {"type": "object", "properties": {
            "startLine": {"type": "integer", "minimum": 1}, "startColumn": {"type": "integer", "minimum": 1},
            "endLine": {"type": "integer", "minimum": 1}, "endColumn": {"type": "integer", "minimum": 1}}},
        "logicalLocation": {"type": "object", "properties": {
            "name": {"type": "string"}, "fullyQualifiedName": {"type": "string"}, "kind": {"type": "string"}}},
    },
}


def schema_errors(document: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(SARIF_SUBSET, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def github_problems(document: dict) -> list[str]:
    """What GitHub's code scanning requires beyond the schema (the 'required' marks on the SARIF support page)."""
    problems = []
    if not document.get("$schema"):
        problems.append("$schema missing")
    for run in document["runs"]:
        driver = run["tool"]["driver"]
        if not driver.get("name") or "rules" not in driver:
            problems.append("tool.driver needs name and rules")
        rule_ids = set()
        for rule in driver.get("rules", []):
            rule_ids.add(rule["id"])
            for key in ("shortDescription", "fullDescription", "help"):
                text = rule.get(key, {}).get("text", "")
                if not text or (key != "help" and len(text) > 1024):
                    problems.append(f"rule {rule['id']}: {key}.text missing or above 1024 characters")
            if len(rule.get("name", "")) > 255:
                problems.append(f"rule {rule['id']}: name above 255 characters")
        for i, result in enumerate(run["results"]):
            if not result.get("message", {}).get("text"):
                problems.append(f"result {i}: message.text missing")
            if result.get("ruleId") not in rule_ids:
                problems.append(f"result {i}: ruleId {result.get('ruleId')} is not a rule of the driver")
            if not 1 <= len(result.get("locations", [])) <= 10:
                problems.append(f"result {i}: needs 1 to 10 locations")
            for location in result.get("locations", []):
                physical = location.get("physicalLocation", {})
                uri = physical.get("artifactLocation", {}).get("uri", "")
                if not uri:
                    problems.append(f"result {i}: physicalLocation.artifactLocation.uri missing")
                missing = {"startLine", "startColumn", "endLine", "endColumn"} - set(physical.get("region", {}))
                if missing:
                    problems.append(f"result {i}: region lacks {sorted(missing)}")
            if not result.get("partialFingerprints", {}).get("primaryLocationLineHash"):
                problems.append(f"result {i}: partialFingerprints.primaryLocationLineHash missing")
    return problems


def region_text(text: str, r: dict) -> str:
    lines = text.splitlines(keepends=True)
    if r["startLine"] == r["endLine"]:
        return lines[r["startLine"] - 1][r["startColumn"] - 1:r["endColumn"] - 1]
    return (lines[r["startLine"] - 1][r["startColumn"] - 1:] + "".join(lines[r["startLine"]:r["endLine"] - 1])
            + lines[r["endLine"] - 1][:r["endColumn"] - 1])


# --- --json --------------------------------------------------------------------------------------------------

def test_json_carries_the_numbers_of_the_markdown(fixture_review):
    data = json.loads(fixture_review["stdout"])  # stdout held nothing but the one document
    md = fixture_review["markdown"]
    headline = md.split("### Risks")[0]
    assert data["exit_code"] == fixture_review["code"] == 1
    counts = data["summary"]["changes"]
    assert f"{counts['create']} to add, {counts['update']} to change, {counts['delete']} to destroy" in headline
    assert [c["counts"] for c in data["changes"]] == [counts]
    risks = data["summary"]["risks"]
    assert f"🔴 {risks['high']} high" in headline and f"🟠 {risks['medium']} medium" in headline
    assert f"⚪ {risks['low']} low" in headline and len(data["risks"]) == sum(risks.values()) == 5
    for risk in data["risks"]:
        assert risk["path"] in md.split("### Risks")[1].split("### Changes")[0]
    cost = data["cost"]["stacks"][STACK]
    assert f"`{STACK}` {money(cost['total'])}/mo ({delta(cost['delta'])})" in headline
    assert cost["delta"] == pytest.approx(cost["total"] - cost["base_total"])
    assert cost["not_priced"] == [{"module": "pipeline", "address": "aws_mq_broker.pipeline_broker",
                                   "type": "aws_mq_broker", "reason": cost["not_priced"][0]["reason"]}]
    policy = data["policy"]
    assert policy["status"] == data["summary"]["policy"] == "fail"
    assert (f"❌ {policy['not_in_baseline']} failed checks not in the baseline ({policy['baselined']} baselined, "
            f"{policy['passed']} passed)") in headline
    assert policy["failed"] == len(policy["findings"]) == policy["baselined"] + policy["not_in_baseline"]
    new = [f for f in policy["findings"] if not f["baselined"]]
    assert ("CKV_AWS_24", "HIGH", "security/alb-ssh") in {(f["check"], f["severity"], f["path"]) for f in new}
    for f in new:
        assert f"| {f['check']} | {f['severity']} | {f['stack']} | `{f['path']}` |" in md
    db = next(c for c in data["changes"][0]["changes"] if c["address"] == "aws_db_instance.storage_db")
    assert db["attributes"] == [{"path": "instance_class", "before": "db.t3.micro", "after": "db.t3.small",
                                 "forces_replacement": False}]


def test_json_stdout_parses_as_one_document_in_a_process(fixture_dirs):
    """The real process: progress and 'wrote' lines on stderr, stdout exactly one JSON document."""
    out = fixture_dirs["root"] / "process-review.md"
    done = subprocess.run([sys.executable, "-m", "deepsentinel.cli", "review", "--head", str(fixture_dirs["head"]),
                           "--base", str(fixture_dirs["base"]), "--usage", str(fixture_dirs["usage"]), "--no-policy",
                           "--json", "--out", str(out)], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["policy"] == {"status": "skipped"} and data["exit_code"] == 0
    assert f"wrote {out}" in done.stderr and out.read_text().startswith("## DeepSentinel plan review")


# --- --sarif -------------------------------------------------------------------------------------------------

def test_sarif_of_the_fixture_is_valid_and_uploadable(fixture_review, fixture_dirs):
    """SARIF 2.1.0 as GitHub code scanning takes it. Source: "SARIF support for code scanning"
    (https://docs.github.com/en/code-security/code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning):
    sarifLog needs $schema, version 2.1.0 and runs[]; run needs tool.driver (name, rules[]) and results[];
    a rule needs id, shortDescription.text, fullDescription.text (at most 1024 characters) and help.text;
    a result needs message.text, 1 to 10 locations (at least one, or code scanning does not display it)
    whose physicalLocation has artifactLocation.uri (best relative to the repository root) and
    region.startLine/startColumn/endLine/endColumn, and partialFingerprints (primaryLocationLineHash)."""
    sarif = json.loads(fixture_review["sarif"].read_text())
    assert schema_errors(sarif) == []
    assert github_problems(sarif) == []
    assert sarif["$schema"] == SARIF_SCHEMA and sarif["version"] == "2.1.0" and len(sarif["runs"]) == 1
    run = sarif["runs"][0]
    assert run["tool"]["driver"]["name"] == "checkov"
    data = json.loads(fixture_review["stdout"])
    new = sorted((f["check"], f["address"]) for f in data["policy"]["findings"] if not f["baselined"])
    assert sorted((r["ruleId"], r["locations"][0]["logicalLocations"][0]["name"]) for r in run["results"]) == new
    assert {r["level"] for r in run["results"]} == {"error"}
    assert sorted(rule["id"] for rule in run["tool"]["driver"]["rules"]) == sorted({c for c, _ in new})
    text = (fixture_dirs["head"] / "stacks" / STACK / "cdk.tf.json").read_text()
    for result in run["results"]:
        location = result["locations"][0]
        uri = location["physicalLocation"]["artifactLocation"]["uri"]
        assert uri == f"head/stacks/{STACK}/cdk.tf.json"  # relative to the root the review ran in
        address = location["logicalLocations"][0]["name"]
        rtype, name = address.split(".", 1)
        block = region_text(text, location["physicalLocation"]["region"])
        key, _, value = block.partition(":")
        assert json.loads(key) == name and json.loads(value) == head_document()["resource"][rtype][name]
        assert result["message"]["text"].startswith(f"{address} (")
        rule = run["tool"]["driver"]["rules"][result["ruleIndex"]]
        assert rule["id"] == result["ruleId"]
    ssh = next(r for r in run["results"] if r["ruleId"] == "CKV_AWS_24")
    rule = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "CKV_AWS_24")
    assert rule["properties"]["security-severity"] == "8.0"  # HIGH in the fixture's severity table
    assert ssh["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == \
        f"{STACK}/aws_vpc_security_group_ingress_rule.security_alb-ssh"


def test_the_schema_subset_and_github_checks_reject_broken_documents(fixture_review):
    sarif = json.loads(fixture_review["sarif"].read_text())
    broken = json.loads(json.dumps(sarif))
    broken["version"] = "2.0.0"
    del broken["runs"][0]["results"][0]["message"]["text"]
    broken["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    errors = schema_errors(broken)
    assert any(e.startswith("version:") for e in errors)
    assert any("message" in e for e in errors) and any("startLine" in e for e in errors)
    del broken["runs"][0]["results"][1]["locations"]
    assert "result 1: needs 1 to 10 locations" in github_problems(broken)


def _finding(check: str, address: str, path: str, *, baselined: bool = False, severity: str = "MEDIUM") -> Finding:
    suppression = Suppression(check, "accepted for the test") if baselined else None
    return Finding(STACK, check, f"Ensure {check} holds", address, path, path.split("/")[0], severity, suppression)


def test_sarif_keeps_only_findings_outside_the_baseline(tmp_path):
    doc = base_document()
    # a value with braces, brackets and escaped quotes must not confuse the block's region
    doc["resource"]["aws_iam_role"]["iam_lambda-role"]["assume_role_policy"] = '{"a": ["}", "\\"{"]}'
    files = {STACK: write_stacks(tmp_path, {STACK: doc}) / "stacks" / STACK / "cdk.tf.json"}
    policy = PolicyResult(findings=[
        _finding("CKV_AWS_16", "aws_db_instance.storage_db", "storage/db", baselined=True),
        _finding("CKV_AWS_60", "aws_iam_role.iam_lambda-role", "iam/lambda-role", severity="CRITICAL"),
        _finding("CKV_AWS_60", "aws_sqs_queue.pipeline_jobs-queue", "pipeline/jobs-queue", severity="CRITICAL"),
    ], passed=10, checkov_version="3.3.30")
    sarif = to_sarif(policy, files, root=tmp_path)
    assert schema_errors(sarif) == [] and github_problems(sarif) == []
    run = sarif["runs"][0]
    assert run["tool"]["driver"]["version"] == "3.3.30"
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["CKV_AWS_60"]  # the baselined check is no rule
    assert [r["locations"][0]["logicalLocations"][0]["name"] for r in run["results"]] == [
        "aws_iam_role.iam_lambda-role", "aws_sqs_queue.pipeline_jobs-queue"]
    assert run["tool"]["driver"]["rules"][0]["properties"]["security-severity"] == "9.5"
    text = files[STACK].read_text()
    block = region_text(text, run["results"][0]["locations"][0]["physicalLocation"]["region"])
    assert json.loads(block.partition(":")[2]) == doc["resource"]["aws_iam_role"]["iam_lambda-role"]
    fingerprints = {r["partialFingerprints"]["primaryLocationLineHash"] for r in run["results"]}
    assert len(fingerprints) == 2
    # the same findings in a reformatted file keep their fingerprints (lines move, identity does not)
    files[STACK].write_text(json.dumps(doc))
    again = to_sarif(policy, files, root=tmp_path)["runs"][0]["results"]
    assert {r["partialFingerprints"]["primaryLocationLineHash"] for r in again} == fingerprints
    assert again[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 1


def test_region_of_a_compact_document_and_of_a_missing_address():
    doc = {"resource": {"aws_vpc": {"a": {"cidr_block": "10.0.0.0/16"}, "b": {"tags": {"x": "}{"}}}}}
    text = json.dumps(doc, separators=(",", ":"))
    assert set(resource_spans(text)) == {"aws_vpc.a", "aws_vpc.b"}
    r = region(text, "aws_vpc.b")
    assert r["startLine"] == r["endLine"] == 1
    assert region_text(text, r) == '"b":{"tags":{"x":"}{"}}'
    assert region(text, "aws_vpc.c") == {"startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 2}


def test_sarif_needs_a_policy_result(fixture_dirs, tmp_path):
    with pytest.raises(ValueError, match="checkov did not produce a report"):
        to_sarif(PolicyResult(error="checkov exited 2: boom"), {}, root=tmp_path)
    from deepsentinel.cli import main

    code = main(["review", "--head", str(fixture_dirs["head"]), "--base", str(fixture_dirs["base"]), "--no-policy",
                 "--sarif", str(tmp_path / "r.sarif")])
    assert code == 2 and not (tmp_path / "r.sarif").exists()


# --- the PR comment --------------------------------------------------------------------------------------------

def huge_report(rows: int = 4000) -> str:
    lines = ["## DeepSentinel plan review: `base` → `head`", "", "| | |", "|---|---|",
             "| **Risks** | 🔴 4000 high |", "", "### Changes", "", "<details>",
             "<summary><code>deepsentinel-dev</code>: 4000 to add</summary>", ""]
    lines += [f"- `+` `storage/bucket-{i}` <sub>`aws_s3_bucket.storage_bucket-{i}`</sub> 🔴 a bucket"
              for i in range(rows)]
    lines += ["", "</details>", "", "### Policy", "", "```", "checkov output", "```", ""]
    return "\n".join(lines)


def test_a_huge_report_is_cut_below_githubs_limit_at_a_line_boundary():
    report = huge_report()
    assert comment_length(report) > GITHUB_COMMENT_LIMIT
    url = "https://github.com/o/r/actions/runs/1"
    body = truncate_for_comment(report, artifact="review", run_url=url)
    assert len(body) < comment_length(body) <= 60_000 < GITHUB_COMMENT_LIMIT  # emoji count twice in UTF-16
    kept, _, note = body.rpartition("\n> ✂️ **Truncated**")
    kept = kept.removesuffix("\n</details>\n")
    assert report.startswith(kept)  # the cut falls between lines
    assert report[len(kept) - 1] == "\n" and report[len(kept):].startswith("- `+` `storage/bucket-")
    assert body.count("<details>") == body.count("</details>")  # the note is not folded away
    assert "`review` artifact" in note and f"]({url})" in note
    shown = int(re.search(r"shows the first ([\d,]+) of", note).group(1).replace(",", ""))
    assert shown == kept.count("\n") and f"of {len(report.splitlines()):,} lines" in note


def test_a_cut_inside_a_code_fence_closes_it():
    report = "## r\n\n```\n" + "".join(f"line {i} of checkov output\n" for i in range(5000)) + "```\n"
    body = truncate_for_comment(report, 5000)
    assert comment_length(body) <= 5000
    assert body.count("```") % 2 == 0 and "artifact of this workflow run" in body


def test_a_short_report_is_the_comment_unchanged(fixture_review):
    """Uncut; only the per-resource cost lines differ: review.md lists every priced resource, the comment counts
    those beyond the largest changes."""
    report, comment = fixture_review["markdown"], fixture_review["comment"]
    every = re.compile(r"<details>\n<summary>All \d+ priced resources</summary>\n.*?</details>\n\n", re.S)
    counted = re.compile(r"\d+ more priced resources \(\d+ of them changing\) are in the full report.*\n\n")
    assert every.search(report) and counted.search(comment)
    assert counted.sub("", comment) == every.sub("", report)


def test_review_comment_option_on_a_large_change(tmp_path):
    """2,000 new buckets (no policy, no synth): --comment is cut to --max-chars, --out keeps everything."""
    head = base_document()
    head["resource"]["aws_s3_bucket"].update(
        {f"storage_extra-{i}": res("storage", f"extra-{i}", bucket=f"deepsentinel-dev-extra-{i}") for i in range(2000)})
    write_stacks(tmp_path / "base", {STACK: base_document()})
    write_stacks(tmp_path / "head", {STACK: head})
    from deepsentinel.cli import main

    out, comment = tmp_path / "review.md", tmp_path / "comment.md"
    code = main(["review", "--head", str(tmp_path / "head"), "--base", str(tmp_path / "base"), "--no-policy",
                 "--out", str(out), "--comment", str(comment), "--max-chars", "20000", "--artifact", "plan-review"])
    assert code == 0
    full, body = out.read_text(), comment.read_text()
    assert "storage/extra-1999" in full and comment_length(full) > 20_000
    assert 15_000 < comment_length(body) <= 20_000 and "`plan-review` artifact" in body
    assert body.startswith(full.split("### Changes")[0])  # the headline and risks survive the cut
    # one risk row names 20 of the 2,000 buckets without a public access block and counts the rest
    assert re.search(r"^\| 🔴 high \| deepsentinel-dev \| (`storage/extra-\d+`, ){19}`storage/extra-\d+` and 1,980 more \| "
                     r"no public access block", full, re.M)
