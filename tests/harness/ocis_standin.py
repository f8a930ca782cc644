"""A stand-in for oCIS's uploads: WsgiDAV serving a user's files under
`/remote.php/dav/files/alice/`, extended with what oCIS adds for uploads and integrity.

No oCIS server can run on the test machines. This one speaks, on a real loopback port:

- `status.php` and the OCS capabilities, shaped as oCIS writes them (`checksums` with
  `supported_types`/`preferred_upload_type`, `files.tus_support`); versions and trash are
  declared off, since they are not stood in for;
- checksums as ownCloud 10 and oCIS keep them: an `OC-Checksum: SHA1:<hex>` on PUT is
  verified before anything is stored (a mismatch is a 400 with Sabre's message, as oCIS's
  ocdav answers it), and PROPFIND reports `oc:checksums` ("SHA1:… MD5:… ADLER32:…") computed
  from the stored bytes;
- TUS 1.0.0 (tus.io/protocols/resumable-upload): creation (`POST` to the folder with
  `Upload-Length` and `Upload-Metadata` naming the file, as Reva's ocdav takes it; the answer's
  `Location` on the same host, as oCIS's data gateway), `PATCH` with `Upload-Offset` (409 when
  it is not the server's offset), `HEAD` for the offset to resume from, `DELETE` (termination).
  The finished upload is published into the space in one rename, verified first against the
  `checksum` metadata ("sha1 <hex>", Reva's form; 460 on a mismatch, Reva's status).

Tests break it on purpose: `corrupt("PUT")`/`corrupt("PATCH")` flips a byte of the next such
body in transit; `break_next_patch_after(n)` keeps n bytes of the next PATCH and fails it, as a
connection lost half way does.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import secrets
import zlib
from pathlib import Path
from urllib.parse import unquote

from wsgidav.fs_dav_provider import FileResource, FilesystemProvider
from wsgidav.xml_tools import etree

from harness.dav_servers import DAV_USER, WsgiDavServer

SPACE_PREFIX = f"/remote.php/dav/files/{DAV_USER}"
OC_CHECKSUMS = "{http://owncloud.org/ns}checksums"
CHECKSUM_MISMATCH = "The computed checksum does not match the one received from the client."


def checksums_of(data: bytes) -> dict[str, str]:
    return {
        "SHA1": hashlib.sha1(data).hexdigest(),  # noqa: S324 - the protocol's checksum
        "MD5": hashlib.md5(data).hexdigest(),  # noqa: S324 - the protocol's checksum
        "ADLER32": f"{zlib.adler32(data):08x}",
    }


def sabre_error(status: str, message: str) -> tuple[str, list[tuple[str, str]], bytes]:
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<d:error xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns">'
        "<s:exception>Sabre\\DAV\\Exception\\BadRequest</s:exception>"
        f"<s:message>{message}</s:message></d:error>"
    ).encode()
    return status, [("Content-Type", "application/xml; charset=utf-8")], body


class Upload:
    """One TUS upload: where it goes, how long it is, what has arrived."""

    def __init__(self, folder: Path, target: Path, length: int, metadata: dict[str, str]):
        self.folder = folder
        self.target = target
        self.length = length
        self.metadata = metadata
        self.offset = 0
        self.part = folder / f".upload-{secrets.token_hex(8)}"
        self.part.write_bytes(b"")


class ChecksumFile(FileResource):
    """A file whose `oc:checksums` are computed from its bytes, as oCIS reports them."""

    def get_property_value(self, name):
        if name != OC_CHECKSUMS:
            return super().get_property_value(name)
        element = etree.Element(OC_CHECKSUMS)
        sums = checksums_of(Path(self._file_path).read_bytes())
        text = " ".join(f"{k}:{v}" for k, v in sums.items())
        etree.SubElement(element, "{http://owncloud.org/ns}checksum").text = text
        return element


class ChecksumProvider(FilesystemProvider):
    def get_resource_inst(self, path, environ):
        found = super().get_resource_inst(path, environ)
        if isinstance(found, FileResource):
            return ChecksumFile(path, environ, found._file_path)
        return found


class OcisStandIn(WsgiDavServer):
    """WsgiDAV plus oCIS's capabilities, checksums and TUS uploads (see the module)."""

    name = "the oCIS stand-in"

    def __init__(
        self,
        root: Path,
        *,
        tus: bool = True,
        max_chunk_size: int = 0,
        checksum_types: tuple[str, ...] = ("sha1", "md5", "adler32"),
    ):
        super().__init__(root)
        self.tus = tus
        self.max_chunk_size = max_chunk_size
        self.checksum_types = checksum_types
        self.uploads: dict[str, Upload] = {}
        #: (method, path, Content-Length) of every request
        self.sized_log: list[tuple[str, str, int]] = []
        self._corrupt: set[str] = set()
        self._break_after: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{SPACE_PREFIX}/"

    def folder(self, name: str) -> tuple[Path, str]:
        local = self.root / name
        local.mkdir()
        return local, f"{self.url}{name}/"

    def requests(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _ in self.sized_log]

    def bytes_received(self, method: str) -> int:
        return sum(n for m, _, n in self.sized_log if m == method)

    def corrupt(self, method: str) -> None:
        """Flip one byte of the next body sent with `method` before the server sees it."""
        self._corrupt.add(method)

    def break_next_patch_after(self, kept: int) -> None:
        """Keep `kept` bytes of the next PATCH, then fail it with a 500."""
        self._break_after = kept

    # -- the WSGI side ------------------------------------------------------------------------

    def capabilities(self) -> dict:
        files = {"versioning": False, "undelete": False, "bigfilechunking": False}
        if self.tus:
            files["tus_support"] = {
                "version": "1.0.0",
                "resumable": "1.0.0",
                "extension": "creation,creation-with-upload,termination",
                "max_chunk_size": self.max_chunk_size,
                "http_method_override": "",
            }
        return {
            "core": {"pollinterval": 60, "webdav-root": "remote.php/webdav"},
            "checksums": {
                "supported_types": list(self.checksum_types),
                "preferred_upload_type": self.checksum_types[0] if self.checksum_types else "",
            },
            "files": files,
            "dav": {"reports": ["search-files"]},
        }

    def _body(self, environ: dict, method: str) -> bytes:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = environ["wsgi.input"].read(length) if length else b""
        if method in self._corrupt and data:
            self._corrupt.discard(method)
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        return data

    def _authorized(self, environ: dict) -> bool:
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return environ.get("HTTP_AUTHORIZATION") == f"Basic {expected}"

    def _local(self, dav_path: str) -> Path | None:
        if not (dav_path + "/").startswith(SPACE_PREFIX + "/"):
            return None
        rest = dav_path[len(SPACE_PREFIX) :].strip("/")
        if not rest:
            return self.root
        if any(p in ("", ".", "..") for p in rest.split("/")):
            return None
        return self.root / rest

    def provider_mapping(self) -> dict:
        return {SPACE_PREFIX: ChecksumProvider(str(self.root))}

    def wsgi_app(self, dav_app):
        def app(environ, start_response):
            method = environ["REQUEST_METHOD"]
            path = unquote(environ.get("PATH_INFO", ""))
            self.sized_log.append((method, path, int(environ.get("CONTENT_LENGTH") or 0)))

            def answer(status, headers=(), body=b""):
                start_response(status, [*headers, ("Content-Length", str(len(body)))])
                return [body]

            def answer_json(doc):
                body = json.dumps(doc).encode()
                return answer("200 OK", [("Content-Type", "application/json")], body)

            if path == "/status.php":
                status = {"installed": True, "maintenance": False, "needsDbUpgrade": False}
                status.update(
                    version="10.11.0.0",
                    versionstring="10.11.0",
                    edition="Community",
                    productname="Infinite Scale",
                    product="Infinite Scale",
                )
                return answer_json(status)
            if path == "/ocs/v1.php/cloud/capabilities":
                doc = {
                    "ocs": {
                        "meta": {"status": "ok", "statuscode": 100, "message": "OK"},
                        "data": {"capabilities": self.capabilities()},
                    }
                }
                return answer_json(doc)
            if path.startswith("/data/") or (method == "POST" and "HTTP_TUS_RESUMABLE" in environ):
                if not self._authorized(environ):
                    return answer("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="x"')])
                return answer(*self._tus(environ, method, path))
            if method == "PUT":
                data = self._body(environ, "PUT")
                checksum = environ.get("HTTP_OC_CHECKSUM")
                if checksum:
                    kind, _, digest = checksum.partition(":")
                    if checksums_of(data).get(kind.upper()) != digest.lower():
                        return answer(*sabre_error("400 Bad Request", CHECKSUM_MISMATCH))
                environ["wsgi.input"] = io.BytesIO(data)
            return dav_app(environ, start_response)

        return app

    def _tus(self, environ: dict, method: str, path: str):
        tus = [("Tus-Resumable", "1.0.0")]
        if not self.tus:
            return "405 Method Not Allowed", tus
        if method == "POST":
            folder = self._local(path)
            length = environ.get("HTTP_UPLOAD_LENGTH", "")
            metadata = {}
            for pair in environ.get("HTTP_UPLOAD_METADATA", "").split(","):
                key, _, value = pair.strip().partition(" ")
                metadata[key] = base64.b64decode(value).decode() if value else ""
            name = metadata.get("filename", "")
            if environ.get("HTTP_TUS_RESUMABLE") != "1.0.0" or not length.isdigit() or not name:
                return "412 Precondition Failed", tus
            if folder is None or not folder.is_dir() or "/" in name or name in (".", ".."):
                return "409 Conflict", tus
            upload_id = secrets.token_hex(12)
            self.uploads[upload_id] = Upload(folder, folder / name, int(length), metadata)
            location = f"http://127.0.0.1:{self.port}/data/{upload_id}"
            return "201 Created", [*tus, ("Location", location)]
        upload = self.uploads.get(path[len("/data/") :])
        if upload is None:
            return "404 Not Found", tus
        if method == "HEAD":
            offsets = [("Upload-Offset", str(upload.offset)), ("Upload-Length", str(upload.length))]
            return "200 OK", [*tus, *offsets, ("Cache-Control", "no-store")]
        if method == "DELETE":
            upload.part.unlink(missing_ok=True)
            del self.uploads[path[len("/data/") :]]
            return "204 No Content", tus
        if method != "PATCH":
            return "405 Method Not Allowed", tus
        if environ.get("CONTENT_TYPE") != "application/offset+octet-stream":
            return "415 Unsupported Media Type", tus
        if environ.get("HTTP_UPLOAD_OFFSET") != str(upload.offset):
            return "409 Conflict", tus
        data = self._body(environ, "PATCH")
        broken = self._break_after is not None
        if broken:
            data, self._break_after = data[: self._break_after], None
        with upload.part.open("ab") as f:
            f.write(data)
        upload.offset += len(data)
        if broken:
            return "500 Internal Server Error", tus
        if upload.offset == upload.length:
            return self._finish(path[len("/data/") :], upload, tus)
        return "204 No Content", [*tus, ("Upload-Offset", str(upload.offset))]

    def _finish(self, upload_id: str, upload: Upload, tus: list):
        del self.uploads[upload_id]
        kind, _, digest = upload.metadata.get("checksum", "").partition(" ")
        if kind and checksums_of(upload.part.read_bytes()).get(kind.upper()) != digest.lower():
            upload.part.unlink()
            return "460 Checksum Mismatch", tus, CHECKSUM_MISMATCH.encode()
        if upload.target.is_dir():
            upload.part.unlink()
            return "409 Conflict", tus
        os.replace(upload.part, upload.target)
        return "204 No Content", [*tus, ("Upload-Offset", str(upload.offset))]
