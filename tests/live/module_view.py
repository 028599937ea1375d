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


def state_values(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A state document (`terraform state pull`, format version 4): address -> attribute values of each managed
    resource, as the state stores them (a dynamically typed attribute keeps its {"type", "value"}; the AWS attributes
    the modules output are typed). A stack synthesized by cdktf has no modules; an instance of a resource with
    count or for_each is found by its index."""
    found: dict[str, dict[str, Any]] = {}
    for resource in state.get("resources", []):
        if resource["mode"] != "managed":
            continue
        address = ".".join(filter(None, [resource.get("module"), resource["type"], resource["name"]]))
        for instance in resource["instances"]:
            key = instance.get("index_key")
            found[address if key is None else f"{address}[{json.dumps(key)}]"] = instance["attributes"]
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


@dataclass
class ModuleOnPlatform:
    """What a module's tests read (clients, settings, outputs, the second plan, destroy), from the platform."""

    module: str
    platform: Any  # tests.live.harness.Deployment, applied
    outputs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, module: str, platform: Any, expressions: dict[str, Any]) -> ModuleOnPlatform:
        """`expressions`: module_output_expressions(module, ...), resolved on the state the platform's apply left."""
        return cls(module=module, platform=platform, outputs=resolve(expressions, state_values(platform.applied_state)))

    def __getattr__(self, name: str) -> Any:  # everything but the outputs is the platform's
        return getattr(self.platform, name)
