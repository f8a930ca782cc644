"""The Docker engine and the registry-free single-user image, for tests and benchmarks.

Owns starting `dockerd` (bridge-less, host networking only) when no engine answers and stopping
the one it started, building the test image through docker/build-test-image, and `swan up
--docker` with containers of its own, removed after. It must not touch an engine it did not
start, nor pull anything from a registry.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from harness.swan import Swan, start_swan

REPO = Path(__file__).resolve().parents[2]
ENGINE_START_TIMEOUT = 60.0
IMAGE_BUILD_TIMEOUT = 1200.0
#: The uid of the user in the test image, who owns what its containers write.
CONTAINER_UID = 1000


class EngineUnavailable(RuntimeError):
    """No Docker engine answers and none could be started here."""


def engine_answers() -> bool:
    """Whether a Docker engine answers the docker CLI on this machine."""
    if shutil.which("docker") is None:
        return False
    done = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
    return done.returncode == 0


@contextlib.contextmanager
def running_engine(log_path: Path) -> Iterator[None]:
    """Reuse the running engine, or start `dockerd` for the duration of the block.

    The engine started here has no bridge network and leaves iptables alone: containers use
    the host's network, so every connection stays on 127.0.0.1. Its log goes to ``log_path``.
    """
    if engine_answers():
        yield
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None or shutil.which("docker") is None:
        raise EngineUnavailable("docker.io is not installed (apt-get install docker.io)")
    if os.geteuid() != 0:
        raise EngineUnavailable("no Docker engine answers and starting dockerd needs root")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [dockerd, "--bridge=none", "--iptables=false", "--ip6tables=false"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + ENGINE_START_TIMEOUT
        while not engine_answers():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise EngineUnavailable(f"dockerd did not start (log {log_path}):\n{tail}")
            time.sleep(0.5)
        yield
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def single_user_image() -> str:
    """Name of the single-user test image for this checkout, built when missing.

    The build runs in a process group of its own: one that overruns IMAGE_BUILD_TIMEOUT is
    stopped as a whole (its `docker build`, which then removes its intermediate containers, and
    its debootstrap), not just the script that started them."""
    env = dict(os.environ)
    env.setdefault("PYTHON", sys.executable)
    proc = subprocess.Popen(
        [str(REPO / "docker" / "build-test-image")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=IMAGE_BUILD_TIMEOUT)
    except BaseException:
        stop_group(proc)
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"building the test image failed:\n{err[-4000:]}")
    return out.strip().splitlines()[-1]


def stop_group(proc: subprocess.Popen, grace: float = 30.0) -> None:
    """SIGTERM the process group of ``proc`` (a session leader), SIGKILL what outlives ``grace``."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.communicate(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


def containers(prefix: str) -> list[str]:
    """Names of all containers (running or not) whose name starts with ``prefix``."""
    out = docker("ps", "--all", "--filter", f"name=^{prefix}", "--format", "{{.Names}}").stdout
    return sorted(out.split())


@contextlib.contextmanager
def docker_swan(
    workdir: Path, form: dict, admin_config: str, users: str, extra: tuple[str, ...] = ()
) -> Iterator[Swan]:
    """`swan up --docker` (with the options ``extra``) with the spawn form ``form`` and the
    admin's ``admin_config``, whose containers have a prefix of their own (``swan.prefix``) and
    are removed at the end."""
    prefix = f"swantest-{secrets.token_hex(3)}"
    (workdir / "form.json").write_text(json.dumps(form))
    (workdir / "admin_config.py").write_text(
        f"c.DockerSpawner.prefix = {prefix!r}\n"
        "c.Spawner.start_timeout = 120\n"
        "c.Spawner.http_timeout = 120\n" + admin_config
    )
    swan = start_swan(
        workdir,
        "--docker",
        "--form-config",
        str(workdir / "form.json"),
        "-f",
        str(workdir / "admin_config.py"),
        *extra,
        users=users,
    )
    swan.prefix = prefix
    try:
        yield swan
    finally:
        swan.kill_everything()
        for name in containers(prefix):
            docker("rm", "--force", name, check=False)
