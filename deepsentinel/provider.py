"""Make `cdktf_cdktf_provider_aws.<service>` importable without running the package `__init__`.

The binding's `__init__` imports all 2,135 service modules (8-9 s, ~1.1 GB with Node). Registering an
empty package object with the right `__path__` lets Python import only the submodules our constructs
name in their ordinary `from cdktf_cdktf_provider_aws.x import Y` lines, so a new resource type is
picked up by its import line alone; nothing needs listing here. Each submodule loads the jsii
assembly itself through `cdktf_cdktf_provider_aws._jsii`.
"""

from __future__ import annotations

import importlib.util
import os
import sys

PACKAGE = "cdktf_cdktf_provider_aws"


def register_provider_package() -> None:
    # jsii prints a banner on Node 20; it is noise for our users, not an error.
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None:  # not installed: the import error surfaces where a construct imports it
        return
    sys.modules[PACKAGE] = importlib.util.module_from_spec(spec)
