"""DeepSentinel infrastructure: cdktf constructs and tooling for the video-analysis platform."""

from deepsentinel.provider import register_provider_package

register_provider_package()
