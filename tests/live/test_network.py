"""Network module alone: VPC, public/private routing, S3 endpoint, flow logs, ALB (mode 2 of the original)."""

from __future__ import annotations

import pytest

from deepsentinel.constructs.ports import BACKEND_PORT, FRONTEND_PORT
from tests.live.aws_checks import (get_flow_logs_for_vpc, get_listener_rules, get_load_balancer,
                                   get_load_balancer_listeners, get_nat_gateways_for_vpc, get_subnets_for_vpc,
                                   get_target_group, get_vpc_by_id, get_vpc_endpoints_for_vpc,
                                   is_private_subnet_behind_nat, is_public_subnet)

pytestmark = pytest.mark.live


def test_vpc_has_the_configured_cidr_and_dns(network_live):
    d = network_live
    vpc = get_vpc_by_id(d.clients, d.outputs["vpc_id"])
    assert vpc["CidrBlock"] == d.settings.vpc_cidr
    assert {"Key": "Project", "Value": d.settings.project} in vpc["Tags"]


def test_two_public_and_two_private_subnets_one_per_az(network_live):
    d = network_live
    subnets = {s["SubnetId"]: s for s in get_subnets_for_vpc(d.clients, d.outputs["vpc_id"])}
    public, private = d.outputs["public_subnet_ids"], d.outputs["private_subnet_ids"]
    assert len(public) == len(private) == 2 and set(public + private) <= set(subnets)
    for ids, cidrs in ((public, d.settings.public_subnet_cidrs), (private, d.settings.private_subnet_cidrs)):
        assert sorted(subnets[i]["CidrBlock"] for i in ids) == sorted(cidrs)
        assert sorted(subnets[i]["AvailabilityZone"] for i in ids) == sorted(d.settings.availability_zones)


def test_public_subnets_route_to_the_internet_gateway(network_live):
    d = network_live
    assert all(is_public_subnet(d.clients, s) for s in d.outputs["public_subnet_ids"])
    assert not any(is_public_subnet(d.clients, s) for s in d.outputs["private_subnet_ids"])


def test_private_subnets_route_to_the_nat_gateway(network_live):
    d = network_live
    assert all(is_private_subnet_behind_nat(d.clients, s) for s in d.outputs["private_subnet_ids"])
    nats = get_nat_gateways_for_vpc(d.clients, d.outputs["vpc_id"])
    assert len(nats) == 1  # dev: one shared NAT
    assert nats[0]["SubnetId"] in d.outputs["public_subnet_ids"]


def test_s3_gateway_endpoint_and_flow_logs(network_live):
    d = network_live
    endpoints = get_vpc_endpoints_for_vpc(d.clients, d.outputs["vpc_id"])
    assert [e["VpcEndpointType"] for e in endpoints if e["ServiceName"].endswith(".s3")] == ["Gateway"]
    logs = get_flow_logs_for_vpc(d.clients, d.outputs["vpc_id"])
    assert len(logs) == 1 and logs[0]["TrafficType"] == "ALL"


def test_alb_listener_forwards_to_frontend_and_routes_api_to_backend(network_live):
    d, out = network_live, network_live.outputs
    alb = get_load_balancer(d.clients, out["alb_arn"])
    assert alb.get("Scheme", "internet-facing") == "internet-facing"  # moto omits the default scheme
    assert alb["Type"] == "application"
    listeners = get_load_balancer_listeners(d.clients, out["alb_arn"])
    assert [(li["Port"], li["Protocol"]) for li in listeners] == [(80, "HTTP")]  # no domain: HTTP only
    assert listeners[0]["DefaultActions"][0]["TargetGroupArn"] == out["frontend_target_group_arn"]
    rules = [r for r in get_listener_rules(d.clients, out["alb_listener_arn"]) if not r.get("IsDefault")]
    assert rules[0]["Actions"][0]["TargetGroupArn"] == out["backend_target_group_arn"]
    condition = rules[0]["Conditions"][0]
    assert condition["Field"] == "path-pattern"
    assert "/api/*" in condition.get("PathPatternConfig", {}).get("Values", condition.get("Values", []))


def test_target_groups_frontend_3000_backend_8000(network_live):
    d, out = network_live, network_live.outputs
    frontend = get_target_group(d.clients, out["frontend_target_group_arn"])
    backend = get_target_group(d.clients, out["backend_target_group_arn"])
    assert (frontend["Port"], backend["Port"]) == (FRONTEND_PORT, BACKEND_PORT)
    assert frontend["TargetType"] == backend["TargetType"] == "ip"
    assert backend["HealthCheckPath"] == "/api/health/"


@pytest.mark.while_destroying  # the plan's outcome is kept: waiting for it never holds up the other checks
def test_second_plan_has_no_changes(network_live):
    d = network_live.wait_planned()
    assert d.second_plan_has_changes is False, d.second_plan_output


@pytest.mark.live_destroy
def test_destroy_leaves_nothing_of_the_project(network_live):
    assert network_live.destroy().leftovers == []
