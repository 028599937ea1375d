"""Security module: every rule, in both directions, with a description; NACLs; default SG."""

from __future__ import annotations

from tests.unit.synth_helpers import named, of_type, only, ref


def groups(document):
    return {c["name"].removeprefix("deepsentinel-dev-"): ref("aws_security_group", n)
            for n, c in of_type(document, "aws_security_group").items()}


def rules(document, direction):
    by_id = {v: k for k, v in groups(document).items()}
    return {(by_id[r["security_group_id"]], r["from_port"], r["to_port"],
             by_id.get(r.get("referenced_security_group_id"), r.get("cidr_ipv4")))
            for r in of_type(document, f"aws_vpc_security_group_{direction}_rule").values()}


def test_every_rule_has_a_description(platform):
    for direction in ("ingress", "egress"):
        for name, rule in of_type(platform.dev, f"aws_vpc_security_group_{direction}_rule").items():
            assert rule["description"], name


def test_ingress_rules_exactly(platform):
    assert rules(platform.dev, "ingress") == {
        ("alb", 443, 443, "0.0.0.0/0"), ("alb", 80, 80, "0.0.0.0/0"),
        ("ecs", 3000, 3000, "alb"), ("ecs", 8000, 8000, "alb"),
        ("rds", 5432, 5432, "ecs"), ("rds", 5432, 5432, "batch"), ("rds", 5432, 5432, "lambda"),
    }


def test_rds_accepts_postgres_only_from_ecs_batch_and_the_functions(platform):
    """The functions' group reaches RDS because the failure monitor marks videos FAILED there."""
    assert {src for group, *_, src in rules(platform.dev, "ingress") if group == "rds"} == {"ecs", "batch", "lambda"}


def test_functions_reach_aws_apis_and_postgres_only(platform):
    assert {r for r in rules(platform.dev, "egress") if r[0] == "lambda"} == {
        ("lambda", 443, 443, "0.0.0.0/0"), ("lambda", 5432, 5432, "rds")}


def test_batch_has_no_inbound_rules_and_egress_is_explicit(platform):
    assert not [r for r in rules(platform.dev, "ingress") if r[0] == "batch"]
    assert {r for r in rules(platform.dev, "egress") if r[0] == "batch"} == {
        ("batch", 443, 443, "0.0.0.0/0"), ("batch", 5432, 5432, "rds")}


def test_default_security_group_has_no_rules(platform):
    _, default = only(platform.dev, "aws_default_security_group")
    assert "ingress" not in default and "egress" not in default


def test_nacls_cover_both_tiers(platform):
    acls = of_type(platform.dev, "aws_network_acl")
    assert len(acls) == 2 and all(len(a["subnet_ids"]) == 2 for a in acls.values())
    public_name, _ = named(platform.dev, "aws_network_acl", "public")
    public_inbound = {(r["from_port"], r["to_port"]) for r in of_type(platform.dev, "aws_network_acl_rule").values()
                      if r["network_acl_id"] == ref("aws_network_acl", public_name) and not r["egress"]}
    assert public_inbound == {(443, 443), (80, 80), (1024, 65535)}
