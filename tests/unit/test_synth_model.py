"""The job definitions' weights: MODEL_URI from model_key, and with gpu_ami_id the golden AMI's directory mounted."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.session import get_session
from botocore.validate import ParamValidator

from tests.unit.synth_helpers import named, of_type, ref

AMI_MODEL_DIR = "/opt/deepsentinel/models"  # worker_image/ami/worker-gpu.pkr.hcl fills it (packer inspect test)


def _containers(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["name"].rsplit("-", 1)[-1]: json.loads(d["container_properties"])
            for d in of_type(document, "aws_batch_job_definition").values()}


def _environment(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["environment"]}


def _register_job_definition_problems(container: dict[str, Any]) -> str:
    """What botocore's own Batch model (the RegisterJobDefinition input shape) finds wrong in containerProperties."""
    model = get_session().get_service_model("batch")
    shape = model.operation_model("RegisterJobDefinition").input_shape
    report = ParamValidator().validate({"jobDefinitionName": "x", "type": "container",
                                        "containerProperties": container}, shape)
    return report.generate_report()


@pytest.fixture(scope="module")
def golden_ami_platform(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from tests.synth_cache import synthesized

    overrides = ["gpu_ami_id=ami-0123456789abcdef0", "model_key=models/best-0123456789ab.pt"]
    return synthesized(tmp_path_factory, [("dev", overrides)], include_account_stack=False).dev


def test_model_uri_is_the_models_bucket_and_the_default_model_key(platform):
    bucket_name, _ = named(platform.dev, "aws_s3_bucket", "analysis-models")
    for kind, container in _containers(platform.dev).items():
        assert _environment(container)["MODEL_URI"] == \
            f"s3://{ref('aws_s3_bucket', bucket_name, 'bucket')}/models/yolov8n.pt", kind


def test_without_gpu_ami_id_nothing_is_mounted(platform):
    for container in _containers(platform.dev).values():
        assert "volumes" not in container and "mountPoints" not in container
        assert "MODEL_DIR" not in _environment(container)


def test_with_gpu_ami_id_the_amis_weights_are_mounted_read_only(golden_ami_platform):
    """A host volume is `volumes[].host.sourcePath` named by `mountPoints[].sourceVolume`, mounted at
    `containerPath`, `readOnly` true ("Volume", "Host" and "MountPoint", AWS Batch API Reference,
    https://docs.aws.amazon.com/batch/latest/APIReference/API_Volume.html, API_Host.html, API_MountPoint.html);
    botocore's Batch model accepts the whole containerProperties. Both definitions run in the one GPU compute
    environment, so both mount it."""
    bucket_name, _ = named(golden_ami_platform, "aws_s3_bucket", "analysis-models")
    containers = _containers(golden_ami_platform)
    assert set(containers) == {"gpu", "cpu"}
    for kind, container in containers.items():
        (volume,) = container["volumes"]
        assert volume["host"] == {"sourcePath": AMI_MODEL_DIR}
        assert container["mountPoints"] == [{"sourceVolume": volume["name"], "containerPath": AMI_MODEL_DIR,
                                             "readOnly": True}]
        environment = _environment(container)
        assert environment["MODEL_DIR"] == AMI_MODEL_DIR, kind
        assert environment["MODEL_URI"] == f"s3://{ref('aws_s3_bucket', bucket_name, 'bucket')}/" \
                                           "models/best-0123456789ab.pt"
        assert _register_job_definition_problems(container) == "", kind


def test_a_model_key_that_cannot_name_weights_is_refused():
    from deepsentinel.settings import SettingsError, load_settings

    for bad in ("/models/yolov8n.pt", "models//yolov8n.pt", "models/../yolov8n.pt", "models/yolov8n.pth",
                "models/yolo v8n.pt", "models/" + "x" * 1024 + ".pt"):
        with pytest.raises(SettingsError, match="model_key: .* is not an S3 key of weights"):
            load_settings("dev", overrides=[f"model_key={bad}"])
    assert load_settings("dev", overrides=["model_key=models/yolov8n-0123456789ab.pt"]).model_key == \
        "models/yolov8n-0123456789ab.pt"


def test_the_job_definitions_environment_passes_botocores_batch_model(platform):
    for kind, container in _containers(platform.dev).items():
        assert _register_job_definition_problems(container) == "", kind

