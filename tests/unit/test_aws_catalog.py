"""aws_catalog's GPU table against what EC2 itself says of each instance type.

Expectations: "Amazon EC2 accelerated computing instance specifications"
(https://docs.aws.amazon.com/ec2/latest/instancetypes/ac.html) for the P5 rows, and EC2's DescribeInstanceTypes
answers (`VCpuInfo.DefaultVCpus`, `GpuInfo.Gpus[].Count`, `MemoryInfo.SizeInMiB`; EC2 API Reference,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceTypes.html) as moto 5.2.5 ships them,
captured from AWS, for every row.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import moto
import pytest

from deepsentinel.aws_catalog import GPU_INSTANCE_TYPES

DESCRIBED = json.loads(gzip.decompress((Path(moto.__file__).parent / "ec2" / "resources" /
                                        "instance_types.json.gz").read_bytes()))


def test_the_p5_rows_are_the_instance_type_pages():
    """The page's P5 rows: p5.4xlarge has 16 vCPUs, 1 NVIDIA H100 and 256 GiB of memory; p5.48xlarge 192 vCPUs,
    8 H100 and 2,048 GiB. The table keeps (vCPUs, GPUs); DescribeInstanceTypes answers the same, memory included."""
    assert {t: v for t, v in GPU_INSTANCE_TYPES.items() if t.split(".")[0] == "p5"} == {
        "p5.4xlarge": (16, 1), "p5.48xlarge": (192, 8)}
    for instance_type, memory_gib in (("p5.4xlarge", 256), ("p5.48xlarge", 2048)):
        described = DESCRIBED[instance_type]
        assert described["MemoryInfo"]["SizeInMiB"] == memory_gib * 1024
        assert {g["Name"] for g in described["GpuInfo"]["Gpus"]} == {"H100"}


@pytest.mark.parametrize("instance_type", sorted(t for t in GPU_INSTANCE_TYPES if t in DESCRIBED))
def test_each_row_has_the_vcpus_and_nvidia_gpus_ec2_describes(instance_type):
    described = DESCRIBED[instance_type]
    gpus = described["GpuInfo"]["Gpus"]
    assert GPU_INSTANCE_TYPES[instance_type] == (described["VCpuInfo"]["DefaultVCpus"], sum(g["Count"] for g in gpus))
    assert {g["Manufacturer"] for g in gpus} == {"NVIDIA"}
    assert "x86_64" in described["ProcessorInfo"]["SupportedArchitectures"]


def test_most_rows_are_checked_against_ec2():
    """moto's copy has no p3 types, so those three rows rest on the page alone; every other row is checked."""
    assert sorted(t for t in GPU_INSTANCE_TYPES if t not in DESCRIBED) == ["p3.16xlarge", "p3.2xlarge", "p3.8xlarge"]
