"""Entry point of `cdktf synth` (cdktf.json runs `python main.py`): every environment + the account stack.

Settings overrides come from DEEPSENTINEL_SETTINGS (a TOML file); `deepsentinel synth` offers more.
"""

import os
from pathlib import Path

from deepsentinel.app import synth
from deepsentinel.settings import ENVIRONMENTS, load_settings

settings_file = os.environ.get("DEEPSENTINEL_SETTINGS")
synth([load_settings(env, settings_file=Path(settings_file) if settings_file else None) for env in ENVIRONMENTS],
      outdir=Path(os.environ.get("CDKTF_OUTDIR", "cdktf.out")))
