# The GPU worker's golden AMI: the ECS GPU-optimized Amazon Linux 2 AMI with the worker image already
# pulled and the model weights already on disk, so a Batch instance starts working in ~3 min, not ~20.
# Its id feeds the `gpu_ami_id` setting. Build and IAM: docs/release.md.
#
#   packer build -var worker_image=<account>.dkr.ecr.ap-northeast-2.amazonaws.com/deepsentinel-dev/video-analysis:<sha> \
#                -var model_bucket=deepsentinel-dev-analysis-models -var model_key=<the environment's model_key> \
#                -var subnet_id=subnet-... worker_image/ami/worker-gpu.pkr.hcl

variable "region" {
  type    = string
  default = "ap-northeast-2"
}

variable "worker_image" {
  type        = string
  description = "ECR URI of the worker image, tagged with the release's commit"
}

variable "model_bucket" {
  type        = string
  description = "the analysis-models bucket"
}

variable "model_key" {
  type        = string
  description = "the environment's model_key setting (the key `deepsentinel model publish` printed)"
}

variable "subnet_id" {
  type        = string
  description = "a subnet with a route to ECR and S3 (the build instance pulls the image and the weights)"
}

variable "instance_profile" {
  type        = string
  default     = "deepsentinel-ami-builder"
  description = "instance profile of the build instance: ECR pull and s3:GetObject on the model (docs/release.md)"
}

variable "instance_type" {
  type    = string
  default = "g5.xlarge"
}

locals {
  # The host directory the job definitions mount read-only as MODEL_DIR (deepsentinel/constructs/pipeline.py,
  # PRELOADED_MODEL_DIR): the worker uses <model_dir>/<file name of model_key> before downloading the key.
  model_dir = "/opt/deepsentinel/models"
  build_time      = regex_replace(timestamp(), "[- TZ:]", "")
}

source "amazon-ebs" "worker_gpu" {
  region               = var.region
  instance_type        = var.instance_type
  subnet_id            = var.subnet_id
  iam_instance_profile = var.instance_profile
  ssh_username         = "ec2-user"
  ami_name             = "deepsentinel-worker-gpu-${local.build_time}"
  ami_description      = "DeepSentinel GPU worker: ECS GPU AMI + ${var.worker_image} + s3://${var.model_bucket}/${var.model_key}"
  encrypt_boot         = true
  # IMDSv2 for the build instance (metadata_options) needs Packer >= 1.7; Debian's 1.6.6 rejects the block.
  # The AMI itself carries no metadata setting: the Batch launch template requires IMDSv2 on every instance.

  source_ami_filter {
    owners      = ["amazon"]
    most_recent = true
    filters = {
      name                = "amzn2-ami-ecs-gpu-hvm-*-x86_64-ebs"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
  }

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = 100
    volume_type           = "gp3"
    throughput            = 125
    iops                  = 3000
    delete_on_termination = true
  }

  tags = {
    Project     = "deepsentinel"
    Purpose     = "gpu-worker"
    WorkerImage = var.worker_image
  }
}

build {
  sources = ["source.amazon-ebs.worker_gpu"]

  provisioner "shell" {
    environment_vars = [
      "REGION=${var.region}",
      "WORKER_IMAGE=${var.worker_image}",
      "MODEL_URI=s3://${var.model_bucket}/${var.model_key}",
      "MODEL_DIR=${local.model_dir}",
    ]
    inline = [
      "set -euo pipefail",
      "registry=\"$${WORKER_IMAGE%%/*}\"",
      "aws ecr get-login-password --region \"$REGION\" | sudo docker login --username AWS --password-stdin \"$registry\"",
      "sudo docker pull \"$WORKER_IMAGE\"",
      "sudo mkdir -p \"$MODEL_DIR\"",
      "sudo aws s3 cp --region \"$REGION\" \"$MODEL_URI\" \"$MODEL_DIR/$${MODEL_URI##*/}\"",
      "sudo chmod -R a+rX \"$MODEL_DIR\"", # the worker runs unprivileged
      "sudo docker logout \"$registry\"",
      "sudo rm -rf /root/.docker /var/lib/cloud/instances/*",
    ]
  }
}
