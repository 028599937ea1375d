"""The code directory a Lambda function is deployed from: its folder, plus the pure-Python libraries it vendors.

A function folder (``lambdas/<function>/``) may name, in ``vendor.txt``, distributions that the Lambda runtime
does not ship (one ``name==version`` a line, ``#`` comments). They are copied from this Python's installed
copies (pinned to the same versions in pyproject.toml), not downloaded: synth stays offline and reproducible.
The staged directory is content-addressed, so the same sources always give the same asset hash.

Only pure-Python wheels qualify: a compiled extension built for this machine might not load on Lambda's
Amazon Linux, so a distribution with one is refused. Installer bookkeeping (RECORD, INSTALLER, REQUESTED,
direct_url.json) and byte code are left out; METADATA stays, as libraries read their own version from it
(scramp calls ``importlib.metadata.version("scramp")`` at import).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

VENDOR_FILE = "vendor.txt"
DEFAULT_BUILD_ROOT = Path(tempfile.gettempdir()) / "deepsentinel-lambda-packages"
_SKIPPED_DIST_INFO = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
_COMPILED_SUFFIXES = (".so", ".pyd", ".dylib")


class VendoringError(RuntimeError):
    """A vendored distribution is missing, at another version than pinned, or not pure Python."""


@dataclass(frozen=True)
class Pin:
    name: str
    version: str


def read_pins(folder: Path) -> tuple[Pin, ...]:
    """The ``name==version`` lines of the folder's vendor.txt (none when it has no such file)."""
    path = folder / VENDOR_FILE
    if not path.is_file():
        return ()
    pins = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not name.strip() or not version.strip():
            raise VendoringError(f"{path}:{number}: expected name==version, got {raw.strip()!r}")
        pins.append(Pin(name.strip(), version.strip()))
    return tuple(pins)


def _distribution_files(pin: Pin) -> list[tuple[PurePosixPath, Path]]:
    """(path inside the package, installed file) for every file of the pinned distribution worth shipping."""
    try:
        dist = importlib.metadata.distribution(pin.name)
    except importlib.metadata.PackageNotFoundError as exc:
        raise VendoringError(
            f"{pin.name}=={pin.version} is vendored into a Lambda package but not installed: "
            f"pip install -e . (pyproject.toml's dependencies pin it)"
        ) from exc
    if dist.version != pin.version:
        raise VendoringError(
            f"{pin.name} {dist.version} is installed, the Lambda package pins {pin.version}: "
            f"pip install {pin.name}=={pin.version}"
        )
    out = []
    for relative in dist.files or []:
        parts = PurePosixPath(str(relative)).parts
        if ".." in parts or "__pycache__" in parts or parts[-1].endswith(".pyc"):
            continue  # console scripts outside site-packages; byte code differs per interpreter
        if parts[0].endswith(".dist-info") and parts[-1] in _SKIPPED_DIST_INFO:
            continue
        if parts[-1].endswith(_COMPILED_SUFFIXES):
            raise VendoringError(
                f"{pin.name} has a compiled extension ({relative}): only pure-Python "
                "distributions can be vendored into a Lambda package"
            )
        out.append((PurePosixPath(*parts), Path(str(dist.locate_file(relative)))))
    if not out:
        raise VendoringError(f"{pin.name}=={pin.version} lists no files (installed without a RECORD?)")
    return sorted(out)


def staged_code_dir(folder: Path, *, build_root: Path = DEFAULT_BUILD_ROOT) -> Path:
    """The directory to archive for `folder`: the folder itself when it vendors nothing, else a staged copy
    of its files plus the vendored distributions' files."""
    pins = read_pins(folder)
    if not pins:
        return folder
    sources = sorted(
        (PurePosixPath(p.relative_to(folder).as_posix()), p)
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    for pin in pins:
        sources += _distribution_files(pin)
    digest = hashlib.sha256()
    for inside, source in sources:
        digest.update(str(inside).encode() + b"\0" + hashlib.sha256(source.read_bytes()).digest())
    target = build_root / f"{folder.name}-{digest.hexdigest()[:16]}"
    if target.is_dir():
        for cache in list(target.rglob("__pycache__")):  # an import from the directory (a local run) wrote these
            shutil.rmtree(cache, ignore_errors=True)
        return target
    build_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=build_root))
    for inside, source in sources:
        destination = staging.joinpath(*inside.parts)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
    try:
        os.rename(staging, target)  # atomic: a parallel synth sees the whole directory or none
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another process staged the same content first
    return target
