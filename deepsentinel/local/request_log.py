"""An opt-in log of the requests the local moto server answers: who called which AWS operation with what.

With `DEEPSENTINEL_LOCAL_AWS_REQUEST_LOG=<file>` in its environment, the local server (deepsentinel/local/server.py)
appends one JSON line per request to the file: the service and region of the SigV4 credential scope, the access
key id, the User-Agent (Terraform's AWS provider and its S3 backend say `Terraform/<version>`), the HTTP status,
the API operation with its parameters, and the SDK's own retry headers: `amz-sdk-invocation-id` (one id per
operation call, kept by its retries) and the attempt number of `amz-sdk-request: attempt=N; max=M`, so a create that
reaches the server twice shows whether the SDK retried one call (same id, attempt 2) or the caller made two.
Nothing else in the server changes: the log is a WSGI middleware around moto's application, and the request body it
reads is handed on unchanged.

The operation is found as the AWS SDKs send it (botocore's service models describe each protocol):
JSON protocols name it in `X-Amz-Target`, query protocols in the `Action` parameter, REST protocols by method and
path (`http.requestUri`, with its query-string literals such as `?policy` or `?list-type=2`). Parameters are
the JSON body, the form/query fields, and for REST the URI labels and query-string members by their member
names; long strings (a function's zip file, a state file) are cut to their length. A request nothing matches is
logged with `operation: null` and its method, path and target, so it is never silently dropped.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

LOG_VARIABLE = "DEEPSENTINEL_LOCAL_AWS_REQUEST_LOG"
MAX_BODY_BYTES = 1 << 20  # bodies read to find parameters: API requests; larger ones are objects' data
MAX_VALUE_CHARS = 2048
_PARSED_TYPES = ("application/x-www-form-urlencoded", "application/x-amz-json", "application/json")
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_CBOR_PATH = re.compile(r"^/service/[^/]+/operation/([^/]+)$")  # smithy-rpc-v2-cbor
# amz-sdk-request: "attempt=1; max=3" (aws-sdk-go-v2), "ttl=...; attempt=2; max=5" (botocore)
_SDK_ATTEMPT = re.compile(r"(?:^|;)\s*attempt=(\d+)")

# SigV4 signing names that are not botocore's service name, with the botocore services that sign with them
# (from every botocore service model's metadata.signingName, botocore 1.35; tests/unit/test_recorded_terraform_calls.py
# checks each entry against the installed botocore). Any other signing name is its botocore service's name.
SIGNING_NAMES: dict[str, tuple[str, ...]] = {
    "monitoring": ("cloudwatch",),
    "elasticloadbalancing": ("elbv2", "elb"),
    "apigateway": ("apigatewayv2", "apigateway"),
    "states": ("stepfunctions",),
    "ses": ("sesv2", "ses"),
    "tagging": ("resourcegroupstaggingapi",),
    "elasticfilesystem": ("efs",),
    "servicequotas": ("service-quotas",),
    "elasticmapreduce": ("emr",),
    "es": ("opensearch", "es"),
    "s3": ("s3", "s3control"),
    "access-analyzer": ("accessanalyzer",),
    "sso": ("sso-admin",),
    "geo": ("location",),
    "aps": ("amp",),
    "airflow": ("mwaa",),
    "cassandra": ("keyspaces",),
}


class RequestLog:
    """WSGI middleware: log each request (see the module docstring), then let `app` answer it."""

    def __init__(self, app: Callable[..., Iterable[bytes]], path: Path) -> None:
        self.app, self.path = app, Path(path)
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            entry = describe(environ)
        except Exception as error:  # noqa: BLE001 - the log must never break the server
            entry = {"error": f"{type(error).__name__}: {error}", "path": environ.get("PATH_INFO")}
        status: list[int] = []

        def record_status(code: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(int(code.split()[0]))
            return start_response(code, headers, exc_info) if exc_info else start_response(code, headers)

        result = self.app(environ, record_status)
        entry["status"] = status[0] if status else None
        line = json.dumps(entry, default=str) + "\n"
        with self._lock, open(self.path, "a") as log:
            log.write(line)
        return result


def install(server: Any, path: Path) -> None:
    """Log the requests of a started moto ThreadedMotoServer (its werkzeug server's app is replaced)."""
    wsgi = server._server  # noqa: SLF001 - ThreadedMotoServer keeps the werkzeug server here
    wsgi.app = RequestLog(wsgi.app, path)


def read(path: Path, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
    """The logged requests, lines [start, stop)."""
    lines = Path(path).read_text().splitlines() if Path(path).is_file() else []
    return [json.loads(line) for line in lines[start:stop] if line.strip()]


def line_count(path: Path) -> int:
    return len(Path(path).read_text().splitlines()) if Path(path).is_file() else 0


# --- one request -----------------------------------------------------------------------------------------------


def describe(environ: dict[str, Any]) -> dict[str, Any]:
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    credential = _CREDENTIAL.search(authorization) or _CREDENTIAL.search(
        "Credential=" + query.get("X-Amz-Credential", [""])[0]
    )
    access_key, region, signing_name = credential.groups() if credential else (None, None, None)
    body = _body(environ)
    entry: dict[str, Any] = {
        "time": time.time(),
        "access_key": access_key,
        "region": region,
        "signing_name": signing_name,
        "user_agent": environ.get("HTTP_USER_AGENT", ""),
        "method": environ.get("REQUEST_METHOD", ""),
        "path": environ.get("PATH_INFO", ""),
        "target": environ.get("HTTP_X_AMZ_TARGET"),
        "sdk_invocation": environ.get("HTTP_AMZ_SDK_INVOCATION_ID"),
        "sdk_attempt": sdk_attempt(environ.get("HTTP_AMZ_SDK_REQUEST", "")),
    }
    service, operation, params = resolve(
        signing_name, entry["method"], entry["path"], query, entry["target"], body, environ
    )
    entry.update(service=service, operation=operation, params=_shortened(params))
    return entry


def sdk_attempt(header: str) -> int | None:
    """The attempt number of an `amz-sdk-request` header (1 for a call's first request), or None without one."""
    found = _SDK_ATTEMPT.search(header)
    return int(found.group(1)) if found else None


def _body(environ: dict[str, Any]) -> Any:
    """The parsed body of an API request (form fields or JSON), the stream put back for moto; else None."""
    content_type = environ.get("CONTENT_TYPE", "")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if not length or length > MAX_BODY_BYTES or not content_type.startswith(_PARSED_TYPES):
        return None
    raw = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(raw)
    text = raw.decode("utf-8", "replace")
    if content_type.startswith("application/x-www-form-urlencoded"):
        return {k: v[0] for k, v in urllib.parse.parse_qs(text, keep_blank_values=True).items()}
    try:
        return json.loads(text)
    except ValueError:
        return None


def _shortened(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shortened(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shortened(v) for v in value]
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        return f"<{len(value)} characters>"
    return value


# --- which operation -------------------------------------------------------------------------------------------


@cache
def service_model(name: str) -> Any:
    """botocore's model of the service as botocore ships it, read by a loader of its own: a botocore S3 client rewrites
    its loader's model in place once it sends a request (`handlers.remove_bucket_from_url_paths_from_model` drops the
    leading `/{Bucket}` of the `requestUri`s, which its endpoint rules place), so a model shared with such a client (a
    loader shared by sessions, as the test suite's, tests/conftest.py) matched `GET /b?list-type=2` as GetObject."""
    from botocore.loaders import Loader
    from botocore.model import ServiceModel

    return ServiceModel(Loader().load_service_model(name, "service-2"), service_name=name)


@cache
def _known_services() -> frozenset[str]:
    import botocore.session

    return frozenset(botocore.session.get_session().get_available_services())


def candidates(signing_name: str | None) -> list[str]:
    if not signing_name:
        return []
    names = SIGNING_NAMES.get(signing_name, (signing_name,))
    return [n for n in names if n in _known_services()]


def resolve(
    signing_name: str | None,
    method: str,
    path: str,
    query: dict[str, list[str]],
    target: str | None,
    body: Any,
    environ: dict[str, Any],
) -> tuple[str | None, str | None, dict[str, Any]]:
    """(botocore service, operation, parameters) of a request; (None, None, {...}) when nothing matches."""
    flat_query = {k: v[0] for k, v in query.items()}
    form = (
        body
        if isinstance(body, dict) and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded")
        else {}
    )
    services = candidates(signing_name)
    if target:  # JSON protocols: <targetPrefix>.<Operation>
        prefix, _, operation = target.rpartition(".")
        for name in services:
            model = service_model(name)
            if operation in model.operation_names and model.metadata.get("targetPrefix", prefix) == prefix:
                return name, operation, body if isinstance(body, dict) else {}
    action = form.get("Action") or flat_query.get("Action")
    if action:  # query protocols: Action (+ Version, which tells elb from elbv2)
        params = {k: v for k, v in {**flat_query, **form}.items() if k not in ("Action", "Version")}
        version = form.get("Version") or flat_query.get("Version")
        matching = [n for n in services if action in service_model(n).operation_names]
        matching.sort(key=lambda n: service_model(n).api_version != version)
        if matching:
            return matching[0], action, params
    cbor = _CBOR_PATH.match(path)
    if cbor:
        matching = [n for n in services if cbor.group(1) in service_model(n).operation_names]
        if matching:
            return matching[0], cbor.group(1), {}
    best: tuple[tuple[int, int, int], str, str, dict[str, Any]] | None = None
    for name in services:
        for operation, score, params in _rest_matches(service_model(name), method, path, flat_query, environ):
            if best is None or score > best[0]:
                best = (score, name, operation, params)
    if best is None:
        return None, None, {**flat_query, **(body if isinstance(body, dict) else {})}
    _, name, operation, params = best
    if isinstance(body, dict) and service_model(name).protocol == "rest-json":  # rest-xml bodies are not parsed
        params = {**body, **params}
    return name, operation, params


@cache
def _rest_templates(
    service: str,
) -> list[tuple[str, str, re.Pattern[str], list[str], dict[str, str], int, dict[str, str], dict[str, str]]]:
    """Per operation: method, compiled path, its labels' member names, required query literals, literal length,
    querystring member names, required header members."""
    model = service_model(service)
    templates = []
    for operation in model.operation_names:
        op = model.operation_model(operation)
        uri = op.http.get("requestUri", "/")
        path_part, _, query_part = uri.partition("?")
        members = op.input_shape.members if op.input_shape else {}
        by_location: dict[str, dict[str, str]] = {"uri": {}, "querystring": {}, "header": {}}
        for member, shape in members.items():
            location = shape.serialization.get("location")
            if location in by_location:
                by_location[location][shape.serialization.get("name", member)] = member
        required = set(op.input_shape.required_members) if op.input_shape else set()
        headers = {label: member for label, member in by_location["header"].items() if member in required}
        # A required query member tells operations of one path apart (DELETE /{Bucket}/{Key+} with uploadId is
        # AbortMultipartUpload, without it DeleteObject).
        literals_required = [label for label, member in by_location["querystring"].items() if member in required]
        labels: list[str] = []

        # re.sub calls it within this iteration; the defaults bind this operation's lists all the same
        def label(match: re.Match[str], labels: list[str] = labels, uri: dict[str, str] = by_location["uri"]) -> str:
            labels.append(uri.get(match.group(1).rstrip("+"), match.group(1).rstrip("+")))
            return f"(?P<g{len(labels) - 1}>.+)" if match.group(1).endswith("+") else f"(?P<g{len(labels) - 1}>[^/]+)"

        pieces = re.split(r"(\{[^}]+\})", path_part.rstrip("/") or "/")
        pattern = "".join(re.sub(r"\{([^}]+)\}", label, p) if p.startswith("{") else re.escape(p) for p in pieces)
        literal = sum(len(p) for p in pieces if not p.startswith("{"))
        literals = {}
        for item in filter(None, query_part.split("&")):
            key, _, value = item.partition("=")
            if key != "x-id":  # botocore's S3 operation marker; SDKs need not send it
                literals[key] = value
        literals.update({label: "" for label in literals_required if label not in literals})
        templates.append(
            (
                operation,
                op.http.get("method", "POST"),
                re.compile(pattern + "/?"),
                list(labels),
                literals,
                literal - bool(op.deprecated),
                by_location["querystring"],
                headers,
            )
        )
    return templates


def _rest_matches(
    model: Any, method: str, path: str, query: dict[str, str], environ: dict[str, Any]
) -> Iterable[tuple[str, tuple[int, int, int], dict[str, Any]]]:
    paths = {path}
    for operation, verb, pattern, labels, literals, literal, querystring, headers in _rest_templates(
        model.service_name
    ):
        if verb != method or any(k not in query or (v and query[k] != v) for k, v in literals.items()):
            continue
        if any(f"HTTP_{h.upper().replace('-', '_')}" not in environ for h in headers):
            continue
        match = next((m for m in (pattern.fullmatch(p) for p in paths) if m), None)
        if match is None:
            continue
        params = {member: urllib.parse.unquote(match.group(f"g{i}")) for i, member in enumerate(labels)}
        params.update({querystring[k]: v for k, v in query.items() if k in querystring})
        yield operation, (len(literals), len(headers), literal), params
