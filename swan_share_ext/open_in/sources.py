"""What a link asks to open: the parameters of ``/swan/open`` turned into a `Plan`, without network.

This module owns the reading of links (``path=``, ``owner=``, ``url=``, SWAN's ``projurl=``
including ``file://eos/…``, ``kind=``, ``branch=``, ``open=``), the kinds of sources and the name
of the project folder. It must not fetch or write: the plan is shown on the confirmation page and
carried out by `run` on POST.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from urllib.parse import unquote, urlsplit

from swan_contents.storage.base import InvalidPath, normalize_path

from .git import checked_branch
from .safety import BadLink, UrlPolicy

PARAMETERS = ("path", "owner", "url", "projurl", "kind", "branch", "open")
_SHARE_LINK = re.compile(r"^(?P<prefix>(?:/index\.php)?)/s/(?P<token>[A-Za-z0-9_-]{4,128})/?$")
_DRIVE_LINK = re.compile(r"^/(?:.*/)?services/drive/s/(?P<token>[A-Za-z0-9_-]{4,128})/?$")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


@dataclass(frozen=True)
class Plan:
    """One open-in request, understood.

    ``kind`` is one of ``own-path`` (open in place), ``other-path`` (someone else's space),
    ``download`` (an https file, notebook or zip), ``git`` (a repository) and ``share-link``
    (a public link of a sync&share storage or of the drive; ``fetch_url`` is what is downloaded).
    """

    kind: str
    source: str
    host: str = ""
    path: str = ""
    owner: str = ""
    name: str = ""
    branch: str = ""
    open: str = ""
    fetch_url: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def safe_project_name(text: str) -> str:
    """A folder name made of the link's own words: letters, digits, ``. _ -`` and spaces."""
    name = _UNSAFE_NAME.sub("-", text).strip(" .-_")[:64].strip(" .-_")
    return name or "project"


def relative_path(text: str, what: str = "path") -> str:
    """A normalized relative path, or `BadLink` for traversal, NUL and friends."""
    try:
        return normalize_path(text)
    except InvalidPath as e:
        raise BadLink(f"The {what} {text!r} is not allowed: {e.detail}.") from e


def storage_owner(absolute: str, template: str, space: str, user: str) -> tuple[str, str]:
    """(owner, path in the owner's space) of an absolute storage path such as ``/eos/user/a/al/x``.

    ``template`` is ``SwanOpenIn.storage_path_template``; without one only paths inside this
    server's own ``space`` are understood.
    """
    absolute = "/" + relative_path(absolute)
    if template:
        pattern = "^" + re.escape(template.rstrip("/")) + "(?:/(?P<rest>.*))?$"
        pattern = pattern.replace(re.escape("{username}"), r"(?P<username>[^/]+)")
        pattern = pattern.replace(re.escape("{initial}"), r"(?P<initial>[^/])")
        match = re.match(pattern, absolute)
        if match:
            owner = match.group("username")
            initial = match.groupdict().get("initial")
            if initial is None or owner.startswith(initial):
                return owner, match.group("rest") or ""
    root = "/" + relative_path(space) if space else ""
    if root and (absolute == root or absolute.startswith(root + "/")):
        return user, absolute[len(root) :].strip("/")
    raise BadLink(f"{absolute} is not a path of any user's space that this SWAN knows.")


class LinkReader:
    """Reads link parameters under the admin's settings (see `SwanOpenIn`)."""

    def __init__(
        self,
        policy: UrlPolicy,
        *,
        user: str,
        space: str,
        storage_path_template: str = "",
        git_hosts: tuple[str, ...] = (),
        share_link_hosts: tuple[str, ...] = (),
        drive_url: str = "",
        hub_host: str = "",
    ) -> None:
        self.policy = policy
        self.user = user
        self.space = space
        self.storage_path_template = storage_path_template
        self.git_hosts = git_hosts
        self.share_link_hosts = share_link_hosts
        self.drive_url = drive_url
        self.hub_host = hub_host

    def plan(self, params: Mapping[str, str]) -> Plan:
        unknown = [k for k in params if k not in PARAMETERS and not k.startswith("_")]
        if unknown:
            raise BadLink(f"The link has unknown parameters: {', '.join(sorted(unknown))}.")
        sources = [k for k in ("path", "url", "projurl") if params.get(k)]
        if len(sources) != 1:
            raise BadLink("A link names exactly one of path=, url= or projurl=.")
        opened = relative_path(params.get("open", ""), "file to open") if params.get("open") else ""
        branch = checked_branch(params.get("branch")) or ""
        if params.get("path"):
            return self._path_plan(params["path"], params.get("owner", ""))
        url = params.get("url") or params["projurl"]
        if params.get("projurl") and url.lower().startswith("file:"):
            # SWAN's links name storage paths as file://eos/user/…; url= never reads files.
            parts = urlsplit(url)
            return self._path_plan(unquote(f"/{parts.netloc}{parts.path}"), "")
        return self._url_plan(url, params.get("kind", ""), branch, opened)

    def _path_plan(self, path: str, owner: str) -> Plan:
        if owner and (owner != posixpath.basename(owner) or owner in (".", "..")):
            raise BadLink(f"{owner!r} is not a user name.")
        if path.startswith("/"):
            owner, path = storage_owner(
                path, self.storage_path_template, self.space, owner or self.user
            )
        path = relative_path(path)
        owner = owner or self.user
        kind = "own-path" if owner == self.user else "other-path"
        return Plan(kind=kind, source=path, path=path, owner=owner)

    def _url_plan(self, url: str, kind: str, branch: str, opened: str) -> Plan:
        if kind not in ("", "git", "file"):
            raise BadLink(f"kind={kind!r} is not known; use kind=git or kind=file.")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as e:
            # two ports (h:1:80), a port that is no number, a broken IPv6 address
            raise BadLink(f"The URL cannot be read: {e}.") from e
        drive = self._drive_link(parts.hostname or "", port, parts.path)
        if drive:
            return Plan(
                kind="share-link",
                source=url,
                host=parts.hostname or "",
                fetch_url=drive,
                open=opened,
            )
        rebuilt, host, _port = self.policy.check_form(url)
        path = urlsplit(rebuilt).path
        segments = [unquote(s) for s in path.split("/") if s]
        share = _SHARE_LINK.match(path)
        if share and host in self.share_link_hosts and kind != "git":
            origin = f"{urlsplit(rebuilt).scheme}://{urlsplit(rebuilt).netloc}"
            fetch = f"{origin}{share['prefix']}/s/{share['token']}/download"
            return Plan(kind="share-link", source=rebuilt, host=host, fetch_url=fetch, open=opened)
        is_git = kind == "git" or (
            kind != "file"
            and (path.endswith(".git") or (host in self.git_hosts and len(segments) == 2))
        )
        if is_git:
            last = segments[-1] if segments else host
            name = last[: -len(".git")] if last.endswith(".git") else last
            return Plan(
                kind="git",
                source=rebuilt,
                host=host,
                name=safe_project_name(name),
                branch=branch,
                open=opened,
            )
        if not segments:
            raise BadLink("The URL names no file (its path is empty).")
        stem = posixpath.splitext(segments[-1])[0]
        return Plan(
            kind="download", source=rebuilt, host=host, name=safe_project_name(stem), open=opened
        )

    def _drive_link(self, host: str, port: int | None, path: str) -> str:
        """The internal download URL of a public link of this hub's drive, else ""."""
        if not self.drive_url or not self.hub_host:
            return ""
        netloc = host if port is None else f"{host}:{port}"
        match = _DRIVE_LINK.match(path)
        if not match or netloc.lower() != self.hub_host.lower():
            return ""
        return f"{self.drive_url.rstrip('/')}/s/{match['token']}/download"
