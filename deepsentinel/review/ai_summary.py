"""`deepsentinel review --ai`: a Bedrock model's summary of the plan, on top of the deterministic report.

The model gets the changes (attribute paths and values, minus anything Terraform marks sensitive in the plan's
`before_sensitive`/`after_sensitive` and anything whose name or shape says secret), the risk rows, the cost per
stack and the largest per-resource cost changes, through the Converse API (bedrock-runtime `Converse`, which
needs `bedrock:InvokeModel` on the model). Whatever Bedrock answers, the review goes on: a failed call becomes a
heading that says why the summary is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from deepsentinel.review.diff import is_sensitive, path_tokens

if TYPE_CHECKING:
    from deepsentinel.review.report import Review

# Claude Sonnet 4.5 through its global cross-Region inference profile, which ap-northeast-2 may call ("Supported
# Regions and models for inference profiles", Bedrock User Guide; checked 2026-11): the request may be served in
# any commercial Region. `--ai-model apac.anthropic.claude-...` keeps it in Asia Pacific.
DEFAULT_MODEL_ID = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
DEFAULT_REGION = "ap-northeast-2"  # the platform's Region (settings' default), when the environment names none
LANGUAGES = {"en": "English", "ko": "Korean (한국어)"}
MAX_TOKENS = 1500
MAX_CHANGES = 150  # changes sent to the model; the rest are counted
MAX_ATTRIBUTES = 12  # attribute changes sent per change
MAX_VALUE_CHARS = 300
REDACTED = "(redacted)"
# Names of attributes whose values are secrets whatever the plan says (a synthesized diff carries no
# sensitivity marks): passwords, tokens, keys, write-only arguments (`*_wo`).
SECRET_NAME = re.compile(
    r"pass(word|phrase)|secret|token|private|credential|api_?key|access_?key|_wo(_version)?$", re.IGNORECASE
)
# Values that are secrets whatever their name: AWS access key ids, PEM private keys, GitHub tokens.
SECRET_VALUE = re.compile(
    r"\b(AKIA|ASIA)[0-9A-Z]{16}\b|-----BEGIN [A-Z ]*PRIVATE KEY-----|\bgh[pousr]_[A-Za-z0-9]{20,}"
)
# bedrock-runtime Converse's error codes (botocore/data/bedrock-runtime/*/service-2.json) by what they mean here
DENIED = {"AccessDeniedException"}
NOT_ENABLED = {"ResourceNotFoundException"}
REJECTED = {"ValidationException"}
THROTTLED = {"ThrottlingException", "ServiceQuotaExceededException"}
UNAVAILABLE = {
    "ServiceUnavailableException",
    "InternalServerException",
    "ModelNotReadyException",
    "ModelTimeoutException",
    "ModelErrorException",
}

SYSTEM_PROMPT = """You review Terraform plans of an AWS platform (a GPU video-analysis service) for the engineers \
approving a pull request. You get the plan's changes, the risks a rule-based reviewer found, and the monthly cost \
change, as JSON. Values shown as "(redacted)" are sensitive and deliberately withheld.
Write {language}. Use only the facts given; say when something cannot be judged from them. Format: Markdown \
without headings. First line: a one-sentence verdict (safe to apply / apply with care / do not apply as is) and \
why. Then at most 8 short bullets: what the change does, the risks that matter and what to check before applying, \
and the monthly cost change. Do not list every resource."""


@dataclass(frozen=True)
class AiSummary:
    model_id: str
    language: str
    text: str | None = None  # None: no summary (reason says why)
    reason: str | None = None  # why the summary is missing, one line
    error_code: str | None = None  # Bedrock's error code, or the botocore exception's name
    stop_reason: str | None = None  # Converse's stopReason (max_tokens: the answer was cut)
    input_tokens: int | None = None
    output_tokens: int | None = None

    @property
    def ok(self) -> bool:
        return self.text is not None

    def data(self) -> dict[str, Any]:
        return {"status": "ok" if self.ok else "unavailable", **asdict(self)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ai",
        action="store_true",
        help="put a Bedrock model's summary of the plan (Converse API) at the top of the report; "
        "the review succeeds without it (the heading then says why it is missing)",
    )
    parser.add_argument(
        "--ai-language",
        choices=sorted(LANGUAGES),
        default=os.environ.get("DEEPSENTINEL_AI_LANGUAGE") or "en",
        help="language of the summary (default $DEEPSENTINEL_AI_LANGUAGE, else en)",
    )
    parser.add_argument(
        "--ai-model",
        metavar="MODEL_ID",
        default=os.environ.get("DEEPSENTINEL_AI_MODEL") or DEFAULT_MODEL_ID,
        help="Bedrock model or inference profile id (default $DEEPSENTINEL_AI_MODEL, else "
        f"{DEFAULT_MODEL_ID}); the Region is $AWS_REGION, else {DEFAULT_REGION}",
    )


def bedrock_client(region: str | None = None) -> Any:
    import boto3
    from botocore.config import Config

    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    # a few retries on throttling, then the review goes on without the summary
    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=10, read_timeout=120)
    return boto3.client("bedrock-runtime", region_name=region, config=config)


# --- what the model is told -------------------------------------------------------------------------------------


def sensitive_masks(plans: dict[str, dict[str, Any]]) -> dict[tuple[str, str], tuple[Any, Any]]:
    """(stack, address) -> (before_sensitive, after_sensitive) from `terraform show -json` plans: the value's
    shape with `true` where Terraform hides a value ("JSON Output Format", Terraform docs: change representation)."""
    masks = {}
    for stack, plan in plans.items():
        for rc in plan.get("resource_changes", []):
            change = rc.get("change", {})
            masks[(stack, rc.get("address", ""))] = (change.get("before_sensitive"), change.get("after_sensitive"))
    return masks


def _secret_name(path: str) -> bool:
    return any(SECRET_NAME.search(str(t)) for t in path_tokens(path))


def _shown(value: Any) -> Any:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    if SECRET_VALUE.search(text):
        return REDACTED
    if len(text) > MAX_VALUE_CHARS:
        return text[:MAX_VALUE_CHARS] + "…"
    return value


def plan_facts(review: Review, plans: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """What the model gets: changes without sensitive values, the risk rows, the cost per stack and the largest
    per-resource cost changes."""
    from deepsentinel.review.report import resource_rows

    masks = sensitive_masks(plans or {})
    changes: list[dict[str, Any]] = []
    omitted = 0
    for diff in review.diffs:
        for change in diff.changes:
            if len(changes) >= MAX_CHANGES:
                omitted += 1
                continue
            before_mask, after_mask = masks.get((diff.stack, change.address), (None, None))
            attributes = []
            for attr in change.attributes[:MAX_ATTRIBUTES]:
                hidden = (
                    _secret_name(attr.path)
                    or is_sensitive(before_mask, attr.path)
                    or is_sensitive(after_mask, attr.path)
                )
                attributes.append(
                    {
                        "path": attr.path,
                        "before": REDACTED if hidden else _shown(attr.before),
                        "after": REDACTED if hidden else _shown(attr.after),
                        "forces_replacement": attr.forces_replacement,
                    }
                )
            entry: dict[str, Any] = {
                "stack": diff.stack,
                "action": change.action,
                "address": change.address,
                "path": change.path,
            }
            if attributes:
                entry["attributes"] = attributes
            if len(change.attributes) > MAX_ATTRIBUTES:
                entry["more_attributes"] = len(change.attributes) - MAX_ATTRIBUTES
            changes.append(entry)
    cost = {
        stack: {
            "monthly_usd": round(c.total, 2),
            "base_monthly_usd": round(review.base_costs[stack].total, 2) if stack in review.base_costs else None,
        }
        for stack, c in review.costs.items()
    }
    largest = [
        {
            "stack": r.stack,
            "resource": r.path,
            "before_usd": None if r.before is None else round(r.before, 2),
            "after_usd": None if r.after is None else round(r.after, 2),
            "delta_usd": round(r.delta, 2),
        }
        for r in resource_rows(review)[:10]
        if abs(r.delta) >= 0.005
    ]
    policy = review.policy
    return {
        "compared": {"base": review.base_label, "head": review.head_label},
        "changes": changes,
        "changes_not_sent": omitted,
        "risks": [
            {"severity": r.severity, "kind": r.kind, "stack": r.stack, "resource": r.path, "why": r.why}
            for r in review.risks
        ],
        "cost": {"currency": review.prices.currency, "stacks": cost, "largest_resource_changes": largest},
        "policy": None
        if policy is None
        else {"checkov_failed_outside_baseline": len(policy.new), "checks": sorted({f.check_id for f in policy.new})},
    }


def converse_request(facts: dict[str, Any], *, model_id: str, language: str) -> dict[str, Any]:
    """The Converse request (bedrock-runtime API reference, Converse: modelId, system, messages, inferenceConfig)."""
    return {
        "modelId": model_id,
        "system": [{"text": SYSTEM_PROMPT.format(language=f"in {LANGUAGES[language]}")}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "The plan review, as JSON:\n\n" + json.dumps(facts, indent=1, ensure_ascii=False)}
                ],
            }
        ],
        "inferenceConfig": {"maxTokens": MAX_TOKENS, "temperature": 0.2},
    }


# --- the call ----------------------------------------------------------------------------------------------------


def _failure(error: Exception, model_id: str) -> tuple[str, str]:
    """(error code, one-line reason) for a failed Converse call."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        HTTPClientError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "Unknown")
        message = error.response.get("Error", {}).get("Message", "")
        if code in DENIED:
            return code, (
                f"access denied ({code}: {message}): the credentials may not call bedrock:InvokeModel "
                f"on {model_id}, or the account has no access to the model"
            )
        if code in NOT_ENABLED:
            return code, (
                f"model not enabled ({code}: {message}): {model_id} is not available to this account "
                "(Anthropic models need the first-use form) or not offered in this Region"
            )
        if code in REJECTED:
            return code, (
                f"request rejected ({code}: {message}): check the model id, and whether the Region needs an "
                "inference profile id for it"
            )
        if code in THROTTLED:
            return code, f"throttled ({code}: {message}): Bedrock's quota for {model_id} is used up for now"
        if code in UNAVAILABLE:
            return code, f"Bedrock could not answer ({code}: {message})"
        return code, f"Bedrock error ({code}: {message})"
    if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        return type(error).__name__, "no AWS credentials to call Bedrock with"
    if isinstance(error, (ConnectionError, HTTPClientError)):
        return type(error).__name__, f"Bedrock unreachable ({error})"
    if isinstance(error, BotoCoreError):
        return type(error).__name__, f"Bedrock call failed ({error})"
    raise error


def summarize(
    client: Any, facts: dict[str, Any], *, model_id: str = DEFAULT_MODEL_ID, language: str = "en"
) -> AiSummary:
    """Ask the model for the summary; a failed call (denied, not enabled, throttled, unreachable) is an AiSummary
    without text that says why, never an exception."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = client.converse(**converse_request(facts, model_id=model_id, language=language))
    except (BotoCoreError, ClientError) as error:
        code, reason = _failure(error, model_id)
        return AiSummary(model_id, language, reason=reason, error_code=code)
    blocks = response.get("output", {}).get("message", {}).get("content", [])
    text = "\n\n".join(b["text"].strip() for b in blocks if b.get("text")).strip()
    usage = response.get("usage", {})
    if not text:
        return AiSummary(
            model_id,
            language,
            reason=f"the model returned no text (stopReason {response.get('stopReason')})",
            error_code="EmptyResponse",
            stop_reason=response.get("stopReason"),
        )
    return AiSummary(
        model_id,
        language,
        text=text,
        stop_reason=response.get("stopReason"),
        input_tokens=usage.get("inputTokens"),
        output_tokens=usage.get("outputTokens"),
    )


def summary_for(
    review: Review,
    plans: dict[str, dict[str, Any]] | None = None,
    *,
    model_id: str = DEFAULT_MODEL_ID,
    language: str = "en",
    client: Any = None,
) -> AiSummary:
    """The review's summary, from a new bedrock-runtime client unless one is given."""
    from botocore.exceptions import BotoCoreError

    facts = plan_facts(review, plans)
    if client is None:
        try:
            client = bedrock_client()
        except BotoCoreError as error:  # e.g. a named profile that does not exist
            return AiSummary(model_id, language, reason=f"no Bedrock client ({error})", error_code=type(error).__name__)
    return summarize(client, facts, model_id=model_id, language=language)


# --- the report's top ----------------------------------------------------------------------------------------------


def _demote_headings(text: str) -> str:
    """The model's own headings would split the report's structure: they become bold lines."""
    return "\n".join(
        f"**{line.lstrip('#').strip()}**" if re.match(r"^#{1,6}\s", line) else line for line in text.splitlines()
    )


def markdown(summary: AiSummary) -> str:
    """The section above the deterministic report."""
    if not summary.ok:
        short = (summary.reason or "").split(" (", 1)[0]
        return (
            f"## AI summary unavailable: {short}\n\n"
            f"{summary.reason}. Model `{summary.model_id}`; the review below is complete without it.\n\n---\n\n"
        )
    cut = f"\n\n_(cut at {MAX_TOKENS} tokens)_" if summary.stop_reason == "max_tokens" else ""
    return (
        f"## AI summary ({summary.model_id}, {summary.language})\n\n"
        "> Written by a model from the changes, risks and cost below (sensitive values withheld); "
        "the deterministic review below is the record.\n\n"
        f"{_demote_headings(summary.text or '')}{cut}\n\n---\n\n"
    )
