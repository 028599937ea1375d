"""A function's code directory: its folder plus the pure-Python distributions its vendor.txt pins; and its zip."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from deepsentinel.lambda_package import VendoringError, code_archive, read_pins, staged_code_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
MONITOR = REPO_ROOT / "lambdas" / "batch_failure_monitor"


def test_the_monitor_package_holds_its_handler_and_the_pinned_driver_without_installer_bookkeeping(tmp_path):
    staged = staged_code_dir(MONITOR, build_root=tmp_path)
    files = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    assert {"handler.py", "pg8000/native.py", "scramp/core.py", "asn1crypto/x509.py",
            "scramp-1.4.17.dist-info/METADATA"} <= files  # scramp reads its own version from METADATA
    assert not [f for f in files if f.endswith((".pyc", "/RECORD", "/INSTALLER", "/direct_url.json"))]


def test_the_package_is_content_addressed_and_other_functions_are_archived_as_they_are(tmp_path):
    first = staged_code_dir(MONITOR, build_root=tmp_path)
    assert staged_code_dir(MONITOR, build_root=tmp_path) == first  # same sources, same directory and asset hash
    (first / "__pycache__").mkdir()  # a local run imported the handler from the staged directory
    (first / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"")
    assert staged_code_dir(MONITOR, build_root=tmp_path) == first and not (first / "__pycache__").exists()
    assert staged_code_dir(REPO_ROOT / "lambdas" / "sqs_to_batch", build_root=tmp_path) == \
        REPO_ROOT / "lambdas" / "sqs_to_batch"


def test_the_archive_holds_the_staged_files_and_is_the_same_bytes_for_the_same_sources(tmp_path):
    """What cdktf's archiver zipped, but reproducible: every staged file (no byte code), sorted, one fixed time,
    files 0644 and folders 0755, as Lambda needs them ("How do I troubleshoot 'permission denied' or 'unable to import
    module' errors when uploading a Lambda deployment package?", AWS Knowledge Center), deflated; built in another
    place, the same bytes."""
    archive = code_archive(MONITOR, build_root=tmp_path / "one")
    staged = staged_code_dir(MONITOR, build_root=tmp_path / "one")
    entries = zipfile.ZipFile(archive).infolist()
    files = [e for e in entries if not e.is_dir()]
    folders = [e for e in entries if e.is_dir()]
    assert [e.filename for e in files] == sorted(
        (p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()),
        key=lambda name: name.split("/"))  # in path order, directory by directory
    assert {e.filename for e in folders} == {
        f"{p.relative_to(staged).as_posix()}/" for p in staged.rglob("*") if p.is_dir()}
    names = [e.filename for e in entries]
    assert all(names.index(name.rstrip("/").rpartition("/")[0] + "/") < names.index(name)
               for name in names if "/" in name.rstrip("/"))  # each folder before what it holds
    assert {(e.date_time, e.external_attr >> 16, e.compress_type) for e in files} == {
        ((1980, 1, 1, 0, 0, 0), 0o100644, zipfile.ZIP_DEFLATED)}
    assert {(e.date_time, e.external_attr >> 16) for e in folders} == {((1980, 1, 1, 0, 0, 0), 0o40755)}
    with zipfile.ZipFile(archive) as opened:
        assert opened.read("handler.py") == (MONITOR / "handler.py").read_bytes() and opened.testzip() is None
    again = code_archive(MONITOR, build_root=tmp_path / "two")
    assert again != archive and again.read_bytes() == archive.read_bytes()
    assert code_archive(MONITOR, build_root=tmp_path / "one") == archive  # built once per content


def test_an_edited_function_gets_another_archive_and_byte_code_is_left_out(tmp_path):
    folder = tmp_path / "lambdas" / "sqs_to_batch"
    shutil.copytree(REPO_ROOT / "lambdas" / "sqs_to_batch", folder, ignore=shutil.ignore_patterns("__pycache__"))
    first = code_archive(folder, build_root=tmp_path / "build")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\0")
    assert code_archive(folder, build_root=tmp_path / "build") == first
    (folder / "handler.py").write_text((folder / "handler.py").read_text() + "\n# edited\n")
    edited = code_archive(folder, build_root=tmp_path / "build")
    assert edited != first and zipfile.ZipFile(edited).namelist() == zipfile.ZipFile(first).namelist()


def test_the_handler_imports_the_vendored_driver_from_its_package(tmp_path):
    """The Lambda runtime puts the function's directory first on sys.path (as `python -c` in it does)."""
    staged = staged_code_dir(MONITOR, build_root=tmp_path)
    found = subprocess.run([sys.executable, "-B", "-c", "import pg8000.native, scramp; print(pg8000.__file__); "
                            "print(scramp.__version__)"], cwd=staged, capture_output=True, text=True, check=True)
    location, version = found.stdout.split()
    assert Path(location).is_relative_to(staged) and version == "1.4.17"


def test_vendored_pins_are_the_project_pins():
    """pyproject.toml installs exactly what vendor.txt copies (a mismatch would stop synth)."""
    dependencies = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for pin in read_pins(MONITOR):
        assert f"{pin.name}=={pin.version}" in dependencies


def test_a_pin_that_is_not_installed_or_differs_stops_synth_with_the_command_to_run(tmp_path):
    folder = tmp_path / "fn"
    folder.mkdir()
    (folder / "handler.py").write_text("def handler(event, context):\n    return {}\n")
    (folder / "vendor.txt").write_text("pg8000==0.0.1\n")
    with pytest.raises(VendoringError, match=r"pip install pg8000==0\.0\.1"):
        staged_code_dir(folder, build_root=tmp_path / "build")
    (folder / "vendor.txt").write_text("no-such-distribution-here==1.0\n")
    with pytest.raises(VendoringError, match="not installed"):
        staged_code_dir(folder, build_root=tmp_path / "build")
    (folder / "vendor.txt").write_text("pg8000>=1\n")
    with pytest.raises(VendoringError, match="expected name==version"):
        staged_code_dir(folder, build_root=tmp_path / "build")


def test_a_distribution_with_a_compiled_extension_is_refused(tmp_path):
    """A wheel built for this machine need not load on Lambda's Amazon Linux."""
    folder = tmp_path / "fn"
    folder.mkdir()
    (folder / "handler.py").write_text("")
    (folder / "vendor.txt").write_text(f"psycopg-binary=={_version('psycopg-binary')}\n")
    with pytest.raises(VendoringError, match="compiled extension"):
        staged_code_dir(folder, build_root=tmp_path / "build")


def _version(name: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{name} is not installed")
