"""The ownCloud/Nextcloud OCS API of the drive: status.php, capabilities, the current user, and the
files_sharing Share API subset (user, group and public link shares, pending shares, sharees).

This module owns the OCS envelopes (JSON or XML, v1 and v2 status codes) and share policy: who may
share what with whom and with which permissions. It must not touch files (it asks `Spaces`).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from swan_hub.auth import hash_password

from .spaces import (
    PERM_ALL,
    PERM_CREATE,
    PERM_DELETE,
    PERM_READ,
    PERM_SHARE,
    PERM_UPDATE,
    DriveError,
    Spaces,
)
from .state import (
    SHARE_FEDERATED,
    SHARE_GROUP,
    SHARE_LINK,
    SHARE_USER,
    STATE_ACCEPTED,
    STATE_DECLINED,
    STATE_PENDING,
    ShareRecord,
)

SERVER_VERSION = (28, 0, 0, 0)
#: Clients tell the server families apart by this name (a "Nextcloud" in it means Nextcloud's
#: URL layout for versions, trash and chunked uploads, and its way of listing and declining
#: received shares), which is the layout the drive serves.
PRODUCT = "SWAN drive (Nextcloud compatible)"


def status_document() -> dict[str, Any]:
    """``GET /status.php`` as sync clients expect it."""
    return {
        "installed": True,
        "maintenance": False,
        "needsDbUpgrade": False,
        "version": ".".join(map(str, SERVER_VERSION)),
        "versionstring": ".".join(map(str, SERVER_VERSION[:3])),
        "edition": "",
        "productname": PRODUCT,
        "extendedSupport": False,
    }


def capabilities(public_links: bool, chunking: str = "v2") -> dict[str, Any]:
    """The capabilities document; ``chunking`` is the chunked upload offered: ``v2`` announces
    ``dav.chunking`` 1.0, ``v1`` leaves it out (ownCloud clients then send v1 parts)."""
    major, minor, micro, _ = SERVER_VERSION
    found = {
        "version": {
            "major": major,
            "minor": minor,
            "micro": micro,
            "string": f"{major}.{minor}.{micro}",
            "edition": "",
            "extendedSupport": False,
        },
        "capabilities": {
            "core": {"pollinterval": 60, "webdav-root": "remote.php/webdav"},
            "dav": {"chunking": "1.0"},
            "files": {
                "bigfilechunking": True,
                "versioning": True,
                "undelete": True,
                "blacklisted_files": [".htaccess"],
            },
            "files_sharing": {
                "api_enabled": True,
                "resharing": False,
                "group_sharing": True,
                "default_permissions": PERM_ALL,
                "user": {"send_mail": False},
                "public": {
                    "enabled": public_links,
                    "password": {"enforced": False},
                    "expire_date": {"enabled": True, "enforced": False},
                    "upload": True,
                    "send_mail": False,
                },
            },
        },
    }
    if chunking != "v2":
        del found["capabilities"]["dav"]["chunking"]
    return found


class OCSError(Exception):
    def __init__(self, code: int, message: str):
        self.code = code
        self.message = message
        super().__init__(message)


class Request:
    """What an OCS handler needs of a WSGI request."""

    def __init__(self, environ: dict, user: str, via: str = "token"):
        self.environ = environ
        self.user = user
        #: how the caller proved who they are: "token" or "session" (a browser)
        self.via = via
        self.method = environ["REQUEST_METHOD"].upper()
        self.query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        self.form: dict[str, str] = {}
        if self.method in ("POST", "PUT", "PATCH"):
            self.form = _read_form(environ)

    def arg(self, name: str, default: str | None = None) -> str | None:
        return self.form.get(name, self.query.get(name, default))


def _read_form(environ: dict) -> dict[str, str]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > 1_000_000:
        raise OCSError(400, "Request body too large")
    body = environ["wsgi.input"].read(length) if length else b""
    if len(body) != length:
        # the client broke off: a cut form could name another user, path or permission
        raise OCSError(
            400, f"The request broke off after {len(body)} of {length} bytes; nothing was changed"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise OCSError(400, "The request body is not UTF-8 text") from None
    if environ.get("CONTENT_TYPE", "").startswith("application/json") and text.strip():
        try:
            data = json.loads(text)
        except ValueError:
            raise OCSError(400, "The request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise OCSError(400, "The request body must be a JSON object")
        return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in data.items()}
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}


def envelope(version: int, data: Any, code: int = 0, message: str = "OK") -> tuple[int, dict]:
    """(HTTP status, OCS document); ``code`` 0 means success in the version's own code."""
    ok = code == 0
    status_code = (100 if version == 1 else 200) if ok else code
    http_status = 200 if version == 1 or ok else (code if 400 <= code < 600 else 400)
    if version == 1 and code == 997:
        http_status = 401
    meta = {
        "status": "ok" if ok else "failure",
        "statuscode": status_code,
        "message": message,
        "totalitems": "",
        "itemsperpage": "",
    }
    return http_status, {"ocs": {"meta": meta, "data": data if ok else []}}


def _xml(value: Any, parent: ET.Element) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _xml(v, ET.SubElement(parent, str(k)))
    elif isinstance(value, list):
        for v in value:
            _xml(v, ET.SubElement(parent, "element"))
    elif value is None:
        return
    elif isinstance(value, bool):
        parent.text = "1" if value else ""
    else:
        parent.text = str(value)


def render(document: dict, as_json: bool) -> tuple[str, bytes]:
    """(content type, body) of an OCS document."""
    if as_json:
        return "application/json; charset=utf-8", json.dumps(document).encode()
    root = ET.Element("ocs")
    _xml(document["ocs"], root)
    return "text/xml; charset=UTF-8", b'<?xml version="1.0"?>\n' + ET.tostring(root)


def _parse_date(value: str) -> str:
    try:
        day = datetime.date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise OCSError(400, f"Invalid date {value!r}; use YYYY-MM-DD") from None
    if day < datetime.datetime.now(datetime.timezone.utc).date():
        raise OCSError(400, "Expiration date is in the past")
    return f"{day.isoformat()} 00:00:00"


def link_expired(share: ShareRecord) -> bool:
    if not share.expiration:
        return False
    day = datetime.date.fromisoformat(share.expiration[:10])
    return datetime.datetime.now(datetime.timezone.utc).date() > day


def _parse_permissions(value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        perms = int(value)
    except ValueError:
        raise OCSError(400, f"Invalid permissions {value!r}") from None
    if perms < 1 or perms > PERM_ALL:
        raise OCSError(
            400,
            "Permissions must be between 1 and 31 (1 read, 2 update, 4 create, 8 delete, 16 share)",
        )
    return perms


#: The longest link password: the link's password form (`web.MAX_FORM_BYTES`) must still carry
#: it, each character percent-encoded as up to 12 bytes
MAX_LINK_PASSWORD = 256


def _link_password(value: str) -> str:
    """A new link password as given, or OCSError(400) where a visitor could never type it in."""
    if len(value) > MAX_LINK_PASSWORD:
        raise OCSError(
            400,
            f"A link password may have at most {MAX_LINK_PASSWORD} characters; "
            "choose a shorter one",
        )
    return value


def _share_permissions(perms: int, share_type: int, is_dir: bool) -> int:
    """What a share of this type on a file or folder may grant of ``perms``: never resharing,
    never creating or deleting inside a file; a share with people must at least allow reading
    (a public link may be upload-only, a file drop)."""
    if share_type in (SHARE_USER, SHARE_GROUP) and not perms & PERM_READ:
        raise OCSError(400, "A share must at least allow reading")
    perms &= ~PERM_SHARE
    if not is_dir:
        perms &= ~(PERM_CREATE | PERM_DELETE)
    return perms or PERM_READ


#: a public link visitors may add to, change and delete in
PUBLIC_UPLOAD = PERM_READ | PERM_UPDATE | PERM_CREATE | PERM_DELETE


class ShareAPI:
    """The files_sharing API on top of `Spaces` and the hub's users and groups."""

    def __init__(
        self,
        spaces: Spaces,
        *,
        users: Callable[[], list[str]],
        groups: Callable[[], dict[str, list[str]]],
        public_url: Callable[[dict, str], str],
        public_links: bool = True,
        federation: Any = None,
    ):
        self.spaces = spaces
        #: the drive's `ocm.OCM`: shares with users of other sites (type 6) and from them
        self.federation = federation
        self.state = spaces.state
        self.users = users
        self.groups = groups
        self.public_url = public_url
        self.public_links = public_links

    # -- views ------------------------------------------------------------------------------------

    def share_data(self, share: ShareRecord, req: Request, *, for_recipient: bool = False) -> dict:
        owner_root = self.spaces.space_dir(share.owner)
        fs_path = os.path.join(owner_root, *share.path.split("/"))
        try:
            st = os.lstat(fs_path)  # a link's, never its target's
            mtime = int(st.st_mtime)
        except OSError:
            mtime = 0
        file_id = self.spaces.file_id(share.owner, share.path)
        parent_id = (
            self.spaces.file_id(share.owner, share.path.rpartition("/")[0])
            if "/" in share.path
            else None
        )
        if for_recipient:
            mount = share.mount_name or share.name
            shown_path = f"/{self.spaces.share_folder}/{mount}"
        else:
            shown_path = f"/{share.path}"
        data: dict[str, Any] = {
            "id": str(share.id),
            "share_type": share.share_type,
            "uid_owner": share.owner,
            "displayname_owner": share.owner,
            "uid_file_owner": share.owner,
            "displayname_file_owner": share.owner,
            "permissions": share.permissions,
            "stime": share.stime,
            "parent": None,
            "expiration": share.expiration,
            "token": share.token,
            "note": share.note,
            "label": share.label,
            "path": shown_path,
            "item_type": share.item_type,
            "mimetype": "httpd/unix-directory"
            if share.item_type == "folder"
            else "application/octet-stream",
            "storage_id": f"home::{share.owner}",
            "storage": 1,
            "item_source": file_id,
            "file_source": file_id,
            "file_parent": parent_id,
            "file_target": shown_path if for_recipient else f"/{share.name}",
            "item_mtime": mtime,
            "share_with": share.share_with,
            "share_with_displayname": share.share_with,
            "mail_send": 0,
            "hide_download": 0,
            "state": share.state if share.state is not None else STATE_ACCEPTED,
            # Nextcloud's word on what the caller may do with the share: its owner changes and
            # revokes it, a recipient can only leave it
            "can_edit": not for_recipient,
            "can_delete": True,
        }
        if share.share_type == SHARE_FEDERATED:
            # the shared secret is the recipient's key: never shown, not even to the owner
            data["token"] = None
            data["state"] = self.state.share_state(share.id, share.share_with or "")
            if data["state"] is None:
                data["state"] = STATE_PENDING
        if share.share_type == SHARE_LINK:
            data["url"] = self.public_url(req.environ, share.token or "")
            # as ownCloud 10 says a link has a password, without giving its hash away
            data["share_with"] = "***redacted***" if share.password_hash else None
            data["share_with_displayname"] = "(password protected)" if share.password_hash else ""
            data["password"] = ""
            # ownCloud's name of a link (its label here); pyocclient reads it on every new link
            data["name"] = share.label
        return data

    # -- routing ----------------------------------------------------------------------------------

    def handle(self, req: Request, rest: str) -> Any:
        """Dispatch ``rest`` (below ``apps/files_sharing/api/v1/``); returns OCS data."""
        parts = [p for p in rest.split("/") if p]
        if parts[:1] == ["remote_shares"] and self.federation is not None:
            return self.federation.remote_shares(req.user, req.method, parts[1:], via=req.via)
        if parts[:1] in (["ocm_invites"], ["ocm_contacts"]) and self.federation is not None:
            return self.federation.invites(req.user, req.method, parts, req.arg)
        if parts == ["shares"]:
            if req.method == "GET":
                return self.list_shares(req)
            if req.method == "POST":
                return self.create_share(req)
        elif parts == ["shares", "inherited"] and req.method == "GET":
            return self.inherited_shares(req)
        elif parts == ["shares", "pending"] and req.method == "GET":
            return [
                self.share_data(s, req, for_recipient=True)
                for s in self.spaces.received(req.user)
                if s.state == STATE_PENDING
            ]
        elif (
            len(parts) == 3
            and parts[:2] == ["shares", "pending"]
            or (
                # nc-py-api accepts and declines at ``pending/<id>``, without ``shares/``
                len(parts) == 2 and parts[0] == "pending"
            )
        ):
            share_id = _share_id(parts[-1])
            if req.method == "POST":
                return self.accept(req, share_id)
            if req.method == "DELETE":
                return self.decline(req, share_id)
        elif len(parts) == 2 and parts[0] == "shares":
            share_id = _share_id(parts[1])
            if req.method == "GET":
                share = self._visible(req, share_id)
                return [self.share_data(share, req, for_recipient=share.owner != req.user)]
            if req.method == "PUT":
                return self.update_share(req, share_id)
            if req.method == "DELETE":
                return self.delete_share(req, share_id)
        elif parts == ["deletedshares"] and req.method == "GET":
            # Nextcloud's name for the shares a recipient declined or left
            return [
                self.share_data(s, req, for_recipient=True)
                for s in self.spaces.received(req.user)
                if s.state == STATE_DECLINED
            ]
        elif len(parts) == 2 and parts[0] == "deletedshares" and req.method == "POST":
            return self.accept(req, _share_id(parts[1]))
        elif parts == ["sharees"] and req.method == "GET":
            return self.sharees(req)
        else:
            raise OCSError(404, "Unknown sharing API endpoint")
        raise OCSError(405, f"{req.method} is not supported here")

    # -- shares -----------------------------------------------------------------------------------

    def _visible(self, req: Request, share_id: int) -> ShareRecord:
        """The share ``share_id`` as its owner or one of its recipients sees it."""
        share = self.state.share(share_id)
        if share is None:
            raise OCSError(404, "Wrong share ID, share does not exist")
        if share.owner == req.user:
            return share
        for received in self.spaces.received(req.user):
            if share_id in received.ids:
                return received
        raise OCSError(404, "Wrong share ID, share does not exist")

    def list_shares(self, req: Request) -> list[dict]:
        if (req.arg("shared_with_me") or "").lower() == "true":
            wanted = req.arg("state", str(STATE_ACCEPTED))
            shares = self.spaces.received(req.user)
            if wanted != "all":
                try:
                    state = int(wanted or STATE_ACCEPTED)
                except ValueError:
                    raise OCSError(400, "state must be 0, 1, 2 or all") from None
                shares = [s for s in shares if s.state == state]
            return [self.share_data(s, req, for_recipient=True) for s in shares]
        path = req.arg("path")
        rel = None
        if path is not None:
            rel = self._own_path(req.user, path)
        subfiles = (req.arg("subfiles") or "").lower() == "true"
        shares = self.state.shares_of_owner(req.user, rel, subfiles=subfiles)
        return [self.share_data(s, req) for s in shares]

    def inherited_shares(self, req: Request) -> list[dict]:
        """Nextcloud's ``shares/inherited?path=``: the caller's shares of the folders above
        ``path`` (through which others already reach it), nearest folder last."""
        path = req.arg("path")
        if not path:
            raise OCSError(400, "Please specify a file or folder path")
        rel = self._own_path(req.user, path)
        parts = rel.split("/")[:-1] if rel else []
        found: list[dict] = []
        for depth in range(1, len(parts) + 1):
            above = "/".join(parts[:depth])
            found += [self.share_data(s, req) for s in self.state.shares_of_owner(req.user, above)]
        return found

    def _own_path(self, user: str, path: str) -> str:
        """The path in ``user``'s own space, refusing anything they do not own."""
        try:
            place = self.spaces.resolve(user, path)
        except DriveError as e:
            raise OCSError(404, f"Wrong path, file/folder does not exist ({e.message})") from e
        if place is None or place.owner != user:
            raise OCSError(
                403, "You can only share files and folders you own; resharing is not allowed"
            )
        if not os.path.lexists(place.fs_path):
            raise OCSError(404, "Wrong path, file/folder does not exist")
        return place.rel

    def create_share(self, req: Request) -> dict:
        path = req.arg("path")
        if not path:
            raise OCSError(404, "Please specify a file or folder path")
        rel = self._own_path(req.user, path)
        if rel == "":
            raise OCSError(403, "You cannot share your whole space")
        fs_path = os.path.join(self.spaces.space_dir(req.user), *rel.split("/"))
        if os.path.islink(fs_path):
            raise OCSError(403, "Links cannot be shared")
        is_dir = os.path.isdir(fs_path)
        try:
            share_type = int(req.arg("shareType") or "-1")
        except ValueError:
            share_type = -1
        fields: dict[str, Any] = {
            "owner": req.user,
            "path": rel,
            "item_type": "folder" if is_dir else "file",
            "file_id": self.spaces.file_id(req.user, rel),
            # ``name`` is ownCloud's word for a link's label (pyocclient sends it)
            "label": req.arg("label") or req.arg("name") or "",
            "note": req.arg("note") or "",
        }
        if share_type in (SHARE_USER, SHARE_GROUP):
            share_with = (req.arg("shareWith") or "").strip()
            if share_type == SHARE_USER:
                if share_with == req.user:
                    raise OCSError(400, "You cannot share with yourself")
                if share_with not in self.users():
                    raise OCSError(404, "Please specify a valid user")
            elif share_with not in self.groups():
                raise OCSError(404, "Please specify a valid group")
            perms = _parse_permissions(req.arg("permissions"), PERM_ALL)
            fields.update(share_type=share_type, share_with=share_with)
        elif share_type == SHARE_LINK:
            if not self.public_links:
                raise OCSError(403, "Public links are disabled on this drive")
            perms = _parse_permissions(req.arg("permissions"), PERM_READ)
            if (req.arg("publicUpload") or "").lower() == "true":
                perms = PUBLIC_UPLOAD
            fields.update(share_type=SHARE_LINK, token=secrets.token_urlsafe(24))
            password = req.arg("password")
            if password:
                fields["password_hash"] = json.dumps(hash_password(_link_password(password)))
        elif share_type == SHARE_FEDERATED and self.federation is not None:
            perms = _parse_permissions(req.arg("permissions"), PERM_READ)
        else:
            raise OCSError(
                400,
                "Unknown share type: use 0 (user), 1 (group), 3 (public link) "
                "or 6 (a user of another site)",
            )
        fields["permissions"] = _share_permissions(perms, share_type, is_dir)
        expire = req.arg("expireDate")
        if expire:
            fields["expiration"] = _parse_date(expire)
        if share_type == SHARE_FEDERATED:
            share_with = req.arg("shareWith") or ""
            share = self.federation.send_share(fields, share_with)
        else:
            share = self.state.create_share(**fields)
        return self.share_data(share, req)

    def update_share(self, req: Request, share_id: int) -> dict:
        share = self._owned(req, share_id)
        # every field is checked before anything is written: a refused change changes nothing
        changes: dict[str, Any] = {}
        perms = None
        if req.arg("permissions") is not None:
            perms = _parse_permissions(req.arg("permissions"), share.permissions)
        if (req.arg("publicUpload") or "") != "" and share.share_type == SHARE_LINK:
            upload = req.arg("publicUpload", "").lower() == "true"
            perms = PUBLIC_UPLOAD if upload else PERM_READ
        if perms is not None:
            is_dir = share.item_type == "folder"
            changes["permissions"] = _share_permissions(perms, share.share_type, is_dir)
        if req.arg("password") is not None and share.share_type == SHARE_LINK:
            password = _link_password(req.arg("password") or "")
            changes["password_hash"] = json.dumps(hash_password(password)) if password else None
        if req.arg("expireDate") is not None:
            expire = req.arg("expireDate") or ""
            changes["expiration"] = _parse_date(expire) if expire else None
        for name in ("label", "note"):
            if req.arg(name) is not None:
                changes[name] = req.arg(name)
        updated = self.state.update_share(share_id, **changes)
        assert updated is not None
        terms = changes.keys() & {"permissions", "expiration"}
        if updated.share_type == SHARE_FEDERATED and self.federation and terms:
            self.federation.changed(updated)
        return self.share_data(updated, req)

    def _owned(self, req: Request, share_id: int) -> ShareRecord:
        share = self.state.share(share_id)
        if share is None or share.owner != req.user:
            if share is not None and any(share_id in s.ids for s in self.spaces.received(req.user)):
                raise OCSError(403, "Only the owner of a share can change it")
            raise OCSError(404, "Wrong share ID, share does not exist")
        return share

    def delete_share(self, req: Request, share_id: int) -> list:
        share = self.state.share(share_id)
        if share is not None and share.owner != req.user:
            # A recipient deleting a share leaves it (as Nextcloud does).
            self.decline(req, share_id)
            return []
        self._owned(req, share_id)
        self.state.delete_share(share_id)
        if share is not None and share.share_type == SHARE_FEDERATED and self.federation:
            # deleted first: the secret stops working at once, whatever the other site does
            self.federation.unshared(share)
        return []

    def _received(self, req: Request, share_id: int) -> ShareRecord:
        for share in self.spaces.received(req.user):
            if share_id in share.ids:
                return share
        raise OCSError(404, "Wrong share ID, share does not exist")

    def accept(self, req: Request, share_id: int) -> list[dict]:
        share = self._received(req, share_id)
        taken = set(self.spaces.mounts(req.user))
        if self.federation is not None:
            # one namespace under Shared/ for shares of this site and of others
            taken |= self.federation.mount_names(req.user)
        name = share.mount_name or share.name
        if share.state != STATE_ACCEPTED:
            base, n = name, 2
            while name in taken:
                name = f"{base} ({n})"
                n += 1
        # the group share and the direct share of one item are accepted together
        for member in share.ids:
            self.state.set_share_state(member, req.user, STATE_ACCEPTED, name)
        share.state, share.mount_name = STATE_ACCEPTED, name
        return [self.share_data(share, req, for_recipient=True)]

    def decline(self, req: Request, share_id: int) -> list:
        for member in self._received(req, share_id).ids:
            self.state.set_share_state(member, req.user, STATE_DECLINED, None)
        return []

    def sharees(self, req: Request) -> dict:
        typed = (req.arg("search") or "").strip()
        search = typed.lower()
        try:
            limit = max(1, min(200, int(req.arg("perPage") or 200)))
        except ValueError:
            limit = 200
        users = [u for u in self.users() if u != req.user and search in u.lower()][:limit]
        groups = [g for g in self.groups() if search in g.lower()][:limit]

        def entry(name: str, kind: int) -> dict:
            return {"label": name, "value": {"shareType": kind, "shareWith": name}}

        exact_users = [entry(u, SHARE_USER) for u in users if u.lower() == search]
        exact_groups = [entry(g, SHARE_GROUP) for g in groups if g.lower() == search]
        remote = self.federation.sharee(typed) if self.federation is not None else None
        contacts = (
            self.federation.contact_sharees(req.user, search) if self.federation is not None else []
        )
        exact_remotes = [c for c in contacts if c["value"]["shareWith"].lower() == search]
        if remote and not exact_remotes:
            exact_remotes = [remote]
        return {
            "exact": {"users": exact_users, "groups": exact_groups, "remotes": exact_remotes},
            "users": [entry(u, SHARE_USER) for u in users if u.lower() != search],
            "groups": [entry(g, SHARE_GROUP) for g in groups if g.lower() != search],
            "remotes": [c for c in contacts if c not in exact_remotes][:limit],
        }


def _share_id(text: str) -> int:
    if not re.fullmatch(r"\d{1,18}", text):
        raise OCSError(404, "Wrong share ID, share does not exist")
    return int(text)
