"""`deepsentinel preflight [--env] [--local] [--json]`: what will stop a first deploy, one line per check.

Each check reads one fact of the account (or of the local moto server with --local) and says ok, blocked,
warn or skipped, with what to do. Exit 0 when nothing is blocked, 1 otherwise. A check whose call is denied
reports that as its own problem, naming the action to allow, instead of stopping the others.

Checks are small functions over boto3 clients (the tests inject stubbed or moto-backed ones); `run_checks`
wires them to one `ClientFactory`.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from deepsentinel.commands import arguments
from deepsentinel.settings import PlatformSettings
from deepsentinel.stacks.names import ACCOUNT_STATE_KEY, state_object_key

OK, BLOCKED, WARN, SKIPPED = "ok", "blocked", "warn", "skipped"

# Service Quotas codes (EC2, per Region, in vCPUs). A new account starts at 0 for both ("Spot Instance quotas",
# Amazon EC2 User Guide, https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-spot-limits.html: "All G and
# VT Spot Instance Requests | 0"); codes as the Service Quotas console lists them for EC2.
ON_DEMAND_G_VT_QUOTA = ("L-DB2E81BA", "Running On-Demand G and VT instances")
SPOT_G_VT_QUOTA = ("L-3819A6DF", "All G and VT Spot Instance Requests")
G_VT_FAMILY = re.compile(r"^(g\d|gr\d|vt\d)")
ACCOUNT_STATE_OBJECT = state_object_key(ACCOUNT_STATE_KEY)  # the account stack's state object
COST_ALLOCATION_TAG = "Environment"  # the tag the budget filters on (deepsentinel/constructs/budget.py)
# Route 53 Domains and Cost Explorer have one endpoint, in us-east-1.
ROUTE53DOMAINS_REGION = "us-east-1"
COST_EXPLORER_REGION = "us-east-1"
ACCESS_DENIED_CODES = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "403")
# Operations whose IAM action has another name (Service Authorization Reference, Amazon S3: HeadBucket needs
# s3:ListBucket, HeadObject s3:GetObject); every other action is `<signing name>:<operation>`.
IAM_ACTION_OF_OPERATION = {"HeadBucket": "s3:ListBucket", "HeadObject": "s3:GetObject"}

ClientFactory = Callable[..., Any]  # (service, region=None) -> boto3 client


@dataclass(frozen=True, kw_only=True)
class Check:
    name: str
    status: str  # ok | blocked | warn | skipped
    message: str  # what was found, one line
    action: str = ""  # what to do about it, one line ("" when there is nothing to do)


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    arguments.add_settings_arguments(parser, multiple_envs=False, out_help=None)
    arguments.add_local_arguments(
        parser, local_help="check the `deploy --local` deployment's moto server (account-only checks are skipped)"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"ready", "environment", "region", "checks": [{"name", "status", "message", "action"}]}',
    )


def run(args: argparse.Namespace) -> int:
    (settings,) = arguments.settings_from_args(args, default_envs=("dev",))
    from deepsentinel import terraform

    if args.local:
        factory, local_flag = _local_factory(settings, args.workdir)
    else:
        factory, local_flag = _aws_factory(settings), ""
    checks = run_checks(
        settings,
        factory,
        terraform_version=terraform.version(),
        local=bool(args.local),
        bootstrap_command=f"deepsentinel bootstrap{local_flag}",
    )
    print(json.dumps(report(settings, checks), indent=2) if args.json else render(checks))
    return 1 if any(c.status == BLOCKED for c in checks) else 0


def _aws_factory(settings: PlatformSettings) -> ClientFactory:
    import boto3

    session = boto3.Session(region_name=settings.region)
    return lambda service, region=None: session.client(service, region_name=region or settings.region)


def _local_factory(settings: PlatformSettings, workdir: Path | None) -> tuple[ClientFactory, str]:
    """Clients of the local deployment's moto server, and the flags that name that deployment."""
    from deepsentinel.target import local_target

    target = local_target(settings, workdir)
    return (
        lambda service, region=None: target.session.client(
            service, region_name=region or settings.region, endpoint_url=target.endpoint_url
        )
    ), target.local_flag


def report(settings: PlatformSettings, checks: list[Check]) -> dict[str, Any]:
    return {
        "ready": not any(c.status == BLOCKED for c in checks),
        "environment": settings.environment,
        "region": settings.region,
        "checks": [asdict(c) for c in checks],
    }


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.status.upper():<7} {c.name:<{width}}  {c.message}")
        if c.action:
            lines.append(f"{'':<7} {'':<{width}}  -> {c.action}")
    blocked = sum(c.status == BLOCKED for c in checks)
    lines.append("ready for the first deploy" if not blocked else f"{blocked} check(s) blocked: fix them first")
    return "\n".join(lines)


# --- the runner ---------------------------------------------------------------------------------------------


def run_checks(
    settings: PlatformSettings,
    client: ClientFactory,
    *,
    terraform_version: str | None,
    local: bool = False,
    bootstrap_command: str = "deepsentinel bootstrap",
) -> list[Check]:
    """Every check in the order a new team meets them; AWS checks are skipped when there are no credentials."""
    checks = [terraform_check(terraform_version)]
    caller: dict[str, str] = {}
    identity = guarded(
        "credentials", lambda: credentials_check(client("sts"), settings.region, caller), client, ["sts"]
    )
    checks.append(identity)
    account_id = caller.get("Account")
    if identity.status != OK or account_id is None:
        return checks + [
            Check(name=name, status=SKIPPED, message="needs working credentials") for name in _AWS_CHECK_NAMES
        ]
    s = settings
    checks.append(
        guarded(
            "state backend",
            lambda: state_backend_check(client("s3"), s.state_bucket_name, bootstrap_command),
            client,
            ["s3"],
        )
    )
    if local:
        checks += [
            Check(name=name, status=SKIPPED, message="an AWS account fact: not checked on the local server")
            for name in ("gpu quotas", "bedrock models", "cost allocation tag")
        ]
    else:
        quotas = client("service-quotas")
        checks.append(
            guarded("gpu quota on-demand", lambda: gpu_quota_check(quotas, s, spot=False), client, ["service-quotas"])
        )
        if s.gpu_use_spot:
            checks.append(
                guarded("gpu quota spot", lambda: gpu_quota_check(quotas, s, spot=True), client, ["service-quotas"])
            )
        else:
            checks.append(Check(name="gpu quota spot", status=SKIPPED, message="gpu_use_spot is false: On-Demand only"))
        for name, model_id, region in bedrock_models(s):

            def model_check(n: str = name, m: str = model_id, r: str = region) -> Check:
                return bedrock_model_check(client("bedrock", r), name=n, model_id=m, region=r)

            checks.append(guarded(name, model_check, client, ["bedrock"]))
        cost_tag = guarded(
            "cost allocation tag", lambda: cost_tag_check(client("ce", COST_EXPLORER_REGION)), client, ["ce"]
        )
        if cost_tag.message.startswith("access denied"):
            # "Only a management account in an organization and single accounts that aren't members of an
            # organization have access to the cost allocation tags manager" (Billing User Guide, custom-tags).
            cost_tag = replace(
                cost_tag,
                action=cost_tag.action + "; in an AWS Organization only the "
                "management account manages cost allocation tags: check there",
            )
        checks.append(cost_tag)
    if s.domain_name is None:
        checks.append(Check(name="hosted zone", status=SKIPPED, message="no domain_name: served over plain HTTP"))
    else:
        zone = getattr(s, "hosted_zone_name", None) or s.domain_name
        checks.append(
            guarded(
                "hosted zone",
                lambda: hosted_zone_check(
                    client("route53"), None if local else client("route53domains", ROUTE53DOMAINS_REGION), zone
                ),
                client,
                ["route53", "route53domains"],
            )
        )
    checks.append(
        guarded(
            "email subscriptions",
            lambda: subscriptions_check(client("sns"), topic_arns(s, account_id)),
            client,
            ["sns"],
        )
    )
    checks.append(guarded("model object", lambda: model_object_check(client("s3"), s), client, ["s3"]))
    return checks


_AWS_CHECK_NAMES = (
    "state backend",
    "gpu quota on-demand",
    "gpu quota spot",
    "bedrock models",
    "cost allocation tag",
    "hosted zone",
    "email subscriptions",
    "model object",
)


def guarded(name: str, check: Callable[[], Check], client: ClientFactory, services: Iterable[str]) -> Check:
    """Run one check; a denied call becomes that check's `blocked` line naming the action, other API errors
    a `blocked` line with AWS's message (the check could not confirm anything)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        return check()
    except NoCredentialsError:
        return Check(
            name=name,
            status=BLOCKED,
            message="no AWS credentials",
            action="set AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or assume a role",
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        text = error.response.get("Error", {}).get("Message", "") or str(error)
        if code in ACCESS_DENIED_CODES:
            action = denied_action(error, client, services)
            return Check(
                name=name,
                status=BLOCKED,
                message=f"access denied: {action}",
                action=f"allow {action} to the identity running preflight",
            )
        return Check(
            name=name,
            status=BLOCKED,
            message=f"{error.operation_name} failed: {code} {text}".strip(),
            action="see AWS's message; rerun when it is resolved",
        )
    except BotoCoreError as error:  # no endpoint, connection refused: nothing could be checked
        return Check(name=name, status=BLOCKED, message=str(error), action="check the network and the region")
    except Exception as error:  # noqa: BLE001 - one check's surprise must not hide the others' answers
        return Check(
            name=name,
            status=BLOCKED,
            message=f"could not check: {type(error).__name__}: {error}",
            action="report this with the message above",
        )


def denied_action(error: Any, client: ClientFactory, services: Iterable[str]) -> str:
    """The IAM action of a denied call: from AWS's message when it names it, else `<prefix>:<operation>`."""
    found = re.search(r"perform: ([\w-]+:[\w*]+)", error.response.get("Error", {}).get("Message", "") or "")
    if found:
        return found[1]
    if error.operation_name in IAM_ACTION_OF_OPERATION:
        return IAM_ACTION_OF_OPERATION[error.operation_name]
    for service in services:
        model = client(service).meta.service_model
        if error.operation_name in model.operation_names:
            return f"{model.signing_name}:{error.operation_name}"
    return error.operation_name


def _error_code(error: Any) -> str:
    return error.response.get("Error", {}).get("Code", "")


# --- the checks ---------------------------------------------------------------------------------------------


def terraform_check(version_line: str | None) -> Check:
    from deepsentinel.terraform import INSTALL_HINT, MINIMUM_VERSION, MINIMUM_VERSION_REASON, parse_version

    needed = ".".join(map(str, MINIMUM_VERSION))
    if version_line is None:
        return Check(
            name="terraform",
            status=BLOCKED,
            message="terraform is not on PATH",
            action=f"install Terraform {needed} or newer: {INSTALL_HINT}",
        )
    found = parse_version(version_line)
    if found is None or found < MINIMUM_VERSION:
        return Check(
            name="terraform",
            status=BLOCKED,
            message=f"{version_line}: {needed} or newer is needed ({MINIMUM_VERSION_REASON})",
            action=f"install Terraform {needed} or newer: {INSTALL_HINT}",
        )
    return Check(name="terraform", status=OK, message=f"{version_line} (needs {needed}+)")


def credentials_check(sts: Any, region: str, caller: dict[str, str] | None = None) -> Check:
    """Who the credentials are (STS GetCallerIdentity needs no permission); `caller` receives the identity."""
    identity = sts.get_caller_identity()
    if caller is not None:
        caller.update(Account=identity["Account"], Arn=identity["Arn"])
    return Check(
        name="credentials", status=OK, message=f"account {identity['Account']} as {identity['Arn']}, region {region}"
    )


def state_backend_check(s3: Any, bucket: str, bootstrap_command: str = "deepsentinel bootstrap") -> Check:
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        if _error_code(error) in ("404", "NoSuchBucket", "NotFound"):
            return Check(
                name="state backend",
                status=BLOCKED,
                message=f"the state bucket {bucket} does not exist",
                action=f"run `{bootstrap_command}` (once per account)",
            )
        if _error_code(error) in ("403", "AccessDenied"):
            return Check(
                name="state backend",
                status=BLOCKED,
                message=f"the state bucket {bucket} exists but these credentials may not use it (403)",
                action="bucket names are global: set `bucket_suffix` if it is another account's, else "
                "allow s3:ListBucket on it",
            )
        raise
    try:
        s3.head_object(Bucket=bucket, Key=ACCOUNT_STATE_OBJECT)
    except ClientError as error:
        if _error_code(error) in ("404", "NoSuchKey", "NotFound"):
            return Check(
                name="state backend",
                status=BLOCKED,
                message=f"s3://{bucket} holds no account state at {ACCOUNT_STATE_OBJECT}",
                action=f"rerun `{bootstrap_command}`, or restore that object (docs/state-and-bootstrap.md: "
                "Recovering the account stack's state)",
            )
        raise
    return Check(name="state backend", status=OK, message=f"s3://{bucket}/{ACCOUNT_STATE_OBJECT} exists")


def gpu_quota_check(quotas: Any, s: PlatformSettings, *, spot: bool) -> Check:
    """The G and VT vCPU quota against the compute environment: blocked below one instance (jobs stay
    RUNNABLE), warn below the maximum (Batch cannot scale out that far)."""
    from botocore.exceptions import ClientError

    name = "gpu quota spot" if spot else "gpu quota on-demand"
    code, quota_name = SPOT_G_VT_QUOTA if spot else ON_DEMAND_G_VT_QUOTA
    g_types = [t for t in s.gpu_instance_types if G_VT_FAMILY.match(t)]
    if not g_types:
        return Check(
            name=name,
            status=SKIPPED,
            message=f"no G or VT instance type in {list(s.gpu_instance_types)} "
            "(P types draw on the P quotas, not checked here)",
        )
    per_instance = s.gpu_vcpus_per_instance
    needed = s.gpu_max_instances * per_instance
    try:
        quota = quotas.get_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]
    except ClientError as error:
        if _error_code(error) != "NoSuchResourceException":
            raise
        # No applied value recorded for this account: the default is what applies.
        quota = quotas.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]
    value = int(quota.get("Value", 0))
    request = (
        f'request {needed} vCPUs of "{quota_name}" in {s.region}: aws service-quotas '
        f"request-service-quota-increase --region {s.region} --service-code ec2 --quota-code {code} "
        f"--desired-value {needed}"
    )
    found = f"{quota_name} ({code}) is {value} vCPUs"
    if value < per_instance:
        return Check(
            name=name,
            status=BLOCKED,
            message=f"{found}; one {max(g_types, key=_vcpus)} needs {per_instance}: GPU jobs would stay RUNNABLE",
            action=request,
        )
    if value < needed:
        return Check(
            name=name,
            status=WARN,
            message=f"{found}; the compute environment may use {needed} ({s.gpu_max_instances} x {per_instance})",
            action=request,
        )
    return Check(name=name, status=OK, message=f"{found}; the compute environment needs at most {needed}")


def _vcpus(instance_type: str) -> int:
    from deepsentinel.aws_catalog import GPU_INSTANCE_TYPES

    return GPU_INSTANCE_TYPES.get(instance_type, (0, 0))[0]


def bedrock_models(s: PlatformSettings) -> list[tuple[str, str, str]]:
    """(check name, model id, Region) of every configured Bedrock model."""
    models = [
        ("bedrock text model", s.bedrock_text_model_id, s.region),
        ("bedrock embedding model", s.bedrock_embedding_model_id, s.region),
    ]
    if s.bedrock_rerank_model_id is not None:
        models.append(("bedrock rerank model", s.bedrock_rerank_model_id, s.bedrock_rerank_region))
    return models


def split_inference_profile(model_id: str) -> tuple[str | None, str]:
    """(`apac`, `anthropic.claude-...`) for a cross-Region inference profile id, (None, model_id) otherwise."""
    from deepsentinel.aws_catalog import BEDROCK_INFERENCE_PROFILE_PREFIXES

    prefix, _, rest = model_id.partition(".")
    return (prefix, rest) if prefix in BEDROCK_INFERENCE_PROFILE_PREFIXES and rest else (None, model_id)


def bedrock_model_check(bedrock: Any, *, name: str, model_id: str, region: str) -> Check:
    """Whether the backend can invoke `model_id` in `region`.

    A profile id must name an inference profile of the Region (GetInferenceProfile). The foundation model
    must be offered there (GetFoundationModel; a base id also for on-demand calls, else only through a
    profile). Where the installed botocore has GetFoundationModelAvailability (added 2025-06), the account's
    authorization (Anthropic's first-time use-case form) and Marketplace agreement are read too; without it
    access is not verifiable and third-party models are a warning.
    """
    from botocore.exceptions import ClientError

    profile, base_id = split_inference_profile(model_id)
    if profile is not None:
        try:
            bedrock.get_inference_profile(inferenceProfileIdentifier=model_id)
        except ClientError as error:
            if _error_code(error) not in ("ResourceNotFoundException", "ValidationException"):
                raise
            return Check(
                name=name,
                status=BLOCKED,
                message=f"no inference profile {model_id} in {region}",
                action="choose a profile the Region lists (aws bedrock list-inference-profiles "
                f"--region {region}) or an in-Region model id",
            )
    try:
        details = bedrock.get_foundation_model(modelIdentifier=base_id)["modelDetails"]
    except ClientError as error:
        if _error_code(error) not in ("ResourceNotFoundException", "ValidationException"):
            raise
        return Check(
            name=name,
            status=BLOCKED,
            message=f"{base_id} is not offered in {region}",
            action=f"choose a model Bedrock offers there (aws bedrock list-foundation-models --region {region})",
        )
    if profile is None and "ON_DEMAND" not in details.get("inferenceTypesSupported", ["ON_DEMAND"]):
        return Check(
            name=name,
            status=BLOCKED,
            message=f"{base_id} is offered in {region} only through an inference profile",
            action="set the model id with its profile prefix (e.g. apac." + base_id + ")",
        )
    lifecycle = details.get("modelLifecycle", {}).get("status", "ACTIVE")
    found = f"{model_id} in {region} ({lifecycle})"
    if "get_foundation_model_availability" in dir(bedrock):
        return _availability(bedrock, name=name, base_id=base_id, found=found, region=region, lifecycle=lifecycle)
    if base_id.startswith("amazon."):
        return _lifecycle_check(name, found, lifecycle)
    return Check(
        name=name,
        status=WARN,
        message=f"{found}; access not verified: this botocore has no GetFoundationModelAvailability",
        action="pip install -U boto3 and rerun"
        + (
            "; Anthropic models need the first-time use-case form (Bedrock console, model catalog)"
            if base_id.startswith("anthropic.")
            else ""
        ),
    )


def _availability(bedrock: Any, *, name: str, base_id: str, found: str, region: str, lifecycle: str) -> Check:
    """GetFoundationModelAvailability (Bedrock API reference): region, authorization, entitlement, agreement."""
    availability = bedrock.get_foundation_model_availability(modelId=base_id)
    if availability["regionAvailability"] != "AVAILABLE":
        return Check(
            name=name,
            status=BLOCKED,
            message=f"{base_id} is not available in {region}",
            action="choose another model or Region",
        )
    if availability["authorizationStatus"] != "AUTHORIZED":
        form = (
            " (Anthropic: submit the first-time use-case form in the Bedrock console's model catalog, or "
            "PutUseCaseForModelAccess)"
            if base_id.startswith("anthropic.")
            else ""
        )
        return Check(
            name=name,
            status=BLOCKED,
            message=f"{found}: this account is not authorized to use it",
            action=f"grant access{form}; an IAM policy or SCP may also deny it",
        )
    agreement = availability["agreementAvailability"]
    if availability["entitlementAvailability"] != "AVAILABLE" or agreement["status"] != "AVAILABLE":
        detail = agreement.get("errorMessage") or agreement["status"].lower()
        status = WARN if agreement["status"] == "PENDING" else BLOCKED
        return Check(
            name=name,
            status=status,
            message=f"{found}: no Marketplace agreement yet ({detail})",
            action="invoke it once in the Bedrock console playground as an identity allowed "
            "aws-marketplace:Subscribe (the backend's role is not); a pending one completes "
            "within 15 minutes",
        )
    return _lifecycle_check(name, f"{found}, authorized", lifecycle)


def _lifecycle_check(name: str, found: str, lifecycle: str) -> Check:
    if lifecycle == "LEGACY":
        return Check(
            name=name,
            status=WARN,
            message=f"{found}: Legacy, it reaches end of life",
            action="plan the move to an Active model (Bedrock User Guide: model lifecycle)",
        )
    return Check(name=name, status=OK, message=found)


def cost_tag_check(ce: Any) -> Check:
    name = "cost allocation tag"
    tags = ce.list_cost_allocation_tags(TagKeys=[COST_ALLOCATION_TAG], Type="UserDefined")["CostAllocationTags"]
    tag = next((t for t in tags if t["TagKey"] == COST_ALLOCATION_TAG), None)
    activate = (
        f"activate it: aws ce update-cost-allocation-tags-status --cost-allocation-tags-status "
        f"TagKey={COST_ALLOCATION_TAG},Status=Active (Billing: Cost allocation tags)"
    )
    if tag is None:
        return Check(
            name=name,
            status=WARN,
            message=f"the tag key {COST_ALLOCATION_TAG} has not been seen on a "
            "resource yet: the budget sees no cost until it is active",
            action=f"after the first deploy (keys appear within 24 hours), {activate}",
        )
    if tag["Status"] != "Active":
        return Check(
            name=name,
            status=BLOCKED,
            message=f"{COST_ALLOCATION_TAG} is {tag['Status']}: the environment's budget sees no cost",
            action=activate,
        )
    return Check(name=name, status=OK, message=f"{COST_ALLOCATION_TAG} is Active")


def hosted_zone_check(route53: Any, route53domains: Any | None, zone_name: str) -> Check:
    """A public zone named `zone_name`; where Route 53 is the registrar, its name servers are the zone's."""
    from botocore.exceptions import ClientError

    name = "hosted zone"
    fqdn = zone_name.rstrip(".") + "."
    zones = route53.list_hosted_zones_by_name(DNSName=fqdn)["HostedZones"]
    public = [z for z in zones if z["Name"] == fqdn and not z.get("Config", {}).get("PrivateZone", False)]
    if not public:
        return Check(
            name=name,
            status=BLOCKED,
            message=f"no public hosted zone {zone_name}",
            action=f'add "{zone_name}" to `hosted_zones` and run `deepsentinel bootstrap` (the account '
            "stack creates it once), then delegate the domain to its name servers",
        )
    zone_id = public[0]["Id"].split("/")[-1]
    zone_servers = {_host(ns) for ns in route53.get_hosted_zone(Id=zone_id)["DelegationSet"]["NameServers"]}
    listed = ", ".join(sorted(zone_servers))
    if route53domains is None:
        return Check(name=name, status=OK, message=f"{zone_name} ({zone_id}); delegation not checked locally")
    try:
        registered = route53domains.get_domain_detail(DomainName=zone_name.rstrip("."))
    except ClientError as error:
        if _error_code(error) not in ("InvalidInput", "UnsupportedTLD"):
            raise
        return Check(
            name=name,
            status=WARN,
            message=f"{zone_name} ({zone_id}) exists; its registrar is not Route "
            "53 in this account: cannot check the delegation",
            action=f"verify at your registrar that {zone_name} uses exactly: {listed}",
        )
    registrar_servers = {_host(ns["Name"]) for ns in registered.get("Nameservers", [])}
    if registrar_servers != zone_servers:
        return Check(
            name=name,
            status=BLOCKED,
            message=f"{zone_name} is delegated to {', '.join(sorted(registrar_servers)) or 'nothing'}, "
            f"not to its zone {zone_id}: ACM's DNS validation would never finish",
            action=f"aws route53domains update-domain-nameservers --region {ROUTE53DOMAINS_REGION} "
            f"--domain-name {zone_name} --nameservers " + " ".join(f"Name={ns}" for ns in sorted(zone_servers)),
        )
    return Check(name=name, status=OK, message=f"{zone_name} ({zone_id}) is delegated to its name servers")


def _host(name: str) -> str:
    return name.lower().rstrip(".")


def topic_arns(s: PlatformSettings, account_id: str) -> list[str]:
    from deepsentinel.constructs.names import ResourceNames

    names = ResourceNames(s)
    return [f"arn:aws:sns:{s.region}:{account_id}:{topic}" for topic in (names.alerts_topic, names.video_events_topic)]


def subscriptions_check(sns: Any, topics: list[str]) -> Check:
    """E-mail subscriptions still waiting for their confirmation link ("PendingConfirmation")."""
    from botocore.exceptions import ClientError

    name = "email subscriptions"
    pending, missing = [], []
    for arn in topics:
        try:
            subscriptions = [
                sub
                for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=arn)
                for sub in page["Subscriptions"]
            ]
        except ClientError as error:
            if _error_code(error) != "NotFound":
                raise
            missing.append(arn.rsplit(":", 1)[1])
            continue
        pending += [
            f"{sub['Endpoint']} on {arn.rsplit(':', 1)[1]}"
            for sub in subscriptions
            if sub["SubscriptionArn"] == "PendingConfirmation"
        ]
    if len(missing) == len(topics):
        return Check(name=name, status=SKIPPED, message="not deployed yet (the topics do not exist)")
    if pending:
        return Check(
            name=name,
            status=WARN,
            message=f"{len(pending)} pending confirmation: {'; '.join(pending)}",
            action='open the "AWS Notification - Subscription Confirmation" e-mail and confirm within 48 '
            "hours (SNS then deletes an unconfirmed subscription; the next deploy creates it again)",
        )
    return Check(name=name, status=OK, message="no subscription waits for its confirmation")


def model_object_check(s3: Any, s: PlatformSettings) -> Check:
    from botocore.exceptions import ClientError

    name = "model object"
    bucket = s.bucket_name("analysis-models")
    model_key = getattr(s, "model_key", None)
    if model_key is None:
        return Check(name=name, status=SKIPPED, message="no model_key setting: the job definitions name no model")
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        if _error_code(error) in ("404", "NoSuchBucket", "NotFound"):
            return Check(
                name=name,
                status=SKIPPED,
                message=f"not deployed yet (no bucket {bucket})",
                action="after the deploy: `deepsentinel model publish FILE`",
            )
        raise
    try:
        s3.head_object(Bucket=bucket, Key=model_key)
    except ClientError as error:
        if _error_code(error) in ("404", "NoSuchKey", "NotFound"):
            return Check(
                name=name,
                status=BLOCKED,
                message=f"s3://{bucket}/{model_key} does not exist: every job would fail to load its model",
                action="`deepsentinel model publish FILE`, then set model_key to the key it prints",
            )
        raise
    return Check(name=name, status=OK, message=f"s3://{bucket}/{model_key} exists")
