"""Resources an interrupted apply created on the target but left in no state, found and imported by the next run.

Terraform's graceful stop cancels the provider's context. A create whose API call is still in flight, or whose
result sits in a retry loop, then returns the cancellation instead of the object's id: the object exists on the
target and no state holds it, and the next apply creates a second one (a KMS key) or fails on the name (a launch
template, a role, a bucket). So while applying, the addresses Terraform announced as `Creating...` and had not
finished are watched; an interrupted run saves them beside the stack (`.deepsentinel-creating.json`). The next
deploy or bootstrap of that stack looks each one that is still in no state up on the target by the identity its
synthesized configuration gives it (LOOKUPS, one per resource type) and, when exactly one object answers, writes a
Terraform import block for it (`deepsentinel-recovered.tf.json`, removed after the apply): that apply imports it
instead of creating it ("Import", developer.hashicorp.com/terraform/language/import).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PENDING_FILE = ".deepsentinel-creating.json"
IMPORTS_FILE = "deepsentinel-recovered.tf.json"  # terraform reads every *.tf.json of the stack directory
SYNTHESIZED_CONFIG = "cdk.tf.json"

_CREATING = re.compile(r"^(?P<address>\S.*?): Creating\.\.\.$")
_CREATED = re.compile(r"^(?P<address>\S.*?): Creation complete\b")
_ID_REFERENCE = re.compile(r"^\$\{(?P<address>[a-z0-9_]+\.[^.{}]+)\.id\}$")


class Unidentified(Exception):
    """The object of an address cannot be told apart on the target; the message says what to check."""


# --- watching an apply ----------------------------------------------------------------------------------------


@dataclass
class CreatesInFlight:
    """An apply's line handler: remembers the addresses whose create started and has not finished, and passes
    every line on to `on_line`."""

    on_line: Callable[[str], None] | None = None
    started: dict[str, None] = field(default_factory=dict)  # insertion-ordered set

    def __call__(self, line: str) -> None:
        text = line.strip()
        if match := _CREATING.match(text):
            self.started[match["address"]] = None
        elif match := _CREATED.match(text):
            self.started.pop(match["address"], None)
        if self.on_line is not None:
            self.on_line(line)

    @property
    def in_flight(self) -> list[str]:
        return list(self.started)


def pending(stack_dir: Path) -> list[str]:
    """The addresses an interrupted apply of `stack_dir` was creating (empty when none was interrupted)."""
    path = stack_dir / PENDING_FILE
    if not path.is_file():
        return []
    return list(json.loads(path.read_text()).get("creating", []))


def remember(stack_dir: Path, addresses: Iterable[str]) -> None:
    """Save `addresses` (with those already saved) for the next run; nothing to save removes the file."""
    merged = list(dict.fromkeys([*pending(stack_dir), *addresses]))
    if merged:
        stack_dir.mkdir(parents=True, exist_ok=True)
        (stack_dir / PENDING_FILE).write_text(json.dumps({"creating": merged}, indent=1) + "\n")
    else:
        forget(stack_dir)


def forget(stack_dir: Path) -> None:
    (stack_dir / PENDING_FILE).unlink(missing_ok=True)


# --- finding what was left --------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Lookup:
    """How to find a resource type's object on the target from its configuration. `source`: the provider file
    (hashicorp/terraform-provider-aws, 5.x) whose create records the id only after its call returns from a wait or
    retry loop, the window Terraform's stop cancels."""

    service: str
    find: Callable[[Any, dict[str, Any], dict[str, str]], list[str]]  # (client, config, default tags) -> ids
    source: str


def _literal(config: dict[str, Any], attribute: str) -> str:
    value = config.get(attribute)
    if not isinstance(value, str) or not value:
        raise Unidentified(f"its configuration sets no {attribute}")
    if "${" in value:
        raise Unidentified(f"its {attribute} is computed ({value})")
    return value


def _error_code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


def _find_kms_key(kms: Any, config: dict[str, Any], default_tags: dict[str, str]) -> list[str]:
    """A key has no name: a customer managed key, not pending deletion, with the configured description and (at
    least) the configured and default tags. Tags are the only distinction between two keys of one description."""
    description = config.get("description", "")
    if "${" in description:
        raise Unidentified(f"its description is computed ({description})")
    wanted = {**default_tags, **(config.get("tags") or {})}
    if any("${" in str(value) for value in wanted.values()):
        raise Unidentified("its tags are computed")
    found = []
    for page in kms.get_paginator("list_keys").paginate():
        for key in page["Keys"]:
            meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
            if meta.get("KeyManager") != "CUSTOMER" or meta.get("KeyState") in (
                "PendingDeletion",
                "PendingReplicaDeletion",
            ):
                continue
            if meta.get("Description", "") != description:
                continue
            tags = {
                tag["TagKey"]: tag["TagValue"] for tag in kms.list_resource_tags(KeyId=key["KeyId"]).get("Tags", [])
            }
            if all(tags.get(name) == value for name, value in wanted.items()):
                found.append(meta["KeyId"])
    return found


def _find_launch_template(ec2: Any, config: dict[str, Any], default_tags: dict[str, str]) -> list[str]:
    name = _literal(config, "name")
    try:
        templates = ec2.describe_launch_templates(LaunchTemplateNames=[name])["LaunchTemplates"]
    except Exception as error:  # botocore's ClientError, tested by its code
        if "NotFound" in _error_code(error):  # InvalidLaunchTemplateName.NotFoundException
            return []
        raise
    return [template["LaunchTemplateId"] for template in templates]


def _find_s3_bucket(s3: Any, config: dict[str, Any], default_tags: dict[str, str]) -> list[str]:
    name = _literal(config, "bucket")
    try:
        s3.head_bucket(Bucket=name)
    except Exception as error:
        code = _error_code(error)
        if code in ("404", "NoSuchBucket", "NotFound"):
            return []
        if code in ("403", "AccessDenied"):
            raise Unidentified(
                f"a bucket named {name} exists but these credentials may not use it (another account's?)"
            ) from error
        raise
    return [name]


def _find_target_group(elbv2: Any, config: dict[str, Any], default_tags: dict[str, str]) -> list[str]:
    """A target group's name is unique in the account and region; the provider imports it by ARN."""
    name = _literal(config, "name")
    try:
        groups = elbv2.describe_target_groups(Names=[name])["TargetGroups"]
    except Exception as error:
        if _error_code(error) == "TargetGroupNotFound":
            return []
        raise
    return [group["TargetGroupArn"] for group in groups]


def _find_security_group(ec2: Any, config: dict[str, Any], default_tags: dict[str, str]) -> list[str]:
    """A security group's name is unique in its VPC (the VPC's id read from the state, see _ids_from_state)."""
    filters = [
        {"Name": "group-name", "Values": [_literal(config, "name")]},
        {"Name": "vpc-id", "Values": [_literal(config, "vpc_id")]},
    ]
    return [group["GroupId"] for group in ec2.describe_security_groups(Filters=filters)["SecurityGroups"]]


def _find_subnet(ec2: Any, config: dict[str, Any], default_tags: dict[str, str]) -> list[str]:
    """A subnet has no name; its CIDR block is unique in its VPC (AWS refuses an overlapping one)."""
    filters = [
        {"Name": "vpc-id", "Values": [_literal(config, "vpc_id")]},
        {"Name": "cidr-block", "Values": [_literal(config, "cidr_block")]},
    ]
    return [subnet["SubnetId"] for subnet in ec2.describe_subnets(Filters=filters)["Subnets"]]


def _find_nat_gateway(ec2: Any, config: dict[str, Any], default_tags: dict[str, str]) -> list[str]:
    """A NAT gateway has no name; the Elastic IP it holds (one gateway at a time) in its subnet tells it apart, both
    ids read from the state."""
    allocation = _literal(config, "allocation_id")
    filters = [
        {"Name": "subnet-id", "Values": [_literal(config, "subnet_id")]},
        {"Name": "state", "Values": ["pending", "available"]},
    ]
    gateways = ec2.describe_nat_gateways(Filters=filters)["NatGateways"]
    return [
        gateway["NatGatewayId"]
        for gateway in gateways
        if any(address.get("AllocationId") == allocation for address in gateway.get("NatGatewayAddresses", []))
    ]


def _find_iam_role(iam: Any, config: dict[str, Any], default_tags: dict[str, str]) -> list[str]:
    name = _literal(config, "name")
    try:
        iam.get_role(RoleName=name)
    except Exception as error:
        if _error_code(error) == "NoSuchEntity":
            return []
        raise
    return [name]


# The types whose create was seen lost (launch template, target groups, the state bucket), those whose create, read
# in the provider, records the id only after the create call returns from a retry loop (SDKv2's WaitForStateContext
# returns the context's error at once when it is cancelled, dropping a call the target may have carried out), and
# those created like the lost ones, by one call whose cancellation in flight loses the id (security groups, subnets
# and NAT gateways, whose rerun AWS refuses: a duplicate group name, an overlapping CIDR block in the VPC, an Elastic
# IP already associated). A KMS key cut
# later, in its rotation or policy wait, is recorded (tainted): its id is set by then.
LOOKUPS: dict[str, Lookup] = {
    "aws_kms_key": Lookup(
        service="kms",
        find=_find_kms_key,
        source="internal/service/kms/key.go: resourceKeyCreate calls CreateKey inside waitIAMPropagation (a "
        "retry on MalformedPolicyDocumentException) and only then d.SetId",
    ),
    "aws_launch_template": Lookup(
        service="ec2",
        find=_find_launch_template,
        source="internal/service/ec2/ec2_launch_template.go: resourceLaunchTemplateCreate sets the id from "
        "CreateLaunchTemplate's response with no wait or retry around it; lost when the stop cancels the call "
        "itself (7 s on a loaded local server) after the server made the template (seen once)",
    ),
    "aws_s3_bucket": Lookup(
        service="s3",
        find=_find_s3_bucket,
        source="internal/service/s3/bucket.go: resourceBucketCreate calls CreateBucket inside "
        "tfresource.RetryWhenAWSErrCodeEquals(OperationAborted) and only then d.SetId(bucket)",
    ),
    "aws_lb_target_group": Lookup(
        service="elbv2",
        find=_find_target_group,
        source="internal/service/elbv2/target_group.go: resourceTargetGroupCreate sets the id from "
        "CreateTargetGroup's response with no retry around it; its rerun stops at its own check "
        '"ELBv2 Target Group (<name>) already exists" (seen once, both groups of an interrupted deploy)',
    ),
    "aws_security_group": Lookup(
        service="ec2",
        find=_find_security_group,
        source="internal/service/ec2/vpc_security_group.go: resourceSecurityGroupCreate sets the id from "
        "CreateSecurityGroup's response, then waits; a cancelled call loses it",
    ),
    "aws_subnet": Lookup(
        service="ec2",
        find=_find_subnet,
        source="internal/service/ec2/vpc_subnet.go: resourceSubnetCreate sets the id from CreateSubnet's "
        "response, then waits; a cancelled call loses it",
    ),
    "aws_nat_gateway": Lookup(
        service="ec2",
        find=_find_nat_gateway,
        source="internal/service/ec2/vpc_nat_gateway.go: resourceNATGatewayCreate sets the id from "
        "CreateNatGateway's response, then waits; a cancelled call loses it, and AWS refuses the rerun's gateway "
        "its Elastic IP (Resource.AlreadyAssociated)",
    ),
    "aws_iam_role": Lookup(
        service="iam",
        find=_find_iam_role,
        source="internal/service/iam/role.go: resourceRoleCreate calls retryCreateRole (CreateRole inside "
        'tfresource.RetryWhen on "Invalid principal in policy"), attaches the inline and managed '
        "policies, and only then d.SetId(roleName)",
    ),
}


@dataclass(frozen=True)
class Recovered:
    address: str
    id: str


def state_ids(state: dict[str, Any]) -> dict[str, str]:
    """Managed resource addresses of a state document (`terraform state pull`) and their ids."""
    found = {}
    for resource in state.get("resources", []):
        if resource.get("mode") != "managed" or resource.get("module"):
            continue
        for instance in resource.get("instances", []):
            index = instance.get("index_key")
            suffix = "" if index is None else f"[{json.dumps(index)}]"
            found[f"{resource['type']}.{resource['name']}{suffix}"] = str(instance.get("attributes", {}).get("id", ""))
    return found


def find_left_objects(
    stack_dir: Path, addresses: Iterable[str], in_state: dict[str, str], client: Callable[[str], Any]
) -> tuple[list[Recovered], list[str]]:
    """For each address not in `in_state`: look its object up on the target. Returns what to import and one line
    per address that could not be identified or whose type has no lookup (what to check); an address whose object
    is not on the target (its create never reached it) gives neither."""
    # In the state after all (finished after the interrupt, or recorded tainted): nothing to do.
    missing = [a for a in addresses if a not in in_state]
    not_looked_up = [
        f"{address} was being created when the last run was interrupted and is in no state; its type is not looked "
        f"up: if the apply stops because it exists, `terraform import {address} <id>` it (or delete it) and run again"
        for address in missing
        # an AWS object (terraform_data and the random provider's have none)
        if address.startswith("aws_") and address.partition(".")[0] not in LOOKUPS
    ]
    left = [a for a in missing if a.partition(".")[0] in LOOKUPS]
    if not left:
        return [], not_looked_up
    document = json.loads((stack_dir / SYNTHESIZED_CONFIG).read_text())
    resources = document.get("resource", {})
    default_tags = _default_tags(document)
    taken = set(in_state.values())
    recovered: list[Recovered] = []
    unidentified: list[str] = []
    for address in left:
        kind, _, name = address.partition(".")
        lookup = LOOKUPS[kind]
        try:
            config = resources.get(kind, {}).get(name)
            if config is None:
                raise Unidentified("the synthesized configuration no longer has it")
            if config.get("provider"):
                raise Unidentified(f"it uses provider {config['provider']}, not the stack's default region")
            config = _ids_from_state(config, in_state)
            ids = [found for found in lookup.find(client(lookup.service), config, default_tags) if found not in taken]
        except Unidentified as reason:
            unidentified.append(
                f"{address} was being created when the last run was interrupted and is in no "
                f"state; it cannot be looked up ({reason}): if it exists, delete or `terraform "
                f"import` it before the apply creates another"
            )
            continue
        if len(ids) == 1:
            recovered.append(Recovered(address, ids[0]))
            taken.add(ids[0])
        elif len(ids) > 1:
            unidentified.append(
                f"{address} was being created when the last run was interrupted and is in no "
                f"state; {len(ids)} objects match it ({', '.join(ids)}): import the one it "
                f"created (`terraform import {address} <id>`) and delete the others"
            )
    return recovered, unidentified + not_looked_up


def _ids_from_state(config: dict[str, Any], in_state: dict[str, str]) -> dict[str, Any]:
    """`config` with each reference to the id of a resource the state holds (`${aws_vpc.network_vpc_4E8F0223.id}`)
    replaced by that id: the VPC a security group or subnet was created in."""
    resolved = dict(config)
    for attribute, value in config.items():
        if isinstance(value, str) and (match := _ID_REFERENCE.match(value)) and in_state.get(match["address"]):
            resolved[attribute] = in_state[match["address"]]
    return resolved


def _default_tags(document: dict[str, Any]) -> dict[str, str]:
    providers = document.get("provider", {}).get("aws") or [{}]
    default: dict[str, Any] = next((p for p in providers if not p.get("alias")), {})
    blocks = default.get("default_tags") or [{}]
    return dict(blocks[0].get("tags") or {})


def write_imports(stack_dir: Path, recovered: list[Recovered]) -> None:
    """Terraform import blocks for `recovered` (JSON syntax: "to" is the address as a string), or none."""
    path = stack_dir / IMPORTS_FILE
    if not recovered:
        path.unlink(missing_ok=True)
        return
    path.write_text(json.dumps({"import": [{"to": r.address, "id": r.id} for r in recovered]}, indent=1) + "\n")


# --- around an apply ---------------------------------------------------------------------------------------------


@dataclass
class Recovery:
    """What `recovering` yields: `watch` wraps the apply's line handler; `applied` says the apply finished."""

    stack_dir: Path
    watched: list[CreatesInFlight] = field(default_factory=list)
    finished: bool = False

    def watch(self, on_line: Callable[[str], None] | None) -> CreatesInFlight:
        watcher = CreatesInFlight(on_line)
        self.watched.append(watcher)
        return watcher

    def applied(self) -> None:
        self.finished = True

    @property
    def in_flight(self) -> list[str]:
        return [address for watcher in self.watched for address in watcher.in_flight]


@contextlib.contextmanager
def recovering(
    stack_dir: Path, target: Any, *, log: Callable[[str], None] = print, active: bool = True
) -> Iterator[Recovery]:
    """Around the plan and apply of `stack_dir` on `target` (deepsentinel.target.Target). Before: the resources an
    interrupted run left in no state are found and written as import blocks, one line each. After: interrupted,
    the creates in flight are saved for the next run; applied, nothing is left to recover. `active=False` (a
    destroy) only watches."""
    from deepsentinel import terraform

    recovery = Recovery(stack_dir)
    left = pending(stack_dir) if active else []
    (stack_dir / IMPORTS_FILE).unlink(missing_ok=True)
    if left:
        in_state = state_ids(terraform.state_pull(stack_dir, env=target.tf_env))
        recovered, unidentified = find_left_objects(stack_dir, left, in_state, lambda service: target.client(service))
        write_imports(stack_dir, recovered)
        for item in recovered:
            log(f"recovered {item.address} ({item.id}) left by the interrupted run")
        for line in unidentified:
            log(line)
    try:
        yield recovery
    except KeyboardInterrupt:
        if active:
            remember(stack_dir, recovery.in_flight)
        raise
    finally:
        (stack_dir / IMPORTS_FILE).unlink(missing_ok=True)
    if recovery.finished and active:
        forget(stack_dir)
