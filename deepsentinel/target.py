"""Where a command acts: the user's AWS account, or the moto server of a local deployment.

What every command that reads or changes a deployment needs first, in one place: credentials (AWS) or a
running server (local), the state backend (`deepsentinel bootstrap` creates it), and a stack synthesized
for that target with its terraform working directory initialised against the backend.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepsentinel.errors import OperationFailed
from deepsentinel.settings import PlatformSettings

LOCAL_WORKDIR = Path(".deepsentinel") / "local"
NO_CREDENTIALS = (
    "no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run "
    "where a role is assumed (GitHub OIDC, an instance profile); --local needs none"
)


@dataclass(frozen=True)
class LocalWorkdir:
    """One local deployment: its moto server's address and log, its synthesized stacks."""

    root: Path

    @property
    def server_info(self) -> Path:
        return self.root / "server.json"

    @property
    def server_log(self) -> Path:
        return self.root / "moto.log"

    @property
    def outdir(self) -> Path:
        return self.root / "cdktf.out"

    @property
    def terraform_cli_dir(self) -> Path:
        return self.root / ".terraform-cli"

    @property
    def smoke_dir(self) -> Path:
        """`smoke --local`'s scratch: clips, model, worker caches and the PostgreSQL stand-in."""
        return self.root / "smoke"

    @property
    def smoke_database_dir(self) -> Path:
        from deepsentinel.local.stand_in import SMOKE_DATABASE_DIR

        return self.smoke_dir / SMOKE_DATABASE_DIR


@dataclass(frozen=True, kw_only=True)
class Target:
    settings: PlatformSettings
    session: Any  # boto3.Session
    endpoint_url: str | None  # None: AWS
    outdir: Path  # where this target's stacks are synthesized
    tf_env: dict[str, str]  # the environment of terraform subprocesses
    work: LocalWorkdir | None = None

    @property
    def local(self) -> bool:
        return self.endpoint_url is not None

    @property
    def where(self) -> str:
        return f"the moto server on {self.endpoint_url}" if self.local else f"AWS ({self.settings.region})"

    @property
    def local_flag(self) -> str:
        """What to add to a suggested command line so it acts on this same target."""
        if self.work is None:
            return ""
        return " --local" + (f" --workdir {self.work.root}" if self.work.root != default_workdir(self.settings) else "")

    def client(self, service: str) -> Any:
        return (
            self.session.client(service, endpoint_url=self.endpoint_url) if self.local else self.session.client(service)
        )


def default_workdir(settings: PlatformSettings) -> Path:
    return (LOCAL_WORKDIR / settings.environment).resolve()


def aws_target(settings: PlatformSettings, outdir: Path) -> Target:
    """The AWS account of the current credentials; fails at once (one line) when there are none."""
    import boto3

    from deepsentinel import terraform

    session = boto3.Session(region_name=settings.region)
    if session.get_credentials() is None:
        raise OperationFailed(NO_CREDENTIALS)
    return Target(settings=settings, session=session, endpoint_url=None, outdir=outdir, tf_env=terraform.environment())


def local_target(settings: PlatformSettings, workdir: Path | None, *, start: bool = False) -> Target:
    """The moto server of the local deployment in `workdir`; `start` starts one when none answers. The commands that
    start one (bootstrap, deploy) synthesize next: while the server imports moto, cdktf is imported here, which starts
    jsii's runtime (each 2-5 s, side by side on two cores)."""
    import boto3

    from deepsentinel import terraform
    from deepsentinel.local.server import LocalAws

    work = LocalWorkdir(workdir.resolve() if workdir else default_workdir(settings))
    server = LocalAws.find(work.server_info)
    if server is None and not start:
        raise OperationFailed(
            f"no local deployment of {settings.environment} is running in {work.root}: run "
            f"`deepsentinel deploy --local --env {settings.environment}` first"
        )
    if server is None:
        work.root.mkdir(parents=True, exist_ok=True)
        server = LocalAws.start(
            log_path=work.server_log, info_file=work.server_info, detach=True, meanwhile=_load_the_synth
        )
        print(f"started a moto server on {server.endpoint_url} (pid {server.pid}, log {work.server_log})", flush=True)
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=settings.region)
    return Target(
        settings=settings,
        session=session,
        endpoint_url=server.endpoint_url,
        outdir=work.outdir,
        tf_env=terraform.environment(work.terraform_cli_dir, endpoint_url=server.endpoint_url),
        work=work,
    )


def _load_the_synth() -> None:
    import deepsentinel.app  # noqa: F401 - cdktf, the constructs and their provider modules: jsii starts


def target_from_args(args: Any, settings: PlatformSettings, *, start: bool = False) -> Target:
    """--local [--workdir] or AWS (synthesizing into --out when the command has it, else cdktf.out)."""
    if getattr(args, "local", False):
        return local_target(settings, getattr(args, "workdir", None), start=start)
    return aws_target(settings, getattr(args, "out", None) or Path("cdktf.out"))


def state_bucket_exists(target: Target) -> bool:
    """Whether the state bucket exists; a bucket of that name we may not use is an error of its own."""
    from botocore.exceptions import ClientError, NoCredentialsError

    bucket = target.settings.state_bucket_name
    try:
        target.client("s3").head_bucket(Bucket=bucket)
    except NoCredentialsError as error:
        raise OperationFailed(NO_CREDENTIALS) from error
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchBucket", "NotFound"):
            return False
        if code in ("403", "AccessDenied"):
            raise OperationFailed(
                f"the state bucket {bucket} exists but these credentials may not use it (403): bucket names are "
                "global, so it may be another account's (set `bucket_suffix`), or your role lacks s3:ListBucket on "
                "it"
            ) from error
        raise
    return True


def require_state_backend(target: Target) -> None:
    if not state_bucket_exists(target):
        raise OperationFailed(
            f"no state backend: the bucket {target.settings.state_bucket_name} does not exist on {target.where}; "
            f"create it with `deepsentinel bootstrap{target.local_flag}`"
        )


def synth_platform(target: Target, *, progress: Any = None) -> Path:
    """Synthesize the target's environment for it (provider endpoints, S3 backend); return the stack dir."""
    from deepsentinel.app import synth
    from deepsentinel.stacks.names import platform_stack_name
    from deepsentinel.stacks.provider import StackOptions

    out = progress or sys.stdout
    started = time.perf_counter()
    name = platform_stack_name(target.settings)
    print(f"synthesizing {name} into {target.outdir}/ ...", file=out, flush=True)
    result = synth(
        [target.settings],
        outdir=target.outdir,
        options=StackOptions(endpoint_url=target.endpoint_url),
        include_account_stack=False,
    )
    print(f"synthesized in {time.perf_counter() - started:.1f}s", file=out, flush=True)
    return result.stacks[name].parent


def initialised_platform(target: Target, *, progress: Any = None) -> Path:
    """The environment's stack dir, synthesized and `terraform init`-ed against the state backend."""
    from deepsentinel import terraform

    require_state_backend(target)
    stack_dir = synth_platform(target, progress=progress)
    print(
        f"terraform init (state: s3://{target.settings.state_bucket_name}/{stack_dir.name}/terraform.tfstate) ...",
        file=progress or sys.stdout,
        flush=True,
    )
    terraform.init(stack_dir, reconfigure=True, env=target.tf_env)
    return stack_dir


def deployed_outputs(target: Target) -> dict[str, Any]:
    """The environment's outputs as recorded in its state (empty when it is not deployed)."""
    from deepsentinel import terraform
    from deepsentinel.stacks.names import platform_stack_name

    deployed = target.outdir / "stacks" / platform_stack_name(target.settings)
    if target.local and (deployed / ".terraform").is_dir():
        stack_dir = deployed  # the local deployment's own working directory, initialised against its server
    else:
        with contextlib.redirect_stdout(sys.stderr):  # progress; callers print the outputs on stdout
            stack_dir = initialised_platform(target)
    return terraform.outputs(stack_dir, env=target.tf_env)
