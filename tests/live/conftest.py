"""Live tests: apply real Terraform to moto (default, free, every CI run) or to AWS (opt-in).

* `--live-target=moto` (default): each deployment gets its own moto server process (deepsentinel.local.server).
* `--live-target=aws`: the user's account, under a unique name prefix; runs only when
  DEEPSENTINEL_LIVE_AWS=1 is also set, otherwise every live test is skipped with that reason.

Every deployment the collected tests need is applied at once, in parallel, on first use. The network, security
and storage tests check those modules on the platform deployment, which contains them (tests/live/module_view.py);
`--live-modules` deploys each alone instead (Mode 2). A module's
fixture yields its applied deployment (outputs in `.outputs`) and starts its destroy when the module is
done, also when a test failed; the `live_destroy` tests, moved to the end of the session, wait for
those destroys and assert that nothing of the project is left. The session finalizer destroys anything
still standing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.conftest import LIVE_AWS_OPT_IN as AWS_OPT_IN  # noqa: E402
from tests.live import early, smoke_warm_up

DEPLOYMENT_FIXTURES = {"network_live": "network", "security_live": "security", "storage_live": "storage",
                       "platform_live": "platform"}
LIVE_DIR = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "live_destroy: destroy-and-check test, run after all other live tests")
    config.addinivalue_line("markers", "while_destroying: runs after the other live tests and before the live_destroy "
                                       "ones, while the deployments' destroys run (it needs only what they leave)")
    config.addinivalue_line("markers", "after_plans: runs after its deployment's other checks, which run while the "
                                       "second plan does: it reads a plan, takes the state lock or changes what a "
                                       "plan reads")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    live_items = [i for i in items if LIVE_DIR in Path(str(i.path)).parents]
    for item in live_items:
        item.add_marker(pytest.mark.live)
        # One xdist worker holds every live deployment (the pool is per process); the other runs unit tests
        # while the provider waits on AWS-side delays.
        item.add_marker(pytest.mark.xdist_group("live"))
    if config.getoption("--live-target") == "aws" and os.environ.get(AWS_OPT_IN) != "1":
        skip = pytest.mark.skip(reason=f"--live-target=aws creates billable resources in your AWS account; "
                                       f"set {AWS_OPT_IN}=1 to opt in")
        for item in live_items:
            item.add_marker(skip)
    if config.getoption("--live-keep"):
        keep = pytest.mark.skip(reason="--live-keep: the deployments stay up")
        for item in live_items:
            if item.get_closest_marker("live_destroy"):
                item.add_marker(keep)
    # destroy checks last, so every deployment's tests ran while it was up and the destroys overlap; before them
    # what runs while the destroys do; the platform's own tests after the modules' (which check the platform without
    # --live-modules): its fixture's end starts its destroy; in each module the after_plans tests last
    items.sort(key=lambda i: (i.get_closest_marker("live_destroy") is not None
                              or i.get_closest_marker("while_destroying") is not None,
                              i.get_closest_marker("live_destroy") is not None,
                              "platform_live" in getattr(i, "fixturenames", ()),
                              i.get_closest_marker("after_plans") is not None))


def _deployments_asked_for(session: pytest.Session) -> set[str]:
    """The deployments whose fixtures the tests that survived -m/-k selection (and are not skipped) use."""
    return {DEPLOYMENT_FIXTURES[f] for item in session.items if not item.get_closest_marker("skip")
            for f in getattr(item, "fixturenames", ()) if f in DEPLOYMENT_FIXTURES}


def _module_views(session: pytest.Session) -> list[str]:
    """Modules whose selected tests check them on the platform deployment (without --live-modules)."""
    if session.config.getoption("--live-modules"):
        return []
    return sorted(_deployments_asked_for(session) - {"platform"})


def _needed_deployments(session: pytest.Session) -> list[str]:
    """Deployments to apply for the selected tests; without --live-modules the modules' tests use the platform's."""
    asked = _deployments_asked_for(session)
    if session.config.getoption("--live-modules"):
        return sorted(asked)
    return ["platform"] if asked else []


@pytest.fixture(scope="session")
def live_target(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("--live-target")


@pytest.fixture(scope="session")
def live_pool(request: pytest.FixtureRequest, live_target: str, tmp_path_factory: pytest.TempPathFactory):
    from tests.live.harness import DeploymentPool, live_deployment

    started_early = early.started(request.config)  # the platform, deployed by the session's main process
    root = started_early.root if started_early else (request.config.getoption("--live-workdir")
                                                     or tmp_path_factory.mktemp("live"))
    root = Path(root).resolve()
    keep = request.config.getoption("--live-keep")

    def log(message: str) -> None:
        sys.__stderr__.write(f"[live] {message}\n")
        sys.__stderr__.flush()

    def factory(name: str):
        return lambda: live_deployment(name, root, target=live_target, log=log, keep=keep,
                                       early=started_early if name == "platform" else None)

    pool = DeploymentPool({n: factory(n) for n in DEPLOYMENT_FIXTURES.values()}, log)
    needed = _needed_deployments(request.session)
    pool.start(needed)
    if "platform" in needed:
        from tests.live.module_view import module_output_expressions

        for module in _module_views(request.session):  # synthesized here (jsii) while the platform applies
            pool.module_outputs[module] = module_output_expressions(module, pool.get("platform").settings)
    smoke_scratch = root / "platform" / smoke_warm_up.SCRATCH
    if live_target == "moto" and "platform" in needed:
        smoke_warm_up.start(request.config, request.session.items, smoke_scratch)
    yield pool
    pool.destroy_all()
    smoke_warm_up.stop_database(request.config, smoke_scratch)
    if keep:
        log(f"kept the deployments under {root}; rerun with --live-keep --live-workdir {root} to reuse them, "
            f"remove them with `python -m tests.live.sweep --root {root}`")


def _deployment_fixture(name: str):
    @pytest.fixture(scope="module")
    def fixture(request: pytest.FixtureRequest, live_pool):
        if name != "platform" and not request.config.getoption("--live-modules"):
            # The platform deployment holds this module under the same addresses: one deployment fewer on two
            # cores (measured in benchmarks/live.py's notes); its destroy starts when the platform's tests end.
            from tests.live.module_view import ModuleOnPlatform

            if name not in live_pool.module_views:
                live_pool.module_views[name] = ModuleOnPlatform.of(name, live_pool.get("platform").wait_applied(),
                                                                   live_pool.module_outputs[name])
            yield live_pool.module_views[name]
            return
        deployment = live_pool.get(name)
        try:
            yield deployment.wait_applied()
        finally:
            deployment.start_destroy()
    return fixture


network_live = _deployment_fixture("network")
security_live = _deployment_fixture("security")
storage_live = _deployment_fixture("storage")
platform_live = _deployment_fixture("platform")


@pytest.fixture(scope="module")
def destroyed(request: pytest.FixtureRequest, live_pool):
    """For live_destroy tests: `destroyed(name)` waits for that deployment's destroy."""
    return lambda name: live_pool.get(name).destroy()
