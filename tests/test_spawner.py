"""SwanSpawnerMixin and SwanLocalSpawner, built on a real JupyterHub user (in-memory database) but
never started: the arguments and environment the server would get, where its files go, and how
unsafe user names are refused."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import stat
import sys
import time
from pathlib import Path

import pytest
from jupyterhub import orm
from jupyterhub.objects import Hub
from jupyterhub.user import User
from traitlets.config import Config

from swan_hub import SwanLocalSpawner, SwanSpawnerMixin
from swan_hub.cli import DataDir
from swan_hub.spawner import (
    UnsafeUsernameError,
    credentials_from_api_token,
    filesystem_safe_name,
)


@pytest.fixture
def db():
    session = orm.new_session_factory("sqlite:///:memory:")()
    yield session
    session.close()


@pytest.fixture
def data(tmp_path) -> DataDir:
    return DataDir(str(tmp_path / "swan-data"))


@pytest.fixture
def make_spawner(db, data):
    """Makes spawners; any mounts one still has at the end are taken down, so that a test
    that failed halfway leaves no FUSE process behind."""
    made: list[SwanLocalSpawner] = []

    def make(
        name: str = "alice",
        config: Config | None = None,
        spawner_class: type = SwanLocalSpawner,
        **kwargs,
    ) -> SwanLocalSpawner:
        orm_user = orm.User.find(db, name)
        if orm_user is None:
            orm_user = orm.User(name=name)
            db.add(orm_user)
            db.commit()
        c = Config()
        c.SwanSpawnerMixin.space_template = data.template(data.users)
        c.SwanSpawnerMixin.versions_template = data.template(data.versions)
        c.SwanLocalSpawner.jupyter_dir_template = data.template(data.runtime)
        c.SwanSpawnerMixin.credentials_template = data.template(data.credentials)
        if config is not None:
            c.merge(config)
        user = User(orm_user, {"config": c})
        spawner = user._new_spawner(
            "",
            spawner_class=spawner_class,
            hub=Hub(),
            oauth_client_id="swan-test-client",
            **kwargs,
        )
        made.append(spawner)
        return spawner

    yield make
    for spawner in made:
        if mounts := getattr(spawner, "_mounts", None):
            with contextlib.suppress(Exception):
                mounts.stop(upload_wait=0)


def test_the_server_serves_the_space_with_the_swan_contents_manager(make_spawner, data):
    args = make_spawner().get_args()
    assert "--ServerApp.contents_manager_class=swan_contents.SwanContentsManager" in args
    assert f"--ServerApp.root_dir={data.users}/alice" in args
    assert f"--SwanContentsManager.versions_dir={data.versions}/alice" in args


def test_allow_root_is_passed_exactly_when_the_hub_runs_as_root(make_spawner):
    assert ("--allow-root" in make_spawner().get_args()) == (os.geteuid() == 0)


def test_admin_args_are_kept_before_the_swan_args(make_spawner):
    args = make_spawner(args=["--ServerApp.shutdown_no_activity_timeout=600"]).get_args()
    assert args[0] == "--ServerApp.shutdown_no_activity_timeout=600"
    assert args.count("--allow-root") <= 1


def test_home_is_the_space_and_jupyter_state_lives_outside_it(make_spawner, data):
    env = make_spawner().get_env()
    space = os.path.join(data.users, "alice")
    assert env["HOME"] == space
    assert env["SWAN_SPACE"] == space
    assert env["USER"] == "alice"
    for key in (
        "JUPYTER_CONFIG_DIR",
        "JUPYTER_DATA_DIR",
        "JUPYTER_RUNTIME_DIR",
        "IPYTHONDIR",
        "XDG_CACHE_HOME",
        "npm_config_cache",
    ):
        assert env[key].startswith(os.path.join(data.runtime, "alice") + os.sep), key
        assert not env[key].startswith(data.users), key


def test_a_space_on_webdav_gets_the_storage_url_user_and_the_servers_own_token(make_spawner):
    c = Config()
    c.SwanSpawnerMixin.webdav_url_template = "http://127.0.0.1:9/dav/files/{username}/"
    c.SwanSpawnerMixin.storage_credentials = credentials_from_api_token
    spawner = make_spawner("ana maría", config=c)
    spawner.api_token = "the-servers-token"
    credentials = asyncio.run(spawner.current_credentials())
    assert credentials == {
        "kind": "basic",
        "username": "ana maría",
        "password": "the-servers-token",
    }
    env = spawner.get_env()
    assert env["SWAN_WEBDAV_URL"] == "http://127.0.0.1:9/dav/files/ana%20mar%C3%ADa/"
    assert env["SWAN_WEBDAV_USER"] == "ana maría"
    assert "SWAN_WEBDAV_PASSWORD" not in env, "secrets travel in the credentials file"
    args = spawner.get_args()
    assert "--SwanContentsManager.storage_class=swan_contents.storage.WebDAVStorage" in args
    # kernels still start in the space on disk
    assert any(a.startswith("--ServerApp.root_dir=") for a in args)


def test_without_a_webdav_url_the_server_serves_the_space_path_and_gets_no_password(
    make_spawner,
):
    spawner = make_spawner()
    spawner.api_token = "the-servers-token"
    env = spawner.get_env()
    assert not [k for k in env if k.startswith("SWAN_WEBDAV_")]
    assert not [a for a in spawner.get_args() if "storage_class" in a]


def test_the_hub_api_token_still_reaches_the_server(make_spawner):
    spawner = make_spawner()
    spawner.api_token = "a-token"
    assert spawner.get_env()["JUPYTERHUB_API_TOKEN"] == "a-token"


def test_users_land_in_jupyterlab_unless_configured_otherwise(make_spawner):
    assert make_spawner().default_url == "/lab"
    c = Config()
    c.Spawner.default_url = "/tree"
    assert make_spawner(config=c).default_url == "/tree"


def test_the_server_command_is_the_one_next_to_the_hubs_python(make_spawner):
    expected = os.path.join(os.path.dirname(sys.executable), "swan-singleuser")
    assert make_spawner().cmd == [expected]


def test_missing_space_is_created_private(make_spawner, data):
    spawner = make_spawner()
    spawner.ensure_storage_dirs()
    for path in (spawner.space_path, spawner.versions_path, spawner.jupyter_dir_path):
        assert os.path.isdir(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert spawner.space_path == os.path.join(data.users, "alice")


def test_missing_space_fails_the_spawn_by_name_when_creation_is_off(make_spawner, data):
    c = Config()
    c.SwanSpawnerMixin.create_space = False
    spawner = make_spawner(config=c)
    with pytest.raises(RuntimeError, match=os.path.join(data.users, "alice")):
        spawner.ensure_storage_dirs()
    assert not os.path.exists(os.path.join(data.users, "alice"))


def test_an_existing_space_is_used_when_creation_is_off(make_spawner, data):
    os.makedirs(os.path.join(data.users, "alice"))
    c = Config()
    c.SwanSpawnerMixin.create_space = False
    make_spawner(config=c).ensure_storage_dirs()


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../etc", "a\0b"])
def test_names_that_would_leave_the_data_dir_are_refused(name):
    with pytest.raises(UnsafeUsernameError):
        filesystem_safe_name(name)


@pytest.mark.parametrize("name", ["alice", "a.b", "first.last@example.org", "zoë", "..a", "a.."])
def test_ordinary_names_are_used_as_they_are(name):
    assert filesystem_safe_name(name) == name


def test_a_spawner_for_an_unsafe_name_refuses_to_build_paths(make_spawner, data):
    spawner = make_spawner(name="..")
    with pytest.raises(UnsafeUsernameError):
        spawner.get_args()
    with pytest.raises(UnsafeUsernameError):
        spawner.ensure_storage_dirs()
    assert not os.path.exists(data.root)


def test_braces_in_the_data_dir_do_not_break_the_templates(tmp_path, make_spawner):
    odd = DataDir(str(tmp_path / "data {x}"))
    c = Config()
    c.SwanSpawnerMixin.space_template = odd.template(odd.users)
    assert make_spawner(config=c).space_path == os.path.join(odd.users, "alice")


def test_the_mixin_is_configured_under_its_own_name_for_every_spawner():
    assert "SwanSpawnerMixin" in SwanLocalSpawner.section_names()
    assert issubclass(SwanLocalSpawner, SwanSpawnerMixin)


def test_templates_can_use_the_first_letter_of_the_username(make_spawner, tmp_path):
    c = Config()
    c.SwanSpawnerMixin.space_template = str(tmp_path / "eos/user/{username[0]}/{username}")
    assert make_spawner(config=c).space_path == str(tmp_path / "eos/user/a/alice")


def docker_spawner(make_spawner, config: Config | None = None):
    from swan_hub import SwanDockerSpawner

    return make_spawner(config=config, spawner_class=SwanDockerSpawner)


def test_the_container_sees_the_space_at_the_host_path_by_default(make_spawner, data):
    spawner = docker_spawner(make_spawner)
    space = os.path.join(data.users, "alice")
    binds = spawner.volume_binds
    assert binds[space] == {"bind": space, "mode": "rw"}
    assert binds[os.path.join(data.versions, "alice")]["bind"] == "/var/lib/swan/versions"
    assert f"--ServerApp.root_dir={space}" in spawner.get_args()
    assert "--SwanContentsManager.versions_dir=/var/lib/swan/versions" in spawner.get_args()
    assert "--allow-root" not in spawner.get_args()
    env = spawner.get_env()
    assert env["HOME"] == space
    assert env["JUPYTER_RUNTIME_DIR"].startswith("/tmp/swan-state/")


def test_the_space_can_appear_under_another_path_in_the_container(make_spawner, data):
    c = Config()
    c.SwanDockerSpawner.container_space_template = "/home/{username}"
    spawner = docker_spawner(make_spawner, c)
    assert spawner.volume_binds[os.path.join(data.users, "alice")]["bind"] == "/home/alice"
    assert spawner.get_env()["HOME"] == "/home/alice"
    assert "--ServerApp.root_dir=/home/alice" in spawner.get_args()


def test_docker_defaults_use_host_networking_and_never_pull(make_spawner):
    spawner = docker_spawner(make_spawner)
    assert spawner.network_name == "host"
    assert spawner.pull_policy == "never"
    assert spawner.remove is True
    assert spawner.ip == "127.0.0.1"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files to another user")
def test_a_space_the_hub_made_passes_to_the_container_user_at_the_first_spawn(
    make_spawner, data, tmp_path
):
    space = Path(data.users) / "alice"
    (space / "synced").mkdir(parents=True)
    (space / "synced" / "data.csv").write_text("x,y")
    (space / "theirs.txt").write_text("kept")
    os.chown(space / "theirs.txt", 2000, 2000)
    outside = tmp_path / "outside.txt"
    outside.write_text("not in the space")
    (space / "link").symlink_to(outside)
    spawner = docker_spawner(make_spawner)
    spawner.ensure_storage_dirs()
    owner = (spawner.container_uid, spawner.container_gid)
    for path in (space, space / "synced", space / "synced" / "data.csv", space / "link"):
        st = os.lstat(path)
        assert (st.st_uid, st.st_gid) == owner, path
    assert os.stat(space / "theirs.txt").st_uid == 2000  # not the hub's: left alone
    assert os.stat(outside).st_uid == 0  # a link is changed, never followed


@pytest.fixture
def auth_state_encryption():
    """Auth state encrypted with a key of the test's own, as a hub with JUPYTERHUB_CRYPT_KEY."""
    from jupyterhub.crypto import CryptKeeper

    CryptKeeper.clear_instance()
    CryptKeeper.instance().keys = [os.urandom(32)]
    yield
    CryptKeeper.clear_instance()


def stored(path: str) -> dict:
    """The credentials file's JSON, as the server would read it."""
    return json.loads(Path(path).read_text())


def credentials_hook(credentials: dict | None) -> Config:
    c = Config()
    c.SwanSpawnerMixin.storage_credentials = lambda spawner, auth_state: credentials
    return c


async def test_credentials_are_written_privately_mounted_read_only_and_removed_at_stop(
    make_spawner, data
):
    from swan_hub import SwanDockerSpawner

    hook = credentials_hook({"kind": "bearer", "token": "t0k3n"})
    spawner = make_spawner(config=hook, spawner_class=SwanDockerSpawner)
    await spawner.hand_over_credentials()
    path = os.path.join(data.root, "credentials", "alice", "storage.json")
    assert stored(path) == {"kind": "bearer", "token": "t0k3n"}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.stat(path).st_uid == spawner.container_uid
    assert os.listdir(os.path.dirname(path)) == ["storage.json"]  # no temp file left beside
    bind = spawner.volume_binds[os.path.dirname(path)]
    assert bind == {"bind": "/run/swan/credentials", "mode": "ro"}
    env = spawner.get_env()
    assert env["SWAN_STORAGE_CREDENTIALS"] == "/run/swan/credentials/storage.json"
    assert "t0k3n" not in json.dumps(env)
    assert "t0k3n" not in " ".join(spawner.get_args())
    await spawner.discard_credentials()
    assert not os.path.exists(path)


def test_an_access_token_in_auth_state_becomes_bearer_credentials():
    from swan_hub.spawner import credentials_from_auth_state

    assert credentials_from_auth_state(None, {"access_token": "x"}) == {
        "kind": "bearer",
        "token": "x",
    }
    assert credentials_from_auth_state(None, None) is None
    assert credentials_from_auth_state(None, {"refresh_token": "y"}) is None


async def test_without_credentials_nothing_is_handed_over(make_spawner, data):
    spawner = make_spawner()
    assert await spawner.current_credentials() is None  # no auth state
    assert "SWAN_STORAGE_CREDENTIALS" not in spawner.get_env()


async def test_the_default_hook_hands_over_the_access_token_of_the_auth_state(
    make_spawner, auth_state_encryption
):
    spawner = make_spawner()
    await spawner.user.save_auth_state({"access_token": "a1", "refresh_token": "r1"})
    assert await spawner.current_credentials() == {"kind": "bearer", "token": "a1"}


async def test_credentials_the_server_could_not_use_fail_the_spawn_with_the_reason(make_spawner):
    spawner = make_spawner(config=credentials_hook({"kind": "bearer", "access_token": "x"}))
    with pytest.raises(ValueError, match='storage credentials of .alice.*"token"') as refused:
        await spawner.current_credentials()
    assert "x" not in str(refused.value).split(":")[-1]


async def test_an_async_hook_is_awaited(make_spawner):
    async def hook(spawner, auth_state):
        return {"kind": "basic", "username": spawner.user.name, "password": "pw"}

    c = Config()
    c.SwanSpawnerMixin.storage_credentials = hook
    credentials = await make_spawner(config=c).current_credentials()
    assert credentials == {"kind": "basic", "username": "alice", "password": "pw"}


def documented_example(heading: str) -> str:
    """The Python block under ``heading`` in docs/admin-docker.md."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "admin-docker.md").read_text()
    section = page.split(heading, 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


async def test_the_documented_app_password_hook_works(make_spawner, tmp_path):
    c = Config()
    namespace: dict = {"c": c}
    exec(documented_example("#### App passwords"), namespace)  # noqa: S102 - our own docs
    namespace["APP_PASSWORDS"] = tmp_path
    spawner = make_spawner(config=c)
    assert await spawner.current_credentials() is None  # no app password for alice yet
    (tmp_path / "alice").write_text("app-password-of-alice\n")
    assert await spawner.current_credentials() == {
        "kind": "basic",
        "username": "alice",
        "password": "app-password-of-alice",
        "url": "https://cloud.example.org/remote.php/dav/files/alice/",
    }


async def test_a_refreshed_token_replaces_the_file_atomically_and_an_unchanged_one_is_left(
    make_spawner, auth_state_encryption
):
    spawner = make_spawner()
    await spawner.user.save_auth_state({"access_token": "a1"})
    await spawner.hand_over_credentials()
    path = spawner.credentials_path
    first = os.stat(path)
    assert await spawner.refresh_credentials() is False
    assert os.stat(path).st_ino == first.st_ino
    await spawner.user.save_auth_state({"access_token": "a2"})
    assert await spawner.refresh_credentials() is True
    assert stored(path) == {"kind": "bearer", "token": "a2"}
    assert os.stat(path).st_ino != first.st_ino  # replaced, not rewritten in place
    await spawner.user.save_auth_state(None)
    assert await spawner.refresh_credentials() is False  # no token now: keep the last one
    assert stored(path)["token"] == "a2"


async def test_a_restarted_hub_goes_on_refreshing_a_running_servers_credentials(
    make_spawner, auth_state_encryption
):
    import asyncio

    before = make_spawner()
    await before.user.save_auth_state({"access_token": "a1"})
    await before.hand_over_credentials()
    state = {**before.get_state(), "pid": os.getpid()}  # a server process that is alive
    assert state["swan_credentials"] is True

    after = make_spawner(credentials_refresh_interval=0.05)
    after.load_state(state)
    assert await after.poll() is None
    try:
        await after.user.save_auth_state({"access_token": "a2"})
        for _ in range(100):
            if stored(after.credentials_path)["token"] == "a2":
                break
            await asyncio.sleep(0.05)
        assert stored(after.credentials_path)["token"] == "a2"
    finally:
        after._credentials_task.cancel()


async def test_the_spawn_form_of_a_local_process_says_cpu_and_memory_are_not_enforced(
    make_spawner,
):
    c = Config()
    c.SwanSpawnerMixin.form_config = {
        "environments": [{"id": "py", "display_name": "Python"}],
        "cpu": {"choices": [1, 2]},
        "memory": {"choices": ["2G", "4G"]},
    }
    form = await make_spawner(config=c).get_options_form()
    assert 'id="swan-limits-note"' in form
    assert "the values above are not enforced" in form


class LateServer:
    """An HTTP server on 127.0.0.1 that starts listening only when told to, and answers each
    request with the next of ``statuses`` (the last one from then on)."""

    def __init__(self, *statuses: int):
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.statuses = list(statuses)
        self.paths: list[str] = []
        self._server: asyncio.Server | None = None

    async def listen(self) -> None:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", self.port)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.paths.append(head.split()[1].decode())
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()


def started_at_prefix(spawner: SwanLocalSpawner, prefix: str) -> SwanLocalSpawner:
    """``spawner`` with the server record the hub gives a start (its URL prefix)."""
    from jupyterhub.objects import Server

    spawner.server = Server(
        orm_server=orm.Server(
            proto="http", ip="127.0.0.1", port=0, base_url=prefix, cookie_name="c"
        )
    )
    return spawner


async def test_a_start_returns_once_the_server_answers_the_hub_not_before(make_spawner):
    spawner = started_at_prefix(make_spawner(), "/user/alice/")
    server = LateServer(503, 200)  # not listening; then an error while it loads; then ready

    async def alive() -> None:
        return None

    spawner.poll = alive  # its process runs (this spawner started none)
    asked_before = []
    waiting = asyncio.create_task(spawner._until_answering(("127.0.0.1", server.port)))
    try:
        await asyncio.sleep(0.5)
        asked_before.append(waiting.done())
        await server.listen()
        await asyncio.wait_for(waiting, 10)
    finally:
        server.close()
    assert asked_before == [False]
    # what the hub asks first (its API under the server's prefix) answers now, with 200
    assert server.paths == ["/user/alice/api", "/user/alice/api"]


async def test_a_start_stops_waiting_for_a_server_whose_process_is_gone(make_spawner):
    spawner = started_at_prefix(make_spawner(), "/user/alice/")
    polls = []

    async def gone() -> int:
        polls.append(1)
        return 1

    spawner.poll = gone
    nobody = LateServer(200)  # a port nothing listens on
    await asyncio.wait_for(spawner._until_answering(("127.0.0.1", nobody.port)), 10)
    assert polls == [1]  # the hub's own wait then finds the server gone and says so


async def test_a_slow_start_leaves_the_end_of_its_start_timeout_to_the_hub(make_spawner):
    # a start that took all but 6 s of its timeout (an image pulled, say) asks for 1 s at most,
    # not ANSWER_WAIT, so that it never ends as a start timeout
    spawner = started_at_prefix(make_spawner(), "/user/alice/")

    async def alive() -> None:
        return None

    spawner.poll = alive
    spawner.start_timeout = 60
    spawner._start_began_at = time.monotonic() - 54
    nobody = LateServer(200)  # a port nothing listens on
    await asyncio.wait_for(spawner._until_answering(("127.0.0.1", nobody.port)), 5)


def test_a_server_whose_environment_names_no_shell_gives_its_terminals_bash(monkeypatch):
    """A container's user has no login shell the spawner could know; jupyter-server would
    start ``sh`` (dash on Debian) for terminals. One named by the environment is kept."""
    from swan_hub.singleuser import choose_shell

    monkeypatch.delenv("SHELL", raising=False)
    choose_shell()
    assert os.environ["SHELL"] == shutil.which("bash")
    monkeypatch.setenv("SHELL", "/usr/bin/zsh")
    choose_shell()
    assert os.environ["SHELL"] == "/usr/bin/zsh"
