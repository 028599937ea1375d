"""`deepsentinel graph` writes its picture where git ignores it, and says where."""

from __future__ import annotations

import subprocess
from pathlib import Path

from deepsentinel.cli import main
from tests.conftest import REPO_ROOT


def test_the_default_picture_goes_to_an_ignored_place_and_the_output_line_names_it(platform, tmp_path: Path,
                                                                                     monkeypatch, capsys):
    """Issue 19: `graph` wrote platform-dev.svg into the checkout's root, untracked and not ignored."""
    monkeypatch.chdir(tmp_path)  # the default is relative to where the user runs it
    assert main(["graph", "--env", "dev", "--stacks", str(platform.outdir)]) == 0
    written = Path("cdktf.out") / "platform-dev.svg"
    assert (tmp_path / written).read_bytes().lstrip().startswith((b"<?xml", b"<svg"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out"]
    assert capsys.readouterr().out.startswith(f"wrote {written}: ")
    # git itself says the path is ignored in the checkout (exit 0: ignored), as is the old default's leftover
    for path in (written, Path("platform-dev.svg")):
        ignored = subprocess.run(["git", "check-ignore", "--no-index", "--quiet", str(path)], cwd=REPO_ROOT)
        assert ignored.returncode == 0, f"{path} is not ignored by .gitignore"
    tracked_picture = subprocess.run(["git", "check-ignore", "--no-index", "--quiet", "docs/platform-dev.svg"],
                                     cwd=REPO_ROOT)
    assert tracked_picture.returncode == 1  # docs/plan-review.md's drawing (--out docs/platform-dev.svg) stays committable
