"""Every refusal of the storage says what the storage said: the message of a WebDAV server's
error body (Sabre's `s:message`, which Nextcloud, ownCloud and the drive write) ends the error
the user sees, whatever the status, beside our own words for it.

Nextcloud cannot run here: a stand-in answers from the recorded error bodies of
tests/recordings/nextcloud/errors.json (see the README there); the drive's own refusals are
tested against the real drive in tests/test_swan_up_drive.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from conftest import notebook_body
from tornado.web import HTTPError

from swan_contents import SwanContentsManager
from swan_contents.storage import WebDAVStorage

RECORDINGS = Path(__file__).parent / "recordings" / "nextcloud"
SPACE = "http://cloud.test/remote.php/dav/files/alice/analysis%20notes/"
ERRORS = json.loads((RECORDINGS / "errors.json").read_text())

FOLDER = b"""<?xml version="1.0"?>
<d:multistatus xmlns:d="DAV:"><d:response>
<d:href>/remote.php/dav/files/alice/analysis%20notes/</d:href><d:propstat><d:prop><d:getetag>"f1"</d:getetag><d:resourcetype><d:collection/></d:resourcetype>
</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"""


def sabre_error(status: int) -> httpx.Response:
    exception, message = ERRORS[str(status)]
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n<d:error xmlns:d="DAV:" '
        f'xmlns:s="http://sabredav.org/ns">\n  <s:exception>{exception}</s:exception>\n'
        f"  <s:message>{message.replace('&', '&amp;').replace('<', '&lt;')}</s:message>\n"
        "</d:error>\n"
    )
    return httpx.Response(
        status, content=body.encode(), headers={"Content-Type": "application/xml; charset=utf-8"}
    )


class RefusingServer:
    """A Nextcloud that lists the space and its notebook, and refuses writes and reads with
    `status` and its recorded error body."""

    def __init__(self, status: int):
        self.status = status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = unquote(urlsplit(str(request.url)).path)
        if path in ("/status.php", "/ocs/v1.php/cloud/capabilities"):
            return httpx.Response(404)
        if request.method == "PROPFIND" and path.endswith("/analysis notes/"):
            return httpx.Response(207, content=FOLDER)
        if request.method == "PROPFIND":
            if self.status == 404:
                return sabre_error(404)
            listing = (RECORDINGS / "propfind-file.xml").read_bytes()
            return httpx.Response(207, content=listing)
        return sabre_error(self.status)


def manager(status: int, tmp_path) -> SwanContentsManager:
    storage = WebDAVStorage(
        url=SPACE,
        transport=httpx.MockTransport(RefusingServer(status)),
        password_env="SWAN_TEST_UNSET",
        dialect="nextcloud",
    )
    return SwanContentsManager(
        root_dir=str(tmp_path), versions_dir=str(tmp_path / "versions"), storage=storage
    )


@pytest.mark.parametrize(
    ("status", "shown", "ours"),
    [
        (400, 400, "The storage refused this request"),
        (409, 503, "unexpected answer 409"),
        (412, 409, "changed by someone else"),
        (423, 423, "locked by another application"),
        (500, 503, "not available right now"),
        (503, 503, "not available right now"),
        (507, 507, "Not enough space"),
    ],
)
async def test_a_refused_save_says_what_the_storage_said(tmp_path, status, shown, ours):
    cm = manager(status, tmp_path)
    body = notebook_body("mine")
    if status == 412:
        body["etag"] = '"the version loaded"'
    with pytest.raises(HTTPError) as raised:
        await cm.save(body, "nb.ipynb")
    assert raised.value.status_code == shown
    message = raised.value.log_message
    assert ours in message
    assert message.endswith(f"The storage said: {ERRORS[str(status)][1]}")


async def test_a_refused_read_says_what_the_storage_said(tmp_path):
    cm = manager(404, tmp_path)
    with pytest.raises(HTTPError) as raised:
        await cm.get("nb.ipynb", type="notebook")
    assert raised.value.status_code == 404
    assert raised.value.log_message == (
        "No such file or folder: /nb.ipynb. "
        "The storage said: File with name //nb.ipynb could not be located"
    )


async def test_an_error_body_that_is_not_sabres_adds_nothing(tmp_path):
    def apache(request: httpx.Request) -> httpx.Response:
        if request.method == "PROPFIND":
            return httpx.Response(207, content=FOLDER)
        return httpx.Response(
            507,
            content=b"<html><body>Insufficient Storage</body></html>",
            headers={"Content-Type": "text/html"},
        )

    storage = WebDAVStorage(url=SPACE, transport=httpx.MockTransport(apache), dialect="plain")
    cm = SwanContentsManager(
        root_dir=str(tmp_path), versions_dir=str(tmp_path / "versions"), storage=storage
    )
    with pytest.raises(HTTPError) as raised:
        await cm.save(notebook_body("mine"), "nb.ipynb")
    assert raised.value.status_code == 507
    assert "The storage said" not in raised.value.log_message
