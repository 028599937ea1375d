"""Time `deploy --local` and `destroy --local` of an environment on moto, per phase and per resource.

    python benchmarks/live.py [--parallelism 30] [--env dev] [--workdir DIR] [--top 15]

Runs the steps of `deepsentinel deploy --local` one by one, timing each: start a moto server
(deepsentinel.local.server) in the working directory, bootstrap it (the account stack, its state moved into
the state bucket on the server), synthesize the environment for it, `terraform init` against that bucket,
`apply`, `output`; then a second `plan -detailed-exitcode` (must report no changes) and the steps of
`destroy --local --terraform` (`destroy`, stop the server; `destroy --local` alone is the stop). Prints the seconds of each phase, the totals of the two
commands against issue 20's goals (deploy <= 90 s, destroy <= 45 s), and the slowest resources of the
bootstrap, the apply and the destroy, read from Terraform's own lines ("<address>: Creation complete
after 1m2s", "Modifications complete after", "Destruction complete after"), each with when it finished
(seconds into its phase): the provider's waiters against the local server are where the time goes.
With --workdir, Terraform's logs, moto's log and summary.json (every figure) are kept there.
Needs terraform and the AWS provider (DEEPSENTINEL_TF_PLUGIN_MIRROR=/opt/tf-plugins here).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from deepsentinel import terraform  # noqa: E402
from deepsentinel.settings import ENVIRONMENTS, load_settings  # noqa: E402

DEPLOY_GOAL_SECONDS = 90  # issue 20: `deploy --local` of dev, bootstrap included
DESTROY_GOAL_SECONDS = 45  # issue 20: `destroy --local`
PHASES = ("server start, cdktf load", "bootstrap", "synth", "init", "apply", "outputs", "second plan", "destroy",
          "server stop")
# Terraform's per-resource completion line (internal/command/views/hook_ui.go): "<address>: <Action> complete after
# <duration>", the duration in Go's format rounded to the second ("55s", "1m2s").
COMPLETE = re.compile(r"^(?P<address>\S+): (?P<action>Creation|Modifications|Destruction) complete after "
                      r"(?P<duration>(?:\d+h)?(?:\d+m)?\d+s)")


@dataclass(frozen=True, kw_only=True)
class Completion:
    address: str
    action: str
    seconds: int
    finished_at: float  # seconds into its phase when Terraform printed the line


def go_seconds(duration: str) -> int:
    """Seconds of a Go duration as Terraform prints it ("1h2m3s", "2m0s", "55s")."""
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(int(amount) * units[unit] for amount, unit in re.findall(r"(\d+)([hms])", duration))


def completion(line: str, finished_at: float) -> Completion | None:
    match = COMPLETE.match(line.strip())
    if match is None:
        return None
    return Completion(address=match["address"], action=match["action"], seconds=go_seconds(match["duration"]),
                      finished_at=finished_at)


def slowest(completions: list[Completion], top: int) -> list[Completion]:
    return sorted(completions, key=lambda c: (-c.seconds, c.address))[:top]


@contextmanager
def teeing_terraform(tee: Callable[[str], None]) -> Iterator[None]:
    """Every terraform line of the block also goes to `tee` (bootstrap runs terraform with printers of its own)."""
    original = terraform.run

    def run(args, cwd, *, on_line: Callable[[str], None] | None = None, **kw):  # noqa: ANN001, ANN202
        def both(line: str) -> None:
            tee(line)
            if on_line:
                on_line(line)
        return original(args, cwd, on_line=both, **kw)

    terraform.run = run
    try:
        yield
    finally:
        terraform.run = original


def stop_server(target) -> None:  # noqa: ANN001 - a deepsentinel.target.Target
    from deepsentinel.local.server import LocalAws

    server = LocalAws.find(target.work.server_info)
    if server is not None:
        server.stop(target.work.server_info)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", choices=ENVIRONMENTS, default="dev")
    parser.add_argument("--parallelism", type=int, default=30)
    parser.add_argument("--top", type=int, default=15, help="how many of the slowest resources to print per phase")
    parser.add_argument("--workdir", type=Path, default=None, help="keep logs and state here (default: a temp dir)")
    args = parser.parse_args(argv)

    from deepsentinel.commands.bootstrap import bootstrap
    from deepsentinel.stacks.names import platform_stack_name
    from deepsentinel.target import local_target, synth_platform

    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="deepsentinel-live-bench-"))).resolve()
    if (workdir / "server.json").exists():
        print(f"{workdir} holds a local deployment already (server.json): use another --workdir", file=sys.stderr)
        return 2
    workdir.mkdir(parents=True, exist_ok=True)
    settings = load_settings(args.env)
    times: dict[str, float] = {}
    second_plan_changes = None
    verbs = ("bootstrap", "init", "apply", "plan", "destroy")
    logs = {verb: open(workdir / f"terraform-{verb}.log", "w") for verb in verbs}
    completions: dict[str, list[Completion]] = {"bootstrap": [], "apply": [], "destroy": []}
    phase_started = [0.0]

    def logger(verb: str) -> Callable[[str], None]:
        def on_line(line: str) -> None:
            elapsed = time.perf_counter() - phase_started[0]
            logs[verb].write(f"[{elapsed:6.1f}s] {line}\n")  # when each line came: what waited on what
            if verb in completions:
                done = completion(line, elapsed)
                if done is not None:
                    completions[verb].append(done)
        return on_line

    # The steps of `deploy --local` (deepsentinel.commands.deploy._run_local), each timed, then those of `destroy --local`.
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # the server starts while cdktf loads (jsii's runtime)
        target = local_target(settings, workdir, start=True)
    times["server start, cdktf load"] = time.perf_counter() - started
    try:
        print("bootstrap ...", flush=True)
        phase_started[0] = started = time.perf_counter()
        with teeing_terraform(logger("bootstrap")):
            bootstrap(target, log=lambda line: logger("bootstrap")(f"# {line}"))  # its steps, timed too
        times["bootstrap"] = time.perf_counter() - started
        print("synth ...", flush=True)
        started = time.perf_counter()
        stack_dir = synth_platform(target, progress=logs["bootstrap"])  # its two progress lines
        times["synth"] = time.perf_counter() - started
        env = target.tf_env
        for phase, verb, step in (
            ("init", "init", lambda: terraform.init(stack_dir, reconfigure=True, env=env, on_line=logger("init"))),
            ("apply", "apply", lambda: terraform.apply(stack_dir, parallelism=args.parallelism, env=env,
                                                       on_line=logger("apply"))),
            ("outputs", "apply", lambda: terraform.outputs(stack_dir, env=env)),  # deploy --local prints them
            ("second plan", "plan", lambda: terraform.plan(stack_dir, env=env, on_line=logger("plan"))),
            ("destroy", "destroy", lambda: terraform.destroy(stack_dir, parallelism=args.parallelism, env=env,
                                                             on_line=logger("destroy"))),
        ):
            print(f"{phase} ...", flush=True)
            phase_started[0] = started = time.perf_counter()
            outcome = step()
            times[phase] = time.perf_counter() - started
            if verb == "plan":
                second_plan_changes = outcome
            logs[verb].flush()
    except terraform.TerraformError as error:
        print(f"FAILED: {str(error)[-3000:]}\nlogs: {workdir}", file=sys.stderr)
        return 1
    finally:
        started = time.perf_counter()
        stop_server(target)
        times["server stop"] = time.perf_counter() - started
        for log in logs.values():
            log.close()

    created = [c for c in completions["apply"] if c.action == "Creation"]
    deploy = sum(times[p] for p in ("server start, cdktf load", "bootstrap", "synth", "init", "apply", "outputs"))
    destroy = times["server stop"]  # `destroy --local`: the server holds every resource
    terraform_destroy = times["destroy"] + times["server stop"]  # `destroy --local --terraform`
    print(f"\n{platform_stack_name(settings)} on moto, {len(created)} resources created, parallelism "
          f"{args.parallelism}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    for phase in PHASES:
        print(f"  {phase:<24} {times[phase]:7.1f} s")
    print(f"  {'deploy':<24} {deploy:7.1f} s   (server start .. outputs, as `deploy --local`; goal <= "
          f"{DEPLOY_GOAL_SECONDS} s: {'met' if deploy <= DEPLOY_GOAL_SECONDS else 'MISSED'})")
    print(f"  {'destroy':<24} {destroy:7.1f} s   (server stop, as `destroy --local`; goal <= "
          f"{DESTROY_GOAL_SECONDS} s: {'met' if destroy <= DESTROY_GOAL_SECONDS else 'MISSED'})")
    print(f"  {'tf destroy':<24} {terraform_destroy:7.1f} s   (terraform destroy + server stop, as "
          f"`destroy --local --terraform`; provider-bound, docs/local-speed.md)")
    print(f"  second plan: {'CHANGES (see terraform-plan.log)' if second_plan_changes else 'no changes'}")
    for verb in completions:
        label = "bootstrap (account stack)" if verb == "bootstrap" else verb
        print(f"\nslowest {args.top} of {label} (Terraform's own figure, rounded to the second; finished = seconds "
              f"into the phase):")
        for done in slowest(completions[verb], args.top):
            print(f"  {done.seconds:5d} s  finished {done.finished_at:6.1f}  {done.action:<13} {done.address}")
    summary = {"env": args.env, "parallelism": args.parallelism, "cpus": os.cpu_count(),
               "load_average_at_end": os.getloadavg(), "seconds": times, "deploy_seconds": deploy,
               "destroy_seconds": destroy,
               "terraform_destroy_seconds": terraform_destroy, "second_plan_changes": second_plan_changes,
               "resources": {verb: [asdict(c) for c in done] for verb, done in completions.items()}}
    (workdir / "summary.json").write_text(json.dumps(summary, indent=1))
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"\nlogs, state and summary.json: {workdir}")
    return 0 if not second_plan_changes else 1


if __name__ == "__main__":
    sys.exit(main())
