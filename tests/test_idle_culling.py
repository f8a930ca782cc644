"""Idle culling in `swan up`: jupyterhub-idle-culler runs as a hub-managed service by default,
stops a server nobody used for the timeout and leaves its user's files as they were; `--no-cull`
runs without it. End to end with the real hub, proxy, drive and culler on 127.0.0.1."""

from __future__ import annotations

import time

import pytest
from harness.swan import (
    NOTEBOOK,
    SWAN_UP_MARKS,
    _processes,
    log_in,
    related_processes,
    start_server,
    start_swan,
    user_api,
    user_servers,
    wait_until_stopped,
)

from swan_hub.cli import (
    CULL_TIMEOUT,
    CULLER_NAME,
    CULLER_SCOPES,
    DataDir,
    build_config,
    cull_intervals,
    make_parser,
)
from swan_hub.mounts import mounted_at_or_below

#: Short enough for a test, long enough that a start and a save come first.
TIMEOUT = 10


def culler_processes(swan) -> list[int]:
    table = _processes()
    return [
        pid
        for pid in related_processes(swan.proc.pid, str(swan.data))
        if pid in table and "jupyterhub_idle_culler" in table[pid][2]
    ]


def needs_swan_up(test):
    for mark in SWAN_UP_MARKS:
        test = mark(test)
    return test


def config_of(tmp_path, *flags: str):
    args = make_parser().parse_args(["up", "--users", "alice", *flags])
    args.storage = "drive"
    data = DataDir(str(tmp_path / "data"))
    data.create()
    return build_config(args, data)


def culler_service(config) -> dict | None:
    services = config.JupyterHub.services.get_value([])  # appended to, as the -f file may
    found = [s for s in services if s["name"] == CULLER_NAME]
    return found[0] if found else None


def test_swan_up_culls_servers_idle_for_an_hour_by_default_with_a_role_that_can_only_stop_them(
    tmp_path,
):
    config = config_of(tmp_path)
    service = culler_service(config)
    assert service is not None
    assert f"--timeout={CULL_TIMEOUT}" in service["command"] and CULL_TIMEOUT == 3600
    # as the Helm chart (cull.every) and JupyterHub's own activity periods
    assert "--cull-every=600" in service["command"]
    assert config.JupyterHub.last_activity_interval == 300
    assert config.Spawner.environment == {"JUPYTERHUB_ACTIVITY_INTERVAL": "300"}
    roles = [r for r in config.JupyterHub.load_roles if r["name"] == CULLER_NAME]
    assert roles == [{"name": CULLER_NAME, "services": [CULLER_NAME], "scopes": CULLER_SCOPES}]
    assert "admin:users" not in CULLER_SCOPES  # it stops servers, it never deletes users


def test_no_cull_runs_no_culler_and_cull_timeout_changes_the_timeout(tmp_path):
    assert culler_service(config_of(tmp_path, "--no-cull")) is None
    assert (
        "--timeout=120" in culler_service(config_of(tmp_path, "--cull-timeout", "120"))["command"]
    )


def test_a_short_timeout_shortens_how_often_the_hub_hears_of_activity():
    # a user working for a whole timeout must have been heard of several times meanwhile
    for timeout in (10, 60, 600, 3600, 86400):
        every, activity = cull_intervals(timeout)
        assert 1 <= every <= timeout // 2 or every == 1
        assert activity * 4 <= timeout or activity == 1
        assert every <= 600 and activity <= 300


@pytest.mark.parametrize(
    "flags, said",
    [
        (["--cull-timeout", "0"], "above 0"),
        (["--cull-timeout", "soon"], "above 0"),
        (["--no-cull", "--cull-timeout", "60"], "not allowed with"),
    ],
)
def test_a_bad_cull_option_is_refused_in_one_sentence(flags, said, capsys):
    with pytest.raises(SystemExit) as exited:
        make_parser().parse_args(["up", *flags])
    assert exited.value.code == 2
    assert said in capsys.readouterr().err


@needs_swan_up
def test_a_server_idle_past_the_timeout_is_stopped_and_its_users_files_stay(tmp_path):
    swan = start_swan(tmp_path, "--cull-timeout", str(TIMEOUT), users="alice")
    try:
        log_in(swan, "alice")
        start_server(swan, "alice")
        saved = user_api(swan, "alice", "PUT", "alice/api/contents/lecture.ipynb", json=NOTEBOOK)
        assert saved.status_code in (200, 201), saved.text
        model = user_api(swan, "alice", "GET", "alice/api/contents/lecture.ipynb").json()
        on_disk = swan.data / "users" / "alice" / "lecture.ipynb"
        before = on_disk.read_bytes()
        stat_before = on_disk.stat()

        started = time.monotonic()
        wait_until_stopped(swan, "alice", timeout=TIMEOUT + 60)
        idle = time.monotonic() - started
        assert idle >= TIMEOUT - 2, "stopped before it was idle for the timeout"
        assert "Culling server alice" in swan.output()
        assert f"Servers idle for {TIMEOUT} s are stopped" in swan.output()

        assert on_disk.read_bytes() == before
        assert on_disk.stat().st_mtime_ns == stat_before.st_mtime_ns
        assert mounted_at_or_below(str(swan.data)) == []  # its storage mount went with it
        assert culler_processes(swan), "the culler runs on"

        # the next start finds everything where it was
        start_server(swan, "alice")
        again = user_api(swan, "alice", "GET", "alice/api/contents/lecture.ipynb")
        assert again.status_code == 200
        assert again.json()["content"] == model["content"]
        assert again.json()["etag"] == model["etag"]
    finally:
        swan.kill_everything()


@needs_swan_up
def test_with_no_cull_an_idle_server_keeps_running(tmp_path):
    swan = start_swan(tmp_path, "--no-cull", "--storage", "posix", users="alice")
    try:
        log_in(swan, "alice")
        start_server(swan, "alice")
        assert "Idle servers keep running (--no-cull)" in swan.output()
        assert culler_processes(swan) == []
        time.sleep(TIMEOUT * 2)
        assert user_servers(swan, "alice")[""]["ready"]
        assert "Culling server" not in swan.output()
    finally:
        swan.kill_everything()
