"""The code directory a Lambda function is deployed from: its folder, plus the pure-Python libraries it vendors.

A function folder (``lambdas/<function>/``) may name, in ``vendor.txt``, distributions that the Lambda runtime
does not ship (one ``name==version`` a line, ``#`` comments). They are copied from this Python's installed
copies (pinned to the same versions in pyproject.toml), not downloaded: synth stays offline and reproducible.
The staged directory is content-addressed, so the same sources always give the same asset hash.

Only pure-Python wheels qualify: a compiled extension built for this machine might not load on Lambda's
Amazon Linux, so a distribution with one is refused. Installer bookkeeping (RECORD, INSTALLER, REQUESTED,
direct_url.json) and byte code are left out; METADATA stays, as libraries read their own version from it
(scramp calls ``importlib.metadata.version("scramp")`` at import).

The zip a function is deployed from is built here too (code_archive), not by cdktf's ARCHIVE asset, which starts a
Node process per archive per synth (0.1-0.3 CPU-s each: 181 of them in one run of the unit tests, 2026-12-02): the
same sources give the same bytes, so the asset hash still changes only with the code.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

VENDOR_FILE = "vendor.txt"
DEFAULT_BUILD_ROOT = Path(tempfile.gettempdir()) / "deepsentinel-lambda-packages"
_SKIPPED_DIST_INFO = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
_COMPILED_SUFFIXES = (".so", ".pyd", ".dylib")
# cdktf names an ARCHIVE asset's zip so; a FILE asset keeps its file's name: the stacks' asset paths are unchanged
ARCHIVE_NAME = "archive.zip"
# the earliest time a zip entry can hold: no build time in the bytes
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# Lambda needs every file readable by all, and every folder listable: 644 and 755 for Python ("How do I troubleshoot
# 'permission denied' or 'unable to import module' errors when uploading a Lambda deployment package?", AWS
# Knowledge Center); 0x10 is the MS-DOS directory attribute zip tools also set
_ZIP_FILE_MODE = 0o100644 << 16
_ZIP_FOLDER_MODE = (0o40755 << 16) | 0x10


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
    sources = _code_files(folder)
    for pin in pins:
        sources += _distribution_files(pin)
    target = build_root / f"{folder.name}-{_digest(sources)}"
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


def code_archive(folder: Path, *, build_root: Path = DEFAULT_BUILD_ROOT) -> Path:
    """The zip to deploy `folder` from: staged_code_dir's files in sorted order, each folder before what it holds,
    with one fixed time, mode 0644 (folders 0755), compressed as cdktf's archiver did (deflate, level 9). Built once
    per content under `build_root`."""
    code_dir = staged_code_dir(folder, build_root=build_root)
    files = _code_files(code_dir)
    target = build_root / "archives" / f"{folder.name}-{_digest(files)}" / ARCHIVE_NAME
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{ARCHIVE_NAME}.{os.getpid()}.{threading.get_ident()}")
    with zipfile.ZipFile(partial, "w") as archive:
        folders: set[PurePosixPath] = set()
        for inside, source in files:
            for folder_inside in reversed(inside.parents[:-1]):  # "a/b/c.py": a/, then a/b/
                if folder_inside not in folders:
                    folders.add(folder_inside)
                    folder_entry = zipfile.ZipInfo(f"{folder_inside}/", date_time=_ZIP_EPOCH)
                    folder_entry.external_attr = _ZIP_FOLDER_MODE
                    archive.writestr(folder_entry, b"")
            entry = zipfile.ZipInfo(str(inside), date_time=_ZIP_EPOCH)
            entry.external_attr = _ZIP_FILE_MODE
            archive.writestr(entry, source.read_bytes(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    os.replace(partial, target)  # atomic: a parallel synth sees the whole zip or none (the same bytes either way)
    return target


def _code_files(directory: Path) -> list[tuple[PurePosixPath, Path]]:
    """(path inside the package, file) for every file of `directory` but byte code, sorted."""
    return sorted(
        (PurePosixPath(p.relative_to(directory).as_posix()), p)
        for p in directory.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def _digest(files: list[tuple[PurePosixPath, Path]]) -> str:
    digest = hashlib.sha256()
    for inside, source in files:
        digest.update(str(inside).encode() + b"\0" + hashlib.sha256(source.read_bytes()).digest())
    return digest.hexdigest()[:16]
