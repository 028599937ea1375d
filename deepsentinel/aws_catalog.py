"""AWS's own tables that settings are checked against, each with its source page and the date it was checked.

A value AWS refuses (an instance class RDS does not offer for PostgreSQL 16, a GPU type that does not
exist, a Fargate CPU/memory pair) must fail in `deepsentinel synth` with the allowed values, not half-way
through an apply.
"""

from __future__ import annotations

# RDS DB instance classes that support PostgreSQL 16 (a subset: the current general-purpose and memory-optimized
# families). Source: "Supported DB engines for DB instance classes",
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Concepts.DBInstanceClass.Support.html (checked 2026-11-24)
_RDS_SIZES = {
    "db.t3": ("micro", "small", "medium", "large", "xlarge", "2xlarge"),
    "db.t4g": ("micro", "small", "medium", "large", "xlarge", "2xlarge"),
    "db.m5": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge"),
    "db.m6g": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"),
    "db.m6i": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "32xlarge"),
    "db.m7g": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"),
    "db.r5": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge"),
    "db.r6g": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"),
    "db.r6i": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "32xlarge"),
    "db.r7g": ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"),
}
RDS_POSTGRES16_INSTANCE_CLASSES = frozenset(
    f"{family}.{size}" for family, sizes in _RDS_SIZES.items() for size in sizes
)
RDS_INSTANCE_FAMILIES = tuple(_RDS_SIZES)

# x86_64 NVIDIA GPU instance types AWS Batch can run on the ECS_AL2_NVIDIA AMI, with (vCPUs, GPUs). Arm (g5g) and
# AMD-GPU (g4ad) types are left out: that AMI is x86_64 with NVIDIA drivers. Source: "Amazon EC2 accelerated
# computing instance specifications", https://docs.aws.amazon.com/ec2/latest/instancetypes/ac.html (checked 2026-11-24).
# P5 (H100): p5.4xlarge 16 vCPUs, 1 GPU, 256 GiB; p5.48xlarge 192 vCPUs, 8 GPUs, 2,048 GiB, as EC2's
# DescribeInstanceTypes answers them (moto 5.2.5 ships those answers; tests/unit/test_aws_catalog.py compares every
# row with them). p5e/p5en (H200) are not offered here.
GPU_INSTANCE_TYPES: dict[str, tuple[int, int]] = {
    "g4dn.xlarge": (4, 1),
    "g4dn.2xlarge": (8, 1),
    "g4dn.4xlarge": (16, 1),
    "g4dn.8xlarge": (32, 1),
    "g4dn.12xlarge": (48, 4),
    "g4dn.16xlarge": (64, 1),
    "g4dn.metal": (96, 8),
    "g5.xlarge": (4, 1),
    "g5.2xlarge": (8, 1),
    "g5.4xlarge": (16, 1),
    "g5.8xlarge": (32, 1),
    "g5.12xlarge": (48, 4),
    "g5.16xlarge": (64, 1),
    "g5.24xlarge": (96, 4),
    "g5.48xlarge": (192, 8),
    "g6.xlarge": (4, 1),
    "g6.2xlarge": (8, 1),
    "g6.4xlarge": (16, 1),
    "g6.8xlarge": (32, 1),
    "g6.12xlarge": (48, 4),
    "g6.16xlarge": (64, 1),
    "g6.24xlarge": (96, 4),
    "g6.48xlarge": (192, 8),
    "g6e.xlarge": (4, 1),
    "g6e.2xlarge": (8, 1),
    "g6e.4xlarge": (16, 1),
    "g6e.8xlarge": (32, 1),
    "g6e.12xlarge": (48, 4),
    "g6e.16xlarge": (64, 1),
    "g6e.24xlarge": (96, 4),
    "g6e.48xlarge": (192, 8),
    "gr6.4xlarge": (16, 1),
    "gr6.8xlarge": (32, 1),
    "p3.2xlarge": (8, 1),
    "p3.8xlarge": (32, 4),
    "p3.16xlarge": (64, 8),
    "p3dn.24xlarge": (96, 8),
    "p4d.24xlarge": (96, 8),
    "p4de.24xlarge": (96, 8),
    "p5.4xlarge": (16, 1),
    "p5.48xlarge": (192, 8),
}
GPU_INSTANCE_FAMILIES = tuple(dict.fromkeys(t.split(".")[0] for t in GPU_INSTANCE_TYPES))

# Fargate task sizes, CPU units -> allowed memory (MiB); 8192 and 16384 need Linux platform 1.4.0 or later.
# Source: "Amazon ECS task definition parameters for Fargate", task size,
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
# (checked 2026-11-24)
FARGATE_MEMORY_MB: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}

# SQS as a Lambda event source. Source: "Using Lambda with Amazon SQS", section "Configuring a queue to use with
# Lambda" (the page is now titled "Creating and configuring an Amazon SQS event source mapping"),
# https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html (checked 2026-11-24): the source
# queue's visibility timeout at least six times the function timeout. We also add MaximumBatchingWindowInSeconds
# (widely quoted as AWS guidance, but not in that page's text as checked): Lambda may gather a batch that long first.
SQS_VISIBILITY_FACTOR = 6
# MaximumBatchingWindowInSeconds 0..300: "CreateEventSourceMapping" (Lambda API reference),
# https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html (checked 2026-11-24)
SQS_MAX_BATCHING_WINDOW_SECONDS = 300
# VisibilityTimeout 0..43200 (12 hours): "SetQueueAttributes" (SQS API reference),
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html (checked 2026-11-24)
SQS_MAX_VISIBILITY_TIMEOUT_SECONDS = 43200

# Amazon Bedrock. Rerank (bedrock-agent-runtime `Rerank`) is offered in few Regions, and not in ap-northeast-2:
# reranker model id -> Regions with single-Region support. Source: "Supported Regions and models for reranking in
# Amazon Bedrock", https://docs.aws.amazon.com/bedrock/latest/userguide/rerank-supported.html (checked 2026-11-24)
BEDROCK_RERANK_MODEL_REGIONS: dict[str, tuple[str, ...]] = {
    "amazon.rerank-v1:0": ("ap-northeast-1", "ca-central-1", "eu-central-1", "us-west-2"),
    "cohere.rerank-v3-5:0": ("ap-northeast-1", "ca-central-1", "eu-central-1", "us-east-1", "us-west-2"),
}
# Geographic prefixes of system-defined cross-Region inference profile ids (`apac.anthropic.claude-...`): the
# members of CrossRegionInferenceProfileRegion in the AWS CDK API reference (GLOBAL, US, US_GOV, EU, APAC, JP, AU),
# https://docs.aws.amazon.com/cdk/api/v2/docs/@aws-cdk_aws-bedrock-alpha.CrossRegionInferenceProfileRegion.html
# (checked 2026-11-24)
BEDROCK_INFERENCE_PROFILE_PREFIXES = ("global", "us", "us-gov", "eu", "apac", "jp", "au")
