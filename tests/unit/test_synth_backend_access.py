"""The backend's own access: Bedrock models for the RAG search, browser uploads to the raw bucket, a video's
objects in the result buckets. Exact actions and resources, read from the synthesized dev and prod stacks."""

from __future__ import annotations

import json

import pytest

from deepsentinel.settings import SettingsError, load_settings
from tests.unit.synth_helpers import named, of_type, only, policy, ref

INVOKE = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
SEOUL_MODELS = ["arn:aws:bedrock:ap-northeast-2::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
                "arn:aws:bedrock:ap-northeast-2::foundation-model/amazon.titan-embed-text-v2:0"]
TOKYO_RERANKER = "arn:aws:bedrock:ap-northeast-1::foundation-model/cohere.rerank-v3-5:0"
ACCOUNT = "${data.aws_caller_identity.current.account_id}"


def backend_statements(document) -> dict[str, dict]:
    _, config = named(document, "aws_iam_role_policy", "backend-task")
    return {s["Sid"]: s for s in policy(config)["Statement"]}


def bucket_arn(document, purpose: str) -> str:
    name, _ = named(document, "aws_s3_bucket", f"storage_{purpose}_")
    return ref("aws_s3_bucket", name, "arn")


def backend_environment(document) -> dict[str, str]:
    _, task = named(document, "aws_ecs_task_definition", "backend")
    (container,) = json.loads(task["container_definitions"])
    return {e["name"]: e["value"] for e in container["environment"]}


def raw_bucket_cors_rules(document) -> list[dict]:
    _, cors = only(document, "aws_s3_bucket_cors_configuration")
    assert cors["bucket"] == ref("aws_s3_bucket", named(document, "aws_s3_bucket", "storage_raw-videos_")[0])
    return cors["cors_rule"]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_backend_invokes_exactly_the_configured_text_and_embedding_models(platform, env):
    """Foundation models are named `arn:aws:bedrock:{region}::foundation-model/{model id}` (no account), and
    InvokeModel / InvokeModelWithResponseStream are scoped to them ("Actions, resources, and condition keys for
    Amazon Bedrock", Service Authorization Reference). The defaults are offered in ap-northeast-2 (model cards,
    Bedrock User Guide)."""
    statement = backend_statements(platform.documents[f"deepsentinel-{env}"])["InvokeBedrockModels"]
    assert statement["Action"] == INVOKE
    assert statement["Resource"] == SEOUL_MODELS


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_rerank_needs_the_rerank_action_and_invoke_on_the_reranker_in_its_region(platform, env):
    """Standalone Rerank needs `bedrock:Rerank` and `bedrock:InvokeModel` on the reranker ("Permissions for
    reranking in Amazon Bedrock"); Rerank is not offered in ap-northeast-2, Cohere Rerank 3.5 is in ap-northeast-1
    ("Supported Regions and models for reranking in Amazon Bedrock")."""
    statements = backend_statements(platform.documents[f"deepsentinel-{env}"])
    assert statements["RerankSearchResults"]["Action"] == ["bedrock:Rerank"]
    assert statements["RerankSearchResults"]["Resource"] == "*"  # Rerank has no resource-level permissions
    assert statements["InvokeRerankModel"]["Action"] == ["bedrock:InvokeModel"]
    assert statements["InvokeRerankModel"]["Resource"] == [TOKYO_RERANKER]
    bedrock = [s for s in statements.values() if any(a.startswith("bedrock:") for a in s["Action"])]
    assert len(bedrock) == 3  # nothing else of Bedrock


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_backend_deletes_a_videos_objects_writes_thumbnails_lists_highlights(platform, env):
    document = platform.documents[f"deepsentinel-{env}"]
    statements = backend_statements(document)
    raw, thumbnails, highlights = (bucket_arn(document, p) for p in ("raw-videos", "thumbnails", "highlights"))
    assert statements["DeleteVideoObjects"]["Action"] == ["s3:DeleteObject"]
    assert statements["DeleteVideoObjects"]["Resource"] == [f"{raw}/*", f"{thumbnails}/*", f"{highlights}/*"]
    assert statements["WriteThumbnails"]["Action"] == ["s3:PutObject"]
    assert statements["WriteThumbnails"]["Resource"] == [f"{thumbnails}/*"]
    assert statements["ListHighlights"]["Action"] == ["s3:ListBucket"]
    assert statements["ListHighlights"]["Resource"] == [highlights]
    # thumbnails are SSE-KMS objects: writing one needs the environment's key, which the role already uses
    key = ref("aws_kms_key", only(document, "aws_kms_key")[0], "arn")
    assert statements["UseEnvironmentKey"]["Resource"] == [key]
    assert {"kms:GenerateDataKey", "kms:Decrypt"} <= set(statements["UseEnvironmentKey"]["Action"])
    deletes = [s for s in statements.values() if any("Delete" in a for a in s["Action"])]
    assert deletes == [statements["DeleteVideoObjects"]]  # no DeleteObjectVersion: versions expire by lifecycle


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_backend_container_gets_the_model_ids(platform, env):
    environment = backend_environment(platform.documents[f"deepsentinel-{env}"])
    assert {k: v for k, v in environment.items() if k.startswith("BEDROCK_")} == {
        "BEDROCK_TEXT_MODEL_ID": "anthropic.claude-3-haiku-20240307-v1:0",
        "BEDROCK_EMBEDDING_MODEL_ID": "amazon.titan-embed-text-v2:0",
        "BEDROCK_RERANK_MODEL_ID": "cohere.rerank-v3-5:0",
        "BEDROCK_RERANK_REGION": "ap-northeast-1",
    }


def test_bedrock_runtime_endpoint_only_where_interface_endpoints_are_on(platform):
    """Interface endpoint service names are `com.amazonaws.{region}.bedrock-runtime` ("Use Amazon Bedrock with
    interface VPC endpoints (AWS PrivateLink)"); with private DNS the SDK's default endpoint resolves to it."""
    def services(document):
        return {e["service_name"]: e for e in of_type(document, "aws_vpc_endpoint").values()}

    assert "com.amazonaws.ap-northeast-2.bedrock-runtime" not in services(platform.dev)  # dev: interface off
    endpoint = services(platform.prod)["com.amazonaws.ap-northeast-2.bedrock-runtime"]
    assert endpoint["vpc_endpoint_type"] == "Interface" and endpoint["private_dns_enabled"] is True
    sqs = services(platform.prod)["com.amazonaws.ap-northeast-2.sqs"]
    assert (endpoint["subnet_ids"], endpoint["security_group_ids"]) == (sqs["subnet_ids"], sqs["security_group_ids"])


def test_interface_endpoint_cost_counts_the_bedrock_endpoint(platform):
    from deepsentinel.review.cost import PriceTable, Usage, estimate

    cost = estimate("deepsentinel-prod", platform.prod, PriceTable.load(), Usage.load())
    (line,) = [line for line in cost.lines if line.item.startswith("interface endpoint bedrock-runtime")]
    assert line.item == "interface endpoint bedrock-runtime x2 AZ" and line.monthly_min > 0
    assert line.prices == ("vpc_interface_endpoint_hour",)


def test_raw_bucket_cors_lets_the_site_put_uploads_and_read_etags(platform):
    """A browser's preflight must match AllowedOrigin, AllowedMethod and each requested header (AllowedHeader, at
    most one wildcard per entry); only ExposeHeader headers are readable by the page, and a multipart upload needs
    each part's ETag to complete ("Elements of a CORS configuration", Amazon S3 User Guide)."""
    prod_rules, dev_rules = raw_bucket_cors_rules(platform.prod), raw_bucket_cors_rules(platform.dev)
    (prod_rule,), (dev_rule,) = prod_rules, dev_rules
    assert prod_rule["allowed_origins"] == ["https://deepsentinel.cloud"]  # the served domain, https only
    alb_name, _ = only(platform.dev, "aws_lb")
    assert dev_rule["allowed_origins"] == [f"http://{ref('aws_lb', alb_name, 'dns_name')}"]  # dev: the ALB origin
    for rule in (prod_rule, dev_rule):
        assert rule["allowed_methods"] == ["PUT"]
        assert rule["allowed_headers"] == ["content-type", "content-md5", "x-amz-*"]
        assert rule["expose_headers"] == ["ETag"]
        assert rule["max_age_seconds"] == 3600
    cors_buckets = [c["bucket"] for d in (platform.dev, platform.prod)
                    for c in of_type(d, "aws_s3_bucket_cors_configuration").values()]
    assert len(cors_buckets) == 2  # the raw bucket of each environment, no other bucket


@pytest.fixture(scope="module")
def overridden(tmp_path_factory):
    """dev with the CORS override, a cross-Region inference profile for text, no reranker, interface endpoints."""
    from tests.synth_cache import synthesized

    overrides = ["upload_cors_origins=https://upload.example.com,http://localhost:3000",
                 "bedrock_text_model_id=apac.anthropic.claude-sonnet-4-5-20250929-v1:0",
                 "bedrock_rerank_model_id=none", "interface_endpoints=true"]
    return synthesized(tmp_path_factory, [("dev", overrides)], include_account_stack=False).dev


def test_upload_cors_origins_override_the_derived_origin(overridden):
    (rule,) = raw_bucket_cors_rules(overridden)
    assert rule["allowed_origins"] == ["https://upload.example.com", "http://localhost:3000"]


def test_an_inference_profile_grants_the_profile_and_its_model_in_every_region(overridden):
    """With an inference profile in Resource, the foundation model must also be named in each Region the profile is
    associated with ("Prerequisites for inference profiles", Bedrock User Guide). Profiles live in the account:
    `arn:aws:bedrock:{region}:{account}:inference-profile/{id}`."""
    statement = backend_statements(overridden)["InvokeBedrockModels"]
    assert statement["Action"] == INVOKE
    assert statement["Resource"] == [
        f"arn:aws:bedrock:ap-northeast-2:{ACCOUNT}:inference-profile/apac.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "arn:aws:bedrock:*::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",
        "arn:aws:bedrock:ap-northeast-2::foundation-model/amazon.titan-embed-text-v2:0"]


def test_without_a_reranker_there_is_no_rerank_grant_and_no_rerank_variable(overridden):
    statements = backend_statements(overridden)
    assert "RerankSearchResults" not in statements and "InvokeRerankModel" not in statements
    environment = backend_environment(overridden)
    assert environment["BEDROCK_TEXT_MODEL_ID"] == "apac.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert not any(k.startswith("BEDROCK_RERANK") for k in environment)


def test_interface_endpoints_on_add_the_bedrock_runtime_endpoint_in_dev_too(overridden):
    services = {e["service_name"] for e in of_type(overridden, "aws_vpc_endpoint").values()}
    assert "com.amazonaws.ap-northeast-2.bedrock-runtime" in services


@pytest.mark.parametrize("override, message", [
    ("bedrock_rerank_region=ap-northeast-2",
     "bedrock_rerank_region: cohere.rerank-v3-5:0 is not offered for Rerank in 'ap-northeast-2'; allowed: "
     "ap-northeast-1, ca-central-1, eu-central-1, us-east-1, us-west-2"),
    ("bedrock_rerank_model_id=cohere.rerank-v9", "bedrock_rerank_model_id: 'cohere.rerank-v9' is not a Bedrock "
                                                 "reranker; allowed: amazon.rerank-v1:0, cohere.rerank-v3-5:0 or none"),
    ("bedrock_text_model_id=amazon.nova-pro-v1:0", "bedrock_text_model_id: 'amazon.nova-pro-v1:0' is not an "
                                                   "Anthropic Claude model id"),
    ("bedrock_text_model_id=xx.anthropic.claude-3-haiku-20240307-v1:0", "bedrock_text_model_id:"),
    ("bedrock_embedding_model_id=anthropic.claude-3-haiku-20240307-v1:0", "bedrock_embedding_model_id:"),
    ("upload_cors_origins=*", "upload_cors_origins: '*' is not a browser origin"),
    ("upload_cors_origins=https://example.com/upload", "upload_cors_origins: 'https://example.com/upload'"),
    ("upload_cors_origins=example.com", "upload_cors_origins: 'example.com'"),
])
def test_bad_bedrock_and_upload_settings_fail_with_the_setting_and_allowed_values(override, message):
    with pytest.raises(SettingsError) as error:
        load_settings("dev", overrides=[override])
    assert any(p.startswith(message) for p in error.value.problems), error.value.problems


def test_amazon_reranker_in_frankfurt_and_profile_ids_are_accepted():
    s = load_settings("prod", overrides=["bedrock_rerank_model_id=amazon.rerank-v1:0",
                                         "bedrock_rerank_region=eu-central-1",
                                         "bedrock_text_model_id=global.anthropic.claude-haiku-4-5-20251001-v1:0",
                                         "upload_cors_origins=https://deepsentinel.cloud,https://app.example.co.kr:8443"])
    assert (s.bedrock_rerank_model_id, s.bedrock_rerank_region) == ("amazon.rerank-v1:0", "eu-central-1")
    assert s.upload_cors_origins == ("https://deepsentinel.cloud", "https://app.example.co.kr:8443")
