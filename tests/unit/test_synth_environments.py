"""Whole-platform properties: size, outputs, tags, dev vs prod."""

from __future__ import annotations

from deepsentinel.synthesized import count_by_module, resources
from tests.unit.synth_helpers import of_type

MODULES = {"network", "security", "encryption", "storage", "iam", "compute", "pipeline", "dashboard", "service-alarms",
           "budget"}
OUTPUTS = {"vpc_id", "public_subnet_ids", "private_subnet_ids", "alb_dns_name", "db_host", "bucket_names",
           "jobs_queue_url", "job_queue_arn", "ecr_repository_urls"}


def test_dev_stack_holds_the_whole_platform(platform):
    aws_resources = [r for r in resources(platform.dev) if r.type.startswith("aws_")]
    assert len(aws_resources) >= 140
    assert set(count_by_module(platform.dev)) == MODULES


def test_stack_outputs(platform):
    assert OUTPUTS <= set(platform.dev["output"])


def test_common_tags_on_every_resource_via_the_provider(platform):
    tags = platform.dev["provider"]["aws"][0]["default_tags"][0]["tags"]
    assert tags == {"Project": "deepsentinel", "Environment": "dev", "ManagedBy": "deepsentinel-cdktf"}


def test_prod_differs_from_dev_only_through_settings(platform):
    dev_types = {r.type for r in resources(platform.dev)}
    prod_types = {r.type for r in resources(platform.prod)}
    # prod adds its domain (records and certificate in the looked-up zone), its posture (WAF, access logs, enhanced monitoring) ...
    assert prod_types - dev_types == {
        "aws_route53_record", "aws_acm_certificate", "aws_acm_certificate_validation",
        "aws_wafv2_web_acl", "aws_wafv2_web_acl_association", "aws_wafv2_web_acl_logging_configuration",
        "aws_s3_bucket_logging"}
    assert dev_types - prod_types == {"aws_appautoscaling_scheduled_action"}  # ... and drops the night schedule
    assert len(of_type(platform.prod, "aws_vpc_endpoint")) == 7 and len(of_type(platform.dev, "aws_vpc_endpoint")) == 1
    assert platform.prod["terraform"]["backend"]["s3"]["key"] == "deepsentinel-prod/terraform.tfstate"


def test_account_stack_has_a_versioned_state_bucket_and_locks_in_s3(platform):
    """S3-native locking: "Backend Type: s3", State Locking (use_lockfile; DynamoDB locking is deprecated),
    https://developer.hashicorp.com/terraform/language/backend/s3; Bucket Versioning is "highly recommended"."""
    state = platform.documents["deepsentinel-account"]
    assert of_type(state, "aws_dynamodb_table") == {}
    assert [v["versioning_configuration"]["status"] for v in of_type(state, "aws_s3_bucket_versioning").values()] == [
        "Enabled"]
    for stack in ("deepsentinel-account", "deepsentinel-dev", "deepsentinel-prod"):
        backend = platform.documents[stack]["terraform"]["backend"]["s3"]
        assert backend["use_lockfile"] is True and "dynamodb_table" not in backend and backend["encrypt"] is True
        assert backend["bucket"] == "deepsentinel-tfstate"
    assert platform.documents["deepsentinel-account"]["terraform"]["backend"]["s3"]["key"] == "account/terraform.tfstate"


def test_developers_may_take_the_s3_lock_but_write_no_state(platform):
    """With use_lockfile Terraform needs s3:GetObject, s3:PutObject and s3:DeleteObject on `<key>.tflock`
    ("Backend Type: s3", Permissions Required, https://developer.hashicorp.com/terraform/language/backend/s3)."""
    import json

    statements = [st for p in of_type(platform.documents["deepsentinel-account"], "aws_iam_group_policy").values()
                  for st in json.loads(p["policy"])["Statement"]]
    writes = [st for st in statements if st["Effect"] == "Allow" and
              any(a in ("s3:PutObject", "s3:DeleteObject") for a in st["Action"])]
    assert writes == [{"Sid": "StateLock", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject",
                                                                         "s3:DeleteObject"],
                       "Resource": ["arn:aws:s3:::deepsentinel-tfstate/*.tflock"]}]
