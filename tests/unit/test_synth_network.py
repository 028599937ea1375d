"""Network module as synthesized: VPC, subnets, NAT, routes, endpoints, flow logs, ALB."""

from __future__ import annotations

from tests.unit.synth_helpers import named, of_type, only, ref


def test_vpc_and_two_subnets_per_tier_in_two_azs(platform):
    _, vpc = only(platform.dev, "aws_vpc")
    assert vpc["cidr_block"] == "10.0.0.0/16" and vpc["enable_dns_hostnames"] is True
    subnets = of_type(platform.dev, "aws_subnet").values()
    tiers = {(s["tags"]["Tier"], s["availability_zone"], s["cidr_block"]) for s in subnets}
    assert tiers == {("public", "ap-northeast-2a", "10.0.1.0/24"), ("public", "ap-northeast-2c", "10.0.2.0/24"),
                     ("private", "ap-northeast-2a", "10.0.11.0/24"), ("private", "ap-northeast-2c", "10.0.12.0/24")}


def test_public_routes_to_the_igw_and_private_to_the_nat(platform):
    igw, _ = only(platform.dev, "aws_internet_gateway")
    nat, _ = only(platform.dev, "aws_nat_gateway")  # dev: one shared NAT
    routes = of_type(platform.dev, "aws_route").values()
    assert sum(r.get("gateway_id") == ref("aws_internet_gateway", igw) for r in routes) == 1
    assert sum(r.get("nat_gateway_id") == ref("aws_nat_gateway", nat) for r in routes) == 2
    assert len(of_type(platform.dev, "aws_route_table_association")) == 4


def test_prod_has_one_nat_per_az_and_interface_endpoints(platform):
    assert len(of_type(platform.prod, "aws_nat_gateway")) == 2
    endpoints = {e["service_name"]: e["vpc_endpoint_type"] for e in of_type(platform.prod, "aws_vpc_endpoint").values()}
    assert endpoints == {f"com.amazonaws.ap-northeast-2.{s}": "Interface"
                         for s in ("ecr.api", "ecr.dkr", "logs", "sqs", "secretsmanager", "bedrock-runtime")} | {
        "com.amazonaws.ap-northeast-2.s3": "Gateway"}
    dev_endpoints = [e["service_name"] for e in of_type(platform.dev, "aws_vpc_endpoint").values()]
    assert dev_endpoints == ["com.amazonaws.ap-northeast-2.s3"]


def test_flow_logs_capture_all_traffic_to_a_retained_log_group(platform):
    _, flow_log = only(platform.dev, "aws_flow_log")
    group_name, group = named(platform.dev, "aws_cloudwatch_log_group", "flow-log")
    assert flow_log["traffic_type"] == "ALL"
    assert flow_log["log_destination"] == ref("aws_cloudwatch_log_group", group_name, "arn")
    assert group["retention_in_days"] == 14


def test_alb_target_groups_and_path_routing(platform):
    _, alb = only(platform.dev, "aws_lb")
    assert alb["internal"] is False and alb["drop_invalid_header_fields"] is True
    groups = {g["name"]: (g["port"], g["target_type"]) for g in of_type(platform.dev, "aws_lb_target_group").values()}
    assert groups == {"deepsentinel-dev-frontend": (3000, "ip"), "deepsentinel-dev-backend": (8000, "ip")}
    _, rule = only(platform.dev, "aws_lb_listener_rule")
    assert rule["condition"][0]["path_pattern"]["values"] == ["/api/*", "/admin/*"]


def test_without_a_domain_there_is_no_zone_and_http_forwards(platform):
    assert not of_type(platform.dev, "aws_route53_zone") and not of_type(platform.dev, "aws_acm_certificate")
    _, listener = only(platform.dev, "aws_lb_listener")
    assert listener["port"] == 80 and listener["default_action"][0]["type"] == "forward"


def test_with_a_domain_http_redirects_to_https_with_a_dns_validated_certificate(tmp_path):
    from deepsentinel.app import synth
    from deepsentinel.settings import load_settings
    from deepsentinel.synthesized import load

    result = synth([load_settings("dev", overrides=["domain_name=video.example.com"])], outdir=tmp_path,
                   include_account_stack=False)
    document = load(result.stacks["deepsentinel-dev"])
    listeners = {l["port"]: l for l in of_type(document, "aws_lb_listener").values()}
    assert listeners[80]["default_action"][0]["redirect"] == {"port": "443", "protocol": "HTTPS",
                                                               "status_code": "HTTP_301"}
    validation_name, _ = only(document, "aws_acm_certificate_validation")
    assert listeners[443]["certificate_arn"] == ref("aws_acm_certificate_validation", validation_name,
                                                    "certificate_arn")
    _, certificate = only(document, "aws_acm_certificate")
    assert certificate["validation_method"] == "DNS"
    _, records = named(document, "aws_route53_record", "validation")
    assert "for_each" in records
    # The zone is looked up, never created (see test_no_environment_creates_a_hosted_zone).
    assert of_type(document, "aws_route53_zone") == {}
    (zone_name, zone), = document["data"]["aws_route53_zone"].items()
    assert (zone["name"], zone["private_zone"]) == ("video.example.com", False)
    assert records["zone_id"] == ref("data.aws_route53_zone", zone_name, "zone_id")


def test_no_environment_creates_a_hosted_zone(platform, tmp_path):
    """ACM's DNS validation completes only once the CNAME resolves publicly, i.e. once the registrar delegates to
    the zone's name servers ("Setting up DNS validation" and "Troubleshoot DNS validation problems", ACM User Guide:
    a certificate stays PENDING_VALIDATION until then), and a new zone gets new name servers ("Making Amazon Route 53
    the DNS service for an existing domain", Route 53 Developer Guide). So a zone is created once in the account
    stack (`hosted_zones`, name servers as an output) and an environment only looks it up: with
    hosted_zone_name, its records go into the parent zone."""
    from deepsentinel.app import synth
    from deepsentinel.settings import load_settings
    from deepsentinel.synthesized import load

    for document in (platform.dev, platform.prod):
        assert of_type(document, "aws_route53_zone") == {}
    assert platform.prod["data"]["aws_route53_zone"] and of_type(platform.prod, "aws_route53_record")
    assert of_type(platform.documents["deepsentinel-account"], "aws_route53_zone") == {}  # hosted_zones=()

    dev = load_settings("dev", overrides=["domain_name=dev.video.example.com", "hosted_zone_name=video.example.com",
                                          "hosted_zones=video.example.com"])
    result = synth([dev], outdir=tmp_path)
    document, account = (load(result.stacks[n]) for n in ("deepsentinel-dev", "deepsentinel-account"))
    assert of_type(document, "aws_route53_zone") == {}
    (zone_name, zone), = document["data"]["aws_route53_zone"].items()
    assert zone["name"] == "video.example.com"
    _, alias = named(document, "aws_route53_record", "alias")
    assert (alias["name"], alias["zone_id"]) == ("dev.video.example.com",
                                                 ref("data.aws_route53_zone", zone_name, "zone_id"))
    (account_zone_name, account_zone), = of_type(account, "aws_route53_zone").items()
    assert account_zone["name"] == "video.example.com"
    assert account["output"]["hosted_zone_name_servers"]["value"] == {
        "video.example.com": ref("aws_route53_zone", account_zone_name, "name_servers")}


def test_the_alb_waits_for_its_log_bucket_policy(platform):
    """ELB checks the log bucket's permissions when access logging is switched on and refuses with "Access Denied
    for bucket: ... Please check S3bucket permission" ("Enable access logs for your Application Load Balancer",
    Elastic Load Balancing User Guide): prod's ALB (access_logs_enabled) depends on the bucket policy that grants
    delivery, and dev's (no access logs) has no such dependency."""
    (alb_name, alb), = of_type(platform.prod, "aws_lb").items()
    assert alb["access_logs"]["enabled"] is True
    (policy_name, policy_config), = ((n, c) for n, c in of_type(platform.prod, "aws_s3_bucket_policy").items()
                                     if "access-logs" in c["//"]["metadata"]["path"])
    assert f"aws_s3_bucket_policy.{policy_name}" in alb["depends_on"]
    assert alb["access_logs"]["bucket"] == policy_config["bucket"].replace(".id}", ".bucket}")
    (_, dev_alb), = of_type(platform.dev, "aws_lb").items()
    assert "depends_on" not in dev_alb and "access_logs" not in dev_alb
