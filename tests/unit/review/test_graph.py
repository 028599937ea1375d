"""`deepsentinel graph`: one cluster per module, edges from ${...} references."""

from __future__ import annotations

import re

from deepsentinel.commands.graph import build, render, to_dot
from deepsentinel.stacks.names import MODULES
from deepsentinel.synthesized import count_by_module


def test_graph_has_one_cluster_per_module_and_the_queue_edge(platform, tmp_path):
    graph = build("deepsentinel-prod", platform.prod)  # prod has every module (dev has no access-log bucket)
    assert graph.modules == sorted(MODULES)
    source = to_dot(graph).source
    assert sorted(re.findall(r"subgraph \"?(cluster_[\w-]+)", source)) == sorted(f"cluster_{m}" for m in MODULES)
    esm = [a for a in graph.nodes if a.startswith("aws_lambda_event_source_mapping.")]
    assert len(esm) == 1
    targets = {t for s, t in graph.edges if s == esm[0]}
    assert any(t.startswith("aws_sqs_queue.") and "jobs-queue" in t for t in targets)
    assert any(t.startswith("aws_lambda_function.") for t in targets)
    svg = render(graph, tmp_path / "platform.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "cluster_pipeline" in svg


def test_graph_command_on_synthesized_stacks(platform, tmp_path, capsys):
    from deepsentinel.cli import main

    out = tmp_path / "dev.png"
    assert main(["graph", "--stacks", str(platform.outdir), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    modules = len(count_by_module(platform.dev))  # the default stack drawn is dev
    assert f"{modules} modules" in capsys.readouterr().out and modules >= 7
