"""What an environment's destroy must remove, kind by kind, and the listers that find what it left.

`ENVIRONMENT_LISTERS` holds one lister per top-level, nameable kind the environment stacks create (the
Terraform resource types it stands for are named on it); `SUB_RESOURCES` names, for every other resource type,
the parent it goes with. tests/unit/test_leftovers.py synthesizes every variant of the platform and fails on a
resource type that is in neither table, so a new kind cannot join the platform without a lister.
`ACCOUNT_LISTERS` does the same for the account stack (bootstrap's, kept across environment destroys).

Every list call goes through botocore's paginator where botocore has one (`each`); the three list calls it has
none for are followed by their token by hand or are unpaginated in the API (`UNPAGINATED`).

What counts as gone is what AWS's own delete leaves: a KMS key pending deletion, a secret scheduled for
deletion, INACTIVE ECS task definitions and services, INACTIVE Batch job definitions, DELETED Batch compute
environments and job queues, NAT gateways and endpoints `deleted`/`deleting`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

# List calls botocore has no paginator for, and how each is followed: (request token, response token), or None
# for an API that returns everything in one answer.
UNPAGINATED: dict[tuple[str, str], tuple[str, str] | None] = {
    # WAFV2 API Reference, ListWebACLs: Limit 1..100 with NextMarker in the request and the response.
    ("wafv2", "list_web_acls"): ("NextMarker", "NextMarker"),
    # EC2 API Reference, DescribeAddresses: no MaxResults/NextToken parameters.
    ("ec2", "describe_addresses"): None,
    # IAM API Reference, ListOpenIDConnectProviders: no Marker/MaxItems parameters.
    ("iam", "list_open_id_connect_providers"): None,
}
WAF_PAGE_SIZE = 100  # ListWebACLs' largest Limit


@dataclass(frozen=True)
class Owner:
    """Whose leftovers: named `{prefix}-...` (or `{prefix}/...`), or tagged Project=<project>.

    A tagged resource of another environment of the same project (Environment tag set and different) is not
    this one's: dev and prod share an account and a project.
    """

    project: str
    prefix: str

    @property
    def environment(self) -> str | None:
        head = self.project + "-"
        return self.prefix[len(head):] if self.prefix.startswith(head) else None

    def owns_name(self, name: str) -> bool:
        return name == self.prefix or any(name.startswith(self.prefix + sep) for sep in "-/.")

    def mentions(self, text: str) -> bool:
        """The prefix as a whole word inside a path, ARN or DNS name (`/aws/lambda/{prefix}-x`,
        `aws-waf-logs-{prefix}`, `{prefix}-alb-1.elb.amazonaws.com`), not as the start of a longer word."""
        return re.search(rf"(?<![a-z0-9]){re.escape(self.prefix)}(?![a-z0-9])", text) is not None

    def owns_tags(self, tags: Mapping[str, str]) -> bool:
        if tags.get("Project") != self.project:
            return False
        return self.environment is None or tags.get("Environment", self.environment) == self.environment


def tag_map(tags: Iterable[dict[str, str]] | Mapping[str, str] | None) -> dict[str, str]:
    """Tags as a dict, from any of AWS's spellings (Key/Value, key/value, TagKey/TagValue, or a map)."""
    if tags is None:
        return {}
    if isinstance(tags, Mapping):
        return dict(tags)
    result = {}
    for tag in tags:
        key = tag.get("Key", tag.get("key", tag.get("TagKey")))
        result[key] = tag.get("Value", tag.get("value", tag.get("TagValue", "")))
    return result


def service_of(client: Any) -> str:
    return client.meta.service_model.service_name


def pages(client: Any, operation: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Every page of a list call: botocore's paginator when it has one, else the token table above."""
    if client.can_paginate(operation):
        yield from client.get_paginator(operation).paginate(**params)
        return
    key = (service_of(client), operation)
    if key not in UNPAGINATED:
        raise AssertionError(f"{key}: no paginator in botocore and not in UNPAGINATED; say how it pages")
    tokens = UNPAGINATED[key]
    while True:
        page = getattr(client, operation)(**params)
        yield page
        if tokens is None or not page.get(tokens[1]):
            return
        params = {**params, tokens[0]: page[tokens[1]]}


def each(client: Any, operation: str, key: str, **params: Any) -> Iterator[Any]:
    for page in pages(client, operation, **params):
        yield from page.get(key, [])


Found = Iterator[str]


@dataclass(frozen=True)
class Lister:
    kind: str  # how a leftover is reported: "<kind> <identifier>"
    resource_types: tuple[str, ...]  # the Terraform resource types whose objects it finds
    find: Callable[[Any, Owner], Iterable[str]]  # (clients, owner) -> identifiers


# --- storage, data ----------------------------------------------------------------------------------------

def s3_buckets(c: Any, o: Owner) -> Found:
    return (b["Name"] for b in each(c("s3"), "list_buckets", "Buckets") if o.owns_name(b["Name"]))


def rds_instances(c: Any, o: Owner) -> Found:
    return (d["DBInstanceIdentifier"] for d in each(c("rds"), "describe_db_instances", "DBInstances")
            if o.owns_name(d["DBInstanceIdentifier"]))


def rds_subnet_groups(c: Any, o: Owner) -> Found:
    return (g["DBSubnetGroupName"] for g in each(c("rds"), "describe_db_subnet_groups", "DBSubnetGroups")
            if o.owns_name(g["DBSubnetGroupName"]))


def rds_parameter_groups(c: Any, o: Owner) -> Found:
    return (g["DBParameterGroupName"] for g in each(c("rds"), "describe_db_parameter_groups", "DBParameterGroups")
            if o.owns_name(g["DBParameterGroupName"]))


def dynamodb_tables(c: Any, o: Owner) -> Found:
    return (t for t in each(c("dynamodb"), "list_tables", "TableNames") if o.owns_name(t))


def secrets(c: Any, o: Owner) -> Found:
    # Secrets Manager's DeleteSecret schedules the deletion: a DeletedDate is the secret's destroy. The account
    # stack's secrets ({project}/{env}/..., app_secrets.py) carry the environment's tags but outlive it.
    return (s["Name"] for s in each(c("secretsmanager"), "list_secrets", "SecretList")
            if "DeletedDate" not in s and not s["Name"].startswith(o.project + "/")
            and (o.owns_name(s["Name"]) or o.owns_tags(tag_map(s.get("Tags")))))


def kms_keys(c: Any, o: Owner) -> Found:
    # ScheduleKeyDeletion is how a key is destroyed (Terraform's too): PendingDeletion counts as gone.
    kms = c("kms")
    for key in each(kms, "list_keys", "Keys"):
        try:
            meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
        except ClientError as error:
            # Another owner's key policy may not let this account's principals read it; ours grants the account.
            if error.response["Error"]["Code"] == "AccessDeniedException":
                continue
            raise
        if meta.get("KeyManager") == "AWS" or meta["KeyState"] in ("PendingDeletion", "PendingReplicaDeletion"):
            continue
        if o.owns_name(meta.get("Description", "").split(":")[0]) or o.owns_tags(
                tag_map(each(kms, "list_resource_tags", "Tags", KeyId=key["KeyId"]))):
            yield meta["KeyId"]


def kms_aliases(c: Any, o: Owner) -> Found:
    return (a["AliasName"] for a in each(c("kms"), "list_aliases", "Aliases")
            if o.owns_name(a["AliasName"].removeprefix("alias/")))


# --- queues, topics, functions, events --------------------------------------------------------------------

def sqs_queues(c: Any, o: Owner) -> Found:
    return (u for u in each(c("sqs"), "list_queues", "QueueUrls", QueueNamePrefix=o.prefix)
            if o.owns_name(u.rsplit("/", 1)[-1]))


def sns_topics(c: Any, o: Owner) -> Found:
    return (t["TopicArn"] for t in each(c("sns"), "list_topics", "Topics")
            if o.owns_name(t["TopicArn"].rsplit(":", 1)[-1]))


def lambda_functions(c: Any, o: Owner) -> Found:
    return (f["FunctionName"] for f in each(c("lambda"), "list_functions", "Functions")
            if o.owns_name(f["FunctionName"]))


def lambda_event_source_mappings(c: Any, o: Owner) -> Found:
    # Lambda API Reference, DeleteFunction: deleting a function leaves its event source mappings
    # (DeleteEventSourceMapping removes them), so a mapping is a kind of its own.
    for m in each(c("lambda"), "list_event_source_mappings", "EventSourceMappings"):
        if any(o.owns_name(arn.rsplit(":", 1)[-1]) for arn in (m.get("FunctionArn", ""), m.get("EventSourceArn", ""))):
            yield m["UUID"]


def log_groups(c: Any, o: Owner) -> Found:
    # Names are paths (/aws/lambda/{prefix}-..., /ecs/{prefix}/..., aws-waf-logs-{prefix}): the prefix as a word.
    return (g["logGroupName"] for g in each(c("logs"), "describe_log_groups", "logGroups")
            if o.mentions(g["logGroupName"]))


def event_rules(c: Any, o: Owner) -> Found:
    return (r["Name"] for r in each(c("events"), "list_rules", "Rules", NamePrefix=o.prefix) if o.owns_name(r["Name"]))


def scheduler_schedules(c: Any, o: Owner) -> Found:
    return (f"{s['GroupName']}/{s['Name']}" for s in each(c("scheduler"), "list_schedules", "Schedules",
                                                           NamePrefix=o.prefix) if o.owns_name(s["Name"]))


def scheduler_groups(c: Any, o: Owner) -> Found:
    return (g["Name"] for g in each(c("scheduler"), "list_schedule_groups", "ScheduleGroups", NamePrefix=o.prefix)
            if o.owns_name(g["Name"]))


def cloudwatch_alarms(c: Any, o: Owner) -> Found:
    for page in pages(c("cloudwatch"), "describe_alarms", AlarmNamePrefix=o.prefix,
                      AlarmTypes=["MetricAlarm", "CompositeAlarm"]):
        yield from (a["AlarmName"] for a in page.get("MetricAlarms", []) + page.get("CompositeAlarms", [])
                    if o.owns_name(a["AlarmName"]))


def cloudwatch_dashboards(c: Any, o: Owner) -> Found:
    return (d["DashboardName"] for d in each(c("cloudwatch"), "list_dashboards", "DashboardEntries",
                                             DashboardNamePrefix=o.prefix) if o.owns_name(d["DashboardName"]))


def budgets(c: Any, o: Owner) -> Found:
    account = c("sts").get_caller_identity()["Account"]
    try:
        found = [b["BudgetName"] for b in each(c("budgets"), "describe_budgets", "Budgets", AccountId=account)]
    except ClientError as error:
        # AWS Budgets API Reference, DescribeBudgets: NotFoundException when the account has no budget.
        if error.response["Error"]["Code"] == "NotFoundException":
            return iter(())
        raise
    return (b for b in found if o.owns_name(b))


def http_apis(c: Any, o: Owner) -> Found:
    return (f"{a['Name']} ({a['ApiId']})" for a in each(c("apigatewayv2"), "get_apis", "Items")
            if o.owns_name(a["Name"]) or o.owns_tags(tag_map(a.get("Tags"))))


# --- compute ----------------------------------------------------------------------------------------------

def ecr_repositories(c: Any, o: Owner) -> Found:
    return (r["repositoryName"] for r in each(c("ecr"), "describe_repositories", "repositories")
            if o.owns_name(r["repositoryName"]))


def _active_clusters(c: Any, o: Owner) -> list[str]:
    ecs = c("ecs")
    arns = [a for a in each(ecs, "list_clusters", "clusterArns") if o.owns_name(a.rsplit("/", 1)[-1])]
    # DescribeClusters takes at most 100 clusters; a deleted cluster is INACTIVE.
    return [cl["clusterArn"] for i in range(0, len(arns), 100)
            for cl in ecs.describe_clusters(clusters=arns[i:i + 100])["clusters"] if cl["status"] != "INACTIVE"]


def ecs_clusters(c: Any, o: Owner) -> Found:
    return iter(_active_clusters(c, o))


def ecs_services(c: Any, o: Owner) -> Found:
    # A service lives in its cluster (a cluster with services cannot be deleted); DescribeServices takes 10.
    ecs = c("ecs")
    for cluster in _active_clusters(c, o):
        arns = list(each(ecs, "list_services", "serviceArns", cluster=cluster))
        for i in range(0, len(arns), 10):
            yield from (s["serviceArn"] for s in ecs.describe_services(cluster=cluster, services=arns[i:i + 10])[
                "services"] if s["status"] != "INACTIVE")


def ecs_task_definitions(c: Any, o: Owner) -> Found:
    # Deregistered (INACTIVE) revisions are what Terraform's destroy leaves. ListTaskDefinitions' familyPrefix is
    # a whole family name (ECS API Reference), so every ACTIVE revision is listed and matched on its family.
    for arn in each(c("ecs"), "list_task_definitions", "taskDefinitionArns", status="ACTIVE"):
        revision = arn.rsplit("/", 1)[-1]
        if o.owns_name(revision.rsplit(":", 1)[0]):
            yield revision


def batch_compute_environments(c: Any, o: Owner) -> Found:
    return (e["computeEnvironmentName"] for e in each(c("batch"), "describe_compute_environments",
                                                      "computeEnvironments")
            if o.owns_name(e["computeEnvironmentName"]) and e.get("status") != "DELETED")


def batch_job_queues(c: Any, o: Owner) -> Found:
    return (q["jobQueueName"] for q in each(c("batch"), "describe_job_queues", "jobQueues")
            if o.owns_name(q["jobQueueName"]) and q.get("status") != "DELETED")


def batch_job_definitions(c: Any, o: Owner) -> Found:
    return (f"{d['jobDefinitionName']}:{d['revision']}" for d in
            each(c("batch"), "describe_job_definitions", "jobDefinitions", status="ACTIVE")
            if o.owns_name(d["jobDefinitionName"]))


def scalable_targets(c: Any, o: Owner) -> Found:
    # ResourceId service/<cluster>/<service>; deregistering a target deletes its policies and scheduled actions
    # (Application Auto Scaling API Reference, DeregisterScalableTarget).
    return (t["ResourceId"] for t in each(c("application-autoscaling"), "describe_scalable_targets",
                                          "ScalableTargets", ServiceNamespace="ecs") if o.mentions(t["ResourceId"]))


# --- network ----------------------------------------------------------------------------------------------

def _ec2_tagged(operation: str, key: str, id_key: str, *, filter_name: str = "Filters",
                gone: tuple[str, ...] = ()) -> Callable[[Any, Owner], Found]:
    def find(c: Any, o: Owner) -> Found:
        tagged = each(c("ec2"), operation, key, **{filter_name: [{"Name": "tag:Project", "Values": [o.project]}]})
        return (item[id_key] for item in tagged
                if o.owns_tags(tag_map(item.get("Tags"))) and str(item.get("State", "")).lower() not in gone)
    return find


def load_balancers(c: Any, o: Owner) -> Found:
    return (lb["LoadBalancerName"] for lb in each(c("elbv2"), "describe_load_balancers", "LoadBalancers")
            if o.owns_name(lb["LoadBalancerName"]))


def target_groups(c: Any, o: Owner) -> Found:
    return (tg["TargetGroupName"] for tg in each(c("elbv2"), "describe_target_groups", "TargetGroups")
            if o.owns_name(tg["TargetGroupName"]))


def web_acls(c: Any, o: Owner) -> Found:
    return (f"{a['Name']} ({a['Id']})" for a in each(c("wafv2"), "list_web_acls", "WebACLs", Scope="REGIONAL",
                                                     Limit=WAF_PAGE_SIZE) if o.owns_name(a["Name"]))


def certificates(c: Any, o: Owner) -> Found:
    # ListCertificates returns RSA_2048 certificates only unless Includes.keyTypes says otherwise (ACM API
    # Reference, ListCertificates / Filters).
    acm = c("acm")
    for cert in each(acm, "list_certificates", "CertificateSummaryList", Includes={"keyTypes": ACM_KEY_TYPES}):
        tags = tag_map(acm.list_tags_for_certificate(CertificateArn=cert["CertificateArn"]).get("Tags"))
        if o.owns_tags(tags) or o.mentions(cert.get("DomainName", "")):
            yield f"{cert.get('DomainName')} ({cert['CertificateArn']})"


ACM_KEY_TYPES = ["RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "EC_secp521r1"]


def _zones(c: Any) -> Iterator[dict[str, Any]]:
    return each(c("route53"), "list_hosted_zones", "HostedZones")


def _zone_tags(c: Any, zone_id: str) -> dict[str, str]:
    return tag_map(c("route53").list_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id.split("/")[-1])[
        "ResourceTagSet"].get("Tags"))


def dns_records(c: Any, o: Owner) -> Found:
    """Records in any zone naming something of the environment (the ALB alias `{prefix}-alb-*.elb...`), and ACM
    validation CNAMEs in a zone of the project that no certificate in the region still asks for.

    Environments never create zones (the account stack does), so records are the environment's part of Route 53.
    A validation record's name is derived from the domain and the account (ACM User Guide, "DNS validation"), not
    from the environment, hence the question to ACM instead of a name match.
    """
    route53, acm = c("route53"), c("acm")
    wanted = None
    for zone in _zones(c):
        project_zone = _zone_tags(c, zone["Id"]).get("Project") == o.project
        for record in each(route53, "list_resource_record_sets", "ResourceRecordSets", HostedZoneId=zone["Id"]):
            values = [r["Value"] for r in record.get("ResourceRecords", [])]
            texts = [record["Name"], record.get("AliasTarget", {}).get("DNSName", ""), *values]
            if any(o.mentions(t.lower()) for t in texts):
                yield f"{record['Name']} {record['Type']}"
            elif project_zone and record["Type"] == "CNAME" and any(
                    v.rstrip(".").endswith(".acm-validations.aws") for v in values):
                if wanted is None:
                    wanted = {opt["ResourceRecord"]["Name"]
                              for cert in each(acm, "list_certificates", "CertificateSummaryList",
                                               Includes={"keyTypes": ACM_KEY_TYPES})
                              for opt in acm.describe_certificate(CertificateArn=cert["CertificateArn"])[
                                  "Certificate"].get("DomainValidationOptions", []) if "ResourceRecord" in opt}
                if record["Name"] not in wanted:
                    yield f"{record['Name']} CNAME (ACM validation, no certificate asks for it)"


# --- identity ---------------------------------------------------------------------------------------------

def iam_roles(c: Any, o: Owner) -> Found:
    # The account stack's GitHub OIDC roles are named {project}-{env}-github-* (github_oidc.role_name): the
    # environment's prefix, but bootstrap's, kept across environment destroys.
    return (r["RoleName"] for r in each(c("iam"), "list_roles", "Roles")
            if o.owns_name(r["RoleName"]) and not r["RoleName"].startswith(o.prefix + "-github-"))


def iam_instance_profiles(c: Any, o: Owner) -> Found:
    return (p["InstanceProfileName"] for p in each(c("iam"), "list_instance_profiles", "InstanceProfiles")
            if o.owns_name(p["InstanceProfileName"]))


def iam_policies(c: Any, o: Owner) -> Found:
    return (p["PolicyName"] for p in each(c("iam"), "list_policies", "Policies", Scope="Local")
            if o.owns_name(p["PolicyName"]))


ENVIRONMENT_LISTERS: tuple[Lister, ...] = (
    Lister("s3 bucket", ("aws_s3_bucket",), s3_buckets),
    Lister("rds instance", ("aws_db_instance",), rds_instances),
    Lister("rds subnet group", ("aws_db_subnet_group",), rds_subnet_groups),
    Lister("rds parameter group", ("aws_db_parameter_group",), rds_parameter_groups),
    Lister("dynamodb table", ("aws_dynamodb_table",), dynamodb_tables),
    Lister("secret", ("aws_secretsmanager_secret",), secrets),
    Lister("kms key", ("aws_kms_key",), kms_keys),
    Lister("kms alias", ("aws_kms_alias",), kms_aliases),
    Lister("sqs queue", ("aws_sqs_queue",), sqs_queues),
    Lister("sns topic", ("aws_sns_topic",), sns_topics),
    Lister("lambda function", ("aws_lambda_function",), lambda_functions),
    Lister("lambda event source mapping", ("aws_lambda_event_source_mapping",), lambda_event_source_mappings),
    Lister("log group", ("aws_cloudwatch_log_group",), log_groups),
    Lister("events rule", ("aws_cloudwatch_event_rule",), event_rules),
    Lister("schedule", ("aws_scheduler_schedule",), scheduler_schedules),
    Lister("schedule group", ("aws_scheduler_schedule_group",), scheduler_groups),
    Lister("alarm", ("aws_cloudwatch_metric_alarm", "aws_cloudwatch_composite_alarm"), cloudwatch_alarms),
    Lister("dashboard", ("aws_cloudwatch_dashboard",), cloudwatch_dashboards),
    Lister("budget", ("aws_budgets_budget",), budgets),
    Lister("http api", ("aws_apigatewayv2_api",), http_apis),
    Lister("ecr repository", ("aws_ecr_repository",), ecr_repositories),
    Lister("ecs cluster", ("aws_ecs_cluster",), ecs_clusters),
    Lister("ecs service", ("aws_ecs_service",), ecs_services),
    Lister("ecs task definition", ("aws_ecs_task_definition",), ecs_task_definitions),
    Lister("batch compute environment", ("aws_batch_compute_environment",), batch_compute_environments),
    Lister("batch job queue", ("aws_batch_job_queue",), batch_job_queues),
    Lister("batch job definition", ("aws_batch_job_definition",), batch_job_definitions),
    Lister("scalable target", ("aws_appautoscaling_target",), scalable_targets),
    Lister("ec2 vpc", ("aws_vpc",), _ec2_tagged("describe_vpcs", "Vpcs", "VpcId")),
    Lister("ec2 subnet", ("aws_subnet",), _ec2_tagged("describe_subnets", "Subnets", "SubnetId")),
    Lister("ec2 security-group", ("aws_security_group",),
           _ec2_tagged("describe_security_groups", "SecurityGroups", "GroupId")),
    Lister("ec2 route-table", ("aws_route_table",),
           _ec2_tagged("describe_route_tables", "RouteTables", "RouteTableId")),
    Lister("ec2 internet-gateway", ("aws_internet_gateway",),
           _ec2_tagged("describe_internet_gateways", "InternetGateways", "InternetGatewayId")),
    Lister("ec2 network-acl", ("aws_network_acl",),
           _ec2_tagged("describe_network_acls", "NetworkAcls", "NetworkAclId")),
    Lister("ec2 address", ("aws_eip",), _ec2_tagged("describe_addresses", "Addresses", "AllocationId")),
    Lister("ec2 launch-template", ("aws_launch_template",),
           _ec2_tagged("describe_launch_templates", "LaunchTemplates", "LaunchTemplateId")),
    Lister("ec2 vpc-endpoint", ("aws_vpc_endpoint",),
           _ec2_tagged("describe_vpc_endpoints", "VpcEndpoints", "VpcEndpointId", gone=("deleted", "deleting"))),
    # DescribeNatGateways and DescribeFlowLogs spell their filter parameter `Filter` (EC2 API Reference).
    Lister("ec2 nat-gateway", ("aws_nat_gateway",),
           _ec2_tagged("describe_nat_gateways", "NatGateways", "NatGatewayId", filter_name="Filter",
                       gone=("deleted", "deleting"))),
    Lister("ec2 flow-log", ("aws_flow_log",),
           _ec2_tagged("describe_flow_logs", "FlowLogs", "FlowLogId", filter_name="Filter")),
    Lister("elbv2 load balancer", ("aws_lb",), load_balancers),
    Lister("elbv2 target group", ("aws_lb_target_group",), target_groups),
    Lister("wafv2 web acl", ("aws_wafv2_web_acl",), web_acls),
    Lister("acm certificate", ("aws_acm_certificate",), certificates),
    Lister("route53 record", ("aws_route53_record",), dns_records),
    Lister("iam role", ("aws_iam_role",), iam_roles),
    Lister("iam instance profile", ("aws_iam_instance_profile",), iam_instance_profiles),
    Lister("iam policy", ("aws_iam_policy",), iam_policies),
)


# --- the account stack (bootstrap): kept across environment destroys, checked on its own --------------------

def account_state_buckets(c: Any, o: Owner) -> Found:
    return (b["Name"] for b in each(c("s3"), "list_buckets", "Buckets") if b["Name"].startswith(o.project + "-tfstate"))


def account_users(c: Any, o: Owner) -> Found:
    # User names are the people's own (alice, ...): the Project tag is what marks them.
    iam = c("iam")
    return (u["UserName"] for u in each(iam, "list_users", "Users")
            if tag_map(each(iam, "list_user_tags", "Tags", UserName=u["UserName"])).get("Project") == o.project)


def account_groups(c: Any, o: Owner) -> Found:
    return (g["GroupName"] for g in each(c("iam"), "list_groups", "Groups")
            if g["GroupName"].startswith(o.project + "-"))


def account_roles(c: Any, o: Owner) -> Found:
    return (r["RoleName"] for r in each(c("iam"), "list_roles", "Roles")
            if r["RoleName"].startswith(o.project + "-") and "-github-" in r["RoleName"])


def account_policies(c: Any, o: Owner) -> Found:
    return (p["PolicyName"] for p in each(c("iam"), "list_policies", "Policies", Scope="Local")
            if p["PolicyName"].startswith(o.project + "-"))


def account_oidc_providers(c: Any, o: Owner) -> Found:
    iam = c("iam")
    for p in each(iam, "list_open_id_connect_providers", "OpenIDConnectProviderList"):
        tags = tag_map(each(iam, "list_open_id_connect_provider_tags", "Tags", OpenIDConnectProviderArn=p["Arn"]))
        if tags.get("Project") == o.project:
            yield p["Arn"]


def account_secrets(c: Any, o: Owner) -> Found:
    # Each environment's Django key, named {project}/{env}/django-secret-key (app_secrets.py).
    return (s["Name"] for s in each(c("secretsmanager"), "list_secrets", "SecretList")
            if "DeletedDate" not in s and s["Name"].startswith(o.project + "/"))


def account_zones(c: Any, o: Owner) -> Found:
    return (f"{z['Name']} ({z['Id']})" for z in _zones(c) if _zone_tags(c, z["Id"]).get("Project") == o.project)


ACCOUNT_LISTERS: tuple[Lister, ...] = (
    Lister("s3 bucket", ("aws_s3_bucket",), account_state_buckets),
    Lister("iam user", ("aws_iam_user",), account_users),
    Lister("iam group", ("aws_iam_group",), account_groups),
    Lister("iam role", ("aws_iam_role",), account_roles),
    Lister("iam policy", ("aws_iam_policy",), account_policies),
    Lister("iam oidc provider", ("aws_iam_openid_connect_provider",), account_oidc_providers),
    Lister("route53 zone", ("aws_route53_zone",), account_zones),
    Lister("secret", ("aws_secretsmanager_secret",), account_secrets),
)

# Resource type -> the type of the parent it goes with (no lister of its own: it cannot outlive that parent, or
# it is a setting of the parent rather than an object).
SUB_RESOURCES: dict[str, str] = {
    **{f"aws_s3_bucket_{part}": "aws_s3_bucket" for part in (
        "cors_configuration", "lifecycle_configuration", "logging", "notification", "ownership_controls", "policy",
        "public_access_block", "server_side_encryption_configuration", "versioning")},
    "aws_secretsmanager_secret_version": "aws_secretsmanager_secret",
    "aws_sqs_queue_policy": "aws_sqs_queue",
    "aws_sns_topic_policy": "aws_sns_topic",
    "aws_sns_topic_subscription": "aws_sns_topic",  # SNS API Reference, DeleteTopic: "all its subscriptions"
    "aws_lambda_permission": "aws_lambda_function",  # a statement of the function's resource policy
    "aws_cloudwatch_event_target": "aws_cloudwatch_event_rule",  # a rule with targets cannot be deleted
    "aws_cloudwatch_log_metric_filter": "aws_cloudwatch_log_group",
    "aws_ecr_lifecycle_policy": "aws_ecr_repository",
    "aws_appautoscaling_policy": "aws_appautoscaling_target",  # DeregisterScalableTarget deletes them
    "aws_appautoscaling_scheduled_action": "aws_appautoscaling_target",
    "aws_apigatewayv2_integration": "aws_apigatewayv2_api",
    "aws_apigatewayv2_route": "aws_apigatewayv2_api",
    "aws_apigatewayv2_stage": "aws_apigatewayv2_api",
    "aws_lb_listener": "aws_lb",
    "aws_lb_listener_rule": "aws_lb",
    "aws_wafv2_web_acl_association": "aws_wafv2_web_acl",
    "aws_wafv2_web_acl_logging_configuration": "aws_wafv2_web_acl",
    "aws_route": "aws_route_table",
    "aws_route_table_association": "aws_route_table",
    "aws_network_acl_rule": "aws_network_acl",
    "aws_vpc_security_group_ingress_rule": "aws_security_group",
    "aws_vpc_security_group_egress_rule": "aws_security_group",
    # The VPC's own default group: Terraform adopts it and, on destroy, only forgets it; it goes with the VPC.
    "aws_default_security_group": "aws_vpc",
    "aws_iam_role_policy": "aws_iam_role",
    "aws_iam_role_policy_attachment": "aws_iam_role",
    "aws_iam_group_policy": "aws_iam_group",
    "aws_iam_group_policy_attachment": "aws_iam_group",
    "aws_iam_user_group_membership": "aws_iam_user",
}
# Resource types with no AWS object at all.
NO_AWS_OBJECT: dict[str, str] = {
    "aws_acm_certificate_validation": "a Terraform wait for the certificate's ISSUED status",
}


def find_leftovers(clients: Any, owner: Owner, listers: Iterable[Lister] = ENVIRONMENT_LISTERS) -> list[str]:
    return [f"{lister.kind} {identifier}" for lister in listers for identifier in lister.find(clients, owner)]
