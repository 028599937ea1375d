"""Remove what live runs left: kept deployments (`--live-keep`) and those of a killed run.

    python -m tests.live.sweep [--root DIR ...] [--project NAME] [--dry-run]

Each live deployment writes `deployment.json` in its working directory when it is prepared and removes it
once destroyed, so a record still there is a deployment that was kept or whose run died. For each one
the sweeper destroys the stack from its own state (every resource type, in dependency order), checks
that nothing tagged `Project=<project>` or named `<prefix>-*` is left, and stops its moto server.
On AWS each run has a unique project (`dst<6 hex>`), the prefix tag the sweeper reports leftovers by;
`--project` limits a sweep to one run. Default roots: pytest's temporary directories of this user.
"""

from __future__ import annotations

import argparse
import getpass
import json
import shutil
import sys
import tempfile
from pathlib import Path

from deepsentinel import terraform
from tests.live.aws_checks import Clients
from tests.live.harness import RECORD, destroy_stack, project_leftovers


def default_roots() -> list[Path]:
    return sorted(Path(tempfile.gettempdir()).glob(f"pytest-of-{getpass.getuser()}/pytest-*"))


def records(roots: list[Path], project: str | None) -> list[Path]:
    found = sorted({p.resolve() for root in roots for p in ([root / RECORD] if (root / RECORD).is_file()
                                                            else root.rglob(RECORD))})
    return [p for p in found if project is None or json.loads(p.read_text())["project"] == project]


def sweep(record_path: Path, *, dry_run: bool, log=print) -> list[str]:
    """Destroy one recorded deployment; return what is still left of its project."""
    from deepsentinel.local.server import LocalAws

    record = json.loads(record_path.read_text())
    workdir = record_path.parent
    label = f"{record['name']} ({record['target']}, project {record['project']}, {workdir})"
    server = None
    if record["target"] == "moto":
        server = LocalAws.find(workdir / "server.json")
        if server is None:
            log(f"{label}: its moto server is gone, and its resources with it")
            if not dry_run:
                record_path.unlink()
            return []
    stack_dir = Path(record["stack_dir"])
    if dry_run:
        log(f"{label}: would destroy {stack_dir}" + (f" and stop the moto server {server.pid}" if server else ""))
        return []
    if (stack_dir / ".terraform").is_dir():
        log(f"{label}: terraform destroy ...")
        env = terraform.environment(workdir / ".terraform-cli", endpoint_url=server.endpoint_url if server else None)
        destroy_stack(stack_dir, env, parallelism=30, log=lambda _: None)
    leftovers = project_leftovers(Clients(region=record["region"], endpoint_url=record["endpoint_url"]), record)
    if server is not None:
        server.stop(workdir / "server.json")
    if leftovers:
        log(f"{label}: still there after the destroy:\n  " + "\n  ".join(leftovers))
    else:
        log(f"{label}: destroyed; nothing of {record['prefix']} is left")
        record_path.unlink()
        shutil.rmtree(workdir / "cdktf.out", ignore_errors=True)
    return leftovers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.live.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, action="append", default=[],
                        help="a --live-workdir or a deployment's directory (repeatable; default: pytest's tmp dirs)")
    parser.add_argument("--project", help="only the run with this project name (dst<hex> on AWS)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be removed")
    args = parser.parse_args(argv)
    found = records(args.root or default_roots(), args.project)
    if not found:
        print("nothing to sweep: no deployment record (deployment.json) under "
              + ", ".join(str(r) for r in (args.root or default_roots())))
        return 0
    left = [item for path in found for item in sweep(path, dry_run=args.dry_run)]
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
