"""Stacks of the live tests: one module (with only what it needs) or the whole platform, named `live`."""

from __future__ import annotations

from typing import Any

from deepsentinel.provider import register_provider_package

register_provider_package()

from cdktf import TerraformOutput, TerraformStack  # noqa: E402

from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity  # noqa: E402
from deepsentinel.constructs.encryption import Encryption, EncryptionProps  # noqa: E402
from deepsentinel.constructs.network import Network, NetworkProps  # noqa: E402
from deepsentinel.constructs.security import Security, SecurityProps  # noqa: E402
from deepsentinel.constructs.storage import Storage, StorageProps  # noqa: E402
from deepsentinel.stacks.platform import PlatformStack  # noqa: E402
from deepsentinel.stacks.provider import configure_stack  # noqa: E402
from tests.live.harness import STACK  # noqa: E402


class ModuleStack(TerraformStack):
    """network alone; security on a network; storage on network + security (its subnets and RDS group) and the
    environment's key."""

    def __init__(self, scope: Any, *, settings: Any, options: Any, module: str) -> None:
        super().__init__(scope, STACK)
        s = settings
        configure_stack(self, s, options, f"{s.prefix}-{module}")
        network = Network(self, "network", props=NetworkProps(settings=s))
        outputs: dict[str, Any] = {
            "vpc_id": network.vpc_id, "public_subnet_ids": network.public_subnet_ids,
            "private_subnet_ids": network.private_subnet_ids, "alb_arn": network.alb_arn,
            "alb_listener_arn": network.alb_listener_arn, "alb_security_group_id": network.alb_security_group_id,
            "frontend_target_group_arn": network.frontend_target_group_arn,
            "backend_target_group_arn": network.backend_target_group_arn,
        }
        if module in ("security", "storage"):
            security = Security(self, "security", props=SecurityProps(
                settings=s, vpc_id=network.vpc_id, vpc_cidr=network.vpc_cidr,
                public_subnet_ids=network.public_subnet_ids, private_subnet_ids=network.private_subnet_ids,
                alb_security_group_id=network.alb_security_group_id))
            outputs |= {"ecs_security_group_id": security.ecs_security_group_id,
                        "batch_security_group_id": security.batch_security_group_id,
                        "rds_security_group_id": security.rds_security_group_id,
                        "lambda_security_group_id": security.lambda_security_group_id}
        if module == "storage":
            encryption = Encryption(self, "encryption", props=EncryptionProps(
                settings=s, account_id=DataAwsCallerIdentity(self, "current").account_id, publishing_role_arns=[]))
            storage = Storage(self, "storage", props=StorageProps(
                settings=s, private_subnet_ids=network.private_subnet_ids,
                rds_security_group_id=security.rds_security_group_id, kms_key_arn=encryption.kms_key_arn))
            outputs |= {"bucket_names": storage.bucket_names, "db_instance_identifier": storage.db_instance_identifier,
                        "db_host": storage.db_host, "db_secret_arn": storage.db_secret_arn}
        for name, value in outputs.items():
            TerraformOutput(self, name, value=value)


def module_builder(module: str):
    def build(app: Any, settings: Any, options: Any) -> None:
        ModuleStack(app, settings=settings, options=options, module=module)
    return build


def build_platform(app: Any, settings: Any, options: Any) -> None:
    PlatformStack(app, STACK, settings=settings, options=options)
