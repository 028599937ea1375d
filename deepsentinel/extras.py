"""The `worker` extra: the worker's analysis stack (torch, ultralytics, ...), left out of the toolkit's own install.

Only what runs the worker or loads its model here needs it (`smoke --local`, `model publish`); without it those
commands stop with one line naming the extra, before anything starts.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

from deepsentinel.errors import OperationFailed

# import name -> the distribution pyproject's `worker` extra installs
WORKER_MODULES = {
    "torch": "torch",
    "torchvision": "torchvision",
    "ultralytics": "ultralytics",
    "ffmpeg": "ffmpeg-python",
    "pgserver": "pgserver",
}
INSTALL_WORKER_EXTRA = "pip install -e '.[worker]' in the checkout (or pip install 'deepsentinel-infra[worker]')"


class MissingExtra(OperationFailed):
    """A command needs the worker extra and it is not installed."""


def missing_worker_modules(modules: Iterable[str] = WORKER_MODULES) -> list[str]:
    """Distributions of `modules` that cannot be imported here (found without importing: torch takes seconds)."""
    return [WORKER_MODULES[name] for name in modules if importlib.util.find_spec(name) is None]


def require_worker_extra(command: str, modules: Iterable[str] = WORKER_MODULES) -> None:
    """Raise MissingExtra, one line, when any of `modules` is missing."""
    if missing := missing_worker_modules(modules):
        raise MissingExtra(
            f"{command} needs the worker extra ({', '.join(missing)} not installed): {INSTALL_WORKER_EXTRA}"
        )
