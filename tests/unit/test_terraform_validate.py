"""Every synthesized stack passes `terraform validate` with the real binary and provider.

Needs terraform on PATH and the AWS provider: from the registry, or from the filesystem mirror named
by DEEPSENTINEL_TF_PLUGIN_MIRROR (`.ci/run` sets it).
"""

from __future__ import annotations

import json

import pytest

from deepsentinel import terraform


@pytest.mark.parametrize("stack", ["deepsentinel-dev", "deepsentinel-prod", "deepsentinel-account"])
def test_stack_is_valid_terraform(platform, stack):
    stack_dir = platform.paths[stack].parent
    terraform.init(stack_dir, backend=False)
    terraform.validate(stack_dir)  # raises TerraformError with Terraform's message


def test_an_invalid_stack_fails_with_terraforms_own_message(tmp_path):
    """On Terraform's built-in terraform_data, whose schema Terraform holds: the AWS provider's would add a 700-MB
    provider start and its checksum (about 4.5 CPU-s) to show the same message path."""
    (tmp_path / "main.tf.json").write_text('{"resource": {"terraform_data": {"m": {"input": "v1", "no_such": 1}}}}')
    terraform.init(tmp_path, backend=False)
    with pytest.raises(terraform.TerraformError, match="No argument or block type is named \"no_such\""):
        terraform.validate(tmp_path)


def test_mirror_setting_writes_a_cli_config(tmp_path, monkeypatch):
    monkeypatch.setenv(terraform.MIRROR_ENV, str(tmp_path))
    env = terraform.environment(config_dir=tmp_path / "config")
    config = (tmp_path / "config" / "terraform.rc").read_text()
    assert env["TF_CLI_CONFIG_FILE"] == str((tmp_path / "config" / "terraform.rc").resolve())
    assert f'path    = "{tmp_path.resolve()}"' in config and "filesystem_mirror" in config


def test_the_cli_config_is_never_seen_half_written_while_another_command_writes_it(tmp_path, monkeypatch):
    """Every command writes the one CLI config while a terraform another started may be reading it; one that read
    it empty looked for the provider in the registry (a `pytest -m "not live"` run, 2026-12-04: "Failed to query
    available provider packages"). Readers racing writers of alternating mirrors only ever see a whole config."""
    import threading

    mirrors = [tmp_path / "mirror-a", tmp_path / "mirror-b"]
    for mirror in mirrors:
        mirror.mkdir()
    config_dir, seen, done = tmp_path / "config", set(), threading.Event()
    monkeypatch.setenv(terraform.MIRROR_ENV, str(mirrors[0]))
    terraform.environment(config_dir=config_dir)

    def read() -> None:
        while not done.is_set():
            seen.add((config_dir / "terraform.rc").read_text())

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for i in range(600):
            monkeypatch.setenv(terraform.MIRROR_ENV, str(mirrors[i % 2]))
            terraform.environment(config_dir=config_dir)
    finally:
        done.set()
        for reader in readers:
            reader.join()
    assert seen <= {terraform.cli_config(str(mirror.resolve())) for mirror in mirrors}, seen
    assert not [p for p in config_dir.iterdir() if p.name != "terraform.rc"]  # no staged file left behind


def test_without_a_mirror_the_cli_config_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.delenv(terraform.MIRROR_ENV, raising=False)
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", "/users/own/config.rc")
    assert terraform.environment(config_dir=tmp_path)["TF_CLI_CONFIG_FILE"] == "/users/own/config.rc"
    assert not (tmp_path / "terraform.rc").exists()


def test_terraform_collects_garbage_at_the_toolkits_limit_unless_the_user_set_one(tmp_path, monkeypatch):
    """GOGC=off with GOMEMLIMIT=512MiB (benchmarks/terraform_gc.py: a third less CPU per provider start); a user's
    own GOGC or GOMEMLIMIT is theirs alone: the other one is not added beside it."""
    for name in ("GOGC", "GOMEMLIMIT"):
        monkeypatch.delenv(name, raising=False)
    env = terraform.environment(config_dir=tmp_path)
    assert (env["GOGC"], env["GOMEMLIMIT"]) == ("off", "512MiB")

    monkeypatch.setenv("GOGC", "200")
    env = terraform.environment(config_dir=tmp_path)
    assert env["GOGC"] == "200" and "GOMEMLIMIT" not in env

    monkeypatch.delenv("GOGC")
    monkeypatch.setenv("GOMEMLIMIT", "2GiB")
    env = terraform.environment(config_dir=tmp_path)
    assert env["GOMEMLIMIT"] == "2GiB" and "GOGC" not in env


def test_a_local_target_sends_every_service_to_its_server_and_no_caller_override_wins(tmp_path, monkeypatch):
    """Local stacks name no provider `endpoints` (deepsentinel/stacks/provider.py): the server comes from
    AWS_ENDPOINT_URL, which a service-specific AWS_ENDPOINT_URL_<SERVICE> or AWS_IGNORE_CONFIGURED_ENDPOINT_URLS
    would override ("Custom Service Endpoint Configuration", AWS provider guide: the order endpoints are evaluated
    in), so those are not passed on; without a local server the caller's variables are theirs."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://elsewhere:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://elsewhere:2")
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    local = terraform.environment(config_dir=tmp_path, endpoint_url="http://127.0.0.1:4566")
    assert local["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert not {"AWS_ENDPOINT_URL_S3", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"} & set(local)
    aws = terraform.environment(config_dir=tmp_path)
    assert (aws["AWS_ENDPOINT_URL"], aws["AWS_ENDPOINT_URL_S3"]) == ("http://elsewhere:1", "http://elsewhere:2")


def test_local_stacks_leave_the_endpoints_to_terraforms_environment():
    """The synthesized local provider has the test keys and no `endpoints` block (1.9 CPU-s per provider start,
    docs/local-speed.md); the S3 backend keeps its own endpoints."""
    from cdktf import App, TerraformStack, Testing

    from deepsentinel.settings import load_settings
    from deepsentinel.stacks.provider import StackOptions, configure_stack

    app = App()
    stack = TerraformStack(app, "local")
    configure_stack(stack, load_settings("dev"), StackOptions(endpoint_url="http://127.0.0.1:4566"), "dev")
    document = json.loads(Testing.synth(stack))
    [provider] = document["provider"]["aws"]
    assert provider["access_key"] == "test" and "endpoints" not in provider
    assert document["terraform"]["backend"]["s3"]["endpoints"] == {"s3": "http://127.0.0.1:4566",
                                                                    "sts": "http://127.0.0.1:4566"}


def test_a_missing_mirror_directory_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(terraform.MIRROR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(terraform.TerraformUnavailable,
                       match="DEEPSENTINEL_TF_PLUGIN_MIRROR=.*nowhere.* is not a directory"):
        terraform.environment(config_dir=tmp_path)


def test_a_saved_plan_is_applied_as_confirmed_and_destroy_plans_apply_too(tmp_path):
    """What `deepsentinel deploy|destroy` does against AWS, on Terraform's built-in terraform_data (no provider)."""
    (tmp_path / "main.tf.json").write_text('{"resource": {"terraform_data": {"marker": {"input": "v1"}}}}')
    terraform.init(tmp_path, backend=False)
    assert terraform.plan(tmp_path, out="confirmed.tfplan") is True
    terraform.apply(tmp_path, plan_file="confirmed.tfplan")
    assert terraform.plan(tmp_path) is False  # applied exactly: nothing left to do
    assert terraform.plan(tmp_path, destroy=True, out="destroy.tfplan") is True
    lines: list[str] = []
    terraform.apply(tmp_path, plan_file="destroy.tfplan", on_line=lines.append)
    assert any("1 destroyed" in line for line in lines)
    assert terraform.plan(tmp_path) is True  # gone, so a plan would create it again
