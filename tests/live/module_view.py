"""A module's live checks on the platform deployment, which contains every module.

The platform stack builds the network, security and storage constructs under the same construct paths as the
module stacks of tests/live/stacks.py, so their resources have the same Terraform addresses. A module's outputs
are therefore its own stack's output expressions (synthesized, not typed here) resolved against the platform's
applied state: the checks read what was deployed. Deploying a module alone (Mode 2) stays one option away:
`pytest tests/live/test_network.py --live-modules`.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepsentinel import terraform

# cdktf renders a construct attribute as "${<type>.<name>.<attribute path>}" (see the synthesized cdk.tf.json)
REFERENCE = re.compile(r"^\$\{(?P<type>[a-z0-9_]+)\.(?P<name>[A-Za-z0-9_-]+)\.(?P<path>[A-Za-z0-9_.\[\]]+)\}$")


def module_output_expressions(module: str, settings: Any) -> dict[str, Any]:
    """The module stack's `output` block: name -> expression (jsii: the caller's thread)."""
    from cdktf import App

    from deepsentinel.stacks.provider import StackOptions
    from tests.live.harness import STACK
    from tests.live.stacks import module_builder

    with tempfile.TemporaryDirectory(prefix=f"module-{module}-") as outdir:
        app = App(outdir=outdir)
        module_builder(module)(app, settings, StackOptions(endpoint_url="http://127.0.0.1:1",
                                                           local_state_dir=f"{outdir}/state"))
        app.synth()
        document = json.loads((Path(outdir) / "stacks" / STACK / "cdk.tf.json").read_text())
    return {name: output["value"] for name, output in document["output"].items()}


def state_values(show_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`terraform show -json` of a state: address -> attribute values (every module, depth first)."""
    found: dict[str, dict[str, Any]] = {}
    pending = [show_json.get("values", {}).get("root_module", {})]
    while pending:
        module = pending.pop()
        found |= {resource["address"]: resource["values"] for resource in module.get("resources", [])}
        pending.extend(module.get("child_modules", []))
    return found


def resolve(expression: Any, values: dict[str, dict[str, Any]]) -> Any:
    """An output expression made only of plain references, lists and maps, evaluated on state values."""
    if isinstance(expression, list):
        return [resolve(item, values) for item in expression]
    if isinstance(expression, dict):
        return {key: resolve(item, values) for key, item in expression.items()}
    match = REFERENCE.match(expression) if isinstance(expression, str) else None
    if match is None:
        raise ValueError(f"not a plain reference, cannot resolve it from the state: {expression!r}")
    address = f"{match['type']}.{match['name']}"
    if address not in values:
        raise KeyError(f"{address} is not in the platform's state: the module's construct path differs")
    value: Any = values[address]
    for step in re.findall(r"[A-Za-z0-9_]+|\[\d+\]", match["path"]):
        value = value[int(step[1:-1])] if step.startswith("[") else value[step]
    return value


_APPLIED_VALUES: dict[Path, dict[str, Any]] = {}


def applied_values(platform: Any) -> dict[str, Any]:
    """The platform's state values by address, read once per deployment (`terraform show -json` starts the provider
    and renders the whole state: one read serves the three modules; nothing applies while the checks run)."""
    if platform.stack_dir not in _APPLIED_VALUES:
        shown = terraform.run(["show", "-json", "-no-color"], platform.stack_dir, env=platform.tf_env()).stdout
        _APPLIED_VALUES[platform.stack_dir] = state_values(json.loads(shown[shown.find("{"):]))
    return _APPLIED_VALUES[platform.stack_dir]


@dataclass
class ModuleOnPlatform:
    """What a module's tests read (clients, settings, outputs, the second plan, destroy), from the platform."""

    module: str
    platform: Any  # tests.live.harness.Deployment, applied
    outputs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, module: str, platform: Any) -> ModuleOnPlatform:
        expressions = module_output_expressions(module, platform.settings)
        return cls(module=module, platform=platform, outputs=resolve(expressions, applied_values(platform)))

    def __getattr__(self, name: str) -> Any:  # everything but the outputs is the platform's
        return getattr(self.platform, name)
