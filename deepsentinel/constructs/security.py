"""Security: security groups and their rules, NACLs, and a locked-down default security group."""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.default_security_group import DefaultSecurityGroup
from cdktf_cdktf_provider_aws.network_acl import NetworkAcl
from cdktf_cdktf_provider_aws.network_acl_rule import NetworkAclRule
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from cdktf_cdktf_provider_aws.wafv2_web_acl import (
    Wafv2WebAcl,
    Wafv2WebAclDefaultAction,
    Wafv2WebAclDefaultActionAllow,
    Wafv2WebAclVisibilityConfig,
)
from cdktf_cdktf_provider_aws.wafv2_web_acl_association import Wafv2WebAclAssociation
from cdktf_cdktf_provider_aws.wafv2_web_acl_logging_configuration import Wafv2WebAclLoggingConfiguration
from constructs import Construct

from deepsentinel.constructs.ports import BACKEND_PORT, FRONTEND_PORT
from deepsentinel.settings import PlatformSettings

POSTGRES_PORT = 5432
ANYWHERE = "0.0.0.0/0"
# AWS managed rule groups on the public ALB: OWASP-style common rules, known bad inputs (Log4j among them),
# SQL injection, and Amazon's IP reputation list ("AWS Managed Rules rule groups list").
WAF_MANAGED_RULE_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesSQLiRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)


@dataclass(frozen=True, kw_only=True)
class SecurityProps:
    settings: PlatformSettings
    vpc_id: str
    vpc_cidr: str
    public_subnet_ids: list[str]
    private_subnet_ids: list[str]
    alb_security_group_id: str  # created empty by the network module; its rules live here
    alb_arn: str | None = None  # with settings.waf_enabled: the ALB the web ACL protects
    kms_key_arn: str | None = None  # encrypts the WAF log group


class Security(Construct):
    """Least-privilege traffic: internet -> ALB -> ECS -> RDS, Batch -> RDS, nothing else inbound."""

    ecs_security_group_id: str
    batch_security_group_id: str
    rds_security_group_id: str
    lambda_security_group_id: str  # the pipeline's functions: HTTPS out, PostgreSQL to RDS
    web_acl_arn: str | None

    def __init__(self, scope: Construct, id_: str, *, props: SecurityProps) -> None:
        super().__init__(scope, id_)
        s = props.settings
        self._names = s
        alb = props.alb_security_group_id
        ecs = self._group("ecs", props.vpc_id, "ECS Fargate tasks: frontend and backend")
        batch = self._group("batch", props.vpc_id, "Batch GPU instances: no inbound traffic")
        rds = self._group("rds", props.vpc_id, "RDS PostgreSQL: only from ECS, Batch and the functions")
        functions = self._group("lambda", props.vpc_id, "Lambda functions: no inbound traffic")
        self._egress("lambda-https", functions, 443, description="HTTPS to AWS APIs via NAT/endpoints", cidr=ANYWHERE)
        self.lambda_security_group_id = functions
        self.web_acl_arn = self._web_acl(props, props.alb_arn) if s.waf_enabled and props.alb_arn else None

        self._ingress("alb-https", alb, 443, description="HTTPS from the internet", cidr=ANYWHERE)
        self._ingress("alb-http", alb, 80, description="HTTP from the internet (redirected to HTTPS)", cidr=ANYWHERE)
        self._egress("alb-to-frontend", alb, FRONTEND_PORT, description="ALB to frontend tasks", group=ecs)
        self._egress("alb-to-backend", alb, BACKEND_PORT, description="ALB to backend tasks", group=ecs)
        self._ingress("ecs-frontend", ecs, FRONTEND_PORT, description="Frontend from the ALB only", group=alb)
        self._ingress("ecs-backend", ecs, BACKEND_PORT, description="Backend from the ALB only", group=alb)
        self._egress("ecs-https", ecs, 443, description="HTTPS to AWS APIs and ECR via NAT/endpoints", cidr=ANYWHERE)
        self._egress("ecs-postgres", ecs, POSTGRES_PORT, description="PostgreSQL", group=rds)
        self._egress("batch-https", batch, 443, description="HTTPS to S3, ECR and Secrets Manager", cidr=ANYWHERE)
        self._egress("batch-postgres", batch, POSTGRES_PORT, description="PostgreSQL", group=rds)
        self._ingress("rds-from-ecs", rds, POSTGRES_PORT, description="PostgreSQL from ECS tasks", group=ecs)
        self._ingress("rds-from-batch", rds, POSTGRES_PORT, description="PostgreSQL from Batch jobs", group=batch)
        # The failure monitor marks a video FAILED when Batch ends its job (timeout, a kill on the last attempt).
        # The functions share one group; only the monitor's role may read the database secret. (The RDS group's
        # description stays: changing it would replace the group the instance uses.)
        self._egress("lambda-postgres", functions, POSTGRES_PORT, description="PostgreSQL", group=rds)
        self._ingress(
            "rds-from-lambda", rds, POSTGRES_PORT, description="PostgreSQL from Lambda functions", group=functions
        )

        # Managing the default group with no rules removes AWS's allow-all-within-group default.
        DefaultSecurityGroup(self, "default", vpc_id=props.vpc_id, tags={"Name": s.name("default-locked")})
        self._network_acls(props)

        self.ecs_security_group_id = ecs
        self.batch_security_group_id = batch
        self.rds_security_group_id = rds

    def _web_acl(self, props: SecurityProps, alb_arn: str) -> str:
        s = props.settings
        rules = [
            {
                "Name": group,
                "Priority": i,
                "OverrideAction": {"None": {}},
                "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": group}},
                "VisibilityConfig": {
                    "SampledRequestsEnabled": True,
                    "CloudWatchMetricsEnabled": True,
                    "MetricName": group,
                },
            }
            for i, group in enumerate(WAF_MANAGED_RULE_GROUPS)
        ]
        acl = Wafv2WebAcl(
            self,
            "web-acl",
            name=s.name("alb"),
            scope="REGIONAL",
            description="AWS managed rule groups in front of the public ALB",
            default_action=Wafv2WebAclDefaultAction(allow=Wafv2WebAclDefaultActionAllow()),
            rule_json=json.dumps(rules),
            visibility_config=Wafv2WebAclVisibilityConfig(
                cloudwatch_metrics_enabled=True, sampled_requests_enabled=True, metric_name=s.name("alb")
            ),
            tags={"Name": s.name("alb")},
        )
        Wafv2WebAclAssociation(self, "web-acl-alb", resource_arn=alb_arn, web_acl_arn=acl.arn)
        # WAF logs only to log groups whose name starts with aws-waf-logs-.
        logs = CloudwatchLogGroup(
            self,
            "web-acl-logs",
            name=f"aws-waf-logs-{s.prefix}",
            retention_in_days=s.log_retention_days,
            kms_key_id=props.kms_key_arn,
        )
        Wafv2WebAclLoggingConfiguration(
            self, "web-acl-logging", resource_arn=acl.arn, log_destination_configs=[logs.arn]
        )
        return acl.arn

    def _group(self, purpose: str, vpc_id: str, description: str) -> str:
        return SecurityGroup(
            self,
            f"{purpose}-sg",
            name=self._names.name(purpose),
            vpc_id=vpc_id,
            description=description,
            tags={"Name": self._names.name(purpose)},
        ).id

    def _ingress(self, id_: str, group_id: str, port: int, **source: str) -> None:
        self._rule(VpcSecurityGroupIngressRule, id_, group_id, port, **source)

    def _egress(self, id_: str, group_id: str, port: int, **destination: str) -> None:
        self._rule(VpcSecurityGroupEgressRule, id_, group_id, port, **destination)

    def _rule(
        self,
        rule_class: type,
        id_: str,
        group_id: str,
        port: int,
        *,
        description: str,
        cidr: str | None = None,
        group: str | None = None,
    ) -> None:
        """One TCP port to or from a CIDR or another security group; always described."""
        rule_class(
            self,
            id_,
            security_group_id=group_id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=description,
            cidr_ipv4=cidr,
            referenced_security_group_id=group,
            tags={"Name": self._names.name(id_)},
        )

    def _network_acls(self, props: SecurityProps) -> None:
        s = props.settings
        public = NetworkAcl(
            self,
            "public-nacl",
            vpc_id=props.vpc_id,
            subnet_ids=props.public_subnet_ids,
            tags={"Name": s.name("public")},
        )
        private = NetworkAcl(
            self,
            "private-nacl",
            vpc_id=props.vpc_id,
            subnet_ids=props.private_subnet_ids,
            tags={"Name": s.name("private")},
        )
        # (acl, rule number, egress, cidr, from, to); ephemeral ports carry return traffic (NACLs are stateless).
        rules = [
            ("public", public.id, 100, False, ANYWHERE, 443, 443),
            ("public", public.id, 110, False, ANYWHERE, 80, 80),
            ("public", public.id, 120, False, ANYWHERE, 1024, 65535),
            ("public", public.id, 100, True, ANYWHERE, 0, 65535),
            ("private", private.id, 100, False, s.vpc_cidr, 0, 65535),
            ("private", private.id, 110, False, ANYWHERE, 1024, 65535),
            ("private", private.id, 100, True, ANYWHERE, 0, 65535),
        ]
        for tier, acl_id, number, egress, cidr, low, high in rules:
            NetworkAclRule(
                self,
                f"{tier}-{'out' if egress else 'in'}-{number}",
                network_acl_id=acl_id,
                rule_number=number,
                egress=egress,
                protocol="tcp",
                rule_action="allow",
                cidr_block=cidr,
                from_port=low,
                to_port=high,
            )
