"""`destroy --local` ends a local deployment by stopping its server: every resource lives in that process.

The Terraform destroy of a local deployment (`--terraform`) is bound by the provider's fixed waits (a minute each
for the Batch job queue and RDS, docs/local-speed.md); the live suite's destroy test and the slow interrupt test
run it. Here: a running server holding resources, the default destroy, and what is left of it: nothing.
"""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from deepsentinel.cli import main
from deepsentinel.local.server import LocalAws, is_alive


def test_a_local_destroy_stops_the_server_and_removes_the_deployment_without_terraform(tmp_path: Path, capsys):
    work = tmp_path / "local"
    server = LocalAws.start(log_path=None, info_file=work / "server.json", detach=True)
    try:
        s3 = boto3.client("s3", endpoint_url=server.endpoint_url, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
        s3.create_bucket(Bucket="deepsentinel-dev-highlights")
        (work / "cdktf.out" / "stacks" / "deepsentinel-dev" / ".terraform").mkdir(parents=True)

        assert main(["destroy", "--local", "--workdir", str(work)]) == 0

        out = capsys.readouterr().out
        assert "destroying" not in out  # terraform did not run
        assert f"destroyed deepsentinel-dev; stopped the moto server (pid {server.pid})" in out
        assert not work.exists()
        assert not is_alive(server.endpoint_url)  # its port is closed when destroy returns
        server._process.wait(timeout=10)  # this test started it: reap it (a user's server is init's child)
        assert server._process.returncode is not None
    finally:
        if server._process.poll() is None:
            server.stop()


def test_the_terraform_option_belongs_to_destroy_only(capsys):
    with pytest.raises(SystemExit):
        main(["deploy", "--local", "--terraform"])
    assert "unrecognized arguments: --terraform" in capsys.readouterr().err
