"""Git repositories as open-in sources: a shallow clone outside the user's space, read as a tree.

This module owns every git command the open-in flow runs: ``clone``/``fetch`` with depth 1, a time
and size limit, only the https (or configured http) transport, connected to the address that was
checked, and ``merge-file`` for three-way merges. It must not write into the user's space: it
returns bytes, and `delivery` writes them through the contents manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from .safety import BadLink, CheckedUrl, OpenRefused, SourceFailed, TooLarge, TooSlow

_BRANCH = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/-]{1,200}(?<![./])$")
_FILE_MODES = {"100644", "100755"}


def checked_branch(branch: str | None) -> str | None:
    """``branch`` if it is a plain branch name, else `BadLink`."""
    if branch in (None, ""):
        return None
    if not _BRANCH.match(branch) or branch.endswith(".lock"):
        raise BadLink(f"{branch!r} is not a valid branch name.")
    return branch


@dataclass(frozen=True)
class TreeFile:
    path: str
    blob: str
    size: int


def _directory_size(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


class GitRepository:
    """A bare, shallow clone of one source in ``path`` (outside the user's space)."""

    def __init__(
        self,
        path: str,
        *,
        git: str = "git",
        timeout: float = 120.0,
        max_bytes: int = 500 * 1024 * 1024,
        allow_http: bool = False,
        verify: bool = True,
    ) -> None:
        self.path = path
        self.git = git
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.allow_http = allow_http
        self.verify = verify

    # -- running git --------------------------------------------------------------------------

    def _env(self, home: str) -> dict[str, str]:
        # Nothing from the server's environment or the user's git config may change what git
        # does here: no proxies, credential helpers, askpass programs or alternative transports.
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": shutil.which("false") or "/bin/false",
            "GIT_ALLOW_PROTOCOL": "https:http" if self.allow_http else "https",
            "GIT_PROTOCOL_FROM_USER": "0",
        }

    def _transport_config(self, target: CheckedUrl) -> list[str]:
        address = f"[{target.address}]" if target.address.version == 6 else str(target.address)
        options = [
            "protocol.allow=never",
            "protocol.https.allow=always",
            f"protocol.http.allow={'always' if self.allow_http else 'never'}",
            # git follows no redirect: each hop would need the address check again.
            "http.followRedirects=false",
            # curl connects to the address that was checked, not to a second DNS answer.
            f"http.curloptResolve={target.host}:{target.port}:{address}",
            "http.proxy=",
            f"http.sslVerify={'true' if self.verify else 'false'}",
            "transfer.fsckObjects=true",
            "credential.helper=",
            "core.askPass=",
        ]
        return [arg for option in options for arg in ("-c", option)]

    async def _run(
        self, args: Sequence[str], *, stdin: bytes | None = None, watch: str | None = None
    ) -> bytes:
        """Run git; `TooSlow`/`TooLarge` stop it (and its helpers) at the limits."""
        async with _scratch_dir("swan-git-home-") as home:
            proc = await asyncio.create_subprocess_exec(
                self.git,
                *args,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env(home),
                start_new_session=True,
            )
            work = asyncio.ensure_future(proc.communicate(stdin))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.timeout
            try:
                while True:
                    done, _ = await asyncio.wait({work}, timeout=0.25)
                    if done:
                        break
                    if loop.time() > deadline:
                        raise TooSlow(
                            f"git took longer than {self.timeout:g} s and was stopped; "
                            "nothing was written."
                        )
                    if watch and await asyncio.to_thread(_directory_size, watch) > self.max_bytes:
                        raise TooLarge(
                            f"The repository is larger than the {self.max_bytes} bytes allowed; "
                            "the clone was stopped and nothing was written."
                        )
            except BaseException:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(BaseException):
                    await work
                raise
            out, err = work.result()
        if proc.returncode != 0:
            raise _git_failure(err.decode("utf-8", "replace"))
        return out

    async def _git(self, *args: str, stdin: bytes | None = None) -> bytes:
        return await self._run(["-C", self.path, *args], stdin=stdin)

    # -- fetching -----------------------------------------------------------------------------

    async def update(self, target: CheckedUrl, branch: str | None) -> str:
        """Clone (first time) or fetch the newest commit of ``branch``; returns its id."""
        config = self._transport_config(target)
        if not await asyncio.to_thread(os.path.isdir, self.path):
            parent = os.path.dirname(self.path)
            await asyncio.to_thread(os.makedirs, parent, 0o700, True)
            staging = await asyncio.to_thread(tempfile.mkdtemp, prefix=".clone-", dir=parent)
            try:
                args = [*config, "clone", "--bare", "--depth", "1", "--no-tags", "--single-branch"]
                if branch:
                    args += ["--branch", branch]
                await self._run([*args, "--", target.url, staging], watch=staging)
                await asyncio.to_thread(os.replace, staging, self.path)
            finally:
                await asyncio.to_thread(shutil.rmtree, staging, True)
            return (await self._git("rev-parse", "HEAD")).decode().strip()
        ref = f"refs/heads/{branch}" if branch else "HEAD"
        await self._run(
            ["-C", self.path, *config, "fetch", "--depth", "1", "--no-tags", "--", target.url, ref],
            watch=self.path,
        )
        return (await self._git("rev-parse", "FETCH_HEAD")).decode().strip()

    async def mark_delivered(self, commit: str) -> None:
        """Keep ``commit`` (the base of the next three-way merge) from garbage collection."""
        await self._git("update-ref", "refs/swan/delivered", commit)

    async def delivered(self) -> str | None:
        if not await asyncio.to_thread(os.path.isdir, self.path):
            return None
        try:
            out = await self._git("rev-parse", "--verify", "--quiet", "refs/swan/delivered")
        except OpenRefused:
            return None
        return out.decode().strip() or None

    # -- reading ------------------------------------------------------------------------------

    async def files(self, commit: str) -> tuple[list[TreeFile], list[str]]:
        """The regular files of ``commit`` and the paths that were left out (links, submodules)."""
        out = await self._git("ls-tree", "-r", "-z", "--long", commit)
        files: list[TreeFile] = []
        left_out: list[str] = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            mode, _kind, blob, size = meta.decode().split()
            path = raw_path.decode("utf-8", "surrogateescape")
            if mode not in _FILE_MODES or "\n" in path:
                left_out.append(path)
                continue
            files.append(TreeFile(path, blob, int(size)))
        return files, left_out

    async def read_blobs(self, blobs: Sequence[str]) -> dict[str, bytes]:
        """The contents of ``blobs`` in one ``git cat-file --batch``."""
        if not blobs:
            return {}
        unique = list(dict.fromkeys(blobs))
        out = await self._git("cat-file", "--batch", stdin=("\n".join(unique) + "\n").encode())
        found: dict[str, bytes] = {}
        pos = 0
        for blob in unique:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            if len(header) != 3 or header[1] != b"blob":
                raise SourceFailed(f"The repository is damaged: {blob} is missing.")
            size = int(header[2])
            found[blob] = out[end + 1 : end + 1 + size]
            pos = end + 1 + size + 1
        return found

    async def merge(self, ours: bytes, base: bytes, theirs: bytes) -> bytes | None:
        """A three-way merge of a text file; None when the two sides conflict."""
        if b"\0" in ours + base + theirs:
            return None
        async with _scratch_dir("swan-merge-") as tmp:
            paths = [os.path.join(tmp, name) for name in ("ours", "base", "theirs")]
            for path, data in zip(paths, (ours, base, theirs), strict=True):
                await asyncio.to_thread(_write_bytes, path, data)
            try:
                return await self._run(["merge-file", "-p", "-q", *paths])
            except SourceFailed:
                return None


@contextlib.asynccontextmanager
async def _scratch_dir(prefix: str) -> AsyncIterator[str]:
    """A private temporary folder, made and removed off the event loop."""
    path = await asyncio.to_thread(tempfile.mkdtemp, prefix=prefix)
    try:
        yield path
    finally:
        await asyncio.to_thread(shutil.rmtree, path, True)


def _write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _git_failure(stderr: str) -> OpenRefused:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "git failed"
    text = stderr.lower()
    if "could not read username" in text or "authentication failed" in text:
        return SourceFailed(
            "The repository asks for a login: it is private or does not exist. "
            "Only public repositories can be opened."
        )
    if "redirect" in text or re.search(r"returned error: 30[12378]", text):
        return SourceFailed(
            "The repository address redirects elsewhere; use the address it redirects to."
        )
    if "remote branch" in text and "not found" in text:
        return BadLink("The repository has no such branch.")
    if "not found" in text or "repository" in text and "does not exist" in text:
        return SourceFailed("No repository was found at that address.")
    return SourceFailed(f"git could not fetch the repository: {last}")
