"""The harness's pytest plugin (loaded by tests/conftest.py): shared servers started once, and a
failed start remembered, so that every test depending on it fails at once with the first error
instead of starting it again. Owns the session's WebDAV servers and the Docker image; must not
hold any test's assertions."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.dav_servers import SERVERS, apache_available, shared_root
from harness.dockerhost import EngineUnavailable, running_engine, single_user_image

#: The first error of each shared start that failed in this run, by what was started.
failed_starts: dict[str, str] = {}


def fail_if_failed_before(what: str) -> None:
    """Fail the calling test at once when starting ``what`` failed earlier in this run."""
    if what in failed_starts:
        pytest.fail(
            f"{what} failed to start earlier in this run and is not started again; "
            f"its first error:\n{failed_starts[what]}",
            pytrace=False,
        )


@contextlib.contextmanager
def shared_start(what: str) -> Iterator[None]:
    """Start ``what`` (a server, an image) in the block, once for the run: a failure (an error,
    a failed assertion, the test's timeout) is remembered and raised again at once by every
    later block for the same ``what``. A skip is not a failure and is not remembered."""
    fail_if_failed_before(what)
    try:
        yield
    except pytest.skip.Exception:
        raise
    except (Exception, pytest.fail.Exception) as error:
        failed_starts[what] = "".join(traceback.format_exception_only(error)).strip()
        raise


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef, request: pytest.FixtureRequest) -> Any:
    """Module- and session-scoped fixtures are shared starts: pytest already keeps a failed one
    for the rest of its scope, and this keeps it for the rest of the run, also where a module
    imports another's fixture (which pytest would otherwise set up again there)."""
    if fixturedef.scope == "function":
        return (yield)
    func = fixturedef.func
    what = f"fixture {fixturedef.argname!r} ({func.__module__}.{func.__qualname__})"
    if hasattr(request, "param"):
        what += f"[{request.param!r}]"
    try:
        fail_if_failed_before(what)
    except pytest.fail.Exception as error:
        # Kept as pytest keeps a fixture's own failure, for the rest of the fixture's scope.
        fixturedef.cached_result = (
            None,
            fixturedef.cache_key(request),
            (error, error.__traceback__),
        )
        raise
    with shared_start(what):
        return (yield)


@pytest.fixture(scope="session")
def dav_servers() -> Iterator[Callable[[str], Any]]:
    """Start each kind of WebDAV server once per session, when first asked for; stop them at the
    end. Each test gets a fresh folder on it (see `dav_space`). A server that failed to start is
    not started again: its later tests fail at once with its first error."""
    root = shared_root()
    started = {}

    def get(name: str):
        if name not in started:
            if name == "apache" and not apache_available():
                pytest.skip("Apache (Debian apache2) is not installed; scripts/test installs it")
            with shared_start(f"the {name} WebDAV server"):
                server = SERVERS[name](root / name)
                server.root.mkdir(mode=0o777)
                server.root.chmod(0o777)
                server.start()
            started[name] = server
        return started[name]

    yield get
    for server in started.values():
        server.stop()
        getattr(server, "cleanup", lambda: None)()
    shutil.rmtree(root, ignore_errors=True)


class DockerHost:
    """The Docker engine (reused, or started for the session) and the single-user test image,
    prepared once per session before the first test that needs them gets its timeout: a first
    build may take IMAGE_BUILD_TIMEOUT, far beyond one test's bound."""

    def __init__(self) -> None:
        self.engine = contextlib.ExitStack()
        self.image = ""
        self.unavailable = ""
        self.prepared = False

    def prepare(self, log: Path) -> None:
        if self.prepared:
            return
        self.prepared = True
        with shared_start("the Docker engine and test image"):
            try:
                self.engine.enter_context(running_engine(log))
            except EngineUnavailable as e:
                self.unavailable = str(e)
                return
            self.image = single_user_image()

    def require(self) -> str:
        fail_if_failed_before("the Docker engine and test image")
        if self.unavailable:
            pytest.skip(f"the Docker engine cannot run here: {self.unavailable}")
        return self.image


docker_host = DockerHost()


#: Where the log of a Docker engine started for the tests goes (appended to), kept for a look
#: after a failed start.
DOCKERD_LOG = Path(tempfile.gettempdir()) / "swan-test-dockerd.log"


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> None:
    """Before pytest-timeout starts the first Docker test's clock, prepare the engine and the
    image under their own bounds (ENGINE_START_TIMEOUT, IMAGE_BUILD_TIMEOUT)."""
    if "image" in getattr(item, "fixturenames", ()):
        with contextlib.suppress(Exception, pytest.fail.Exception):
            docker_host.prepare(DOCKERD_LOG)


@pytest.fixture(scope="session")
def image() -> Iterator[str]:
    """The single-user test image, on an engine that runs for the whole session (started here if
    none answers, and stopped at its end)."""
    docker_host.prepare(DOCKERD_LOG)
    try:
        yield docker_host.require()
    finally:
        docker_host.engine.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's headless Chromium for one test; each person in it gets a context of their own
    (`harness.lab_browser.person`)."""
    from harness.lab_browser import chromium_browser

    with chromium_browser() as opened:
        yield opened
