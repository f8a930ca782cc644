"""Clients of the embedded drive as `swan up` runs it: WebDAV (the ownCloud/Nextcloud layout) and
OCS through the hub's proxy, with hub API tokens as app passwords, one client per demo user. It
owns no server (see harness.swan) and holds no test's assertions beyond an answer's status."""

from __future__ import annotations

import contextlib
import functools
import re
import time
import xml.etree.ElementTree as ET  # noqa: S405 - parses our own server's answers
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from harness.swan import Swan, drive_url, log_in, start_swan, write_drive_config

DAV = "{DAV:}"
OC = "{http://owncloud.org/ns}"
NC = "{http://nextcloud.org/ns}"
PROPFIND_BODY = (
    '<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" '
    'xmlns:nc="http://nextcloud.org/ns"><d:prop><d:getetag/><d:resourcetype/>'
    "<d:getcontentlength/><oc:fileid/><oc:id/><oc:permissions/><oc:size/>"
    "<nc:trashbin-original-location/></d:prop></d:propfind>"
)


def parse_xml(content: bytes) -> ET.Element:
    return ET.fromstring(content)  # noqa: S314 - the answer of our own server under test


class Drive:
    """Clients of one running drive, one per demo user, speaking through the hub's proxy."""

    def __init__(self, swan: Swan):
        self.swan = swan
        self.base = f"{swan.url}/services/drive"
        self.clients: dict[str, httpx.Client] = {}

    @functools.cached_property
    def direct(self) -> str:
        """The drive's own address on 127.0.0.1, past the proxy."""
        return drive_url(self.swan)

    def client(self, user: str) -> httpx.Client:
        if user not in self.clients:
            token = self.swan.tokens.get(user) or log_in(self.swan, user)
            self.clients[user] = httpx.Client(auth=(user, token), timeout=60)
        return self.clients[user]

    def dav(self, user: str, method: str, path: str, *, owner: str | None = None, **kw):
        url = f"{self.base}/remote.php/dav/files/{owner or user}/{quote(path)}"
        return self.client(user).request(method, url, **kw)

    def propfind(self, user: str, path: str, depth: str = "1", *, owner: str | None = None):
        r = self.dav(
            user, "PROPFIND", path, owner=owner, headers={"Depth": depth}, content=PROPFIND_BODY
        )
        assert r.status_code == 207, r.text
        found = {}
        for response in parse_xml(r.content).iter(f"{DAV}response"):
            href = response.findtext(f"{DAV}href") or ""
            props = {}
            for propstat in response.iter(f"{DAV}propstat"):
                if "200" in (propstat.findtext(f"{DAV}status") or ""):
                    for prop in propstat.find(f"{DAV}prop") or []:
                        props[prop.tag] = prop.text or ("collection" if len(prop) else "")
            found[href] = props
        return found

    def ocs(self, user: str, method: str, path: str, version: int = 2, **kw):
        url = f"{self.base}/ocs/v{version}.php/apps/files_sharing/api/v1/{path}"
        params = {"format": "json", **kw.pop("params", {})}
        headers = {"OCS-APIRequest": "true"}
        return self.client(user).request(method, url, params=params, headers=headers, **kw)

    def space(self, user: str) -> Path:
        return self.swan.data / "users" / user


def answering_drive(swan: Swan) -> Drive:
    """The drive of ``swan``, once it answers through the proxy."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{swan.url}/services/drive/status.php", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    return Drive(swan)


@contextlib.contextmanager
def running_drive(
    workdir: Path, *extra: str, users: str = "alice,bob", settings: str = ""
) -> Iterator[Drive]:
    """`swan up` in ``workdir`` (with the drive's ``settings``, `c.DriveService.*` lines, if
    any), its drive answering through the proxy; everything it started is stopped after."""
    if settings:
        write_drive_config(workdir, settings)
    swan = start_swan(workdir, *extra, users=users)
    try:
        yield answering_drive(swan)
    finally:
        swan.kill_everything()


def ocs_share(drive: Drive, owner: str, **form: str | int) -> dict:
    """Share through the OCS API as ``owner`` (the form of a share); the new share."""
    r = drive.ocs(owner, "POST", "shares", data=form)
    assert r.status_code == 200, r.text
    return r.json()["ocs"]["data"]


def send_password_form(client: httpx.Client, url: str, password: str, **kw: Any) -> httpx.Response:
    """Open the password link ``url`` by its form as a browser does: the page first (its form
    token, and the cookie that repeats it), then the form with the password."""
    asked = client.get(url)
    found = re.search(r"name='form_token' value='([^']+)'", asked.text)
    data = {"password": password, "form_token": found[1] if found else ""}
    return client.post(url, data=data, **kw)
