"""Network: VPC, subnets, NAT, endpoints, flow logs, the ALB and (optionally) DNS + certificate."""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf import ITerraformDependable, TerraformIterator, Token
from cdktf_cdktf_provider_aws.acm_certificate import AcmCertificate
from cdktf_cdktf_provider_aws.acm_certificate_validation import AcmCertificateValidation
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.data_aws_route53_zone import DataAwsRoute53Zone
from cdktf_cdktf_provider_aws.eip import Eip
from cdktf_cdktf_provider_aws.flow_log import FlowLog
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.internet_gateway import InternetGateway
from cdktf_cdktf_provider_aws.lb import Lb, LbAccessLogs
from cdktf_cdktf_provider_aws.lb_listener import LbListener, LbListenerDefaultAction, LbListenerDefaultActionRedirect
from cdktf_cdktf_provider_aws.lb_listener_rule import (
    LbListenerRule,
    LbListenerRuleAction,
    LbListenerRuleCondition,
    LbListenerRuleConditionPathPattern,
)
from cdktf_cdktf_provider_aws.lb_target_group import LbTargetGroup, LbTargetGroupHealthCheck
from cdktf_cdktf_provider_aws.nat_gateway import NatGateway
from cdktf_cdktf_provider_aws.route import Route
from cdktf_cdktf_provider_aws.route53_record import Route53Record, Route53RecordAlias
from cdktf_cdktf_provider_aws.route_table import RouteTable
from cdktf_cdktf_provider_aws.route_table_association import RouteTableAssociation
from cdktf_cdktf_provider_aws.security_group import SecurityGroup, SecurityGroupIngress
from cdktf_cdktf_provider_aws.subnet import Subnet
from cdktf_cdktf_provider_aws.vpc import Vpc
from cdktf_cdktf_provider_aws.vpc_endpoint import VpcEndpoint
from constructs import Construct

from deepsentinel.constructs.access_logs import ALB_LOG_PREFIX
from deepsentinel.constructs.policies import assume_role_policy
from deepsentinel.constructs.ports import BACKEND_PORT, FRONTEND_PORT
from deepsentinel.settings import PlatformSettings

# bedrock-runtime: the backend's InvokeModel calls (answers, embeddings) stay in the VPC. Rerank goes to
# bedrock-agent-runtime in settings.bedrock_rerank_region (not offered here), through the NAT.
INTERFACE_ENDPOINT_SERVICES = ("ecr.api", "ecr.dkr", "logs", "sqs", "secretsmanager", "bedrock-runtime")
BACKEND_PATHS = ("/api/*", "/admin/*")


@dataclass(frozen=True, kw_only=True)
class NetworkProps:
    settings: PlatformSettings
    kms_key_arn: str | None = None  # encrypts the flow-log group; None: CloudWatch Logs' own encryption
    access_log_bucket: str | None = None  # ALB access logs go here (under alb/); None: no access logs
    access_log_ready: tuple[ITerraformDependable, ...] = ()  # the log bucket's policy: the ALB is created after it


class Network(Construct):
    """The VPC and everything in front of it.

    Without `settings.domain_name` there is no certificate, record or HTTPS listener: the ALB serves
    HTTP on :80 and forwards. With a domain, :80 redirects to :443, and the certificate's validation records
    and the ALB alias go into the existing public zone `settings.zone_name` (created by the account stack's
    `hosted_zones` or elsewhere, and delegated by the registrar). The ALB gets an empty security
    group here; its rules are the security module's.
    """

    vpc_id: str
    vpc_cidr: str
    public_subnet_ids: list[str]
    private_subnet_ids: list[str]
    private_route_table_ids: list[str]
    alb_arn: str
    alb_arn_suffix: str  # app/<name>/<id>: the LoadBalancer dimension of the AWS/ApplicationELB metrics
    alb_dns_name: str
    alb_security_group_id: str
    frontend_target_group_arn: str
    backend_target_group_arn: str
    alb_listener_arn: str
    load_balancer_ready: list[ITerraformDependable]  # listeners and rules: ECS services wait for them
    zone_id: str | None
    certificate_arn: str | None

    def __init__(self, scope: Construct, id_: str, *, props: NetworkProps) -> None:
        super().__init__(scope, id_)
        s = props.settings
        vpc = Vpc(
            self,
            "vpc",
            cidr_block=s.vpc_cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": s.name("vpc")},
        )
        igw = InternetGateway(self, "igw", vpc_id=vpc.id, tags={"Name": s.name("igw")})
        public = [
            Subnet(
                self,
                f"public-{i}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=az,
                map_public_ip_on_launch=False,
                tags={"Name": s.name("public", az[-1]), "Tier": "public"},
            )
            for i, (az, cidr) in enumerate(zip(s.availability_zones, s.public_subnet_cidrs, strict=True))
        ]
        private = [
            Subnet(
                self,
                f"private-{i}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=az,
                tags={"Name": s.name("private", az[-1]), "Tier": "private"},
            )
            for i, (az, cidr) in enumerate(zip(s.availability_zones, s.private_subnet_cidrs, strict=True))
        ]

        public_rt = RouteTable(self, "public-rt", vpc_id=vpc.id, tags={"Name": s.name("public")})
        Route(
            self, "public-default", route_table_id=public_rt.id, destination_cidr_block="0.0.0.0/0", gateway_id=igw.id
        )
        for i, subnet in enumerate(public):
            RouteTableAssociation(self, f"public-assoc-{i}", subnet_id=subnet.id, route_table_id=public_rt.id)

        nat_count = len(public) if s.nat_per_az else 1
        nats = []
        for i in range(nat_count):
            eip = Eip(self, f"nat-eip-{i}", domain="vpc", tags={"Name": s.name("nat", str(i))})
            nats.append(
                NatGateway(
                    self,
                    f"nat-{i}",
                    allocation_id=eip.id,
                    subnet_id=public[i].id,
                    tags={"Name": s.name("nat", str(i))},
                    depends_on=[igw],
                )
            )
        private_rts = []
        for i, subnet in enumerate(private):
            rt = RouteTable(self, f"private-rt-{i}", vpc_id=vpc.id, tags={"Name": s.name("private", str(i))})
            Route(
                self,
                f"private-default-{i}",
                route_table_id=rt.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nats[i % nat_count].id,
            )
            RouteTableAssociation(self, f"private-assoc-{i}", subnet_id=subnet.id, route_table_id=rt.id)
            private_rts.append(rt)

        # S3 traffic (videos, highlights) skips the NAT: a gateway endpoint is free, NAT bytes are not.
        VpcEndpoint(
            self,
            "s3-endpoint",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{s.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in private_rts],
            tags={"Name": s.name("s3")},
        )
        if s.interface_endpoints:
            endpoint_sg = SecurityGroup(
                self,
                "endpoints-sg",
                name=s.name("endpoints"),
                vpc_id=vpc.id,
                description="Interface endpoints: HTTPS from inside the VPC",
                ingress=[
                    SecurityGroupIngress(
                        from_port=443,
                        to_port=443,
                        protocol="tcp",
                        cidr_blocks=[s.vpc_cidr],
                        description="HTTPS from the VPC",
                    )
                ],
                tags={"Name": s.name("endpoints")},
            )
            for service in INTERFACE_ENDPOINT_SERVICES:
                VpcEndpoint(
                    self,
                    f"{service.replace('.', '-')}-endpoint",
                    vpc_id=vpc.id,
                    service_name=f"com.amazonaws.{s.region}.{service}",
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=[p.id for p in private],
                    security_group_ids=[endpoint_sg.id],
                    tags={"Name": s.name(service.replace(".", "-"))},
                )

        self._flow_logs(s, vpc.id, props.kms_key_arn)

        alb_sg = SecurityGroup(
            self,
            "alb-sg",
            name=s.name("alb"),
            vpc_id=vpc.id,
            description="ALB: rules are managed by the security module",
            tags={"Name": s.name("alb")},
        )
        alb = Lb(
            self,
            "alb",
            name=s.name("alb"),
            load_balancer_type="application",
            internal=False,
            security_groups=[alb_sg.id],
            subnets=[p.id for p in public],
            drop_invalid_header_fields=True,
            enable_deletion_protection=s.deletion_protection,
            tags={"Name": s.name("alb")},
            access_logs=LbAccessLogs(bucket=props.access_log_bucket, prefix=ALB_LOG_PREFIX, enabled=True)
            if props.access_log_bucket
            else None,
            depends_on=list(props.access_log_ready) or None,
        )
        frontend_tg = self._target_group(s, "frontend", FRONTEND_PORT, "/", vpc.id)
        backend_tg = self._target_group(s, "backend", BACKEND_PORT, "/api/health/", vpc.id)

        self.zone_id = None
        self.certificate_arn = None
        if s.domain_name is None:
            http = listener = LbListener(
                self,
                "http",
                load_balancer_arn=alb.arn,
                port=80,
                protocol="HTTP",
                default_action=[LbListenerDefaultAction(type="forward", target_group_arn=frontend_tg.arn)],
            )
        else:
            certificate_arn = self._dns_and_certificate(s, alb)
            http = LbListener(
                self,
                "http",
                load_balancer_arn=alb.arn,
                port=80,
                protocol="HTTP",
                default_action=[
                    LbListenerDefaultAction(
                        type="redirect",
                        redirect=LbListenerDefaultActionRedirect(port="443", protocol="HTTPS", status_code="HTTP_301"),
                    )
                ],
            )
            listener = LbListener(
                self,
                "https",
                load_balancer_arn=alb.arn,
                port=443,
                protocol="HTTPS",
                ssl_policy="ELBSecurityPolicy-TLS13-1-2-2021-06",
                certificate_arn=certificate_arn,
                default_action=[LbListenerDefaultAction(type="forward", target_group_arn=frontend_tg.arn)],
            )
        backend_rule = LbListenerRule(
            self,
            "backend-rule",
            listener_arn=listener.arn,
            priority=10,
            action=[LbListenerRuleAction(type="forward", target_group_arn=backend_tg.arn)],
            condition=[
                LbListenerRuleCondition(path_pattern=LbListenerRuleConditionPathPattern(values=list(BACKEND_PATHS)))
            ],
        )

        self.vpc_id = vpc.id
        self.vpc_cidr = s.vpc_cidr
        self.public_subnet_ids = [p.id for p in public]
        self.private_subnet_ids = [p.id for p in private]
        self.private_route_table_ids = [rt.id for rt in private_rts]
        self.alb_arn = alb.arn
        self.alb_arn_suffix = alb.arn_suffix
        self.alb_dns_name = alb.dns_name
        self.alb_security_group_id = alb_sg.id
        self.frontend_target_group_arn = frontend_tg.arn
        self.backend_target_group_arn = backend_tg.arn
        self.alb_listener_arn = listener.arn
        self.load_balancer_ready = list({id(r): r for r in (http, listener, backend_rule)}.values())

    def _flow_logs(self, s: PlatformSettings, vpc_id: str, kms_key_arn: str | None) -> None:
        group = CloudwatchLogGroup(
            self,
            "flow-log-group",
            name=f"/vpc/{s.name('flow-logs')}",
            retention_in_days=s.flow_log_retention_days,
            kms_key_id=kms_key_arn,
        )
        role = IamRole(
            self,
            "flow-log-role",
            name=s.name("vpc-flow-logs"),
            assume_role_policy=assume_role_policy("vpc-flow-logs.amazonaws.com"),
        )
        IamRolePolicy(
            self,
            "flow-log-policy",
            name="write-flow-logs",
            role=role.id,
            policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                            "Resource": f"{group.arn}:*",
                        }
                    ],
                }
            ),
        )
        FlowLog(
            self,
            "flow-log",
            vpc_id=vpc_id,
            traffic_type="ALL",
            log_destination=group.arn,
            log_destination_type="cloud-watch-logs",
            iam_role_arn=role.arn,
            tags={"Name": s.name("flow-logs")},
        )

    def _target_group(
        self, s: PlatformSettings, service: str, port: int, health_path: str, vpc_id: str
    ) -> LbTargetGroup:
        return LbTargetGroup(
            self,
            f"{service}-tg",
            name=s.name(service),
            port=port,
            protocol="HTTP",
            target_type="ip",
            vpc_id=vpc_id,
            deregistration_delay="30",
            health_check=LbTargetGroupHealthCheck(
                path=health_path, matcher="200-399", interval=30, healthy_threshold=2, unhealthy_threshold=3
            ),
            tags={"Name": s.name(service)},
        )

    def _dns_and_certificate(self, s: PlatformSettings, alb: Lb) -> str:
        assert s.domain_name is not None and s.zone_name is not None
        # Looked up, never created: a new zone has new name servers, and ACM's DNS validation waits until the
        # registrar delegates to them ("Setting up DNS validation", ACM User Guide), which outlives any apply.
        zone = DataAwsRoute53Zone(self, "zone", name=s.zone_name, private_zone=False)
        # The apex only: the ALB alias is the one name served (a wildcard would cover names nobody owns).
        cert = AcmCertificate(
            self,
            "certificate",
            domain_name=s.domain_name,
            validation_method="DNS",
            lifecycle={"create_before_destroy": True},
            tags={"Name": s.domain_name},
        )
        options = TerraformIterator.from_complex_list(cert.domain_validation_options, "domain_name")
        records = Route53Record(
            self,
            "certificate-validation-records",
            for_each=options,
            allow_overwrite=True,
            zone_id=zone.zone_id,
            ttl=60,
            name=options.get_string("resource_record_name"),
            type=options.get_string("resource_record_type"),
            records=[options.get_string("resource_record_value")],
        )
        validation = AcmCertificateValidation(
            self,
            "certificate-validation",
            certificate_arn=cert.arn,
            validation_record_fqdns=Token.as_list(TerraformIterator.from_resources(records).pluck_property("fqdn")),
        )
        Route53Record(
            self,
            "alb-alias",
            zone_id=zone.zone_id,
            name=s.domain_name,
            type="A",
            alias=Route53RecordAlias(name=alb.dns_name, zone_id=alb.zone_id, evaluate_target_health=True),
        )
        self.zone_id = zone.zone_id
        self.certificate_arn = validation.certificate_arn
        return validation.certificate_arn
