"""tests/live/module_view.py reads a module's outputs from the state the platform's apply left: checked on a state
Terraform itself wrote (`terraform state pull` after an apply of built-in `terraform_data` resources: one alone, one
with `count`, one with `for_each`, and a data source, which is no deployed resource)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.live.module_view import resolve, state_values

CONFIGURATION = {
    "resource": {"terraform_data": {
        "alone": {"input": "vpc-0123"},
        "counted": {"count": 2, "input": "subnet-${count.index}"},
        "keyed": {"for_each": {"a": "x", "b": "y"}, "input": "${each.value}"},
    }},
    "data": {"terraform_remote_state": {"elsewhere": {"backend": "local", "config": {"path": "other.tfstate"}}}},
}


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from deepsentinel import terraform

    stack = tmp_path_factory.mktemp("stack")
    (stack / "main.tf.json").write_text(json.dumps(CONFIGURATION))
    (stack / "other.tfstate").write_text(json.dumps({  # another stack's state, which the data source reads
        "version": 4, "serial": 1, "lineage": "other", "outputs": {"answer": {"value": 42, "type": "number"}},
        "resources": []}))
    env = terraform.environment(Path(stack) / "cli")
    terraform.init(stack, env=env)  # built in: nothing to install
    terraform.apply(stack, env=env)
    return terraform.state_pull(stack, env=env)


def test_each_managed_instance_is_found_by_its_address(state: dict):
    values = state_values(state)
    assert set(values) == {"terraform_data.alone", "terraform_data.counted[0]", "terraform_data.counted[1]",
                           'terraform_data.keyed["a"]', 'terraform_data.keyed["b"]'}  # no data source
    # as the state stores them: terraform_data's dynamically typed output keeps its type (the AWS attributes the
    # modules output are typed: a string is a string)
    assert values["terraform_data.counted[1]"]["output"] == {"type": "string", "value": "subnet-1"}
    assert values['terraform_data.keyed["b"]']["output"] == {"type": "string", "value": "y"}


def test_an_output_expression_resolves_to_the_applied_value(state: dict):
    values = state_values(state)
    assert resolve({"vpc_id": "${terraform_data.alone.output.value}", "ids": ["${terraform_data.alone.id}"]},
                   values) == {"vpc_id": "vpc-0123", "ids": [values["terraform_data.alone"]["id"]]}
    with pytest.raises(KeyError, match="terraform_data.gone is not in the platform's state"):
        resolve("${terraform_data.gone.output}", values)
