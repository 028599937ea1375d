"""The policy gate's findings outside the baseline as SARIF 2.1.0, for GitHub code scanning.

One run, tool.driver "checkov", one rule per failed check id, one result (level "error") per finding the
baseline does not cover, located in the synthesized stack (cdk.tf.json) at the resource's block, with the
resource address as a logical location. GitHub's subset of SARIF (the "SARIF support for code scanning"
page) asks for: $schema, version 2.1.0 and runs[]; tool.driver.name and rules[] (id, shortDescription,
fullDescription, help); results with message.text, at least one (at most 10) locations with a
physicalLocation (artifactLocation.uri relative to the repository root, region start/end line and
column) and partialFingerprints. Baselined findings are accepted, so they are not alerts.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deepsentinel.review.policy import Finding, PolicyResult

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
CHECKOV_URI = "https://www.checkov.io/"
BASELINE_HINT = "policy/checkov-baseline.toml"
# GitHub turns properties.security-severity into critical (> 9.0), high (7.0-8.9), medium (4.0-6.9), low
# (0.1-3.9); the project's triage severities map onto the middle of each band.
SECURITY_SEVERITY = {"CRITICAL": "9.5", "HIGH": "8.0", "MEDIUM": "5.5", "LOW": "3.0"}
MAX_TEXT = 1024  # GitHub's limit for shortDescription, fullDescription
MAX_NAME = 255  # and for a rule's name
_WS = re.compile(r"\s*")
_DECODER = json.JSONDecoder()


def _after_space(text: str, i: int) -> int:
    match = _WS.match(text, i)  # \s* matches at every offset
    return match.end() if match else i


def _object_members(text: str, start: int) -> Iterator[tuple[str, int, int, int]]:
    """(key, key offset, value offset, end of value) of each member of the JSON object whose '{' is at
    start; values are skipped by bracket depth, not decoded."""
    i = _after_space(text, start + 1)
    while i < len(text) and text[i] != "}":
        key_start = i
        key, i = _DECODER.raw_decode(text, i)
        i = _after_space(text, i)
        value_start = _after_space(text, i + 1)
        end = _skip(text, value_start)
        yield key, key_start, value_start, end
        i = _after_space(text, end)
        if i < len(text) and text[i] == ",":
            i = _after_space(text, i + 1)


def _skip(text: str, i: int) -> int:
    """End offset of the JSON value starting at i, without building it (objects and arrays by bracket depth)."""
    if text[i] not in "{[":
        return _DECODER.raw_decode(text, i)[1]
    depth, in_string, escaped = 0, False, False
    for j in range(i, len(text)):
        c = text[j]
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
            if depth == 0:
                return j + 1
    raise ValueError("unterminated JSON value")


def resource_spans(text: str) -> dict[str, tuple[int, int]]:
    """Offsets of every resource block in a cdk.tf.json text: address -> (its key's quote, after its '}')."""
    top = _after_space(text, 0)
    spans: dict[str, tuple[int, int]] = {}
    for key, _, value_start, _ in _object_members(text, top):
        if key != "resource":
            continue
        for rtype, _, type_start, _ in _object_members(text, value_start):
            for name, name_start, _, end in _object_members(text, type_start):
                spans[f"{rtype}.{name}"] = (name_start, end)
    return spans


class _Lines:
    def __init__(self, text: str):
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of the character at offset."""
        line = bisect.bisect_right(self.starts, offset) - 1
        return line + 1, offset - self.starts[line] + 1


def region(text: str, address: str, spans: dict[str, tuple[int, int]] | None = None) -> dict[str, int]:
    """The SARIF region of a resource's block ("name": {...}); line 1 when the address is not in the text."""
    spans = resource_spans(text) if spans is None else spans
    if address not in spans:
        return {"startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 2}
    start, end = spans[address]
    lines = _Lines(text)
    (start_line, start_column), (end_line, last_column) = lines.position(start), lines.position(end - 1)
    # endColumn is the column of the character following the region
    return {"startLine": start_line, "startColumn": start_column, "endLine": end_line, "endColumn": last_column + 1}


def artifact_uri(path: Path, root: Path) -> str:
    """The stack file relative to the repository root (what GitHub matches), else an absolute file: URI."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return resolved.as_uri()


def fingerprint(finding: Finding) -> str:
    """A stable identity (stack, check, address): the same finding is one alert across runs even when the
    generated JSON moves it to another line."""
    key = f"{finding.stack}\0{finding.check_id}\0{finding.address}".encode()
    return hashlib.sha256(key).hexdigest()[:32] + ":1"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _rule(finding: Finding) -> dict[str, Any]:
    name = finding.check_name or finding.check_id
    help_text = (
        f"checkov check {finding.check_id}: {name}. Fix the resource in its construct, or accept the "
        f"finding with a [[suppress]] entry and a reason in {BASELINE_HINT}."
    )
    rule: dict[str, Any] = {
        "id": finding.check_id,
        "name": _clip(finding.check_id, MAX_NAME),
        "shortDescription": {"text": _clip(name, MAX_TEXT)},
        "fullDescription": {
            "text": _clip(f"{name} (checkov {finding.check_id}; project severity {finding.severity}).", MAX_TEXT)
        },
        "help": {"text": help_text},
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["security", "terraform", "checkov"]},
    }
    if finding.severity.upper() in SECURITY_SEVERITY:
        rule["properties"]["security-severity"] = SECURITY_SEVERITY[finding.severity.upper()]
    return rule


def to_sarif(policy: PolicyResult, stack_files: dict[str, Path], *, root: Path) -> dict[str, Any]:
    """SARIF 2.1.0 log of the findings the baseline does not cover (policy must have run without error)."""
    if policy.error:
        raise ValueError(f"checkov did not produce a report: {policy.error.splitlines()[0]}")
    new = sorted(policy.new, key=lambda f: (f.check_id, f.stack, f.address))
    texts: dict[str, tuple[str, dict[str, tuple[int, int]]]] = {}
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for finding in new:
        rules.setdefault(finding.check_id, _rule(finding))
        path = stack_files.get(finding.stack)
        if path is not None and finding.stack not in texts:
            text = Path(path).read_text()
            texts[finding.stack] = (text, resource_spans(text))
        text, spans = texts.get(finding.stack, ("", {}))
        uri = artifact_uri(path, root) if path is not None else f"{finding.stack}/cdk.tf.json"
        name = finding.check_name or finding.check_id
        results.append(
            {
                "ruleId": finding.check_id,
                "ruleIndex": list(rules).index(finding.check_id),
                "level": "error",
                "message": {
                    "text": f"{finding.address} ({finding.path}) in {finding.stack} fails {finding.check_id}: "
                    f"{name.rstrip('.')}. No entry in {BASELINE_HINT} accepts it."
                },
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": uri},
                            "region": region(text, finding.address, spans),
                        },
                        "logicalLocations": [
                            {
                                "name": finding.address,
                                "fullyQualifiedName": f"{finding.stack}/{finding.address}",
                                "kind": "resource",
                            }
                        ],
                    }
                ],
                "partialFingerprints": {"primaryLocationLineHash": fingerprint(finding)},
                "properties": {
                    "stack": finding.stack,
                    "constructPath": finding.path,
                    "module": finding.module,
                    "severity": finding.severity,
                },
            }
        )
    driver: dict[str, Any] = {"name": "checkov", "informationUri": CHECKOV_URI, "rules": list(rules.values())}
    if policy.checkov_version:
        driver["version"] = policy.checkov_version
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{"tool": {"driver": driver}, "results": results, "columnKind": "unicodeCodePoints"}],
    }
