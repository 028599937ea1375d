"""`deepsentinel preflight`: each check against AWS's documented answers.

Where moto answers (STS, S3, SNS, Route 53, Route 53 Domains' errors) the checks run on in-process moto; where it
does not (Service Quotas for EC2, Bedrock, Cost Explorer, a registered domain) botocore's Stubber returns
responses written from the API reference pages named in each docstring. Stubber validates every response
against the service model, so a fixture with a wrong field name or type fails the test, not the user.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from deepsentinel.commands import preflight
from deepsentinel.commands.preflight import BLOCKED, OK, SKIPPED, WARN
from deepsentinel.settings import FIELDS, load_settings

REGION = "ap-northeast-2"
ACCOUNT = "123456789012"  # moto's account
DATA = Path(__file__).parent / "data"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's documented credentials fixture: fake keys, so nothing can reach a real account."""
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_SESSION_TOKEN", "testing"), ("AWS_DEFAULT_REGION", REGION)):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def moto(aws_env: None):
    with mock_aws():
        yield


def stubbed(service: str, region: str = REGION, session: Any = None) -> tuple[Any, Stubber]:
    client = (session or boto3.Session()).client(service, region_name=region, aws_access_key_id="testing",
                                                 aws_secret_access_key="testing")
    stub = Stubber(client)
    stub.activate()
    return client, stub


def with_model_key(settings: Any, key: str) -> Any:
    """The settings with `model_key` (a field of its own once the model setting lands)."""
    if "model_key" in FIELDS:
        return dataclasses.replace(settings, model_key=key)
    changed = copy.copy(settings)
    object.__setattr__(changed, "model_key", key)
    return changed


# --- terraform ---------------------------------------------------------------------------------------------

def test_terraform_below_1_11_is_blocked_and_the_installed_one_passes() -> None:
    """Write-only arguments (`secret_string_wo`) need Terraform 1.11 ("Use temporary write-only arguments",
    developer.hashicorp.com/terraform/language/manage-sensitive-data/write-only); the line format is what
    `terraform version` prints (the installed binary answers the last case)."""
    from deepsentinel import terraform

    assert preflight.terraform_check("Terraform v1.10.5").status == BLOCKED
    assert "1.11" in preflight.terraform_check("Terraform v1.10.5").action
    assert preflight.terraform_check(None).status == BLOCKED
    assert preflight.terraform_check("Terraform v1.11.0").status == OK
    installed = terraform.version()
    if installed is not None:
        assert preflight.terraform_check(installed).status == OK, installed


# --- credentials and the state backend ---------------------------------------------------------------------

def test_credentials_name_the_account_and_region(moto: None) -> None:
    caller: dict[str, str] = {}
    check = preflight.credentials_check(boto3.client("sts"), REGION, caller)
    assert check.status == OK and ACCOUNT in check.message and REGION in check.message
    assert caller["Account"] == ACCOUNT


def test_without_credentials_every_aws_check_is_skipped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No keys, no profile, no instance metadata: botocore raises NoCredentialsError before any request."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    session = boto3.Session(region_name=REGION)
    checks = preflight.run_checks(load_settings("dev"), lambda service, region=None: session.client(
        service, region_name=region or REGION), terraform_version="Terraform v1.11.4")
    by_name = {c.name: c for c in checks}
    assert by_name["credentials"].status == BLOCKED and "credentials" in by_name["credentials"].message
    assert {c.status for c in checks[2:]} == {SKIPPED}
    from deepsentinel.cli import main

    assert main(["preflight", "--env", "prod"]) == 1  # the command's own boto3 session, not a traceback


def test_state_backend_needs_the_bucket_and_the_account_state(moto: None) -> None:
    """bootstrap keeps the account stack's state at `account/terraform.tfstate` in the state bucket."""
    s3 = boto3.client("s3", region_name=REGION)
    bucket = load_settings("dev").state_bucket_name
    missing = preflight.state_backend_check(s3, bucket)
    assert missing.status == BLOCKED and "deepsentinel bootstrap" in missing.action
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    empty = preflight.state_backend_check(s3, bucket)
    assert empty.status == BLOCKED and "account/terraform.tfstate" in empty.message
    s3.put_object(Bucket=bucket, Key="account/terraform.tfstate", Body=b"{}")
    assert preflight.state_backend_check(s3, bucket).status == OK


def test_a_state_bucket_of_another_account_is_named_as_such() -> None:
    """HeadBucket: "If the bucket exists and you don't have permission to access it, the response is 403
    Forbidden" with no body (S3 API reference, HeadBucket)."""
    s3, stub = stubbed("s3")
    stub.add_client_error("head_bucket", service_error_code="403", http_status_code=403)
    check = preflight.state_backend_check(s3, "deepsentinel-tfstate")
    assert check.status == BLOCKED and "403" in check.message and "bucket_suffix" in check.action


# --- GPU quotas (Service Quotas: moto implements only the vpc service code) --------------------------------

def service_quota(code: str, name: str, value: float) -> dict[str, Any]:
    """A GetServiceQuota response as the Service Quotas API reference (GetServiceQuota, ServiceQuota) and the
    CLI's get-service-quota example show it."""
    return {"Quota": {"ServiceCode": "ec2", "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
                      "QuotaArn": f"arn:aws:servicequotas:{REGION}:{ACCOUNT}:ec2/{code}", "QuotaCode": code,
                      "QuotaName": name, "Value": value, "Unit": "None", "Adjustable": True, "GlobalQuota": False,
                      "UsageMetric": {"MetricNamespace": "AWS/Usage", "MetricName": "ResourceCount",
                                      "MetricDimensions": {"Class": "G/OnDemand", "Resource": "vCPU",
                                                           "Service": "EC2", "Type": "Resource"},
                                      "MetricStatisticRecommendation": "Maximum"}}}


@pytest.mark.parametrize(("value", "status"), [(0.0, BLOCKED), (8.0, WARN), (16.0, OK), (64.0, OK)])
def test_on_demand_g_quota_against_the_compute_environment(value: float, status: str) -> None:
    """g5.xlarge has 4 vCPUs (Amazon EC2 accelerated computing instance specifications) and dev allows 4
    instances: 16 vCPUs. A new account's "Running On-Demand G and VT instances" is 0 (L-DB2E81BA)."""
    settings = load_settings("dev")
    quotas, stub = stubbed("service-quotas")
    stub.add_response("get_service_quota", service_quota("L-DB2E81BA", "Running On-Demand G and VT instances", value),
                      {"ServiceCode": "ec2", "QuotaCode": "L-DB2E81BA"})
    check = preflight.gpu_quota_check(quotas, settings, spot=False)
    assert check.status == status, check
    if status != OK:
        assert "--quota-code L-DB2E81BA --desired-value 16" in check.action and REGION in check.action
    stub.assert_no_pending_responses()


def test_spot_quota_is_read_only_with_spot_and_falls_back_to_the_default() -> None:
    """GetServiceQuota raises NoSuchResourceException when no applied value is recorded (Service Quotas API
    reference, GetServiceQuota errors); the AWS default (GetAWSDefaultServiceQuota) applies then. "All G and VT
    Spot Instance Requests" defaults to 0 ("Spot Instance quotas", Amazon EC2 User Guide)."""
    settings = dataclasses.replace(load_settings("dev"), gpu_use_spot=True)
    quotas, stub = stubbed("service-quotas")
    stub.add_client_error("get_service_quota", service_error_code="NoSuchResourceException",
                          expected_params={"ServiceCode": "ec2", "QuotaCode": "L-3819A6DF"})
    stub.add_response("get_aws_default_service_quota",
                      service_quota("L-3819A6DF", "All G and VT Spot Instance Requests", 0.0),
                      {"ServiceCode": "ec2", "QuotaCode": "L-3819A6DF"})
    check = preflight.gpu_quota_check(quotas, settings, spot=True)
    assert check.status == BLOCKED and "RUNNABLE" in check.message and "L-3819A6DF" in check.action


# --- Bedrock (moto has no foundation models) --------------------------------------------------------------

def foundation_model(model_id: str, *, provider: str, lifecycle: str = "ACTIVE",
                     inference: tuple[str, ...] = ("ON_DEMAND",)) -> dict[str, Any]:
    """GetFoundationModel's response (Bedrock API reference, GetFoundationModel / FoundationModelDetails)."""
    return {"modelDetails": {"modelArn": f"arn:aws:bedrock:{REGION}::foundation-model/{model_id}",
                             "modelId": model_id, "modelName": model_id, "providerName": provider,
                             "inputModalities": ["TEXT"], "outputModalities": ["TEXT"],
                             "responseStreamingSupported": True, "customizationsSupported": [],
                             "inferenceTypesSupported": list(inference), "modelLifecycle": {"status": lifecycle}}}


def test_an_amazon_model_offered_in_region_is_ok_and_a_legacy_one_warns() -> None:
    """Titan Text Embeddings V2 is Active; Claude 3 Haiku is Legacy in ap-northeast-2 (Bedrock User Guide,
    model card); modelLifecycle.status is ACTIVE or LEGACY (FoundationModelLifecycle)."""
    bedrock, stub = stubbed("bedrock")
    stub.add_response("get_foundation_model", foundation_model("amazon.titan-embed-text-v2:0", provider="Amazon"),
                      {"modelIdentifier": "amazon.titan-embed-text-v2:0"})
    check = preflight.bedrock_model_check(bedrock, name="m", model_id="amazon.titan-embed-text-v2:0", region=REGION)
    assert check.status == OK, check
    stub.add_response("get_foundation_model", foundation_model("amazon.titan-embed-text-v1", provider="Amazon",
                                                               lifecycle="LEGACY"))
    assert preflight.bedrock_model_check(bedrock, name="m", model_id="amazon.titan-embed-text-v1",
                                         region=REGION).status == WARN


def test_a_model_not_offered_or_only_through_a_profile_is_blocked() -> None:
    """GetFoundationModel answers ResourceNotFoundException for a model the Region does not offer; a model whose
    inferenceTypesSupported lacks ON_DEMAND can only be invoked through an inference profile (Bedrock User
    Guide, "Supported Regions and models for inference profiles")."""
    bedrock, stub = stubbed("bedrock")
    stub.add_client_error("get_foundation_model", service_error_code="ResourceNotFoundException",
                          http_status_code=404)
    missing = preflight.bedrock_model_check(bedrock, name="m", model_id="cohere.rerank-v3-5:0", region=REGION)
    assert missing.status == BLOCKED and "not offered in ap-northeast-2" in missing.message
    model = "anthropic.claude-sonnet-4-20250514-v1:0"
    stub.add_response("get_foundation_model", foundation_model(model, provider="Anthropic",
                                                               inference=("INFERENCE_PROFILE",)))
    profile_only = preflight.bedrock_model_check(bedrock, name="m", model_id=model, region=REGION)
    assert profile_only.status == BLOCKED and f"apac.{model}" in profile_only.action


def test_an_inference_profile_id_is_looked_up_as_a_profile() -> None:
    """GetInferenceProfile (Bedrock API reference) takes the profile id; the model behind it is checked by its
    base id. With the installed botocore (no GetFoundationModelAvailability) a third-party model's access
    cannot be verified: a warning that says how to verify it."""
    profile = "apac.anthropic.claude-3-haiku-20240307-v1:0"
    bedrock, stub = stubbed("bedrock")
    if "get_foundation_model_availability" in dir(bedrock):
        pytest.skip("this botocore has GetFoundationModelAvailability: covered by the availability tests")
    stub.add_response("get_inference_profile", {
        "inferenceProfileName": "APAC Claude 3 Haiku", "description": "Routes requests to Claude 3 Haiku in APAC",
        "createdAt": datetime.datetime(2024, 8, 1), "updatedAt": datetime.datetime(2024, 8, 1),
        "inferenceProfileArn": f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/{profile}",
        "models": [{"modelArn": f"arn:aws:bedrock:{r}::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"}
                   for r in ("ap-northeast-1", REGION)],
        "inferenceProfileId": profile, "status": "ACTIVE", "type": "SYSTEM_DEFINED"},
        {"inferenceProfileIdentifier": profile})
    stub.add_response("get_foundation_model",
                      foundation_model("anthropic.claude-3-haiku-20240307-v1:0", provider="Anthropic"),
                      {"modelIdentifier": "anthropic.claude-3-haiku-20240307-v1:0"})
    check = preflight.bedrock_model_check(bedrock, name="m", model_id=profile, region=REGION)
    assert check.status == WARN and "boto3" in check.action and "use-case form" in check.action
    stub.add_client_error("get_inference_profile", service_error_code="ResourceNotFoundException",
                          http_status_code=404)
    assert preflight.bedrock_model_check(bedrock, name="m", model_id="eu.anthropic.claude-3-haiku-20240307-v1:0",
                                         region=REGION).status == BLOCKED


def availability_bedrock() -> tuple[Any, Stubber]:
    """A bedrock client from botocore 1.44.8's service model (an excerpt in tests/unit/data), which has
    GetFoundationModelAvailability (public since 2025-06-24)."""
    core = botocore.session.get_session()  # a loader of its own: the test sessions share one (tests/conftest.py)
    core.register_component("data_loader", botocore.loaders.Loader(extra_search_paths=[str(DATA)]))
    return stubbed("bedrock", session=boto3.Session(botocore_session=core))


@pytest.mark.parametrize(("availability", "status", "hint"), [
    ({"authorizationStatus": "AUTHORIZED", "agreementAvailability": {"status": "AVAILABLE"}}, OK, ""),
    ({"authorizationStatus": "NOT_AUTHORIZED", "agreementAvailability": {"status": "NOT_AVAILABLE"}}, BLOCKED,
     "use-case form"),
    ({"authorizationStatus": "AUTHORIZED", "agreementAvailability": {"status": "NOT_AVAILABLE"}}, BLOCKED,
     "aws-marketplace:Subscribe"),
    ({"authorizationStatus": "AUTHORIZED", "agreementAvailability": {"status": "PENDING"}}, WARN, "15 minutes"),
])
def test_model_access_from_get_foundation_model_availability(availability: dict[str, Any], status: str,
                                                             hint: str) -> None:
    """GetFoundationModelAvailability (Bedrock API reference): authorizationStatus AUTHORIZED | NOT_AUTHORIZED,
    agreementAvailability.status AVAILABLE | PENDING | NOT_AVAILABLE | ERROR. "Anthropic requires first-time
    customers to submit use case details before invoking a model"; a third-party model's first invocation
    creates its Marketplace subscription, which "may take up to 15 minutes" and needs aws-marketplace
    permissions (Bedrock User Guide, "Access Amazon Bedrock foundation models")."""
    model = "anthropic.claude-3-haiku-20240307-v1:0"
    bedrock, stub = availability_bedrock()
    assert "get_foundation_model_availability" in dir(bedrock)
    stub.add_response("get_foundation_model", foundation_model(model, provider="Anthropic"))
    stub.add_response("get_foundation_model_availability", {
        "modelId": model, "entitlementAvailability": "AVAILABLE", "regionAvailability": "AVAILABLE", **availability},
        {"modelId": model})
    check = preflight.bedrock_model_check(bedrock, name="m", model_id=model, region=REGION)
    assert check.status == status, check
    assert hint in check.action


# --- cost allocation tag (moto's Cost Explorer has no ListCostAllocationTags) ------------------------------

@pytest.mark.parametrize(("tags", "status"), [
    ([{"TagKey": "Environment", "Type": "UserDefined", "Status": "Active"}], OK),
    ([{"TagKey": "Environment", "Type": "UserDefined", "Status": "Inactive"}], BLOCKED),
    ([], WARN),
])
def test_the_environment_cost_allocation_tag(tags: list[dict[str, str]], status: str) -> None:
    """ListCostAllocationTags (Cost Explorer API reference): CostAllocationTag {TagKey, Type AWSGenerated |
    UserDefined, Status Active | Inactive}. A key only appears after a resource carried it, and a budget filtered
    on a tag counts cost only once the tag is active ("Using user-defined cost allocation tags")."""
    ce, stub = stubbed("ce", "us-east-1")
    stub.add_response("list_cost_allocation_tags", {"CostAllocationTags": tags},
                      {"TagKeys": ["Environment"], "Type": "UserDefined"})
    check = preflight.cost_tag_check(ce)
    assert check.status == status, check
    if status != OK:
        assert "update-cost-allocation-tags-status" in check.action


def test_a_denied_call_is_that_checks_problem_naming_the_action() -> None:
    """AccessDeniedException's message names the action ("User: ... is not authorized to perform:
    ce:ListCostAllocationTags ..."); S3 answers a bare 403 (no body), so the action is derived from the
    operation and the service's signing name."""
    ce, stub = stubbed("ce", "us-east-1")
    stub.add_client_error("list_cost_allocation_tags", service_error_code="AccessDeniedException",
                          service_message=f"User: arn:aws:iam::{ACCOUNT}:user/ci is not authorized to perform: "
                                          "ce:ListCostAllocationTags on resource: *", http_status_code=400)
    check = preflight.guarded("cost allocation tag", lambda: preflight.cost_tag_check(ce),
                              lambda service, region=None: ce, ["ce"])
    assert check.status == BLOCKED and check.message == "access denied: ce:ListCostAllocationTags"
    assert "allow ce:ListCostAllocationTags" in check.action
    quotas, stub = stubbed("service-quotas")
    stub.add_client_error("get_service_quota", service_error_code="AccessDeniedException", service_message="",
                          http_status_code=400)
    check = preflight.guarded("gpu quota on-demand",
                              lambda: preflight.gpu_quota_check(quotas, load_settings("dev"), spot=False),
                              lambda service, region=None: quotas, ["service-quotas"])
    assert check.message == "access denied: servicequotas:GetServiceQuota"


# --- hosted zone ------------------------------------------------------------------------------------------

ZONE = "deepsentinel-example.com"


def test_no_public_zone_is_blocked_and_a_private_one_does_not_count(moto: None) -> None:
    route53 = boto3.client("route53")
    vpc = boto3.client("ec2", region_name=REGION).create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    route53.create_hosted_zone(Name=ZONE, CallerReference="private", HostedZoneConfig={"PrivateZone": True},
                               VPC={"VPCRegion": REGION, "VPCId": vpc})
    check = preflight.hosted_zone_check(route53, None, ZONE)
    assert check.status == BLOCKED and "hosted_zones" in check.action


def test_a_zone_whose_domain_is_registered_elsewhere_cannot_be_checked(moto: None) -> None:
    """GetDomainDetail answers InvalidInput when the domain does not "belong to the requester account" (Route 53
    Domains API reference, GetDomainDetail errors): delegation is the registrar's to verify."""
    route53 = boto3.client("route53")
    servers = route53.create_hosted_zone(Name=ZONE, CallerReference="public")["DelegationSet"]["NameServers"]
    check = preflight.hosted_zone_check(route53, boto3.client("route53domains", region_name="us-east-1"), ZONE)
    assert check.status == WARN and all(ns in check.action for ns in servers)


def domain_detail(servers: list[str]) -> dict[str, Any]:
    """GetDomainDetail's response (Route 53 Domains API reference): Nameservers [{Name, GlueIps}]."""
    contact = {"FirstName": "Ada", "LastName": "Kim", "ContactType": "COMPANY", "OrganizationName": "Example",
               "AddressLine1": "1 Example-ro", "City": "Seoul", "CountryCode": "KR", "ZipCode": "04524",
               "PhoneNumber": "+82.212345678", "Email": "dns@example.com"}
    return {"DomainName": ZONE, "Nameservers": [{"Name": ns, "GlueIps": []} for ns in servers], "AutoRenew": True,
            "AdminContact": contact, "RegistrantContact": contact, "TechContact": contact, "AdminPrivacy": True,
            "RegistrantPrivacy": True, "TechPrivacy": True, "RegistrarName": "Amazon Registrar, Inc.",
            "StatusList": ["clientTransferProhibited"]}


def test_a_route53_registered_domain_must_be_delegated_to_its_zone(moto: None) -> None:
    """The registrar's name servers must be the zone's delegation set (Route 53 Developer Guide, "Making Route
    53 the DNS service for a domain that's in use"), else ACM's DNS validation never completes."""
    route53 = boto3.client("route53")
    servers = route53.create_hosted_zone(Name=ZONE, CallerReference="public")["DelegationSet"]["NameServers"]
    domains, stub = stubbed("route53domains", "us-east-1")
    stub.add_response("get_domain_detail", domain_detail([ns.upper() + "." for ns in servers]),
                      {"DomainName": ZONE})
    assert preflight.hosted_zone_check(route53, domains, ZONE).status == OK
    stub.add_response("get_domain_detail", domain_detail(["ns1.old-registrar.example", "ns2.old-registrar.example"]))
    stale = preflight.hosted_zone_check(route53, domains, ZONE)
    assert stale.status == BLOCKED and "update-domain-nameservers" in stale.action
    assert all(f"Name={ns}" in stale.action for ns in servers)


# --- e-mail subscriptions ---------------------------------------------------------------------------------

def test_subscriptions_before_the_first_deploy_are_not_a_failure(moto: None) -> None:
    settings = load_settings("dev")
    check = preflight.subscriptions_check(boto3.client("sns"), preflight.topic_arns(settings, ACCOUNT))
    assert check.status == SKIPPED and "not deployed" in check.message
    sns = boto3.client("sns")
    for arn in preflight.topic_arns(settings, ACCOUNT):
        sns.create_topic(Name=arn.rsplit(":", 1)[1])
    assert preflight.subscriptions_check(sns, preflight.topic_arns(settings, ACCOUNT)).status == OK


def test_a_pending_email_confirmation_is_reported() -> None:
    """ListSubscriptionsByTopic (SNS API reference; Subscription.SubscriptionArn): an unconfirmed e-mail
    subscription is listed with SubscriptionArn "PendingConfirmation"."""
    settings = load_settings("dev")
    alerts, events = preflight.topic_arns(settings, ACCOUNT)
    sns, stub = stubbed("sns")
    stub.add_response("list_subscriptions_by_topic", {"Subscriptions": [
        {"SubscriptionArn": "PendingConfirmation", "Owner": ACCOUNT, "Protocol": "email",
         "Endpoint": "ops@example.com", "TopicArn": alerts}]}, {"TopicArn": alerts})
    stub.add_client_error("list_subscriptions_by_topic", service_error_code="NotFound", http_status_code=404,
                          expected_params={"TopicArn": events})
    check = preflight.subscriptions_check(sns, [alerts, events])
    assert check.status == WARN and "ops@example.com on deepsentinel-dev-alerts" in check.message


# --- the model object -------------------------------------------------------------------------------------

def test_the_configured_model_must_be_in_the_models_bucket(moto: None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    settings = with_model_key(load_settings("dev"), "models/yolov8n-0123abcd.pt")
    assert preflight.model_object_check(s3, settings).status == SKIPPED  # no bucket: not deployed yet
    bucket = settings.bucket_name("analysis-models")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    missing = preflight.model_object_check(s3, settings)
    assert missing.status == BLOCKED and "model publish" in missing.action
    s3.put_object(Bucket=bucket, Key="models/yolov8n-0123abcd.pt", Body=b"weights")
    assert preflight.model_object_check(s3, settings).status == OK


# --- the command: exit codes and --json -------------------------------------------------------------------

def ok_quota_client() -> Any:
    quotas, stub = stubbed("service-quotas")
    stub.add_response("get_service_quota", service_quota("L-DB2E81BA", "Running On-Demand G and VT instances", 64.0))
    return quotas


def ready_stubs() -> dict[str, Any]:
    """Answers of a ready account for the services moto lacks."""
    settings = load_settings("dev")
    clients: dict[str, Any] = {"service-quotas": ok_quota_client()}
    stubs: dict[str, Stubber] = {}
    for _, model_id, region in preflight.bedrock_models(settings):  # in the order the checks ask
        if region not in stubs:
            clients[f"bedrock@{region}"], stubs[region] = stubbed("bedrock", region)
        stubs[region].add_response("get_foundation_model", foundation_model(model_id, provider="Amazon"))
    ce, stub = stubbed("ce", "us-east-1")
    stub.add_response("list_cost_allocation_tags", {"CostAllocationTags": [
        {"TagKey": "Environment", "Type": "UserDefined", "Status": "Active"}]})
    clients["ce"] = ce
    return clients


def factory_with(stubs: dict[str, Any]) -> Any:
    def client(service: str, region: str | None = None) -> Any:
        return stubs.get(f"{service}@{region}") or stubs.get(service) or boto3.client(
            service, region_name=region or REGION)
    return client


def test_exit_codes_and_json(moto: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """Exit 1 while anything is blocked (here: no state backend), 0 once everything is ok, warned or skipped
    (the Claude 3 Haiku default is then a warning: access not verifiable, or Legacy); --json is one document."""
    from deepsentinel import cli, terraform

    monkeypatch.setattr(terraform, "version", lambda binary=None: "Terraform v1.11.4")
    stubs = ready_stubs()
    monkeypatch.setattr(preflight, "_aws_factory", lambda settings: factory_with(stubs))
    assert cli.main(["preflight", "--env", "dev", "--json"]) == 1
    blocked = json.loads(capsys.readouterr().out)
    assert blocked["ready"] is False
    assert [c["name"] for c in blocked["checks"] if c["status"] == BLOCKED] == ["state backend"]
    assert {c["name"]: c["status"] for c in blocked["checks"]}["gpu quota spot"] == SKIPPED  # On-Demand only

    s3 = boto3.client("s3", region_name=REGION)
    bucket = load_settings("dev").state_bucket_name
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=bucket, Key="account/terraform.tfstate", Body=b"{}")
    stubs.update(ready_stubs())
    assert cli.main(["preflight", "--env", "dev"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[-1] == "ready for the first deploy"
    assert any(line.startswith("OK      state backend") for line in text.splitlines())


def test_local_mode_reads_the_local_server_and_skips_account_facts(tmp_path: Path, aws_env: None,
                                                                  capsys: pytest.CaptureFixture) -> None:
    """--local: the deployment's moto server answers; quotas, Bedrock and cost tags are AWS account facts."""
    from deepsentinel import cli
    from deepsentinel.local.server import LocalAws

    with LocalAws.start(info_file=tmp_path / "server.json"):  # a fresh local "account": nothing bootstrapped
        code = cli.main(["preflight", "--local", "--workdir", str(tmp_path), "--json"])
    statuses = {c["name"]: (c["status"], c["action"]) for c in json.loads(capsys.readouterr().out)["checks"]}
    assert code == 1
    assert statuses["state backend"] == ("blocked", f"run `deepsentinel bootstrap --local --workdir {tmp_path}` "
                                                    "(once per account)")
    assert {statuses[name][0] for name in ("gpu quotas", "bedrock models", "cost allocation tag")} == {SKIPPED}
    assert statuses["email subscriptions"][0] == SKIPPED  # not deployed yet


def test_a_denied_head_names_the_iam_action_not_the_operation(moto: None) -> None:
    """HeadObject is authorized by s3:GetObject and HeadBucket by s3:ListBucket ("HeadObject", "HeadBucket",
    S3 API reference, Permissions); S3 answers HEAD with a bare 403."""
    s3, stub = stubbed("s3")
    stub.add_response("head_bucket", {})
    stub.add_client_error("head_object", service_error_code="403", http_status_code=403)
    check = preflight.guarded("state backend", lambda: preflight.state_backend_check(s3, "deepsentinel-tfstate"),
                              lambda service, region=None: s3, ["s3"])
    assert check.message == "access denied: s3:GetObject"


def test_denied_cost_tags_point_at_the_management_account(moto: None) -> None:
    """"Only a management account in an organization and single accounts that aren't members of an organization
    have access to the cost allocation tags manager" (AWS Billing User Guide, "User-defined cost allocation
    tags")."""
    stubs = ready_stubs()
    ce, stub = stubbed("ce", "us-east-1")
    stub.add_client_error("list_cost_allocation_tags", service_error_code="AccessDeniedException",
                          service_message=f"User: arn:aws:sts::{ACCOUNT}:assumed-role/dev/x is not authorized to "
                                          "perform: ce:ListCostAllocationTags", http_status_code=400)
    stubs["ce"] = ce
    checks = {c.name: c for c in preflight.run_checks(load_settings("dev"), factory_with(stubs),
                                                      terraform_version="Terraform v1.11.4")}
    assert checks["cost allocation tag"].status == BLOCKED
    assert "management account" in checks["cost allocation tag"].action
