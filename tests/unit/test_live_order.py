"""The live tests' order (tests/live/conftest.py): every deployment's checks while it is up, then what runs while
the destroys do (`while_destroying`), then the destroy checks (`live_destroy`); the platform's own after the
modules' in each part, since its module's end starts its destroy."""

from __future__ import annotations

from pathlib import Path

from tests.live import conftest as live

UNIT = Path(__file__)


class FakeItem:
    def __init__(self, name: str, *, markers: tuple[str, ...] = (), fixtures: tuple[str, ...] = (),
                 path: Path = live.LIVE_DIR / "test_x.py") -> None:
        self.name, self.path, self.fixturenames = name, path, list(fixtures)
        self.markers = set(markers)

    def get_closest_marker(self, name: str) -> object | None:
        return name if name in self.markers else None

    def add_marker(self, marker: object) -> None:
        self.markers.add(getattr(marker, "name", str(marker)))


class FakeConfig:
    def getoption(self, name: str) -> object:
        return {"--live-target": "moto", "--live-keep": False}[name]


def test_what_runs_while_destroying_comes_after_every_check_and_before_every_destroy_check():
    items = [FakeItem("destroy network", markers=("live_destroy",), fixtures=("network_live",)),
             FakeItem("bootstrap again", markers=("while_destroying",), fixtures=("platform_live",)),
             FakeItem("platform check", fixtures=("platform_live",)),
             FakeItem("destroy platform", markers=("live_destroy",), fixtures=("platform_live",)),
             FakeItem("network check", fixtures=("network_live",)),
             FakeItem("a unit test", path=UNIT)]
    live.pytest_collection_modifyitems(FakeConfig(), items)  # type: ignore[arg-type]
    assert [i.name for i in items] == ["network check", "a unit test",
                                       "platform check", "bootstrap again", "destroy network", "destroy platform"]
    assert all("live" in i.markers for i in items if i.path != UNIT)


def test_the_platforms_after_plans_checks_come_after_its_other_checks_and_before_what_runs_while_destroying():
    """The platform's checks that need no plan run while its second plan does (tests/live/harness.py's planner
    thread); those that read a plan, take the state lock or change what a plan reads wait for it, after them."""
    items = [FakeItem("bootstrap again", markers=("while_destroying",), fixtures=("platform_live",)),
             FakeItem("second plan", markers=("after_plans",), fixtures=("platform_live",)),
             FakeItem("smoke", fixtures=("platform_live",)),
             FakeItem("network's second plan", markers=("while_destroying",), fixtures=("network_live",)),
             FakeItem("lock", markers=("after_plans",), fixtures=("platform_live",)),
             FakeItem("outputs", fixtures=("platform_live",)),
             FakeItem("network check", fixtures=("network_live",))]
    live.pytest_collection_modifyitems(FakeConfig(), items)  # type: ignore[arg-type]
    assert [i.name for i in items] == ["network check", "smoke", "outputs", "second plan", "lock",
                                       "network's second plan", "bootstrap again"]
