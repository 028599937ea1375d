"""Security module on its network: group rules (each described), NACLs, locked default group."""

from __future__ import annotations

import pytest

from tests.live.aws_checks import (get_default_security_group, get_network_acls_for_vpc,
                                   get_security_group_rules)

pytestmark = pytest.mark.live


def _ingress(d, group_key):
    return [r for r in get_security_group_rules(d.clients, d.outputs[group_key]) if not r["IsEgress"]]


def test_alb_accepts_https_and_http_from_the_internet_only(security_live):
    rules = _ingress(security_live, "alb_security_group_id")
    assert sorted((r["FromPort"], r["CidrIpv4"]) for r in rules) == [(80, "0.0.0.0/0"), (443, "0.0.0.0/0")]


def test_ecs_tasks_accept_3000_and_8000_from_the_alb_only(security_live):
    d = security_live
    rules = _ingress(d, "ecs_security_group_id")
    assert sorted(r["FromPort"] for r in rules) == [3000, 8000]
    assert {r["ReferencedGroupInfo"]["GroupId"] for r in rules} == {d.outputs["alb_security_group_id"]}


def test_rds_accepts_5432_from_ecs_batch_and_the_functions_only(security_live):
    """The functions' group too: batch_failure_monitor marks a video FAILED when Batch ends its job for good."""
    d = security_live
    rules = _ingress(d, "rds_security_group_id")
    assert {r["FromPort"] for r in rules} == {5432}
    assert {r["ReferencedGroupInfo"]["GroupId"] for r in rules} == {d.outputs["ecs_security_group_id"],
                                                                     d.outputs["batch_security_group_id"],
                                                                     d.outputs["lambda_security_group_id"]}


def test_batch_instances_accept_nothing_inbound(security_live):
    assert _ingress(security_live, "batch_security_group_id") == []


def test_every_rule_has_a_description(security_live):
    d = security_live
    for key in ("alb_security_group_id", "ecs_security_group_id", "batch_security_group_id",
                "rds_security_group_id"):
        for rule in get_security_group_rules(d.clients, d.outputs[key]):
            assert rule.get("Description"), f"{key}: rule {rule['SecurityGroupRuleId']} has no description"


def test_default_security_group_has_no_rules(security_live):
    d = security_live
    group = get_default_security_group(d.clients, d.outputs["vpc_id"])
    assert group["IpPermissions"] == [] and group["IpPermissionsEgress"] == []


def test_public_and_private_subnets_have_their_own_nacls(security_live):
    d = security_live
    acls = [a for a in get_network_acls_for_vpc(d.clients, d.outputs["vpc_id"]) if not a["IsDefault"]]
    associated = {tuple(sorted(x["SubnetId"] for x in a["Associations"])) for a in acls}
    assert tuple(sorted(d.outputs["public_subnet_ids"])) in associated
    assert tuple(sorted(d.outputs["private_subnet_ids"])) in associated


@pytest.mark.while_destroying  # the plan's outcome is kept: waiting for it never holds up the other checks
def test_second_plan_has_no_changes(security_live):
    d = security_live.wait_planned()
    assert d.second_plan_has_changes is False, d.second_plan_output


@pytest.mark.live_destroy
def test_destroy_leaves_nothing_of_the_project(security_live):
    assert security_live.destroy().leftovers == []
