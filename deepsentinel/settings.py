"""Typed per-environment settings, overrides from TOML or `key=value`, and naming.

Every size and switch of the platform lives in `PlatformSettings`; dev and prod differ only through
the two defaults below. `load_settings` applies overrides and validates everything at once, before
anything is synthesized, so a bad value never leaves a half-written `cdktf.out/`.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import itertools
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from deepsentinel.aws_catalog import (
    BEDROCK_INFERENCE_PROFILE_PREFIXES,
    BEDROCK_RERANK_MODEL_REGIONS,
    FARGATE_MEMORY_MB,
    GPU_INSTANCE_FAMILIES,
    GPU_INSTANCE_TYPES,
    RDS_INSTANCE_FAMILIES,
    RDS_POSTGRES16_INSTANCE_CLASSES,
    SQS_MAX_BATCHING_WINDOW_SECONDS,
    SQS_MAX_VISIBILITY_TIMEOUT_SECONDS,
    SQS_VISIBILITY_FACTOR,
)

ENVIRONMENTS = ("dev", "prod")
_S3_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_NAME_PART = re.compile(r"^[a-z][a-z0-9-]{0,13}$")
_IAM_USER_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
_SCHEDULE = re.compile(r"^(cron|at|rate)\(.+\)$")
_GITHUB_OIDC_PROVIDER_ARN = re.compile(
    r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$"
)
# OCI Distribution Spec, "Pulling manifests": a tag is [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}; ECR's API allows longer
# imageTag strings (1-300), but an image reference "<repository>:<tag>" in a task or job definition must parse.
_IMAGE_TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
# S3's "safe characters" for object keys ("Naming Amazon S3 objects", S3 User Guide); the worker needs a .pt.
_MODEL_KEY = re.compile(r"^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*\.pt$")
#: The weights' key when none is configured: a fixed name `deepsentinel model publish --key` can write.
DEFAULT_MODEL_KEY = "models/yolov8n.pt"
MODEL_KEY_RULE = (
    "S3's safe characters (a-z A-Z 0-9 ! - _ . * ' ( ) /), no leading '/', no empty or '.'/'..' "
    "segment, ending in .pt, at most 1024 bytes"
)


def is_model_key(key: str) -> bool:
    """Whether `key` can name weights in the models bucket (model_key, `model publish --key`): MODEL_KEY_RULE."""
    return (
        bool(_MODEL_KEY.match(key))
        and len(key.encode()) <= 1024
        and not any(part in (".", "..") for part in key.split("/"))
    )


# Settings that no longer exist, with what replaced them (an old override must not just be "unknown").
_REPLACED_SETTINGS = {
    "image_tag": "replaced by frontend_image_tag, backend_image_tag and worker_image_tag (one per image, so a "
    "release changes only the image it built)",
    "ci_user_name": "removed with the CI user: workflows assume the account stack's GitHub OIDC roles "
    "(github_repository; docs/release.md)",
}


class SettingsError(ValueError):
    """All problems found in one settings object, raised together."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))


class SettingsFileError(SettingsError):
    """The --settings file cannot be used at all (missing, unreadable, not TOML): one line, nothing else to list."""

    def __str__(self) -> str:
        return self.problems[0]


@dataclass(frozen=True, kw_only=True)
class PlatformSettings:
    """Every size and switch of one environment. Field comments are the settings reference."""

    # Each field's comment is its row in the settings reference: what it does, what leaving it out (the default)
    # means, and what is allowed. `validate` enforces the allowed values.
    project: str = "deepsentinel"  # first half of every name {project}-{environment}-...; 1-14 of a-z, 0-9, -
    environment: str = "dev"  # dev | prod (chosen by --env; a different value in a settings file is an error)
    region: str = "ap-northeast-2"  # AWS region of every resource of the environment
    availability_zones: tuple[str, ...] = ("ap-northeast-2a", "ap-northeast-2c")  # at least 2, distinct, in region
    vpc_cidr: str = "10.0.0.0/16"  # VPC range, a CIDR from /16 to /28
    public_subnet_cidrs: tuple[str, ...] = ("10.0.1.0/24", "10.0.2.0/24")  # one per AZ, inside vpc_cidr, disjoint
    private_subnet_cidrs: tuple[str, ...] = ("10.0.11.0/24", "10.0.12.0/24")  # one per AZ, inside vpc_cidr, disjoint
    nat_per_az: bool = False  # False: one NAT gateway shared by both AZs (cheaper, not AZ-resilient)
    interface_endpoints: bool = False  # ECR api/dkr, logs, SQS, Secrets Manager, Bedrock runtime endpoints;
    # False: via the NAT
    flow_log_retention_days: int = 14  # VPC flow-log group retention; a CloudWatch value (1, 3, 5, 7, 14, 30, ...)
    domain_name: str | None = None  # ACM certificate, HTTPS + HTTP redirect and the ALB's alias record in an existing
    # public Route 53 zone (hosted_zone_name); None needs allow_plain_http
    hosted_zone_name: str | None = None  # the public Route 53 zone holding domain_name's records, looked up by name
    # (an environment never creates a zone: its name servers would change with every re-creation and ACM's DNS
    # validation waits for the registrar's delegation); None: the zone named domain_name. domain_name must be it or
    # a name under it
    hosted_zones: tuple[str, ...] = ()  # account stack (bootstrap): public Route 53 zones created once per account,
    # their name servers an output to delegate to at the registrar; (): none (zones are managed elsewhere)
    allow_plain_http: bool = False  # lets an environment without domain_name serve HTTP (API + admin in clear);
    # False with domain_name None is an error (dev's default sets it True: dev has no domain of its own)
    bucket_suffix: str = ""  # appended to bucket names to make them globally unique (e.g. account id); "": none
    upload_cors_origins: tuple[str, ...] = ()  # browser origins allowed to PUT videos to the raw bucket with a
    # presigned URL (the bucket's CORS rule): scheme://host[:port], no path, no "*"; (): https://{domain_name}, or
    # without a domain the ALB's http://<DNS name> origin (where the site is served)
    raw_video_glacier_after_days: int | None = 30  # raw videos move to S3 Glacier Flexible Retrieval this many days
    # after upload (0 or more: S3 allows 0 for GLACIER transitions; an object deleted within 90 days of the move is
    # billed for Glacier's 90-day minimum); None: they stay in S3 Standard
    raw_video_retention_days: int | None = None  # raw videos are deleted this many days after upload (1 or more,
    # later than raw_video_glacier_after_days: S3 refuses an expiration before a transition of the same rule); their
    # previous versions expire 90 days later. None: kept

    # Amazon Bedrock, called by the backend (RAG search). The ECS task role may invoke exactly these models.
    # Defaults checked 2026-11-24 in the Bedrock User Guide: Claude 3 Haiku ("Claude 3 Haiku" model card,
    # .../bedrock/latest/userguide/model-card-anthropic-claude-3-haiku.html) reached end of life on 2026-09-10 in most
    # Regions but stays callable in ap-northeast-2 in its Legacy stage: plan the move to a newer Claude (in Seoul
    # through an apac./global. inference profile id) before Seoul's end-of-life date. Titan Text Embeddings V2
    # (.../titan-embedding-models.html, Active). Rerank is not offered in ap-northeast-2 (.../rerank-supported.html).
    bedrock_text_model_id: str = "anthropic.claude-3-haiku-20240307-v1:0"  # summaries, Text2SQL, answers: an
    # Anthropic Claude model id offered in-Region, or a cross-Region inference profile id (apac.anthropic.claude-...)
    bedrock_embedding_model_id: str = "amazon.titan-embed-text-v2:0"  # search embeddings: an amazon.titan-embed-*
    # or cohere.embed-* model id
    bedrock_rerank_model_id: str | None = "cohere.rerank-v3-5:0"  # reranker for bedrock-agent-runtime Rerank:
    # cohere.rerank-v3-5:0 or amazon.rerank-v1:0; None: no reranking (no grant, no environment variables)
    bedrock_rerank_region: str = "ap-northeast-1"  # Region of the Rerank calls: one that offers the reranker
    # (deepsentinel/aws_catalog.py; ap-northeast-2 offers none, so the default is Tokyo)

    db_instance_class: str = "db.t3.micro"  # an RDS class offered for PostgreSQL 16 (families db.t3, db.t4g, db.m5,
    # db.m6g, db.m6i, db.m7g, db.r5, db.r6g, db.r6i, db.r7g; table in deepsentinel/aws_catalog.py)
    db_allocated_storage_gb: int = 20  # initial gp3 storage, at least 1, at most db_max_allocated_storage_gb
    db_max_allocated_storage_gb: int = 100  # storage autoscaling ceiling
    db_backup_retention_days: int = 7  # automated backup days; 0 turns automated backups off
    db_backup_window: str = "17:00-18:00"  # daily automated backup, UTC hh24:mi-hh24:mi, at least 30 minutes
    # (02:00 KST); with db_night_stop it must fall in the hours the instance runs (RDS backs up no stopped instance)
    db_maintenance_window: str = "sun:18:30-sun:19:30"  # weekly maintenance, UTC ddd:hh24:mi-ddd:hh24:mi, at least
    # 30 minutes, not overlapping db_backup_window; with db_night_stop also in the running hours
    db_multi_az: bool = False  # True: standby in the second AZ; False: single-AZ instance
    deletion_protection: bool = False  # RDS deletion protection and ALB deletion protection

    frontend_cpu: int = 512  # Fargate CPU units (1024 = 1 vCPU): 256, 512, 1024, 2048, 4096, 8192 or 16384
    frontend_memory_mb: int = 1024  # Fargate memory (MiB) allowed for frontend_cpu, e.g. 512: 1024..4096
    backend_cpu: int = 1024  # Fargate CPU units of a backend task (same sizes as frontend_cpu)
    backend_memory_mb: int = 2048  # Fargate memory (MiB) allowed for backend_cpu, e.g. 1024: 2048..8192
    service_min_tasks: int = 1  # autoscaling minimum per service (and the morning scale-up minimum), >= 0
    service_max_tasks: int = 3  # autoscaling maximum per service, >= 1 and >= service_min_tasks
    cpu_target_percent: int = 70  # CPU target tracking value, 10..95
    scale_out_cooldown_seconds: int = 60  # target tracking scale-out cooldown
    scale_in_cooldown_seconds: int = 300  # target tracking scale-in cooldown
    night_scale_down: bool = True  # scale services to 0 at night (dev only by default); False: no schedules
    scale_down_schedule: str = "cron(0 20 * * ? *)"  # cron(...), rate(...) or at(...), in schedule_timezone
    scale_up_schedule: str = "cron(0 9 * * ? *)"  # back to min..max; cron(...), rate(...) or at(...)
    schedule_timezone: str = "Asia/Seoul"  # IANA time zone of the scale and ECR cleanup schedules
    # Image tags, one per ECR repository {project}-{env}/<image> (tags are immutable there): an OCI tag, 1-128 of
    # a-z A-Z 0-9 _ . - not starting with . or -. A deploy points a service or job definition at exactly this tag.
    frontend_image_tag: str = "1.0.0"  # frontend service image; built and pushed by the frontend app's own pipeline
    backend_image_tag: str = "1.0.0"  # backend service image; built and pushed by the backend app's own pipeline
    worker_image_tag: str = "1.0.0"  # Batch worker image (worker_image/); release.yml pushes <commit sha> and
    # deploys with -c worker_image_tag=<sha> (docs/release.md)
    ecr_keep_images: int = 10  # the weekly ecr_cleanup function keeps this many newest tagged images per repository
    log_retention_days: int = 30  # ECS, Batch, Lambda and WAF log groups; a CloudWatch value (1, 3, 5, 7, 14, 30, ...)

    gpu_instance_types: tuple[str, ...] = ("g5.xlarge",)  # x86_64 NVIDIA GPU types (g4dn, g5, g6, g6e, gr6, p3,
    # p3dn, p4d, p4de, p5 sizes; table in deepsentinel/aws_catalog.py); the largest one's vCPUs times the instance
    # counts set the compute environment's vCPUs (PlatformSettings.gpu_vcpus_per_instance)
    gpu_min_instances: int = 0  # compute environment minimum (0: no idle cost), <= gpu_max_instances
    gpu_max_instances: int = 4  # compute environment maximum, >= 1
    gpu_ami_id: str | None = None  # ami-<8..17 hex digits>; None: the Batch-managed ECS GPU AMI (ECS_AL2_NVIDIA);
    # set: the job definitions mount its /opt/deepsentinel/models read-only as MODEL_DIR (used before downloading)
    model_key: str = DEFAULT_MODEL_KEY  # key of the weights in the analysis-models bucket; the job definitions'
    # MODEL_URI is s3://<models bucket>/<model_key>. `deepsentinel model publish FILE` uploads a file and prints its
    # content-addressed key (models/<stem>-<sha256 prefix>.pt) to set here; the default names the object
    # `model publish FILE --key models/yolov8n.pt` writes. Allowed: an S3 key of S3's safe characters
    # (a-z A-Z 0-9 ! - _ . * ' ( ) /), no leading '/', no empty or '.'/'..' segment, ending in .pt, <= 1024 bytes
    gpu_use_spot: bool = False  # True: Spot instances with SPOT_CAPACITY_OPTIMIZED; False: On-Demand
    job_timeout_seconds: int = 3600  # Batch attempt timeout, >= 60 (SIGTERM, SIGKILL 30 s later; not retried)
    job_attempts: int = 3  # Batch attempts, 1..10 (exit 65, bad input, is never retried)
    job_runnable_alarm_minutes: int = 30  # alarm {prefix}-jobs-stuck-runnable when a Batch job has waited in
    # RUNNABLE longer than this (nothing can place it: a G-instance vCPU quota of 0, no Spot capacity; or a backlog
    # longer than gpu_max_instances clears); 10..1440, the range AWS Batch allows its own RUNNABLE time limit

    lambda_timeout_seconds: int = 60  # timeout of every Lambda, 1..900
    lambda_max_concurrency: int = 5  # SQS event source maximum concurrency (2..1000)
    queue_visibility_timeout_seconds: int = 400  # jobs queue; at least 6 x lambda_timeout_seconds +
    # sqs_batching_window_seconds (AWS's guidance for SQS event sources, 365 with the defaults), at most 43200
    sqs_batching_window_seconds: int = 5  # event source MaximumBatchingWindowInSeconds, 0..300 (0: no batching wait)
    max_receive_count: int = 3  # receives before a message moves to the DLQ, >= 1
    video_events_email: str | None = None  # subscribes this address to DONE/FAILED video notifications; None: none
    alarm_email: str | None = None  # address subscribed to the alarm topic; None: SNS topic without subscription
    ecr_cleanup_schedule: str = "cron(0 3 ? * SUN *)"  # weekly ECR cleanup, in schedule_timezone; cron/rate/at(...)
    github_repository: str | None = None  # owner/name of the repository whose workflows plan, publish and deploy:
    # the account stack creates GitHub's OIDC provider and per environment a plan, an image-publishing and a deploy
    # role trusting only that repository's runs (docs/release.md); with github_token_secret_arn failed Batch jobs
    # also open an issue there. None: no OIDC roles, no issues
    github_token_secret_arn: str | None = None  # Secrets Manager ARN of the GitHub token the failure monitor opens
    # issues with; needs github_repository. None: failed jobs only reach the alerts topic
    github_oidc_provider_arn: str | None = None  # account stack: the account's existing IAM OIDC provider for
    # token.actions.githubusercontent.com (an account has at most one per URL); None: the account stack creates it
    github_repository_ids: str | None = None  # "<owner id>/<repository id>": the OIDC roles trust GitHub's immutable
    # subject format repo:owner@<owner id>/name@<repository id>:..., the default of repositories created after
    # 2026-07-15 (or opted in); None: the name-only format repo:owner/name:...

    # Jobs API: an IAM-authorized HTTP API for clients without the web app (camera gateways); docs/platform.md
    # "Jobs API".
    jobs_api_enabled: bool = False  # True: the API, its three functions, its client role and the upload rule
    # (raw-bucket uploads under the API's key prefix enqueue their job); False: none of them
    jobs_api_url_expiry_seconds: int = 900  # lifetime of the presigned upload and highlight URLs, 60..3600 (a URL
    # signed with the function's temporary role credentials stops working when those expire anyway)
    jobs_api_throttle_rate: int = 10  # steady requests per second of the API's $default stage, 1..10000
    jobs_api_throttle_burst: int = 20  # burst (token bucket size) of the $default stage, 1..5000
    jobs_api_cors_origins: tuple[str, ...] = ()  # browser origins allowed to call the API: scheme://host[:port],
    # no path, no "*"; (): no CORS configuration (gateways are not browsers)
    jobs_api_roles_anywhere_trust_anchor_arns: tuple[str, ...] = ()  # IAM Roles Anywhere trust anchors
    # (arn:aws:rolesanywhere:<region>:<account>:trust-anchor/<uuid>) whose certificates may take the client role:
    # its trust policy gets rolesanywhere.amazonaws.com with sts:AssumeRole, sts:SetSourceIdentity and
    # sts:TagSession, only with aws:SourceArn = one of these; (): no Roles Anywhere statement
    jobs_api_roles_anywhere_subject_cns: tuple[str, ...] = ()  # with trust anchors: only certificates whose
    # subject CN (aws:PrincipalTag/x509Subject/CN, mapped by the profile's default attribute mapping) is one of
    # these, e.g. gateway-7.cameras.example.com; (): any certificate the anchors' CA issued

    user_names: tuple[str, ...] = ("alice", "bob", "carol")  # account stack: members of the developers group
    admin_user_names: tuple[str, ...] = ("alice",)  # subset of user_names also in the admins group
    tags: dict[str, str] = field(default_factory=dict)  # merged over the common tags; {}: common tags only

    # Security posture. Prod turns everything on; dev relaxes what costs money, each relaxation by name.
    waf_enabled: bool = False  # WAFv2 web ACL (AWS managed rule groups) on the ALB (~USD 10/month)
    access_logs_enabled: bool = False  # ALB and S3 server access logs to a log bucket (storage + requests)
    db_enhanced_monitoring: bool = False  # RDS Enhanced Monitoring every 60 s (CloudWatch Logs ingestion)
    lambda_reserved_concurrency: bool = False  # reserve concurrency per function (a new account's limit of 10
    # cannot spare it: AWS keeps 10 unreserved)

    # Operations: the cost guard, the database's night stop, the jobs queue's type.
    budget_monthly_usd: int = 300  # AWS Budgets monthly COST limit of the environment (resources tagged with its
    # Environment tag, once that cost-allocation tag is activated), whole USD >= 1
    budget_thresholds_percent: tuple[int, ...] = (80, 100)  # ACTUAL-cost notifications at these percentages of the
    # limit, each 1..1000, distinct; (): none. With the forecast one at most 5 (AWS's limit per budget)
    budget_forecast_percent: int | None = 100  # a FORECASTED-cost notification at this percentage, 1..1000; None: none
    budget_email: str | None = None  # the budget's notifications also e-mail this address; None: alerts topic only
    db_night_stop: bool = True  # stop the RDS instance at db_stop_schedule and start it at db_start_schedule (dev
    # only by default; needs night_scale_down, or the services would run against a stopped database); False: never
    db_stop_schedule: str = "cron(0 20 * * ? *)"  # in schedule_timezone; cron(...), rate(...) or at(...)
    db_start_schedule: str = "cron(45 8 * * ? *)"  # before scale_up_schedule: a start takes several minutes
    fifo_job_queue: bool = False  # True: the jobs queue and its DLQ are FIFO (.fifo names, content-based
    # deduplication; the event source drops sqs_batching_window_seconds, which Lambda does not support for FIFO
    # queues); every sender must set MessageGroupId (the backend gets QUEUE_IS_FIFO=true). False: standard queues

    @property
    def zone_name(self) -> str | None:
        """The public hosted zone the environment's records go into (None without domain_name)."""
        return self.hosted_zone_name or self.domain_name

    @property
    def gpu_vcpus_per_instance(self) -> int:
        """vCPUs of the largest configured GPU type (the compute environment's vCPUs per instance)."""
        return max((GPU_INSTANCE_TYPES[t][0] for t in self.gpu_instance_types if t in GPU_INSTANCE_TYPES), default=0)

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.environment}"

    def name(self, *parts: str) -> str:
        """`{project}-{env}-part-part`: the one naming rule of the platform."""
        return "-".join((self.prefix, *parts))

    def bucket_name(self, purpose: str) -> str:
        return self.name(purpose) + (f"-{self.bucket_suffix}" if self.bucket_suffix else "")

    @property
    def state_bucket_name(self) -> str:
        """Backend bucket of the state stack, shared by every environment of the project."""
        return f"{self.project}-tfstate" + (f"-{self.bucket_suffix}" if self.bucket_suffix else "")

    @property
    def common_tags(self) -> dict[str, str]:
        return {
            "Project": self.project,
            "Environment": self.environment,
            "ManagedBy": "deepsentinel-cdktf",
            **self.tags,
        }


DEFAULTS: dict[str, PlatformSettings] = {
    # dev has no domain of its own; its database is stopped 20:00-08:45 KST (db_night_stop), and RDS takes no
    # automated backup of a stopped instance, so its windows are at 12:00 and 13:00 KST.
    "dev": PlatformSettings(
        environment="dev",
        allow_plain_http=True,
        db_backup_window="03:00-03:30",
        db_maintenance_window="wed:04:00-wed:04:30",
    ),
    "prod": PlatformSettings(
        environment="prod",
        domain_name="deepsentinel.cloud",  # the seed's domain: zone, certificate, HTTPS, HTTP redirect
        nat_per_az=True,
        interface_endpoints=True,
        db_instance_class="db.t3.small",
        db_multi_az=True,
        deletion_protection=True,
        service_max_tasks=3,
        night_scale_down=False,
        log_retention_days=365,
        flow_log_retention_days=365,
        waf_enabled=True,
        access_logs_enabled=True,
        db_enhanced_monitoring=True,
        lambda_reserved_concurrency=True,
        budget_monthly_usd=1000,
        db_night_stop=False,
    ),
}
FIELDS = {f.name: f for f in dataclasses.fields(PlatformSettings)}
FIELD_TYPES = typing.get_type_hints(PlatformSettings)  # resolved once: annotations are strings here


def load_settings(
    environment: str, *, settings_file: Path | None = None, overrides: typing.Iterable[str] = ()
) -> PlatformSettings:
    """Defaults for `environment`, then the TOML file (top level or an `[env]` table), then `key=value`."""
    if environment not in DEFAULTS:
        raise SettingsError([f"environment: unknown environment {environment!r}; allowed: {', '.join(ENVIRONMENTS)}"])
    values: dict[str, object] = {}
    problems: list[str] = []
    if settings_file is not None:
        document = _read_settings_file(Path(settings_file))
        tables = (*ENVIRONMENTS, "tags")
        for table in sorted(k for k, v in document.items() if isinstance(v, dict) and k not in tables):
            guess = difflib.get_close_matches(table.lower(), tables, n=1, cutoff=0.6)
            problems.append(
                f"[{table}]: unknown table in {settings_file}; "
                + (f"did you mean [{guess[0]}]? " if guess else "")
                + "allowed: "
                + ", ".join(f"[{t}]" for t in tables)
            )
        values.update({k: v for k, v in document.items() if not isinstance(v, dict) or k == "tags"})
        environment_table = document.get(environment, {})
        if isinstance(environment_table, dict):  # else reported above as an unknown setting
            values.update(environment_table)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            problems.append(f"-c {item!r}: expected key=value")
            continue
        values[key.strip()] = raw.strip()
    for key in sorted(set(values) - set(FIELDS)):
        if key in _REPLACED_SETTINGS:
            problems.append(f"{key}: no longer a setting; {_REPLACED_SETTINGS[key]}")
        else:
            problems.append(f"{key}: unknown setting; {_known_settings_like(key)}")
    coerced: dict[str, typing.Any] = {}  # each value of its field's type (_coerce)
    for key, value in values.items():
        if key in FIELDS:
            try:
                coerced[key] = _coerce(key, value)
            except ValueError as error:
                problems.append(str(error))
    if "environment" in coerced and coerced["environment"] != environment:
        problems.append(f"environment: set to {coerced['environment']!r} but {environment!r} was chosen")
    if problems:
        raise SettingsError(problems)
    settings = dataclasses.replace(DEFAULTS[environment], **coerced)
    validate(settings)
    return settings


def _read_settings_file(path: Path) -> dict[str, object]:
    """The TOML document, or one line saying why the file cannot be used (no Python errno text)."""
    try:
        data = path.read_bytes()
        # TOML documents are UTF-8 (toml.io, spec v1.0.0), whatever the locale says.
        return tomllib.loads(data.decode("utf-8"))
    except FileNotFoundError:
        reason = "no such file"
    except IsADirectoryError:
        reason = "is a directory, not a TOML file"
    except PermissionError:
        reason = "not readable (permission denied)"
    except OSError as error:
        reason = f"cannot be read ({error.strerror or error})"
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        reason = f"not TOML: line {line} is not UTF-8 text (TOML files are UTF-8)"
    except tomllib.TOMLDecodeError as error:
        text = str(error)
        reason = f"not TOML: {text[:1].lower()}{text[1:]}"  # tomllib's message names the line and column
    raise SettingsFileError([f"--settings {path}: {reason}"])


def _known_settings_like(key: str) -> str:
    """The closest setting names first; the whole list only when nothing resembles `key`."""
    close = difflib.get_close_matches(key.lower(), FIELDS, n=3, cutoff=0.6)
    where = "(every setting: docs/settings.md)"
    if close:
        return f"did you mean {' or '.join(close)}? {where}"
    family = key.lower().split("_", 1)[0] + "_"
    if similar := [name for name in FIELDS if name.startswith(family)]:
        return f"the {family}* settings are {', '.join(similar)} {where}"
    return f"known settings: {', '.join(FIELDS)}"


def _coerce(key: str, value: object) -> object:
    """Turn a TOML value or a `-c` string into the field's declared type."""
    hint = FIELD_TYPES[key]
    optional = isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)
    if optional:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
    origin = typing.get_origin(hint)
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ValueError(f"{key}: expected a list, got {value!r}")
        words = tuple(str(i).strip() for i in items if str(i).strip())
        if typing.get_args(hint)[0] is int:
            try:
                return tuple(int(w) for w in words)
            except ValueError:
                raise ValueError(f"{key}: expected a list of integers, got {value!r}") from None
        return words
    if origin is dict:
        if isinstance(value, str):
            pairs = [p.split(":", 1) for p in value.split(",") if p]
            if any(len(p) != 2 for p in pairs):
                raise ValueError(f"{key}: expected Key:Value,Key:Value, got {value!r}")
            return {k.strip(): v.strip() for k, v in pairs}
        if not isinstance(value, dict):
            raise ValueError(f"{key}: expected a table, got {value!r}")
        return {str(k): str(v) for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "yes", "1", "on"):
            return True
        if str(value).lower() in ("false", "no", "0", "off"):
            return False
        raise ValueError(f"{key}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool):
            raise ValueError(f"{key}: expected an integer, got {value!r}")
        try:
            return int(value)  # type: ignore[call-overload]  # what int() cannot take is a TypeError, below
        except (TypeError, ValueError):
            raise ValueError(f"{key}: expected an integer, got {value!r}") from None
    return str(value)


def validate(s: PlatformSettings) -> None:
    """Collect every problem of a settings object and raise them once."""
    problems: list[str] = []
    if s.environment not in ENVIRONMENTS:
        problems.append(f"environment: {s.environment!r} is not allowed; allowed: {', '.join(ENVIRONMENTS)}")
    if not _NAME_PART.match(s.project):
        problems.append(
            f"project: {s.project!r} must be 1-14 lowercase letters, digits or hyphens, starting with a letter"
        )
    if len(s.availability_zones) < 2:
        problems.append(f"availability_zones: at least 2 are required, got {len(s.availability_zones)}")
    if len(set(s.availability_zones)) != len(s.availability_zones):
        problems.append("availability_zones: must be distinct")
    for az in s.availability_zones:
        if not az.startswith(s.region):
            problems.append(f"availability_zones: {az!r} is not in region {s.region!r}")
    problems += _network_problems(s)
    problems += _operations_problems(s)
    for purpose in ("raw-videos", "terraform-state"):
        name = s.bucket_name(purpose)
        if not _S3_BUCKET_NAME.match(name) or ".." in name:
            problems.append(
                f"bucket_suffix/project: bucket name {name!r} is not a valid S3 name "
                "(3-63 chars: lowercase letters, digits, '.', '-'; start and end alphanumeric)"
            )
    for low, high in (
        ("db_allocated_storage_gb", "db_max_allocated_storage_gb"),
        ("service_min_tasks", "service_max_tasks"),
        ("gpu_min_instances", "gpu_max_instances"),
    ):
        if getattr(s, low) > getattr(s, high):
            problems.append(f"{low}: {getattr(s, low)} is above {high} ({getattr(s, high)})")
    for name in (
        "db_allocated_storage_gb",
        "service_max_tasks",
        "gpu_max_instances",
        "lambda_timeout_seconds",
        "job_timeout_seconds",
        "job_attempts",
        "max_receive_count",
    ):
        if getattr(s, name) < 1:
            problems.append(f"{name}: must be at least 1, got {getattr(s, name)}")
    for name in ("service_min_tasks", "gpu_min_instances", "db_backup_retention_days"):
        if getattr(s, name) < 0:
            problems.append(f"{name}: must not be negative, got {getattr(s, name)}")
    if not 1 <= s.job_attempts <= 10:
        problems.append(f"job_attempts: AWS Batch allows 1..10, got {s.job_attempts}")
    if s.job_timeout_seconds < 60:  # "Job timeouts": attemptDurationSeconds "must be at least 60 seconds"
        problems.append(f"job_timeout_seconds: AWS Batch needs at least 60, got {s.job_timeout_seconds}")
    if not 2 <= s.lambda_max_concurrency <= 1000:
        problems.append(f"lambda_max_concurrency: SQS event sources allow 2..1000, got {s.lambda_max_concurrency}")
    if not 1 <= s.lambda_timeout_seconds <= 900:
        problems.append(f"lambda_timeout_seconds: Lambda allows 1..900, got {s.lambda_timeout_seconds}")
    if not 0 <= s.sqs_batching_window_seconds <= SQS_MAX_BATCHING_WINDOW_SECONDS:
        problems.append(
            f"sqs_batching_window_seconds: allowed 0..{SQS_MAX_BATCHING_WINDOW_SECONDS}, "
            f"got {s.sqs_batching_window_seconds}"
        )
    minimum_visibility = SQS_VISIBILITY_FACTOR * s.lambda_timeout_seconds + s.sqs_batching_window_seconds
    if s.queue_visibility_timeout_seconds < minimum_visibility:
        problems.append(
            f"queue_visibility_timeout_seconds: {s.queue_visibility_timeout_seconds} must be at least "
            f"6 x lambda_timeout_seconds + sqs_batching_window_seconds = {minimum_visibility} (AWS's "
            f"guidance for SQS event sources); allowed: "
            f"{minimum_visibility}..{SQS_MAX_VISIBILITY_TIMEOUT_SECONDS}"
        )
    elif s.queue_visibility_timeout_seconds > SQS_MAX_VISIBILITY_TIMEOUT_SECONDS:
        problems.append(
            f"queue_visibility_timeout_seconds: {s.queue_visibility_timeout_seconds} is above SQS's "
            f"maximum visibility timeout; allowed: "
            f"{minimum_visibility}..{SQS_MAX_VISIBILITY_TIMEOUT_SECONDS}"
        )
    if s.db_instance_class not in RDS_POSTGRES16_INSTANCE_CLASSES:
        problems.append(
            f"db_instance_class: {s.db_instance_class!r} is not an RDS class for PostgreSQL 16; allowed: "
            f"{', '.join(RDS_INSTANCE_FAMILIES)} families, e.g. db.t3.micro, db.t4g.small, db.m6g.large"
        )
    for service in ("frontend", "backend"):
        cpu, memory = getattr(s, f"{service}_cpu"), getattr(s, f"{service}_memory_mb")
        if cpu not in FARGATE_MEMORY_MB:
            problems.append(
                f"{service}_cpu: {cpu} is not a Fargate CPU size; allowed: {', '.join(map(str, FARGATE_MEMORY_MB))}"
            )
        elif memory not in FARGATE_MEMORY_MB[cpu]:
            allowed = FARGATE_MEMORY_MB[cpu]
            steps = {b - a for a, b in itertools.pairwise(allowed)}
            sizes = (
                f"{allowed[0]}..{allowed[-1]} in steps of {steps.pop()}"
                if len(allowed) > 4 and len(steps) == 1
                else ", ".join(map(str, allowed))
            )
            problems.append(f"{service}_memory_mb: {memory} MiB does not fit {service}_cpu={cpu}; allowed: {sizes}")
    for name in ("alarm_email", "video_events_email"):
        address = getattr(s, name)
        if address is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", address):
            problems.append(f"{name}: {address!r} is not an e-mail address")
    if s.domain_name is None and not s.allow_plain_http:
        problems.append(
            "domain_name: not set, so the ALB would serve the API and the Django admin over plain "
            "HTTP; set domain_name, or allow_plain_http=true to accept that"
        )
    if not 10 <= s.cpu_target_percent <= 95:
        problems.append(f"cpu_target_percent: allowed 10..95, got {s.cpu_target_percent}")
    for name in ("log_retention_days", "flow_log_retention_days"):
        if getattr(s, name) not in _LOG_RETENTION_DAYS:
            problems.append(
                f"{name}: {getattr(s, name)} is not a CloudWatch retention; allowed: "
                f"{', '.join(map(str, _LOG_RETENTION_DAYS))}"
            )
    if not s.gpu_instance_types:
        problems.append("gpu_instance_types: at least one instance type is required")
    for itype in s.gpu_instance_types:
        if itype not in GPU_INSTANCE_TYPES:
            problems.append(
                f"gpu_instance_types: {itype!r} is not an x86_64 GPU instance type; allowed families: "
                f"{', '.join(GPU_INSTANCE_FAMILIES)} (e.g. g5.xlarge, g6.2xlarge)"
            )
    for name in ("frontend_image_tag", "backend_image_tag", "worker_image_tag"):
        if not _IMAGE_TAG.match(getattr(s, name)):
            problems.append(
                f"{name}: {getattr(s, name)!r} is not an image tag; allowed: 1-128 of a-z, A-Z, 0-9, "
                "'_', '.', '-', not starting with '.' or '-'"
            )
    if s.gpu_ami_id is not None and not re.match(r"^ami-[0-9a-f]{8,17}$", s.gpu_ami_id):
        problems.append(f"gpu_ami_id: {s.gpu_ami_id!r} is not an AMI id (ami- followed by 8-17 hex digits)")
    if not is_model_key(s.model_key):
        problems.append(
            f"model_key: {s.model_key!r} is not an S3 key of weights; allowed: {MODEL_KEY_RULE} "
            "(e.g. the key `deepsentinel model publish` prints)"
        )
    for name in ("scale_down_schedule", "scale_up_schedule", "ecr_cleanup_schedule"):
        if not _SCHEDULE.match(getattr(s, name)):
            problems.append(f"{name}: {getattr(s, name)!r} must be cron(...), rate(...) or at(...)")
    if s.domain_name is not None and not re.match(r"^([a-z0-9-]+\.)+[a-z]{2,}$", s.domain_name):
        problems.append(f"domain_name: {s.domain_name!r} is not a lowercase DNS name")
    problems += _hosted_zone_problems(s)
    problems += _bedrock_and_upload_problems(s)
    for user in s.user_names:
        if not _IAM_USER_NAME.match(user):
            problems.append(f"user_names: {user!r} is not a valid IAM user name")
    if len(set(s.user_names)) != len(s.user_names):
        problems.append("user_names: names must be distinct")
    # The token only opens the failure monitor's issues, in github_repository; the repository alone is enough
    # for the OIDC roles.
    for name in ("github_token_secret_arn", "github_oidc_provider_arn", "github_repository_ids"):
        if getattr(s, name) is not None and s.github_repository is None:
            problems.append(f"{name}: needs github_repository (owner/name)")
    if s.github_oidc_provider_arn is not None and not _GITHUB_OIDC_PROVIDER_ARN.match(s.github_oidc_provider_arn):
        problems.append(
            f"github_oidc_provider_arn: {s.github_oidc_provider_arn!r} is not an IAM OIDC provider ARN "
            "for GitHub; allowed: arn:aws:iam::<12-digit account>:oidc-provider/"
            "token.actions.githubusercontent.com"
        )
    if s.github_repository_ids is not None and not re.match(r"^\d+/\d+$", s.github_repository_ids):
        problems.append(
            f"github_repository_ids: {s.github_repository_ids!r} must be <owner id>/<repository id> "
            "(digits, e.g. 123456/456789: gh api repos/OWNER/NAME --jq '.owner.id, .id')"
        )
    if s.github_repository is not None and not re.match(r"^[\w.-]+/[\w.-]+$", s.github_repository):
        problems.append(f"github_repository: {s.github_repository!r} must be owner/name")
    if s.github_token_secret_arn is not None and not s.github_token_secret_arn.startswith("arn:aws:secretsmanager:"):
        problems.append(f"github_token_secret_arn: {s.github_token_secret_arn!r} is not a Secrets Manager ARN")
    problems += _jobs_api_problems(s)
    problems += _raw_video_retention_problems(s)
    if not set(s.admin_user_names) <= set(s.user_names):
        problems.append(f"admin_user_names: {sorted(set(s.admin_user_names) - set(s.user_names))} not in user_names")
    if problems:
        raise SettingsError(problems)


_DNS_NAME = re.compile(r"^([a-z0-9-]+\.)+[a-z]{2,}$")


def _hosted_zone_problems(s: PlatformSettings) -> list[str]:
    problems = [
        f"hosted_zones: {zone!r} is not a lowercase DNS name" for zone in s.hosted_zones if not _DNS_NAME.match(zone)
    ]
    if len(set(s.hosted_zones)) != len(s.hosted_zones):
        problems.append(f"hosted_zones: names must be distinct, got {list(s.hosted_zones)}")
    if s.hosted_zone_name is not None:
        if not _DNS_NAME.match(s.hosted_zone_name):
            problems.append(f"hosted_zone_name: {s.hosted_zone_name!r} is not a lowercase DNS name")
        elif s.domain_name is None:
            problems.append("hosted_zone_name: set without domain_name; allowed: set domain_name too, or neither")
        elif s.domain_name != s.hosted_zone_name and not s.domain_name.endswith("." + s.hosted_zone_name):
            problems.append(
                f"hosted_zone_name: domain_name {s.domain_name!r} is not in the zone "
                f"{s.hosted_zone_name!r}; allowed: the zone's name or a name under it"
            )
    return problems


# AWS Budgets: "A budget can have up to five notifications" (CreateBudget, NotificationsWithSubscribers,
# https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_CreateBudget.html)
BUDGET_MAX_NOTIFICATIONS = 5
BUDGET_MAX_PERCENT = 1000
# JobStateTimeLimitAction maxTimeSeconds, "The minimum value is 600 (10 minutes) and the maximum value is 86,400
# (24 hours)" (AWS Batch API Reference): AWS's own bounds for "waited too long in RUNNABLE"; below 10 minutes a GPU
# instance launched from zero would trip the alarm.
RUNNABLE_ALARM_MINUTES = (10, 1440)


def _operations_problems(s: PlatformSettings) -> list[str]:
    problems: list[str] = []
    if s.budget_monthly_usd < 1:
        problems.append(f"budget_monthly_usd: must be at least 1 (whole USD), got {s.budget_monthly_usd}")
    forecast = () if s.budget_forecast_percent is None else (s.budget_forecast_percent,)
    for name, values in (
        ("budget_thresholds_percent", s.budget_thresholds_percent),
        ("budget_forecast_percent", forecast),
    ):
        for value in values:
            if not 1 <= value <= BUDGET_MAX_PERCENT:
                problems.append(f"{name}: {value} is outside 1..{BUDGET_MAX_PERCENT} (percent of budget_monthly_usd)")
    if len(set(s.budget_thresholds_percent)) != len(s.budget_thresholds_percent):
        problems.append(f"budget_thresholds_percent: values must be distinct, got {list(s.budget_thresholds_percent)}")
    notifications = len(s.budget_thresholds_percent) + len(forecast)
    if notifications > BUDGET_MAX_NOTIFICATIONS:
        problems.append(
            f"budget_thresholds_percent/budget_forecast_percent: {notifications} notifications; AWS "
            f"Budgets allows at most {BUDGET_MAX_NOTIFICATIONS} per budget"
        )
    if s.budget_email is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", s.budget_email):
        problems.append(f"budget_email: {s.budget_email!r} is not an e-mail address")
    problems += _db_window_problems(s)
    if s.db_night_stop and not s.night_scale_down:
        problems.append(
            "db_night_stop: needs night_scale_down=true (the services would run against a stopped "
            "database); allowed: db_night_stop=false, or both true"
        )
    for name in ("db_stop_schedule", "db_start_schedule"):
        if not _SCHEDULE.match(getattr(s, name)):
            problems.append(f"{name}: {getattr(s, name)!r} must be cron(...), rate(...) or at(...)")
    low, high = RUNNABLE_ALARM_MINUTES
    if not low <= s.job_runnable_alarm_minutes <= high:
        problems.append(
            f"job_runnable_alarm_minutes: allowed {low}..{high} (minutes a Batch job may wait in "
            f"RUNNABLE before the alarm), got {s.job_runnable_alarm_minutes}"
        )
    return problems


_BACKUP_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_MAINTENANCE_WINDOW = re.compile(
    r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)-"
    r"(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)$"
)
_DAILY_CRON = re.compile(r"^cron\((\d{1,2}) (\d{1,2}) \* \* \? \*\)$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEK_MINUTES = 7 * 24 * 60


def _db_window_problems(s: PlatformSettings) -> list[str]:
    """RDS's window rules ("Backup window" and "Maintaining a DB instance", RDS User Guide: UTC, at least 30
    minutes, the two must not overlap) and, with the night stop, both inside the hours the instance runs: RDS
    takes no automated backup while an instance is stopped ("Stopping an Amazon RDS DB instance temporarily")."""
    problems: list[str] = []
    backup = _BACKUP_WINDOW.match(s.db_backup_window)
    maintenance = _MAINTENANCE_WINDOW.match(s.db_maintenance_window)
    if backup is None:
        problems.append(f"db_backup_window: {s.db_backup_window!r} must be hh24:mi-hh24:mi in UTC, e.g. 17:00-18:00")
    if maintenance is None:
        problems.append(
            f"db_maintenance_window: {s.db_maintenance_window!r} must be ddd:hh24:mi-ddd:hh24:mi in UTC, "
            "e.g. sun:18:30-sun:19:30 (days mon..sun)"
        )
    if backup is None or maintenance is None:
        return problems
    b_start, b_end = int(backup[1]) * 60 + int(backup[2]), int(backup[3]) * 60 + int(backup[4])
    b_length = (b_end - b_start) % (24 * 60)
    m_start = _DAYS.index(maintenance[1]) * 1440 + int(maintenance[2]) * 60 + int(maintenance[3])
    m_end = _DAYS.index(maintenance[4]) * 1440 + int(maintenance[5]) * 60 + int(maintenance[6])
    m_length = (m_end - m_start) % _WEEK_MINUTES
    if b_length < 30:
        problems.append(f"db_backup_window: {s.db_backup_window} is shorter than RDS's minimum of 30 minutes")
    if m_length < 30:
        problems.append(f"db_maintenance_window: {s.db_maintenance_window} is shorter than RDS's minimum of 30 minutes")
    # Minutes of the week (UTC) each window covers: the daily backup on every day.
    backup_minutes = {(day * 1440 + b_start + i) % _WEEK_MINUTES for day in range(7) for i in range(b_length)}
    maintenance_minutes = {(m_start + i) % _WEEK_MINUTES for i in range(m_length)}
    # Windows that only touch (one ends as the other starts) count as a conflict too: the local server refuses them
    # ("must not overlap"), and RDS's own wording ("must not conflict") gives no reason to expect otherwise.
    daily = [day * 1440 for day in range(7)]
    touching = m_start % _WEEK_MINUTES in {(d + b_end) % _WEEK_MINUTES for d in daily} or m_end % _WEEK_MINUTES in {
        (d + b_start) % _WEEK_MINUTES for d in daily
    }
    if backup_minutes & maintenance_minutes or touching:
        problems.append(
            f"db_backup_window: {s.db_backup_window} overlaps db_maintenance_window "
            f"{s.db_maintenance_window}; RDS requires them apart"
        )
    running = _running_minutes_utc(s) if s.db_night_stop else None
    if running is not None:
        hours = f"{s.db_start_schedule} to {s.db_stop_schedule} in {s.schedule_timezone}"
        if not backup_minutes <= running:
            problems.append(
                f"db_backup_window: {s.db_backup_window} UTC falls while db_night_stop has the instance "
                f"stopped (it runs {hours}); RDS backs up no stopped instance: choose a window in those "
                "hours"
            )
        if not maintenance_minutes <= running:
            problems.append(
                f"db_maintenance_window: {s.db_maintenance_window} UTC falls while db_night_stop has the "
                f"instance stopped (it runs {hours}): choose a window in those hours"
            )
    return problems


def _running_minutes_utc(s: PlatformSettings) -> set[int] | None:
    """Minutes of the week (UTC, Monday 00:00 = 0) the night stop leaves the instance running, when both schedules
    are daily crons; None when they are not (no check)."""
    import datetime
    import zoneinfo

    start, stop = _DAILY_CRON.match(s.db_start_schedule), _DAILY_CRON.match(s.db_stop_schedule)
    if start is None or stop is None:
        return None
    try:
        zone = zoneinfo.ZoneInfo(s.schedule_timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    monday = datetime.datetime(2026, 1, 5, tzinfo=zone)  # any Monday: the offset of a fixed zone does not move

    def utc_minute(day: int, match: re.Match[str]) -> int:
        local = monday + datetime.timedelta(days=day, hours=int(match[2]), minutes=int(match[1]))
        utc = local.astimezone(datetime.UTC)
        return ((utc.weekday() * 1440) + utc.hour * 60 + utc.minute) % _WEEK_MINUTES

    minutes: set[int] = set()
    for day in range(7):
        begin, end = utc_minute(day, start), utc_minute(day, stop)
        minutes |= {(begin + i) % _WEEK_MINUTES for i in range((end - begin) % 1440)}
    return minutes


_LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


def _network_problems(s: PlatformSettings) -> list[str]:
    problems: list[str] = []
    try:
        vpc = ipaddress.ip_network(s.vpc_cidr)
    except ValueError as error:
        return [f"vpc_cidr: {s.vpc_cidr!r} is not a valid CIDR ({error})"]
    if not 16 <= vpc.prefixlen <= 28:
        problems.append(f"vpc_cidr: prefix /{vpc.prefixlen} is outside the VPC range /16../28")
    subnets: list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]] = []
    for setting in ("public_subnet_cidrs", "private_subnet_cidrs"):
        cidrs = getattr(s, setting)
        if len(cidrs) != len(s.availability_zones):
            problems.append(
                f"{setting}: {len(cidrs)} given, one per availability zone ({len(s.availability_zones)}) is required"
            )
        for cidr in cidrs:
            try:
                net = ipaddress.ip_network(cidr)
            except ValueError as error:
                problems.append(f"{setting}: {cidr!r} is not a valid CIDR ({error})")
                continue
            if not net.subnet_of(vpc):  # type: ignore[arg-type]
                problems.append(f"{setting}: {cidr} is not inside vpc_cidr {s.vpc_cidr}")
            subnets.append((setting, net))
    for i, (name_a, a) in enumerate(subnets):
        for name_b, b in subnets[i + 1 :]:
            if a.overlaps(b):
                problems.append(f"{name_b}: {b} overlaps {a} of {name_a}")
    return problems


_ORIGIN = re.compile(r"^https?://[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$")
_PROFILE = "|".join(re.escape(p) for p in BEDROCK_INFERENCE_PROFILE_PREFIXES)
_TEXT_MODEL = re.compile(rf"^(({_PROFILE})\.)?anthropic\.claude-[a-z0-9.:-]+$")
_EMBEDDING_MODEL = re.compile(rf"^(({_PROFILE})\.)?(amazon\.titan-embed-|cohere\.embed-)[a-z0-9.:-]+$")


def _bedrock_and_upload_problems(s: PlatformSettings) -> list[str]:
    problems: list[str] = []
    profiles = ", ".join(f"{p}." for p in BEDROCK_INFERENCE_PROFILE_PREFIXES)
    if not _TEXT_MODEL.match(s.bedrock_text_model_id):
        problems.append(
            f"bedrock_text_model_id: {s.bedrock_text_model_id!r} is not an Anthropic Claude model id; "
            f"allowed: anthropic.claude-... (e.g. anthropic.claude-3-haiku-20240307-v1:0), optionally "
            f"with an inference profile prefix ({profiles})"
        )
    if not _EMBEDDING_MODEL.match(s.bedrock_embedding_model_id):
        problems.append(
            f"bedrock_embedding_model_id: {s.bedrock_embedding_model_id!r} is not an embedding model id; "
            f"allowed: amazon.titan-embed-... or cohere.embed-... (e.g. amazon.titan-embed-text-v2:0)"
        )
    if s.bedrock_rerank_model_id is not None:
        regions = BEDROCK_RERANK_MODEL_REGIONS.get(s.bedrock_rerank_model_id)
        if regions is None:
            problems.append(
                f"bedrock_rerank_model_id: {s.bedrock_rerank_model_id!r} is not a Bedrock reranker; "
                f"allowed: {', '.join(BEDROCK_RERANK_MODEL_REGIONS)} or none"
            )
        elif s.bedrock_rerank_region not in regions:
            problems.append(
                f"bedrock_rerank_region: {s.bedrock_rerank_model_id} is not offered for Rerank in "
                f"{s.bedrock_rerank_region!r}; allowed: {', '.join(regions)}"
            )
    for origin in s.upload_cors_origins:
        if not _ORIGIN.match(origin):
            problems.append(
                f"upload_cors_origins: {origin!r} is not a browser origin; allowed: "
                "https://host or http://host, optionally :port, lowercase, no path, no '*'"
            )
    return problems


def _raw_video_retention_problems(s: PlatformSettings) -> list[str]:
    """The raw-videos bucket's lifecycle rule as S3 accepts it (Amazon S3 API Reference: "Transition", Days: "0 or
    positive integers" for GLACIER; "LifecycleExpiration", Days: "a non-zero positive integer"), the expiration after
    the transition (one rule: S3 refuses an expiration that is not later than its transition)."""
    problems: list[str] = []
    glacier, retention = s.raw_video_glacier_after_days, s.raw_video_retention_days
    if glacier is not None and glacier < 0:
        problems.append(
            f"raw_video_glacier_after_days: allowed 0 or more days (S3 Glacier transitions take 0), or "
            f"none (no transition), got {glacier}"
        )
    if retention is not None:
        lowest = glacier + 1 if glacier is not None and glacier >= 0 else 1  # after the transition
        if retention < 1:
            problems.append(f"raw_video_retention_days: allowed {lowest} or more days, or none (kept), got {retention}")
        elif glacier is not None and retention <= glacier:
            problems.append(
                f"raw_video_retention_days: {retention} is not after raw_video_glacier_after_days "
                f"({glacier}); allowed {lowest} or more days (the transition comes first), or none (kept)"
            )
    return problems


# API Gateway's account-level throttling quota per Region (10,000 requests/s, burst 5,000) bounds a stage's.
JOBS_API_MAX_RATE = 10000
JOBS_API_MAX_BURST = 5000


# A Roles Anywhere trust anchor's ARN; its id is a UUID (botocore's rolesanywhere model, shape Uuid).
_TRUST_ANCHOR_ARN = re.compile(
    r"^arn:aws(-cn|-us-gov)?:rolesanywhere:[a-z]{2}(-[a-z]+)+-\d:\d{12}:trust-anchor/"
    r"[a-f0-9]{8}-([a-z0-9]{4}-){3}[a-z0-9]{12}$"
)
# X.509 upper bound of a common name: 64 characters (RFC 5280, ub-common-name).
_CERTIFICATE_CN = re.compile(r"^[ -)+->@-~]{1,64}$")  # printable ASCII but * and ?


def _jobs_api_problems(s: PlatformSettings) -> list[str]:
    problems: list[str] = []
    if not 60 <= s.jobs_api_url_expiry_seconds <= 3600:
        problems.append(f"jobs_api_url_expiry_seconds: allowed 60..3600, got {s.jobs_api_url_expiry_seconds}")
    if not 1 <= s.jobs_api_throttle_rate <= JOBS_API_MAX_RATE:
        problems.append(f"jobs_api_throttle_rate: allowed 1..{JOBS_API_MAX_RATE}, got {s.jobs_api_throttle_rate}")
    if not 1 <= s.jobs_api_throttle_burst <= JOBS_API_MAX_BURST:
        problems.append(f"jobs_api_throttle_burst: allowed 1..{JOBS_API_MAX_BURST}, got {s.jobs_api_throttle_burst}")
    for origin in s.jobs_api_cors_origins:
        if not _ORIGIN.match(origin):
            problems.append(
                f"jobs_api_cors_origins: {origin!r} is not an origin; allowed: scheme://host[:port] "
                'with scheme http or https, lowercase host, no path and no "*"'
            )
    for arn in s.jobs_api_roles_anywhere_trust_anchor_arns:
        if not _TRUST_ANCHOR_ARN.match(arn):
            problems.append(
                f"jobs_api_roles_anywhere_trust_anchor_arns: {arn!r} is not a trust anchor ARN; "
                "expected arn:aws:rolesanywhere:<region>:<12-digit account>:trust-anchor/<uuid>"
            )
    if s.jobs_api_roles_anywhere_subject_cns and not s.jobs_api_roles_anywhere_trust_anchor_arns:
        problems.append(
            "jobs_api_roles_anywhere_subject_cns: needs jobs_api_roles_anywhere_trust_anchor_arns (the "
            "CNs narrow which of the anchors' certificates may take the client role)"
        )
    for cn in s.jobs_api_roles_anywhere_subject_cns:
        if not _CERTIFICATE_CN.match(cn):
            problems.append(
                f"jobs_api_roles_anywhere_subject_cns: {cn!r} is not a common name; allowed: 1..64 "
                "printable characters, no '*' or '?' (the trust policy compares with StringEquals)"
            )
    return problems
