"""`deepsentinel graph`: the platform as a Graphviz picture (modules as clusters, references as edges).

Nodes are the resources of one synthesized stack; an edge A -> B means A's configuration contains a
`${B...}` expression (A depends on B). References to data sources and the provider are left out.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepsentinel.errors import OperationFailed

REF = re.compile(r"\$\{([a-z0-9_]+)\.([A-Za-z0-9_-]+)")
# Not the checkout's root: a generated picture there is untracked and unignored (cdktf.out/ is ignored).
DEFAULT_OUT_DIR = Path("cdktf.out")
MODULE_COLORS = {
    "network": "#e8f1fb",
    "security": "#fdecea",
    "storage": "#eaf6ea",
    "iam": "#fff6e0",
    "compute": "#efe9f8",
    "pipeline": "#e6f6f6",
    "stack": "#f2f2f2",
}


@dataclass(frozen=True)
class Graph:
    stack: str
    nodes: dict[str, tuple[str, str, str]]  # address -> (module, type, label)
    edges: set[tuple[str, str]]  # (from address, to address)

    @property
    def modules(self) -> list[str]:
        return sorted({m for m, _, _ in self.nodes.values()})


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def build(stack: str, document: dict[str, Any]) -> Graph:
    from deepsentinel.synthesized import resources

    items = list(resources(document))
    nodes = {r.address: (r.module, r.type, r.path.split("/", 1)[-1].split("/", 1)[-1]) for r in items}
    edges = set()
    for r in items:
        targets = {f"{t}.{n}" for s in _strings(r.config) for t, n in REF.findall(s)}
        targets |= {d for d in r.config.get("depends_on", []) if isinstance(d, str)}
        edges |= {(r.address, t) for t in targets if t in nodes and t != r.address}
    return Graph(stack, nodes, edges)


def to_dot(graph: Graph):
    import graphviz

    dot = graphviz.Digraph(
        graph.stack,
        graph_attr={
            "rankdir": "LR",
            "fontname": "Helvetica",
            "fontsize": "20",
            "label": f"{graph.stack}: {len(graph.nodes)} resources, {len(graph.edges)} references",
            "labelloc": "t",
            "nodesep": "0.15",
            "ranksep": "1.2",
            "compound": "true",
        },
        node_attr={
            "shape": "box",
            "style": "rounded,filled",
            "fillcolor": "white",
            "fontname": "Helvetica",
            "fontsize": "10",
        },
        edge_attr={"color": "#00000055", "arrowsize": "0.5"},
    )
    for module in graph.modules:
        with dot.subgraph(name=f"cluster_{module}") as cluster:
            cluster.attr(
                label=module,
                style="filled",
                color="#999999",
                fillcolor=MODULE_COLORS.get(module, "#f2f2f2"),
                fontsize="18",
            )
            for address, (m, rtype, label) in sorted(graph.nodes.items()):
                if m == module:
                    cluster.node(address, f"{label}\n{rtype.removeprefix('aws_')}", tooltip=address)
    for source, target in sorted(graph.edges):
        dot.edge(source, target)
    return dot


def render(graph: Graph, out: Path) -> Path:
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in ("svg", "png", "pdf", "dot"):
        raise ValueError(f"--out {out}: use .svg, .png, .pdf or .dot")
    dot = to_dot(graph)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "dot":
        out.write_text(dot.source)
        return out
    import graphviz

    try:
        data = dot.pipe(format=fmt)
    except graphviz.ExecutableNotFound as error:
        raise OperationFailed(
            f"Graphviz's `dot` is not on PATH, needed to draw {out.name} (install Debian's "
            "graphviz package, or write --out FILE.dot and render it elsewhere)"
        ) from error
    out.write_bytes(data)
    return out


def add_arguments(parser: argparse.ArgumentParser, name: str = "graph") -> None:
    from deepsentinel.commands.arguments import add_settings_arguments

    add_settings_arguments(parser, multiple_envs=False, out_help=None)
    parser.add_argument(
        "--out",
        metavar="FILE.svg|.png",
        help="picture to write (.svg, .png, .pdf or .dot; default "
        f"{DEFAULT_OUT_DIR}/platform-<env>.svg, which git ignores)",
    )
    parser.add_argument(
        "--stacks",
        type=Path,
        metavar="DIR",
        help="draw already synthesized stacks (<DIR>/stacks/<stack>/cdk.tf.json) instead of synthesizing",
    )


def run(args: argparse.Namespace) -> int:
    from deepsentinel.synthesized import load, stack_files

    env = args.env or "dev"
    stack = f"deepsentinel-{env}"
    out = Path(args.out) if args.out else DEFAULT_OUT_DIR / f"platform-{env}.svg"
    with tempfile.TemporaryDirectory(prefix="deepsentinel-graph-") as tmp:
        if args.stacks:
            files = stack_files(args.stacks)
        else:
            os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
            from deepsentinel.app import synth
            from deepsentinel.commands.arguments import settings_from_args

            args.env = env
            files = synth(settings_from_args(args), outdir=Path(tmp), include_account_stack=False).stacks
        if stack not in files:
            print(f"error: no stack {stack} (have: {', '.join(files) or 'none'})", file=sys.stderr)
            return 2
        graph = build(stack, load(files[stack]))
    try:
        render(graph, out)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out}: {len(graph.modules)} modules, {len(graph.nodes)} resources, {len(graph.edges)} references")
    return 0
