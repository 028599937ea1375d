"""Offline monthly cost: a versioned price table (TOML) x a usage file, per stack and module.

Every resource ends up in exactly one of three lists: priced (a cost line, possibly 0 with the reason),
free (its type is listed as free in the price table, with why), or not priced (no rule for the type, or
a rule needs a price the table lacks). Nothing is silently zero.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from deepsentinel.synthesized import Resource, resources

DATA_DIR = Path(__file__).parent / "data"
DEFAULT_PRICES = DATA_DIR / "prices-ap-northeast-2.toml"
DEFAULT_USAGE = DATA_DIR / "usage.toml"
REF = re.compile(r"\$\{([a-z0-9_]+)\.([A-Za-z0-9_-]+)")
# vCPUs by EC2 size suffix (GPU families g4dn/g5/g6 follow it for the sizes Batch uses here).
VCPUS_BY_SIZE = {
    "large": 2,
    "xlarge": 4,
    "2xlarge": 8,
    "4xlarge": 16,
    "8xlarge": 32,
    "12xlarge": 48,
    "16xlarge": 64,
    "24xlarge": 96,
    "48xlarge": 192,
}


class MissingPrice(LookupError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class Price:
    key: str
    usd: float
    unit: str
    source: str
    date: str
    approximate: bool = False
    note: str = ""


@dataclass(frozen=True)
class PriceTable:
    version: str
    region: str
    currency: str
    hours_per_month: float
    prices: dict[str, Price]
    free: dict[str, str]
    path: str = ""

    @classmethod
    def load(cls, path: Path = DEFAULT_PRICES) -> PriceTable:
        doc = tomllib.loads(Path(path).read_text())
        problems = []
        prices = {}
        for key, entry in doc.get("price", {}).items():
            missing = [f for f in ("usd", "unit", "source", "date") if f not in entry]
            if missing:
                problems.append(f"price {key!r} lacks {', '.join(missing)}")
                continue
            prices[key] = Price(
                key,
                float(entry["usd"]),
                entry["unit"],
                entry["source"],
                str(entry["date"]),
                bool(entry.get("approximate", False)),
                entry.get("note", ""),
            )
        for field_ in ("version", "region", "currency", "hours_per_month"):
            if field_ not in doc:
                problems.append(f"price table lacks {field_!r}")
        if problems:
            raise ValueError(f"{path}: " + "; ".join(problems))
        return cls(
            str(doc["version"]),
            doc["region"],
            doc["currency"],
            float(doc["hours_per_month"]),
            prices,
            dict(doc.get("free", {})),
            str(path),
        )

    def usd(self, key: str) -> float:
        if key not in self.prices:
            raise MissingPrice(key)
        return self.prices[key].usd


@dataclass(frozen=True)
class Usage:
    document: dict[str, Any]
    path: str = ""

    @classmethod
    def load(cls, path: Path = DEFAULT_USAGE) -> Usage:
        return cls(tomllib.loads(Path(path).read_text()), str(path))

    def for_environment(self, environment: str) -> dict[str, Any]:
        merged = {k: dict(v) if isinstance(v, dict) else v for k, v in self.document.items() if k != "env"}
        for section, values in self.document.get("env", {}).get(environment, {}).items():
            merged.setdefault(section, {}).update(values)
        return merged


@dataclass(frozen=True)
class CostLine:
    module: str
    address: str
    path: str
    item: str  # what is charged, e.g. "NAT gateway 730 h"
    monthly_min: float
    monthly_max: float
    monthly_usage: float  # at the usage file's assumptions
    prices: tuple[str, ...] = ()


@dataclass(frozen=True)
class VariableLine:
    item: str
    usd_per_video: float
    prices: tuple[str, ...] = ()
    # the resource the per-video cost is charged to (its cost line then includes it): the GPU compute
    # environment, each queue-fed function, the queue, the first bucket, the on-demand table
    address: str = ""
    module: str = ""
    path: str = ""


@dataclass(frozen=True)
class Unpriced:
    module: str
    address: str
    type: str
    reason: str


@dataclass
class StackCost:
    stack: str
    environment: str
    videos_per_month: float
    lines: list[CostLine] = field(default_factory=list)
    variable: list[VariableLine] = field(default_factory=list)
    free: list[tuple[str, str, str]] = field(default_factory=list)  # (module, address, reason)
    not_priced: list[Unpriced] = field(default_factory=list)

    def by_module(self) -> dict[str, tuple[float, float, float]]:
        out: dict[str, tuple[float, float, float]] = {}
        for line in self.lines:
            lo, hi, at = out.get(line.module, (0.0, 0.0, 0.0))
            out[line.module] = (lo + line.monthly_min, hi + line.monthly_max, at + line.monthly_usage)
        return dict(sorted(out.items()))

    @property
    def fixed_min(self) -> float:
        return sum(line.monthly_min for line in self.lines)

    @property
    def fixed_max(self) -> float:
        return sum(line.monthly_max for line in self.lines)

    @property
    def fixed_usage(self) -> float:
        return sum(line.monthly_usage for line in self.lines)

    @property
    def per_video(self) -> float:
        return sum(v.usd_per_video for v in self.variable)

    @property
    def total(self) -> float:
        return self.fixed_usage + self.per_video * self.videos_per_month


class _Context:
    def __init__(self, table: PriceTable, usage: dict[str, Any], document: dict[str, Any]):
        self.table = table
        self.usage = usage
        self.all = list(resources(document))
        self.by_address = {r.address: r for r in self.all}
        self.hours = table.hours_per_month
        self.services = usage.get("services", {})
        self.workload = usage.get("workload", {})

    def resource_usage(self, r: Resource) -> dict[str, Any]:
        key = r.path.split("/", 1)[1] if "/" in r.path else r.path
        return self.usage.get("resource", {}).get(key, {})

    def referencing(self, r: Resource, rtype: str) -> list[Resource]:
        return [x for x in self.all if x.type == rtype and r.address in refs(x.config)]

    def count(self, rtype: str) -> int:
        return sum(1 for x in self.all if x.type == rtype)


def refs(value: Any) -> set[str]:
    return {f"{t}.{n}" for t, n in REF.findall(json.dumps(value))}


def _short(r: Resource) -> str:
    return r.path.split("/", 1)[1] if "/" in r.path else r.path


def _line(
    r: Resource, item: str, lo: float, hi: float | None = None, at: float | None = None, prices: tuple[str, ...] = ()
) -> CostLine:
    hi = lo if hi is None else hi
    return CostLine(r.module, r.address, _short(r), item, lo, hi, lo if at is None else at, prices)


Rule = Callable[[Resource, _Context], list[CostLine]]


def _nat(r: Resource, c: _Context) -> list[CostLine]:
    gb = float(c.services.get("nat_gb_per_month", 0)) / max(c.count("aws_nat_gateway"), 1)
    return [
        _line(r, f"NAT gateway {c.hours:g} h", c.hours * c.table.usd("nat_gateway_hour"), prices=("nat_gateway_hour",)),
        _line(r, f"NAT data {gb:g} GB", gb * c.table.usd("nat_gateway_gb"), prices=("nat_gateway_gb",)),
    ]


def _eip(r: Resource, c: _Context) -> list[CostLine]:
    return [_line(r, "public IPv4 address", c.hours * c.table.usd("public_ipv4_hour"), prices=("public_ipv4_hour",))]


def _lb(r: Resource, c: _Context) -> list[CostLine]:
    if r.config.get("load_balancer_type", "application") != "application":
        raise MissingPrice(f"{r.config.get('load_balancer_type')} load balancer")
    lcu = float(c.services.get("alb_lcu", 1))
    lines = [
        _line(r, f"ALB {c.hours:g} h", c.hours * c.table.usd("alb_hour"), prices=("alb_hour",)),
        _line(r, f"ALB {lcu:g} LCU", lcu * c.hours * c.table.usd("alb_lcu_hour"), prices=("alb_lcu_hour",)),
    ]
    if not r.config.get("internal", False):
        nodes = len(r.config.get("subnets", [])) or 2
        lines.append(
            _line(
                r,
                f"ALB public IPv4 x{nodes}",
                nodes * c.hours * c.table.usd("public_ipv4_hour"),
                prices=("public_ipv4_hour",),
            )
        )
    return lines


def _endpoint(r: Resource, c: _Context) -> list[CostLine]:
    if r.config.get("vpc_endpoint_type", "Gateway") == "Gateway":
        return [_line(r, "gateway endpoint (free)", 0.0)]
    azs = len(r.config.get("subnet_ids", [])) or 1
    interfaces = sum(
        1 for x in c.all if x.type == "aws_vpc_endpoint" and x.config.get("vpc_endpoint_type") == "Interface"
    )
    gb = float(c.services.get("endpoint_gb_per_month", 0)) / max(interfaces, 1)
    service = str(r.config.get("service_name", "")).rsplit(".", 1)[-1]
    return [
        _line(
            r,
            f"interface endpoint {service} x{azs} AZ",
            azs * c.hours * c.table.usd("vpc_interface_endpoint_hour"),
            prices=("vpc_interface_endpoint_hour",),
        ),
        _line(r, f"endpoint data {gb:g} GB", gb * c.table.usd("vpc_endpoint_gb"), prices=("vpc_endpoint_gb",)),
    ]


def _db(r: Resource, c: _Context) -> list[CostLine]:
    engine = r.config.get("engine", "")
    if engine != "postgres":
        raise MissingPrice(f"rds_{engine}.{r.config.get('instance_class')}")
    key = f"rds_postgres.{r.config.get('instance_class')}"
    copies = 2 if r.config.get("multi_az") else 1
    storage_key = f"rds_{r.config.get('storage_type', 'gp2')}_gb_month"
    gb = float(r.config.get("allocated_storage", 0))
    az = "Multi-AZ" if copies == 2 else "Single-AZ"
    lines = [
        _line(
            r,
            f"{r.config.get('instance_class')} {az} {c.hours:g} h",
            copies * c.hours * c.table.usd(key),
            prices=(key,),
        ),
        _line(
            r,
            f"{r.config.get('storage_type', 'gp2')} {gb:g} GB {az}",
            copies * gb * c.table.usd(storage_key),
            prices=(storage_key,),
        ),
    ]
    if r.config.get("manage_master_user_password"):
        lines.append(
            _line(
                r,
                "RDS-managed master password secret",
                c.table.usd("secretsmanager_secret_month"),
                prices=("secretsmanager_secret_month",),
            )
        )
    return lines


def _task_size(service: Resource, c: _Context) -> tuple[float, float]:
    task_refs = [a for a in refs(service.config.get("task_definition")) if a.startswith("aws_ecs_task_definition.")]
    if not task_refs or task_refs[0] not in c.by_address:
        raise MissingPrice("task definition size (task_definition is not a reference to a synthesized task)")
    task = c.by_address[task_refs[0]].config
    return float(task.get("cpu", 0)) / 1024, float(task.get("memory", 0)) / 1024


def _service(r: Resource, c: _Context) -> list[CostLine]:
    if r.config.get("launch_type", "FARGATE") != "FARGATE":
        raise MissingPrice(f"ECS launch type {r.config.get('launch_type')}")
    vcpu, gb = _task_size(r, c)
    targets = [
        t for t in c.all if t.type == "aws_appautoscaling_target" and r.address in refs(t.config.get("resource_id"))
    ]
    desired = float(r.config.get("desired_count", 1))
    lo = float(targets[0].config.get("min_capacity", desired)) if targets else desired
    hi = float(targets[0].config.get("max_capacity", desired)) if targets else desired
    wanted = c.services.get("tasks", "min")
    at = lo if wanted == "min" else hi if wanted == "max" else float(wanted)
    hours = float(c.services.get("service_hours_per_month", c.hours))
    per_task = hours * (vcpu * c.table.usd("fargate_vcpu_hour") + gb * c.table.usd("fargate_gb_hour"))
    return [
        _line(
            r,
            f"Fargate {vcpu:g} vCPU/{gb:g} GB x {lo:g}-{hi:g} tasks, {hours:g} h",
            lo * per_task,
            hi * per_task,
            at * per_task,
            ("fargate_vcpu_hour", "fargate_gb_hour"),
        )
    ]


def _instance_types(ce: Resource) -> list[str]:
    return list(ce.config.get("compute_resources", {}).get("instance_type", []))


def _vcpus(instance_type: str) -> int:
    return VCPUS_BY_SIZE.get(instance_type.split(".", 1)[-1], 4)


def _batch_ce(r: Resource, c: _Context) -> list[CostLine]:
    res = r.config.get("compute_resources", {})
    if res.get("type", "EC2") not in ("EC2",):
        raise MissingPrice(f"Batch {res.get('type')} compute (only on-demand EC2 is in the table)")
    types = _instance_types(r)
    if not types:
        raise MissingPrice("Batch compute environment without instance types")
    min_vcpus = float(res.get("min_vcpus", 0))
    key = f"ec2.{types[0]}"
    idle = 0.0 if min_vcpus == 0 else (min_vcpus / _vcpus(types[0])) * c.hours * c.table.usd(key)
    return [
        _line(
            r,
            f"Batch idle (min_vcpus={min_vcpus:g}; jobs are priced per video)",
            idle,
            prices=(key,) if min_vcpus else (),
        )
    ]


def _bucket(r: Resource, c: _Context) -> list[CostLine]:
    u = c.resource_usage(r)
    std, glacier = float(u.get("storage_gb", 0)), float(u.get("glacier_gb", 0))
    lines = [
        _line(r, f"S3 Standard {std:g} GB", std * c.table.usd("s3_standard_gb_month"), prices=("s3_standard_gb_month",))
    ]
    if glacier:
        lines.append(
            _line(
                r,
                f"S3 Glacier {glacier:g} GB",
                glacier * c.table.usd("s3_glacier_gb_month"),
                prices=("s3_glacier_gb_month",),
            )
        )
    return lines


def _ecr(r: Resource, c: _Context) -> list[CostLine]:
    gb = float(c.resource_usage(r).get("storage_gb", 0))
    return [_line(r, f"ECR {gb:g} GB", gb * c.table.usd("ecr_storage_gb_month"), prices=("ecr_storage_gb_month",))]


def _log_group(r: Resource, c: _Context) -> list[CostLine]:
    u = c.resource_usage(r)
    ingest, stored = float(u.get("ingest_gb_per_month", 0)), float(u.get("stored_gb", 0))
    return [
        _line(
            r,
            f"logs {ingest:g} GB in, {stored:g} GB kept",
            ingest * c.table.usd("cloudwatch_logs_ingest_gb") + stored * c.table.usd("cloudwatch_logs_store_gb_month"),
            prices=("cloudwatch_logs_ingest_gb", "cloudwatch_logs_store_gb_month"),
        )
    ]


def _simple(key: str, item: str) -> Rule:
    def rule(r: Resource, c: _Context) -> list[CostLine]:
        return [_line(r, item, c.table.usd(key), prices=(key,))]

    return rule


def _per_video(item: str) -> Rule:
    def rule(r: Resource, c: _Context) -> list[CostLine]:
        return [_line(r, f"{item} (priced per video)", 0.0)]

    return rule


def _web_acl(r: Resource, c: _Context) -> list[CostLine]:
    rules = json.loads(r.config.get("rule_json") or "[]")
    monthly = c.table.usd("waf_web_acl_month") + c.table.usd("waf_rule_month") * len(rules)
    return [
        _line(
            r,
            f"WAF web ACL + {len(rules)} rule groups (requests extra)",
            monthly,
            prices=("waf_web_acl_month", "waf_rule_month"),
        )
    ]


def _dynamodb(r: Resource, c: _Context) -> list[CostLine]:
    if r.config.get("billing_mode", "PROVISIONED") != "PAY_PER_REQUEST":
        raise MissingPrice("dynamodb provisioned capacity")
    return [_line(r, "DynamoDB on-demand (priced per video; storage negligible)", 0.0)]


def _http_api(r: Resource, c: _Context) -> list[CostLine]:
    """API Gateway requests, and the Lambda invocations behind them (usage: requests_per_month, lambda_duration_ms
    on the API's construct path)."""
    if r.config.get("protocol_type", "HTTP") != "HTTP":
        raise MissingPrice("API Gateway WebSocket API")
    u = c.resource_usage(r)
    n, ms = float(u.get("requests_per_month", 0)), float(u.get("lambda_duration_ms", 100))
    functions = [
        c.by_address[a]
        for i in c.referencing(r, "aws_apigatewayv2_integration")
        for a in refs(i.config.get("integration_uri"))
        if a.startswith("aws_lambda_function.")
    ]
    lines = [
        _line(
            r,
            f"HTTP API {n:g} requests",
            n / 1e6 * c.table.usd("apigw_http_request_million"),
            prices=("apigw_http_request_million",),
        )
    ]
    if functions:
        gb = max(float(f.config.get("memory_size", 128)) for f in functions) / 1024
        lines.append(
            _line(
                r,
                f"Lambda behind the API: {n:g} x {ms:g} ms at {gb * 1024:g} MB",
                n * (ms / 1000 * gb * c.table.usd("lambda_gb_second") + c.table.usd("lambda_request")),
                prices=("lambda_gb_second", "lambda_request"),
            )
        )
    return lines


def _alarm(r: Resource, c: _Context) -> list[CostLine]:
    """CloudWatch bills an alarm per metric it evaluates: a metric math alarm counts each metric of its
    expression (the metric_query entries with a metric), not the expression itself."""
    metrics = sum(1 for q in r.config.get("metric_query", []) if q.get("metric")) or 1
    return [
        _line(
            r,
            f"alarm, {metrics} metric{'s' if metrics > 1 else ''}",
            metrics * c.table.usd("cloudwatch_alarm_month"),
            prices=("cloudwatch_alarm_month",),
        )
    ]


def _budget(r: Resource, c: _Context) -> list[CostLine]:
    """The first two budgets of an account are free, later ones are billed per day: whether this one is free
    depends on the account's other budgets (dev and prod have one each: both free), so 0 to the daily price."""
    days = c.hours / 24
    return [
        _line(
            r,
            f"AWS Budgets budget (free as one of the account's first two; else {days:g} budget-days)",
            0.0,
            days * c.table.usd("budget_day"),
            0.0,
            prices=("budget_day",),
        )
    ]


RULES: dict[str, Rule] = {
    "aws_nat_gateway": _nat,
    "aws_eip": _eip,
    "aws_lb": _lb,
    "aws_alb": _lb,
    "aws_vpc_endpoint": _endpoint,
    "aws_db_instance": _db,
    "aws_ecs_service": _service,
    "aws_batch_compute_environment": _batch_ce,
    "aws_s3_bucket": _bucket,
    "aws_ecr_repository": _ecr,
    "aws_cloudwatch_log_group": _log_group,
    "aws_secretsmanager_secret": _simple("secretsmanager_secret_month", "secret"),
    "aws_cloudwatch_metric_alarm": _alarm,
    "aws_cloudwatch_dashboard": _simple("cloudwatch_dashboard_month", "dashboard"),
    "aws_cloudwatch_log_metric_filter": _simple("cloudwatch_custom_metric_month", "custom metric (log metric filter)"),
    "aws_budgets_budget": _budget,
    "aws_route53_zone": _simple("route53_zone_month", "hosted zone"),
    "aws_kms_key": _simple("kms_key_month", "KMS key"),
    "aws_sqs_queue": _per_video("SQS requests"),
    "aws_lambda_function": _per_video("Lambda"),
    "aws_dynamodb_table": _dynamodb,
    "aws_wafv2_web_acl": _web_acl,
    "aws_apigatewayv2_api": _http_api,
}


def _variable(c: _Context, not_priced: list[Unpriced]) -> list[VariableLine]:
    w = c.workload
    out: list[VariableLine] = []

    def attempt(anchor: Resource | None, make: Callable[[], VariableLine]) -> None:
        try:
            line = make()
            out.append(
                replace(line, address=anchor.address, module=anchor.module, path=_short(anchor)) if anchor else line
            )
        except MissingPrice as missing:
            not_priced.append(
                Unpriced(
                    anchor.module if anchor else "stack",
                    anchor.address if anchor else "-",
                    anchor.type if anchor else "-",
                    f"per-video cost: no price {missing.key!r}",
                )
            )

    esms = [r for r in c.all if r.type == "aws_lambda_event_source_mapping"]
    gpu_envs = [
        r
        for r in c.all
        if r.type == "aws_batch_compute_environment"
        and _instance_types(r)
        and _instance_types(r)[0].split(".")[0][:1] in ("g", "p")
    ]
    if not gpu_envs and not esms:
        return out  # no video pipeline in this stack (e.g. the state backend)
    if gpu_envs:
        ce = gpu_envs[0]
        itype = _instance_types(ce)[0]
        minutes = float(w.get("gpu_minutes_per_video", 0))
        attempt(
            ce,
            lambda: VariableLine(
                f"GPU {minutes:g} min on {itype}", minutes / 60 * c.table.usd(f"ec2.{itype}"), (f"ec2.{itype}",)
            ),
        )
    for esm in esms:
        functions = [c.by_address[a] for a in refs(esm.config.get("function_name")) if a in c.by_address]
        for fn in functions:
            n = float(w.get("lambda_invocations_per_video", 1))
            ms = float(w.get("lambda_duration_ms", 100))
            gb = float(fn.config.get("memory_size", 128)) / 1024
            name = _short(fn).rsplit("/", 1)[-1]

            # attempt calls it at once; the defaults bind this function's figures all the same
            def lambda_line(name: str = name, n: float = n, ms: float = ms, gb: float = gb) -> VariableLine:
                return VariableLine(
                    f"Lambda {name}: {n:g} x {ms:g} ms at {gb * 1024:g} MB",
                    n * (ms / 1000 * gb * c.table.usd("lambda_gb_second") + c.table.usd("lambda_request")),
                    ("lambda_gb_second", "lambda_request"),
                )

            attempt(fn, lambda_line)
    queue = next((r for r in c.all if r.type == "aws_sqs_queue"), None)
    if queue:
        n = float(w.get("sqs_requests_per_video", 0))
        attempt(queue, lambda: VariableLine(f"SQS {n:g} requests", n * c.table.usd("sqs_request"), ("sqs_request",)))
    bucket = next((r for r in c.all if r.type == "aws_s3_bucket"), None)
    if bucket:
        puts, gets = float(w.get("s3_put_requests_per_video", 0)), float(w.get("s3_get_requests_per_video", 0))
        attempt(
            bucket,
            lambda: VariableLine(
                f"S3 {puts:g} PUT + {gets:g} GET",
                puts / 1000 * c.table.usd("s3_put_1k") + gets / 1000 * c.table.usd("s3_get_1k"),
                ("s3_put_1k", "s3_get_1k"),
            ),
        )
    table = next(
        (r for r in c.all if r.type == "aws_dynamodb_table" and r.config.get("billing_mode") == "PAY_PER_REQUEST"), None
    )
    if table:
        n = float(w.get("dynamodb_writes_per_video", 0))
        attempt(
            table,
            lambda: VariableLine(
                f"DynamoDB {n:g} writes", n * c.table.usd("dynamodb_write_request"), ("dynamodb_write_request",)
            ),
        )
    return out


def environment_of(stack: str) -> str:
    return stack.rsplit("-", 1)[-1]


def estimate(stack: str, document: dict[str, Any] | None, table: PriceTable, usage: Usage) -> StackCost:
    env_usage = usage.for_environment(environment_of(stack))
    c = _Context(table, env_usage, document or {})
    result = StackCost(stack, environment_of(stack), float(env_usage.get("workload", {}).get("videos_per_month", 0)))
    for r in c.all:
        rule = RULES.get(r.type)
        if rule is None:
            if r.type in table.free:
                result.free.append((r.module, r.address, table.free[r.type]))
            else:
                result.not_priced.append(
                    Unpriced(r.module, r.address, r.type, "no pricing rule or free entry for this type")
                )
            continue
        try:
            result.lines.extend(rule(r, c))
        except MissingPrice as missing:
            result.not_priced.append(
                Unpriced(r.module, r.address, r.type, f"no price {missing.key!r} in table {table.version}")
            )
    result.variable = _variable(c, result.not_priced)
    return result


# --- per-resource lines (Infracost's layout: monthly before, after, the change and the share of the stack) -------


@dataclass(frozen=True)
class ResourceCost:
    stack: str
    address: str
    module: str
    path: str
    before: float | None  # monthly USD at the usage file's assumptions in the base; None: not in the base
    after: float | None  # the same in the head; None: not in the head (removed)
    share: float | None  # after as a percentage of the head stack's total; None: not in the head
    items: tuple[str, ...] = ()  # what is charged (the head's items, else the base's)

    @property
    def delta(self) -> float:
        return (self.after or 0.0) - (self.before or 0.0)


def _monthly_by_resource(cost: StackCost) -> dict[str, tuple[str, str, float, list[str]]]:
    """address -> (module, path, monthly USD, items): fixed lines at the usage figure plus the per-video lines
    charged to the resource times the month's videos, so the resources add up to the stack's total."""
    out: dict[str, tuple[str, str, float, list[str]]] = {}
    for line in cost.lines:
        module, path, usd, items = out.get(line.address, (line.module, line.path, 0.0, []))
        out[line.address] = (module, path, usd + line.monthly_usage, [*items, line.item])
    for v in cost.variable:
        if not v.address:
            continue
        module, path, usd, items = out.get(v.address, (v.module, v.path, 0.0, []))
        videos = cost.videos_per_month
        out[v.address] = (module, path, usd + v.usd_per_video * videos, [*items, f"{v.item} x {videos:,.0f} videos"])
    return out


def resource_costs(stack: str, head: StackCost | None, base: StackCost | None) -> list[ResourceCost]:
    """Every priced resource of the stack in the head or the base, largest change first (then largest cost)."""
    after = _monthly_by_resource(head) if head else {}
    before = _monthly_by_resource(base) if base else {}
    total = head.total if head else None
    rows = []
    for address in after.keys() | before.keys():
        module, path, _, items = after.get(address) or before[address]
        now = after[address][2] if address in after else None
        was = before[address][2] if address in before else None
        share = None if total is None or now is None else (100.0 * now / total if total else 0.0)
        rows.append(ResourceCost(stack, address, module, path, was, now, share, tuple(items)))
    rows.sort(key=lambda r: (-abs(r.delta), -(r.after or 0.0), r.address))
    return rows
