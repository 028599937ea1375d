"""What Terraform's check of the provider's checksum costs each command.

    python benchmarks/terraform_checksum.py [--runs 5]

Every Terraform command that loads the configuration's providers (init, plan, apply, validate, output, show, state)
hashes the installed provider package and compares it with the `h1:` hash the dependency lock file recorded
("Dependency Lock File", Terraform documentation: checksums); the AWS provider is one 700-MB file, hashed whole each
time. This script writes a one-queue configuration that requires the provider version the stacks pin, initializes
it (the lock file as `terraform init` writes it), copies it to a second directory whose lock file names the same
version without `hashes` (which Terraform accepts, and then checks nothing), and runs `terraform output` and
`terraform validate` alternately in both. Prints each command's median CPU seconds (terraform and its provider: the
children of this process) both ways, and the SHA-256 of the provider file in this process (OpenSSL's) for scale. The
second directory is a measurement only: the toolkit keeps Terraform's check. Needs terraform and the provider
(DEEPSENTINEL_TF_PLUGIN_MIRROR).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from deepsentinel import terraform

LOCK_FILE = ".terraform.lock.hcl"
CONFIGURATION = {"terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": "5.100.0"}}},
                 "provider": {"aws": {"region": "us-east-1"}},
                 "resource": {"aws_sqs_queue": {"queue": {"name": "checksum-benchmark"}}}}
COMMANDS: dict[str, Callable[[Path, dict[str, str]], object]] = {
    "output": lambda stack_dir, env: terraform.outputs(stack_dir, env=env),
    "validate": lambda stack_dir, env: terraform.validate(stack_dir, env=env),
}


def cpu_of(command: Callable[[Path, dict[str, str]], object], stack_dir: Path, env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command(stack_dir, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def provider_file(stack_dir: Path) -> Path:
    """The provider's executable; init links the platform directory to the mirror's, so links are followed."""
    found = [Path(root) / name for root, _, names in os.walk(stack_dir / ".terraform" / "providers", followlinks=True)
             for name in names if name.startswith("terraform-provider-")]
    return max(found, key=lambda p: p.stat().st_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each command each way (default 5)")
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as work:
        checked = Path(work) / "checked"
        checked.mkdir()
        (checked / "main.tf.json").write_text(json.dumps(CONFIGURATION))
        env = terraform.environment(Path(work) / "cli")
        terraform.init(checked, env=env)
        unchecked = Path(work) / "unchecked"
        shutil.copytree(checked, unchecked, symlinks=True)
        lock = (unchecked / LOCK_FILE).read_text()
        (unchecked / LOCK_FILE).write_text(re.sub(r"\n\s*hashes\s*=\s*\[[^\]]*\]", "", lock))
        figures: dict[tuple[str, str], list[float]] = {}
        for _ in range(runs):
            for name, command in COMMANDS.items():
                for way, stack_dir in (("checked", checked), ("unchecked", unchecked)):
                    figures.setdefault((name, way), []).append(cpu_of(command, stack_dir, env))
        provider = provider_file(checked).resolve()
        started = time.process_time()
        with provider.open("rb") as stream:
            hashlib.file_digest(stream, "sha256")
        hashed = time.process_time() - started
    print(f"terraform commands on a one-queue configuration, {runs} runs each way, {os.cpu_count()} CPUs; "
          "CPU-s, median")
    print(f"{'command':<10} {'lock as init wrote it':>22} {'lock without hashes':>20} {'the check':>10}")
    for name in COMMANDS:
        with_check = statistics.median(figures[(name, "checked")])
        without = statistics.median(figures[(name, "unchecked")])
        print(f"{name:<10} {with_check:>22.2f} {without:>20.2f} {with_check - without:>10.2f}")
    print(f"SHA-256 of {provider.name} ({provider.stat().st_size / 2**20:.0f} MiB) in this process: {hashed:.2f} CPU-s")


if __name__ == "__main__":
    main()
