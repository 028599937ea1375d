"""Apply, check and destroy deployments of the platform (or of single modules) on moto or on AWS.

A `Deployment` owns one Terraform working directory and, on moto, one moto server process of its own
(deployments never see each other's resources). Synthesis is jsii (one thread only), so `prepare()`
runs in the caller's thread; `init`, `apply` and `destroy` run in a worker thread so several deployments
overlap the provider's waits (SQS ~25 s, ALB ~60 s, RDS ~80 s, S3 lifecycle ~55 s), and the second plan in a
thread of its own while the tests that need no plan check the deployment (`wait_planned` waits for it).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepsentinel import terraform
from tests.live.aws_checks import Clients, find_project_resources
from tests.live.retry import with_retries

if TYPE_CHECKING:
    from tests.live.early import EarlyStart

PARALLELISM = 30

# build(app, settings, options) adds one stack named STACK to the app
StackBuilder = Callable[[Any, Any, Any], None]
STACK = "live"
# The live platform has the optional parts moto serves switched on (its CLI tests pass the same -c). With
# github_repository the account stack holds the GitHub plan and deploy roles, and the environment's roles carry the
# deploy role's permissions boundary, as in CI: Terraform's calls are decided as those roles
# (test_terraform_calls_are_allowed_for_the_plan_and_deploy_identities).
PLATFORM_OVERRIDES = ("jobs_api_enabled=true", "github_repository=acme/deepsentinel")
SECOND_PLAN = "second-plan.json"  # cli_layout: `deepsentinel plan --json-out` after the apply
# cli_layout on moto: the server's request log (deepsentinel/local/request_log.py); `request_marks` bound each phase's lines
REQUESTS = "requests.jsonl"
RECORD = "deployment.json"  # in each deployment's workdir until it is destroyed (tests.live.sweep reads it)
DESTROY_PLAN = "destroy.tfplan"  # planned after the second plan, applied by the destroy (the workdir: CLI synths
# rewrite the stack's directory)


@dataclass
class Timings:
    synth: float = 0.0
    init: float = 0.0
    apply: float = 0.0
    second_plan: float = 0.0
    destroy: float = 0.0


@dataclass
class Deployment:
    name: str
    settings: Any  # PlatformSettings
    build: StackBuilder
    workdir: Path
    target: str = "moto"  # moto | aws
    # moto only: bootstrap the server and deploy the environment's stack as `deploy --local` does (state in the
    # server's state bucket, `server.json` in workdir), so CLI commands run with `--local --workdir workdir`.
    cli_layout: bool = False
    # --live-keep: no destroy; on moto the server is detached, outlives pytest and is reused by the next run with
    # the same --live-workdir. `python -m tests.live.sweep` removes kept or killed deployments.
    keep: bool = False
    cli_overrides: tuple[str, ...] = ()  # cli_layout: the `-c KEY=VALUE` settings it was deployed with
    # tests/live/early.py: `hand_over` in the process that deploys early (its server outlives it); `early` in the live
    # worker, which adopts that deployment instead of making its own
    hand_over: bool = False
    early: EarlyStart | None = None
    parallelism: int = PARALLELISM
    log: Callable[[str], None] = print

    endpoint_url: str | None = None
    stack_dir: Path | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    applied_state: dict[str, Any] = field(default_factory=dict)  # the state document the apply left
    second_plan_has_changes: bool | None = None
    second_plan_output: str = ""
    # cli_layout: the environment's state as the second plan left it (checks that run while the destroy does read it)
    planned_state: dict[str, Any] | None = None
    apply_error: str | None = None
    destroy_error: str | None = None
    leftovers: list[str] | None = None
    timings: Timings = field(default_factory=Timings)
    request_marks: dict[str, tuple[int, int]] = field(default_factory=dict)  # "apply"/"plan" -> [start, stop)
    _server: Any = None
    _local: Any = None  # deepsentinel.target.Target of a cli_layout deployment
    _account: Any = None  # deepsentinel.commands.bootstrap.AccountStacks of a cli_layout deployment
    _applied: threading.Event = field(default_factory=threading.Event)
    # the second plan runs here after the apply, beside the tests that need no plan (tests/live/conftest.py)
    _planner: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="plan"))
    _second_plan: Future | None = None
    _destroyed: threading.Event = field(default_factory=threading.Event)
    _deleting: threading.Event = field(default_factory=threading.Event)  # the destroy's first delete has started
    _destroy_planned: bool = False
    _destroy_started: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server_in_use: threading.Lock = field(default_factory=threading.Lock)  # see server_kept_up

    @property
    def clients(self) -> Clients:
        return Clients(region=self.settings.region, endpoint_url=self.endpoint_url)

    # --- apply -------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Start the moto server (moto target) and synthesize; caller's thread (jsii)."""
        from deepsentinel.local.server import LocalAws

        if self.early is not None:  # the session's main process deploys it (tests/live/early.py): claimed here
            from tests.live import early

            early.claim(self.workdir)
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        cli_layout = self.cli_layout and self.target == "moto"
        if self.target == "moto":
            info = self.workdir / "server.json"
            kept = LocalAws.find(info) if self.keep else None
            if kept is not None:
                self.log(f"{self.name}: reusing the kept moto server on {kept.endpoint_url}")
            self._server = kept or self._start_server(info)
            self.endpoint_url = self._server.endpoint_url
        from cdktf import App  # loaded already when a server was started here (`_start_server`)

        from deepsentinel.stacks.provider import StackOptions

        started = time.perf_counter()
        if cli_layout:
            self._prepare_like_deploy_local()
        else:
            app = App(outdir=str(self.workdir / "cdktf.out"))
            self.build(app, self.settings, StackOptions(endpoint_url=self.endpoint_url,
                                                        local_state_dir=str(self.workdir / "state")))
            app.synth()
            self.stack_dir = self.workdir / "cdktf.out" / "stacks" / STACK
        self.timings.synth = time.perf_counter() - started
        self._write_record()

    def _start_server(self, info: Path) -> Any:
        """The deployment's moto server, started while jsii's runtime and the provider binding load here (4-5 s
        beside its 2-3 s); the platform's (cli_layout) logs its requests (tests/terraform_call_check.py decides
        Terraform's calls as the plan and deploy identities)."""
        import importlib
        import os

        from deepsentinel.local.server import LocalAws
        from deepsentinel.local.request_log import LOG_VARIABLE

        saved = os.environ.get(LOG_VARIABLE)
        if self.cli_layout:  # read by the server process at its start only
            os.environ[LOG_VARIABLE] = str(self.workdir / REQUESTS)
        try:
            return LocalAws.start(log_path=self.workdir / "moto.log", info_file=info,
                                  detach=self.keep or self.hand_over,
                                  meanwhile=lambda: importlib.import_module("deepsentinel.stacks.provider"))
        finally:
            os.environ.pop(LOG_VARIABLE, None) if saved is None else os.environ.update({LOG_VARIABLE: saved})

    def _mark(self, phase: str, start: int) -> None:
        from deepsentinel.local.request_log import line_count

        self.request_marks[phase] = (start, line_count(self.workdir / REQUESTS))

    def _write_record(self) -> None:
        """What the sweeper needs to remove this deployment if the run dies or keeps it."""
        import json

        (self.workdir / RECORD).write_text(json.dumps({
            "name": self.name, "target": self.target, "project": self.settings.project,
            "prefix": self.settings.prefix, "region": self.settings.region, "endpoint_url": self.endpoint_url,
            "stack_dir": str(self.stack_dir),
            # what the account stack of a cli_layout deployment holds, as find_project_resources names it
            "account_resources": [] if self._account is None else [
                *(f"iam user {u}" for u in self.settings.user_names),
                *(f"iam group {self.settings.project}-{g}" for g in ("admins", "developers"))]}))

    def _prepare_like_deploy_local(self) -> None:
        import io

        from deepsentinel.commands.bootstrap import synth_account_stacks
        from deepsentinel.target import local_target, synth_platform

        self._local = local_target(self.settings, self.workdir)
        self._account = synth_account_stacks(self._local)
        self.stack_dir = synth_platform(self._local, progress=io.StringIO())

    def start_apply(self) -> None:
        threading.Thread(target=self._apply, name=f"apply-{self.name}", daemon=True).start()

    def tf_env(self) -> dict[str, str]:
        if self._local is not None:
            return self._local.tf_env
        return terraform.environment(self.workdir / ".terraform-cli", endpoint_url=self.endpoint_url)

    def _line_logger(self, verb: str) -> Callable[[str], None]:
        log_file = open(self.workdir / f"terraform-{verb}.log", "a")  # noqa: SIM115 - closed by the thread end

        def on_line(line: str) -> None:
            log_file.write(line + "\n")
            log_file.flush()
        return on_line

    def bootstrap_and_apply(self) -> int:
        """The bootstrap (cli_layout), `terraform init` and the apply; returns the request log's line count before
        the environment's init (where its "apply" mark starts)."""
        from deepsentinel.local.request_log import line_count

        env = self.tf_env()
        assert self.stack_dir is not None
        started = time.perf_counter()
        if self._account is not None:
            from deepsentinel.commands.bootstrap import apply_account_stack

            apply_account_stack(self._local, self._account, log=self._line_logger("bootstrap"))
        applying = line_count(self.workdir / REQUESTS)
        terraform.init(self.stack_dir, env=env, reconfigure=True, on_line=self._line_logger("init"))
        self.timings.init = time.perf_counter() - started
        started = time.perf_counter()
        with_retries(lambda: terraform.apply(self.stack_dir, parallelism=self.parallelism, env=env,
                                             on_line=self._line_logger("apply")), log=self._line_logger("apply"))
        self.timings.apply = time.perf_counter() - started
        self.log(f"{self.name}: applied in {self.timings.apply:.0f}s")
        return applying

    def _adopt_early(self) -> int:
        """The deployment the session's main process started (tests/live/early.py), once its apply has ended: its
        server, stack and timings; returns its "apply" mark's start."""
        from deepsentinel.commands.bootstrap import account_stack_dirs
        from deepsentinel.local.server import LocalAws
        from deepsentinel.target import local_target
        from tests.live import early

        assert self.early is not None
        result = early.wait_for_result(self.early, self.workdir)
        if result["error"]:
            raise RuntimeError(f"the early deployment failed (log: {self.workdir / early.LOG}):\n{result['error']}")
        self._server = LocalAws.find(self.workdir / "server.json")
        if self._server is None:
            raise RuntimeError(f"the early deployment's server in {self.workdir} no longer answers")
        self.endpoint_url = self._server.endpoint_url
        self._local = local_target(self.settings, self.workdir)
        self._account = account_stack_dirs(self._local)  # where the early process synthesized the account stack
        self.stack_dir = Path(result["stack_dir"])
        self.timings = Timings(**result["timings"])
        self.log(f"{self.name}: adopted the early deployment, applied in {self.timings.apply:.0f}s")
        return int(result["applying"])

    def _apply(self) -> None:
        try:
            applying = self.bootstrap_and_apply() if self.early is None else self._adopt_early()
            env = self.tf_env()
            # one read of the state (no provider start) serves the outputs and the modules' checks (module_view.py)
            self.applied_state = terraform.state_pull(self.stack_dir, env=env)
            self.outputs = {name: output["value"] for name, output in self.applied_state.get("outputs", {}).items()}
            self._mark("apply", applying)
            self._second_plan = self._planner.submit(self._plan_again, env)
        except Exception as error:  # noqa: BLE001 - reported by wait_applied in the test's thread
            self.apply_error = f"{type(error).__name__}: {error}\n{traceback.format_exc()}"
            self.log(f"{self.name}: apply FAILED: {str(error)[-2000:]}")
        finally:
            self._applied.set()

    def _plan_again(self, env: dict[str, str]) -> None:
        """The second plan, on the planner thread while the first tests run: `deepsentinel plan --local` for a
        cli_layout deployment (its requests marked "plan"), else `terraform plan`."""
        from deepsentinel.local.request_log import line_count

        started = time.perf_counter()
        if self._local is not None:
            planning = line_count(self.workdir / REQUESTS)
            self._second_plan_with_the_cli()
            self._mark("plan", planning)
            assert self.stack_dir is not None
            state = self.clients("s3").get_object(Bucket=self.settings.state_bucket_name,
                                                  Key=f"{self.stack_dir.name}/terraform.tfstate")
            self.planned_state = json.loads(state["Body"].read())
        else:
            lines: list[str] = []
            self.second_plan_has_changes = terraform.plan(self.stack_dir, env=env, on_line=lines.append)
            self.second_plan_output = "\n".join(lines)
        self.timings.second_plan = time.perf_counter() - started
        if not self.keep:
            self._plan_the_destroy(env)

    def _plan_the_destroy(self, env: dict[str, str]) -> None:
        """The destroy's plan, saved now (on the planner thread, while the checks run) and applied by the destroy as
        `deepsentinel destroy` applies the plan it showed: Terraform's plan of the platform's 251 deletions leaves the
        live path (from the destroy's lock to its first delete 10-18 s before, 6 s after). No check changes what the
        state records, so the plan is still current then (if not, Terraform refuses it as stale and the destroy plans
        afresh)."""
        try:
            terraform.plan(self.stack_dir, destroy=True, out=str(self.workdir / DESTROY_PLAN), refresh=False, env=env,
                           on_line=self._line_logger("destroy"))
            self._destroy_planned = True
        except terraform.TerraformError as error:
            self.log(f"{self.name}: no saved destroy plan, the destroy will plan itself: {str(error)[-500:]}")

    def _second_plan_with_the_cli(self) -> None:
        """`deepsentinel plan --local` as a user runs it; its JSON is kept as `second-plan.json`."""
        import subprocess
        import sys

        from tests.conftest import REPO_ROOT

        overrides = [arg for setting in self.cli_overrides for arg in ("-c", setting)]
        done = subprocess.run([sys.executable, "-m", "deepsentinel.cli", "plan", *overrides, "--local", "--workdir",
                               str(self.workdir), "--json-out", str(self.workdir / SECOND_PLAN)],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
        self.second_plan_output = done.stdout + done.stderr
        if done.returncode not in (0, 2):
            raise RuntimeError(f"deepsentinel plan exited {done.returncode}:\n{self.second_plan_output[-4000:]}")
        self.second_plan_has_changes = done.returncode == 2

    def wait_applied(self, timeout: float = 900) -> Deployment:
        if not self._applied.wait(timeout):
            raise TimeoutError(f"{self.name}: not applied within {timeout:.0f}s (see {self.workdir})")
        if self.apply_error:
            raise RuntimeError(f"{self.name}: apply failed:\n{self.apply_error[-6000:]}")
        return self

    def wait_planned(self, timeout: float = 900) -> Deployment:
        """Applied, and its second plan done (`second_plan_has_changes`, `second_plan_output`, SECOND_PLAN)."""
        self.wait_applied(timeout)
        assert self._second_plan is not None
        self._second_plan.result(timeout)
        return self

    # --- destroy -----------------------------------------------------------------------------------------

    def start_destroy(self) -> None:
        with self._lock:
            if self._destroy_started:
                return
            self._destroy_started = True
        threading.Thread(target=self._destroy, name=f"destroy-{self.name}", daemon=True).start()

    def _destroy(self) -> None:
        try:
            self._applied.wait()  # never destroy under a running apply, nor under a plan
            self._planner.shutdown(wait=True)
            if self.keep:
                self.log(f"{self.name}: kept in {self.workdir} (--live-keep; remove with "
                         f"`python -m tests.live.sweep --root {self.workdir}`)")
                self._server = None  # it stays up
                return
            if self.stack_dir is not None and (self.stack_dir / ".terraform").is_dir():
                started = time.perf_counter()
                self._destroy_stack(self._noting_the_first_delete(self._line_logger("destroy")))
                self.timings.destroy = time.perf_counter() - started
                self.log(f"{self.name}: destroyed in {self.timings.destroy:.0f}s")
            self.leftovers = project_leftovers(self.clients, json.loads((self.workdir / RECORD).read_text()))
            (self.workdir / RECORD).unlink()
        except Exception as error:  # noqa: BLE001
            self.destroy_error = f"{type(error).__name__}: {error}"
            self.log(f"{self.name}: destroy FAILED: {str(error)[-2000:]}")
        finally:
            with self._server_in_use:
                if self._server is not None:
                    self._server.stop()
            self._deleting.set()
            self._destroyed.set()

    def _destroy_stack(self, log: Callable[[str], None]) -> None:
        assert self.stack_dir is not None
        if self._destroy_planned:
            try:
                terraform.apply(self.stack_dir, plan_file=str(self.workdir / DESTROY_PLAN),
                                parallelism=self.parallelism, env=self.tf_env(), on_line=log)
                return
            except terraform.TerraformError as error:  # stale, or a transient error part way: plan afresh
                log(f"the saved destroy plan did not apply ({str(error)[-300:]}); destroying with a new plan")
        # the second plan read every object, and no check deletes one: the destroy need not read them again
        destroy_stack(self.stack_dir, self.tf_env(), parallelism=self.parallelism, log=log, refresh=False)

    def _noting_the_first_delete(self, log: Callable[[str], None]) -> Callable[[str], None]:
        def on_line(line: str) -> None:
            if ": Destroying..." in line:
                self._deleting.set()
            log(line)
        return on_line

    def wait_deleting(self, timeout: float = 300) -> None:
        """Until the destroy (started) has begun deleting, or ended: Terraform's start and destroy plan are done, what is
        left is mostly the provider's waits, beside which other work no longer holds the destroy up."""
        self._deleting.wait(timeout)

    @contextlib.contextmanager
    def server_kept_up(self) -> Iterator[None]:
        """The local server stays up while this runs, even if the destroy ends meanwhile (it stops the server after
        the leftover check): for a check of the account stack made while the environment's destroy runs."""
        with self._server_in_use:
            yield

    def destroy(self, timeout: float = 900) -> Deployment:
        """Destroy (once) and wait; `leftovers` lists what is still tagged/named like the project."""
        self.start_destroy()
        if not self._destroyed.wait(timeout):
            raise TimeoutError(f"{self.name}: not destroyed within {timeout:.0f}s (see {self.workdir})")
        if self.destroy_error:
            raise RuntimeError(f"{self.name}: destroy failed:\n{self.destroy_error[-6000:]}")
        return self


def destroy_stack(stack_dir: Path, env: dict[str, str], *, parallelism: int, log: Callable[[str], None],
                  refresh: bool = True) -> None:
    with_retries(lambda: terraform.destroy(stack_dir, parallelism=parallelism, env=env, on_line=log, refresh=refresh),
                 log=log)


def project_leftovers(clients: Clients, record: dict[str, Any]) -> list[str]:
    """What is still tagged or named like the deployment's project, except its account stack.

    The account stack stays, as bootstrap is once per account (on moto it goes with the server): its users carry
    the Project tag, and `{project}-developers` starts like the dev prefix.
    """
    found = find_project_resources(clients, record["project"], record["prefix"])
    return [f for f in found if f not in set(record["account_resources"])]


def live_deployment(name: str, root: Path, *, target: str, log: Callable[[str], None], keep: bool = False,
                    **fields: Any) -> Deployment:
    """The live tests' deployment `name` (platform or a module) in `root/name`, as the live fixture and the early
    process (tests/live/early.py) both make it."""
    from deepsentinel.settings import load_settings
    from tests.live.stacks import build_platform, module_builder

    extra = list(PLATFORM_OVERRIDES) if name == "platform" else []
    if target == "moto":
        settings = load_settings("dev", overrides=extra)  # one moto server per deployment: names never collide
    else:
        kept = root / name / RECORD
        # unique, and the tag the sweeper finds a run's resources by: buckets and IAM users are account/global names
        project = json.loads(kept.read_text())["project"] if keep and kept.is_file() else f"dst{secrets.token_hex(3)}"
        users = [f"{project}-alice", f"{project}-bob", f"{project}-carol"]
        settings = load_settings("dev", overrides=[f"project={project}", f"user_names={','.join(users)}",
                                                   f"admin_user_names={users[0]}", *extra])
    platform = name == "platform"
    return Deployment(name=name, settings=settings, build=build_platform if platform else module_builder(name),
                      workdir=root / name, target=target, log=log, cli_layout=platform, keep=keep,
                      cli_overrides=PLATFORM_OVERRIDES if platform else (), **fields)


class DeploymentPool:
    """Deployments by name; everything needed by the collected tests is applied at once, in parallel."""

    def __init__(self, factories: dict[str, Callable[[], Deployment]], log: Callable[[str], None]) -> None:
        self._factories = factories
        self._log = log
        self.deployments: dict[str, Deployment] = {}
        # a module's checks on the platform (tests/live/module_view.py), kept for its destroy test's second setup
        self.module_views: dict[str, Any] = {}
        # their output expressions, synthesized while the platform applies
        self.module_outputs: dict[str, dict[str, Any]] = {}

    def start(self, names: list[str]) -> None:
        for name in names:
            if name in self.deployments:
                continue
            deployment = self._factories[name]()
            self.deployments[name] = deployment
            try:
                deployment.prepare()
            except Exception as error:  # noqa: BLE001 - surfaces in the tests that need it
                deployment.apply_error = f"prepare failed: {type(error).__name__}: {error}\n{traceback.format_exc()}"
                deployment._applied.set()
                continue
            deployment.start_apply()
            where = "moto, by the session's main process" if deployment.early else deployment.endpoint_url or "AWS"
            self._log(f"{name}: applying on {where} in {deployment.workdir}")

    def get(self, name: str) -> Deployment:
        if name not in self.deployments:
            self.start([name])
        return self.deployments[name]

    def destroy_all(self) -> None:
        for deployment in self.deployments.values():
            deployment.start_destroy()
        for deployment in self.deployments.values():
            deployment._destroyed.wait(900)
