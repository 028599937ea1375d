"""Resources an interrupted apply left on the target in no state are found and imported by the next run.

The lookups run against the local server in this process (deepsentinel.local.server.in_process), the objects made by
boto3 as the provider makes them; the watched apply and the import are real terraform runs (its built-in
`terraform_data` for the interruption, the mirrored AWS provider for the import).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import REPO_ROOT, as_typed_at_a_prompt

REGION = "ap-northeast-2"
DEFAULT_TAGS = {"Project": "deepsentinel", "Environment": "dev"}
KEY_DESCRIPTION = "deepsentinel-dev: SNS topics and the environment's data"


@dataclass(frozen=True)
class ServerTarget:
    """What recovery needs of deepsentinel.target.Target: boto3 clients of the target and terraform's environment."""

    endpoint_url: str
    tf_env: dict[str, str]

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=REGION, aws_access_key_id="test",
                            aws_secret_access_key="test")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from deepsentinel.local.server import in_process

    with in_process() as url:
        yield url


@pytest.fixture
def target(endpoint: str, tmp_path: Path) -> ServerTarget:
    from deepsentinel import terraform

    return ServerTarget(endpoint, terraform.environment(tmp_path / "terraform-cli", endpoint_url=endpoint))


def stack(directory: Path, resources: dict[str, dict[str, dict[str, Any]]], local: bool = False) -> Path:
    """A stack directory as cdktf writes it (cdk.tf.json), the provider's default tags included; `local`: its
    provider configured as for a local server (the server itself comes from terraform's environment)."""
    provider: dict[str, Any] = {"region": REGION, "default_tags": [{"tags": DEFAULT_TAGS}]}
    if local:
        from deepsentinel.stacks.provider import local_provider_settings

        provider.update(local_provider_settings())
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cdk.tf.json").write_text(json.dumps({"provider": {"aws": [provider]}, "resource": resources}))
    return directory


def kms_key(target: ServerTarget, description: str, tags: dict[str, str]) -> str:
    kms = target.client("kms")
    return kms.create_key(Description=description,
                          Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()])["KeyMetadata"]["KeyId"]


def test_each_registered_type_is_found_by_the_identity_its_configuration_gives(target, tmp_path: Path):
    """What the provider would have recorded as the id: a KMS key's KeyId (it has no name: "CreateKey", AWS KMS API
    Reference), a launch template's LaunchTemplateId, a target group's ARN, a security group's, a subnet's and a NAT
    gateway's id, an S3 bucket's and an IAM role's name (the ids `terraform import` takes for them, aws provider docs:
    kms_key, launch_template, lb_target_group, security_group, subnet, nat_gateway, s3_bucket, iam_role). A security
    group and a subnet are told apart within their VPC, a NAT gateway by its subnet and Elastic IP, whose ids the
    state holds (the configuration names them by reference)."""
    from deepsentinel.recovery import Recovered, find_left_objects

    tags = {**DEFAULT_TAGS, "Name": "deepsentinel-dev"}
    key = kms_key(target, KEY_DESCRIPTION, tags)
    kms_key(target, KEY_DESCRIPTION, {"Name": "another-deployment"})  # same description, other tags: not it
    kms_key(target, "another key", tags)
    template = target.client("ec2").create_launch_template(
        LaunchTemplateName="deepsentinel-dev-gpu", LaunchTemplateData={})["LaunchTemplate"]["LaunchTemplateId"]
    target.client("s3").create_bucket(Bucket="deepsentinel-dev-highlights",
                                      CreateBucketConfiguration={"LocationConstraint": REGION})
    target.client("iam").create_role(RoleName="deepsentinel-dev-batch-job", AssumeRolePolicyDocument="{}")
    ec2 = target.client("ec2")
    vpc, other_vpc = (ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"] for _ in range(2))
    group = target.client("elbv2").create_target_group(
        Name="deepsentinel-dev-backend", Protocol="HTTP", Port=8000, VpcId=vpc, TargetType="ip")["TargetGroups"][0]
    security_group = ec2.create_security_group(GroupName="deepsentinel-dev-rds", Description="rds", VpcId=vpc)
    ec2.create_security_group(GroupName="deepsentinel-dev-rds", Description="rds", VpcId=other_vpc)  # not it
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.11.0/24")["Subnet"]["SubnetId"]
    ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.0.11.0/24")  # the same block in another VPC: not it
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]  # another block: not it
    eip, other_eip = (ec2.allocate_address(Domain="vpc")["AllocationId"] for _ in range(2))
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=eip)["NatGateway"]["NatGatewayId"]
    ec2.create_nat_gateway(SubnetId=public, AllocationId=other_eip)  # the same subnet, another address: not it
    in_vpc = {"vpc_id": "${aws_vpc.network_vpc_4E8F0223.id}"}
    directory = stack(tmp_path / "stack", {
        "aws_kms_key": {"encryption_key_EEB70057": {"description": KEY_DESCRIPTION,
                                                    "tags": {"Name": "deepsentinel-dev"}}},
        "aws_launch_template": {"gpu_C1D2D5CA": {"name": "deepsentinel-dev-gpu"}},
        "aws_s3_bucket": {"highlights_CE428460": {"bucket": "deepsentinel-dev-highlights"},
                          "thumbnails_6AC3B0FA": {"bucket": "deepsentinel-dev-thumbnails"}},  # never created
        "aws_iam_role": {"batch-job-role_ABD61428": {"name": "deepsentinel-dev-batch-job"}},
        "aws_sqs_queue": {"jobs_1A2B3C4D": {"name": "deepsentinel-dev-jobs"}},  # no lookup for its type
        "aws_lb_target_group": {"backend-tg_02B4B581": {"name": "deepsentinel-dev-backend", **in_vpc},
                                "frontend-tg_7EE4C960": {"name": "deepsentinel-dev-frontend", **in_vpc}},  # never
        "aws_security_group": {"rds-sg_4361B8C6": {"name": "deepsentinel-dev-rds", **in_vpc}},
        "aws_subnet": {"private-0_A0649C48": {"cidr_block": "10.0.11.0/24", **in_vpc},
                       "private-1_4188AF2B": {"cidr_block": "10.0.12.0/24", **in_vpc}},  # never created
        "aws_nat_gateway": {"nat-0_D2F55FEE": {"allocation_id": "${aws_eip.network_nat-eip-0_31DC63CB.id}",
                                               "subnet_id": "${aws_subnet.network_public-0_A4E682E0.id}"}},
    })
    addresses = ["aws_kms_key.encryption_key_EEB70057", "aws_launch_template.gpu_C1D2D5CA",
                 "aws_s3_bucket.highlights_CE428460", "aws_s3_bucket.thumbnails_6AC3B0FA",
                 "aws_iam_role.batch-job-role_ABD61428", "aws_sqs_queue.jobs_1A2B3C4D",
                 "aws_lb_target_group.backend-tg_02B4B581", "aws_lb_target_group.frontend-tg_7EE4C960",
                 "aws_security_group.rds-sg_4361B8C6", "aws_subnet.private-0_A0649C48",
                 "aws_subnet.private-1_4188AF2B", "aws_nat_gateway.nat-0_D2F55FEE",
                 "terraform_data.marker"]  # no object on AWS: nothing to say
    in_state = {"aws_vpc.network_vpc_4E8F0223": vpc, "aws_subnet.network_public-0_A4E682E0": public,
                "aws_eip.network_nat-eip-0_31DC63CB": eip}

    recovered, unidentified = find_left_objects(directory, addresses, in_state, target.client)

    assert recovered == [Recovered("aws_kms_key.encryption_key_EEB70057", key),
                         Recovered("aws_launch_template.gpu_C1D2D5CA", template),
                         Recovered("aws_s3_bucket.highlights_CE428460", "deepsentinel-dev-highlights"),
                         Recovered("aws_iam_role.batch-job-role_ABD61428", "deepsentinel-dev-batch-job"),
                         Recovered("aws_lb_target_group.backend-tg_02B4B581", group["TargetGroupArn"]),
                         Recovered("aws_security_group.rds-sg_4361B8C6", security_group["GroupId"]),
                         Recovered("aws_subnet.private-0_A0649C48", subnet),
                         Recovered("aws_nat_gateway.nat-0_D2F55FEE", nat)]
    assert unidentified == [  # a type without a lookup is named, with what to do if the apply stops on it
        "aws_sqs_queue.jobs_1A2B3C4D was being created when the last run was interrupted and is in no state; its type "
        "is not looked up: if the apply stops because it exists, `terraform import aws_sqs_queue.jobs_1A2B3C4D <id>` "
        "it (or delete it) and run again"]


def test_a_vpc_the_state_does_not_hold_is_named_as_the_reason(target, tmp_path: Path):
    """Without the VPC in the state (its own create was lost, or it is configured by a variable) a security group
    cannot be told apart from its namesakes in other VPCs: a line says so and nothing is imported."""
    from deepsentinel.recovery import find_left_objects

    directory = stack(tmp_path / "stack", {"aws_security_group": {"alb": {
        "name": "deepsentinel-dev-alb", "vpc_id": "${aws_vpc.network_vpc_4E8F0223.id}"}}})

    recovered, unidentified = find_left_objects(directory, ["aws_security_group.alb"], {}, target.client)

    assert recovered == []
    assert unidentified == [
        "aws_security_group.alb was being created when the last run was interrupted and is in no state; it cannot "
        "be looked up (its vpc_id is computed (${aws_vpc.network_vpc_4E8F0223.id})): if it exists, delete or "
        "`terraform import` it before the apply creates another"]


def test_what_is_in_the_state_is_left_alone_and_what_is_ambiguous_is_named(target, tmp_path: Path):
    """An address in the state (its create finished after the interrupt, or was recorded tainted) needs nothing; an
    object another address of the state holds is not a candidate; two keys nothing tells apart are named, with what
    to do, and no guess is imported."""
    from deepsentinel.recovery import find_left_objects

    tags = {**DEFAULT_TAGS, "Name": "ambiguous"}
    first, second = kms_key(target, "twin", tags), kms_key(target, "twin", tags)
    directory = stack(tmp_path / "stack", {
        "aws_kms_key": {"a": {"description": "twin", "tags": {"Name": "ambiguous"}},
                        "b": {"description": "twin", "tags": {"Name": "ambiguous"}},
                        "c": {"description": "twin", "tags": {"Name": "ambiguous"}}},
        "aws_launch_template": {"computed": {"name": "${var.prefix}-gpu"}}})

    recovered, unidentified = find_left_objects(
        directory, ["aws_kms_key.a", "aws_kms_key.b", "aws_launch_template.computed"], {"aws_kms_key.c": first},
        target.client)

    assert [(r.address, r.id) for r in recovered] == [("aws_kms_key.a", second)]  # the only twin not in the state
    assert unidentified == [
        "aws_launch_template.computed was being created when the last run was interrupted and is in no state; it "
        "cannot be looked up (its name is computed (${var.prefix}-gpu)): if it exists, delete or `terraform import` "
        "it before the apply creates another"]

    third = kms_key(target, "twin", tags)
    recovered, unidentified = find_left_objects(directory, ["aws_kms_key.a"], {"aws_kms_key.c": first},
                                                target.client)
    assert recovered == []
    assert unidentified == [
        f"aws_kms_key.a was being created when the last run was interrupted and is in no state; 2 objects match it "
        f"({second}, {third}): import the one it created (`terraform import aws_kms_key.a <id>`) and delete the "
        f"others"]


def test_the_pending_list_merges_and_is_forgotten(tmp_path: Path):
    from deepsentinel.recovery import forget, pending, remember

    assert pending(tmp_path) == []
    remember(tmp_path, ["aws_kms_key.a", "aws_iam_role.b"])
    remember(tmp_path, ["aws_iam_role.b", "aws_launch_template.c"])  # interrupted again before it was recovered
    assert pending(tmp_path) == ["aws_kms_key.a", "aws_iam_role.b", "aws_launch_template.c"]
    forget(tmp_path)
    assert pending(tmp_path) == []


# The command under test, as deploy runs an apply: recovery around it, inside deepsentinel.interruption.
WATCHED_APPLY = """
import sys
from pathlib import Path
from deepsentinel import interruption, recovery, terraform
stack = Path(sys.argv[1])
class Target:
    tf_env = terraform.environment(stack.parent / "terraform-cli")
def command():
    terraform.init(stack, env=Target.tf_env)
    with recovery.recovering(stack, Target) as recovered:
        terraform.apply(stack, env=Target.tf_env, on_line=recovered.watch(print))
        recovered.applied()
    return 0
sys.exit(interruption.run_interruptibly(command))
"""


def test_an_interrupted_apply_saves_the_creates_in_flight_and_a_finished_one_forgets_them(tmp_path: Path):
    """Terraform prints `<address>: Creating...` when a create starts and `<address>: Creation complete after ...`
    when it ends (its apply output); what had started and not ended when the interrupt came is saved beside the
    stack, and the apply that finishes the run clears it."""
    from deepsentinel.recovery import pending

    directory = tmp_path / "stack"
    directory.mkdir()
    (directory / "main.tf.json").write_text(json.dumps({"resource": {"terraform_data": {
        "quick": {"input": "done"},
        "slow": {"depends_on": ["terraform_data.quick"],
                 "provisioner": [{"local-exec": {"command": "exec sleep 300"}}]}}}}))
    command = subprocess.Popen([sys.executable, "-c", WATCHED_APPLY, str(directory)], cwd=REPO_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=as_typed_at_a_prompt)
    assert command.stdout is not None
    printed = []
    for line in command.stdout:
        printed.append(line)
        if "Provisioning with 'local-exec'" in line:
            break
    os.killpg(command.pid, signal.SIGINT)
    _, errors = command.communicate(timeout=120)

    assert command.returncode == 130, "".join(printed) + errors
    assert "terraform_data.quick: Creation complete" in "".join(printed)
    assert pending(directory) == ["terraform_data.slow"]

    (directory / "main.tf.json").write_text(json.dumps({"resource": {"terraform_data": {
        "quick": {"input": "done"}, "slow": {"input": "now quick"}}}}))
    done = subprocess.run([sys.executable, "-c", WATCHED_APPLY, str(directory)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert pending(directory) == []


def test_the_next_apply_imports_what_was_left_instead_of_creating_another(target, tmp_path: Path):
    """The lookup's id goes into a Terraform import block ("Import", developer.hashicorp.com/terraform/language/
    import; JSON syntax: "to" is the address as a string), so the apply imports the object: one template and one
    target group on the server, the ones in the state, and no import block left in the stack directory. (Without the
    import the target group's create stops at the provider's own check, "ELBv2 Target Group (<name>) already
    exists", as it did in an interrupted deploy's rerun.)"""
    from deepsentinel import recovery, terraform

    ec2, elbv2 = target.client("ec2"), target.client("elbv2")
    left = ec2.create_launch_template(LaunchTemplateName="recovery-gpu",
                                      LaunchTemplateData={"InstanceType": "t3.micro"})["LaunchTemplate"]
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    group_settings = {"name": "recovery-backend", "port": 8000, "protocol": "HTTP", "target_type": "ip",
                      "vpc_id": vpc}
    [left_group] = elbv2.create_target_group(Name="recovery-backend", Port=8000, Protocol="HTTP", TargetType="ip",
                                             VpcId=vpc)["TargetGroups"]
    directory = stack(tmp_path / "stack", {
        "aws_launch_template": {"gpu": {"name": "recovery-gpu", "instance_type": "t3.micro"}},
        "aws_lb_target_group": {"backend": group_settings}}, local=True)
    recovery.remember(directory, ["aws_launch_template.gpu", "aws_lb_target_group.backend"])
    said: list[str] = []
    terraform.init(directory, env=target.tf_env)

    with recovery.recovering(directory, target, log=said.append) as recovered:
        assert json.loads((directory / recovery.IMPORTS_FILE).read_text()) == {"import": [
            {"to": "aws_launch_template.gpu", "id": left["LaunchTemplateId"]},
            {"to": "aws_lb_target_group.backend", "id": left_group["TargetGroupArn"]}]}
        lines: list[str] = []
        terraform.apply(directory, env=target.tf_env, on_line=recovered.watch(lines.append))
        recovered.applied()

    assert said == [
        f"recovered aws_launch_template.gpu ({left['LaunchTemplateId']}) left by the interrupted run",
        f"recovered aws_lb_target_group.backend ({left_group['TargetGroupArn']}) left by the interrupted run"]
    for address in ("aws_launch_template.gpu", "aws_lb_target_group.backend"):
        assert any(f"{address}: Import complete" in line for line in lines), lines
    templates = ec2.describe_launch_templates(LaunchTemplateNames=["recovery-gpu"])["LaunchTemplates"]
    assert [t["LaunchTemplateId"] for t in templates] == [left["LaunchTemplateId"]]
    groups = elbv2.describe_target_groups(Names=["recovery-backend"])["TargetGroups"]
    assert [g["TargetGroupArn"] for g in groups] == [left_group["TargetGroupArn"]]
    state = terraform.state_pull(directory, env=target.tf_env)
    assert recovery.state_ids(state) == {"aws_launch_template.gpu": left["LaunchTemplateId"],
                                         "aws_lb_target_group.backend": left_group["TargetGroupArn"]}
    assert not (directory / recovery.IMPORTS_FILE).exists()
    assert recovery.pending(directory) == []
