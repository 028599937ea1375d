"""Time one full local cycle of the dev platform on moto: apply, second plan, destroy.

    python benchmarks/live.py [--parallelism 30] [--env dev] [--workdir DIR]

Starts a moto server (deepsentinel.local_aws) on a free loopback port, synthesizes the environment with
every endpoint pointed at it, then times `terraform init`, `apply`, a second `plan -detailed-exitcode`
(must report no changes) and `destroy`. Goal: the whole cycle within 5 minutes on a 2-core machine; the
provider's own waits (SQS ~25 s, ALB ~60 s, RDS ~80 s, S3 lifecycle ~55 s) overlap at high parallelism.
Needs terraform and the AWS provider (DEEPSENTINEL_TF_PLUGIN_MIRROR=/opt/tf-plugins here).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from deepsentinel import terraform  # noqa: E402
from deepsentinel.local_aws import LocalAws  # noqa: E402
from deepsentinel.settings import ENVIRONMENTS, load_settings  # noqa: E402

GOAL_SECONDS = 300


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", choices=ENVIRONMENTS, default="dev")
    parser.add_argument("--parallelism", type=int, default=30)
    parser.add_argument("--workdir", type=Path, default=None, help="keep logs and state here (default: a temp dir)")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="deepsentinel-live-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    settings = load_settings(args.env)
    times: dict[str, float] = {}
    resources = 0
    second_plan_changes = None
    logs = {verb: open(workdir / f"terraform-{verb}.log", "w") for verb in ("init", "apply", "plan", "destroy")}

    created = []

    def logger(verb: str):
        def on_line(line: str) -> None:
            logs[verb].write(line + "\n")
            if verb == "apply" and ": Creation complete" in line:
                created.append(line)
        return on_line

    server = LocalAws.start(log_path=workdir / "moto.log")
    try:
        from deepsentinel.app import platform_stack_name, synth
        from deepsentinel.stacks.provider import StackOptions

        started = time.perf_counter()
        result = synth([settings], outdir=workdir / "cdktf.out", include_account_stack=False,
                       options=StackOptions(endpoint_url=server.endpoint_url, local_state_dir=str(workdir / "state")))
        stack_dir = result.stacks[platform_stack_name(settings)].parent
        times["synth"] = time.perf_counter() - started
        env = terraform.environment(workdir / ".terraform-cli")
        for verb, step in (
            ("init", lambda: terraform.init(stack_dir, env=env, on_line=logger("init"))),
            ("apply", lambda: terraform.apply(stack_dir, parallelism=args.parallelism, env=env,
                                              on_line=logger("apply"))),
            ("plan", lambda: terraform.plan(stack_dir, env=env, on_line=logger("plan"))),
            ("destroy", lambda: terraform.destroy(stack_dir, parallelism=args.parallelism, env=env,
                                                  on_line=logger("destroy"))),
        ):
            print(f"{verb} ...", flush=True)
            started = time.perf_counter()
            outcome = step()
            times[verb] = time.perf_counter() - started
            if verb == "plan":
                second_plan_changes = outcome
            if verb == "apply":
                resources = len(created)
            logs[verb].flush()
    except terraform.TerraformError as error:
        print(f"FAILED: {str(error)[-3000:]}\nlogs: {workdir}", file=sys.stderr)
        return 1
    finally:
        server.stop()
        for log in logs.values():
            log.close()

    cycle = times["apply"] + times["plan"] + times["destroy"]
    print(f"\n{platform_stack_name(settings)} on moto, {resources} resources, parallelism {args.parallelism}, "
          f"{os.cpu_count()} CPUs")
    for step in ("synth", "init", "apply", "plan", "destroy"):
        label = "second plan" if step == "plan" else step
        print(f"  {label:<12} {times[step]:7.1f} s")
    print(f"  {'cycle':<12} {cycle:7.1f} s   (apply + second plan + destroy; goal <= {GOAL_SECONDS} s: "
          f"{'met' if cycle <= GOAL_SECONDS else 'MISSED'})")
    print(f"  second plan: {'CHANGES (see terraform-plan.log)' if second_plan_changes else 'no changes'}")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"logs and state: {workdir}")
    return 0 if not second_plan_changes else 1


if __name__ == "__main__":
    sys.exit(main())
