"""The drive's state in SQLite: file ids, dead properties, shares and their per-recipient state,
trash and versions.

This module owns the schema, its numbered migrations and every query. It must not touch the
files themselves nor know about HTTP: callers move bytes, this records what they did. One
connection per thread (SQLite objects cannot cross threads); WAL mode lets readers run beside the
one writer.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

SHARE_USER = 0
SHARE_GROUP = 1
SHARE_LINK = 3
#: a share with a user of another site, over Open Cloud Mesh (Nextcloud's "federated cloud share")
SHARE_FEDERATED = 6

STATE_ACCEPTED = 0
STATE_PENDING = 1
STATE_DECLINED = 2

# -- the schema, in numbered migrations ------------------------------------------------------------
#
# The database's `PRAGMA user_version` is the number of migrations applied to it. Each step takes
# it from one version to the next, inside one transaction with the version's update. Append new
# steps to MIGRATIONS; never change one that a release has run.

#: Migration 1's tables. Databases made before the migrations were numbered (user_version 0,
#: created by these statements or by an earlier subset of them) are brought up to it too:
#: every statement leaves what exists alone.
SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL, parent TEXT NOT NULL, name TEXT NOT NULL,
    inode INTEGER, mtime_ns INTEGER,
    UNIQUE (owner, parent, name)
);
CREATE TABLE IF NOT EXISTS properties (
    file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (file_id, name)
);
CREATE TABLE IF NOT EXISTS shares (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    share_type INTEGER NOT NULL,
    owner TEXT NOT NULL,
    path TEXT NOT NULL,
    item_type TEXT NOT NULL,
    file_id INTEGER,
    share_with TEXT,
    permissions INTEGER NOT NULL,
    token TEXT UNIQUE,
    password_hash TEXT,
    expiration TEXT,
    label TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    stime INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS shares_by_owner ON shares (owner, path);
CREATE INDEX IF NOT EXISTS shares_by_recipient ON shares (share_type, share_with);
CREATE TABLE IF NOT EXISTS share_state (
    share_id INTEGER NOT NULL REFERENCES shares (id) ON DELETE CASCADE,
    user TEXT NOT NULL,
    state INTEGER NOT NULL,
    mount_name TEXT,
    PRIMARY KEY (share_id, user)
);
CREATE TABLE IF NOT EXISTS trash (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    original_path TEXT NOT NULL,
    kind TEXT NOT NULL,
    size INTEGER NOT NULL,
    deleted_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    file_id INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    size INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS versions_by_file ON versions (owner, file_id);
"""
#: Columns that databases of the first releases lack (added by migration 1 where missing).
ADDED_COLUMNS = {"files": {"inode": "INTEGER", "mtime_ns": "INTEGER"}}
INDEXES = "CREATE INDEX IF NOT EXISTS files_by_inode ON files (owner, inode);"

Migration = Callable[[sqlite3.Connection], None]


class StateTooNew(RuntimeError):
    """The database was migrated by a newer release than this one: refused, not guessed at."""


def _statements(script: str) -> list[str]:
    # One by one rather than executescript, which would commit the migration's transaction.
    return [statement for statement in script.split(";") if statement.strip()]


def _schema_1(db: sqlite3.Connection) -> None:
    """Every table and index of the first numbered schema."""
    for statement in _statements(SCHEMA):
        db.execute(statement)
    for table, columns in ADDED_COLUMNS.items():
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for column, definition in columns.items():
            if column not in present:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
    for statement in _statements(INDEXES):
        db.execute(statement)


def _trash_file_ids(db: sqlite3.Connection) -> None:
    """Trash items keep the file id they had in the space (None for those deleted before)."""
    db.execute("ALTER TABLE trash ADD COLUMN file_id INTEGER")


RECEIVED_SHARES = """
CREATE TABLE received_shares (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    provider TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    sender TEXT NOT NULL,
    owner_display TEXT NOT NULL DEFAULT '',
    sender_display TEXT NOT NULL DEFAULT '',
    resource_type TEXT NOT NULL,
    permissions TEXT NOT NULL,
    webdav_uri TEXT NOT NULL,
    shared_secret TEXT NOT NULL,
    webdav_auth TEXT NOT NULL DEFAULT 'bearer',
    expiration INTEGER,
    state INTEGER NOT NULL,
    mount_name TEXT,
    created INTEGER NOT NULL,
    UNIQUE (provider, provider_id, user)
);
CREATE INDEX received_shares_by_user ON received_shares (user, state)
"""


def _received_shares(db: sqlite3.Connection) -> None:
    """Shares that users of other sites made with users of this one (Open Cloud Mesh)."""
    for statement in _statements(RECEIVED_SHARES):
        db.execute(statement)


OCM_INVITES = """
CREATE TABLE ocm_invites (
    token TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    accepted INTEGER
);
CREATE TABLE ocm_contacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    address TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    added INTEGER NOT NULL,
    UNIQUE (user, address)
)
"""


def _ocm_invites(db: sqlite3.Connection) -> None:
    """Invites of the Open Cloud Mesh invite flow, and the contacts they made."""
    for statement in _statements(OCM_INVITES):
        db.execute(statement)


OCM_OUTBOX = """
CREATE TABLE ocm_outbox (
    key TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    document TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    first_tried REAL NOT NULL,
    next_try REAL NOT NULL
);
CREATE INDEX ocm_outbox_by_time ON ocm_outbox (next_try)
"""


def _ocm_outbox(db: sqlite3.Connection) -> None:
    """Notifications to other sites not delivered yet (`outbox`)."""
    for statement in _statements(OCM_OUTBOX):
        db.execute(statement)


def _ocm_webapp(db: sqlite3.Connection) -> None:
    """OCM's ``webapp`` protocol: the id of a sent share's view-only page (never its secret),
    and the page a received share's sender offers."""
    db.execute("ALTER TABLE shares ADD COLUMN app_token TEXT")
    db.execute("CREATE UNIQUE INDEX shares_by_app_token ON shares (app_token)")
    db.execute("ALTER TABLE received_shares ADD COLUMN webapp_uri TEXT")


#: Step N takes a database from user_version N - 1 to N.
MIGRATIONS: tuple[Migration, ...] = (
    _schema_1,
    _trash_file_ids,
    _received_shares,
    _ocm_invites,
    _ocm_outbox,
    _ocm_webapp,
)


def schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Apply the ``migrations`` that ``db`` (a connection in autocommit mode) lacks, each in
    its own transaction together with the new version; return the version reached.

    The version is read again inside each transaction, so two processes opening the same
    database at once apply each step once. A database newer than ``migrations`` raises
    StateTooNew and is left as it is.
    """
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(db)
            if version > len(migrations):
                raise StateTooNew(_too_new(db, version, len(migrations)))
            if version < len(migrations):
                migrations[version](db)
                db.execute(f"PRAGMA user_version = {version + 1}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        if version == len(migrations):
            return version


def _too_new(db: sqlite3.Connection, version: int, known: int) -> str:
    path = next((row[2] for row in db.execute("PRAGMA database_list") if row[1] == "main"), "")
    return (
        f"The drive's state {path or '(in memory)'} has schema version {version}, written by "
        f"a newer release; this release knows versions up to {known}. Run the newer release "
        "again, or restore a copy of the file made before the upgrade."
    )


@dataclass
class FileRecord:
    """What the drive remembers of a file or folder: its id, and the inode and (for a file)
    the mtime it had when last seen, by which a rename made beside the drive is recognised."""

    id: int
    path: str
    inode: int | None
    mtime_ns: int | None


#: (inode, mtime in nanoseconds or None for a folder) of an entry as seen on disk
Seen = tuple[int, "int | None"]


@dataclass
class ShareRecord:
    """One row of `shares`, with the recipient's state when read for a recipient."""

    id: int
    share_type: int
    owner: str
    path: str
    item_type: str
    file_id: int | None
    share_with: str | None
    permissions: int
    token: str | None
    password_hash: str | None
    expiration: str | None
    label: str
    note: str
    stime: int
    state: int | None = None
    mount_name: str | None = None
    #: the shares a recipient's one entry stands for (a group share and a direct share of the
    #: same item); empty for a share read on its own
    member_ids: tuple[int, ...] = ()
    #: the id in the URL of a federated share's view-only page (OCM ``webapp``); never its
    #: secret, which opens WebDAV only
    app_token: str | None = None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def ids(self) -> tuple[int, ...]:
        """Every share this one stands for (itself when it stands alone)."""
        return self.member_ids or (self.id,)


@dataclass
class TrashRecord:
    """One row of `trash`: a file or folder deleted from a user's space, kept in the drive's
    trash area until restored or expired."""

    id: int
    owner: str
    original_path: str
    kind: str
    size: int
    deleted_at: float
    #: the id the item had in its space (ids are never given twice); None for an item deleted
    #: before the drive kept it
    file_id: int | None = None

    @property
    def name(self) -> str:
        return self.original_path.rsplit("/", 1)[-1]


@dataclass
class VersionRecord:
    """One row of `versions`: an earlier content of a file, kept in the drive's versions area."""

    id: int
    owner: str
    file_id: int
    mtime: int
    size: int
    created: float


@dataclass
class ReceivedShare:
    """A share another site's user made with a user of this site, as its OCM request said it;
    ``permissions`` is the list of the spec's words (``read``, ``write``)."""

    id: int
    user: str
    provider: str
    provider_id: str
    name: str
    owner: str
    sender: str
    owner_display: str
    sender_display: str
    resource_type: str
    permissions: list[str]
    webdav_uri: str
    shared_secret: str
    #: how the secret goes with each WebDAV request: ``bearer`` (OCM 1.1) or ``basic`` (the
    #: secret as user name, OCM 1.0 and Nextcloud)
    webdav_auth: str
    expiration: int | None
    state: int
    mount_name: str | None
    created: int
    #: the sender's view-only page of the share (OCM ``webapp.uriTemplate``), None when it
    #: sent none or one this site does not take
    webapp_uri: str | None = None


#: the most parameters of one statement that lists names or inodes
CHUNK = 500


def _chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    """``items`` in slices small enough for one statement's parameters."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _like_prefix(path: str) -> str:
    escaped = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "/%"


class DriveState:
    """The SQLite database at ``path`` (created with its directory on first use)."""

    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        with self._write_lock:
            migrate(self._db())

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        with self._write_lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _insert(self, table: str, **values: Any) -> int:
        """Insert one row (column names come from this module only); return its id."""
        columns = ", ".join(values)
        marks = ", ".join("?" * len(values))
        with self._write() as db:
            cur = db.execute(
                f"INSERT INTO {table} ({columns}) VALUES ({marks})",  # noqa: S608 - fixed names
                tuple(values.values()),
            )
            return int(cur.lastrowid or 0)

    # -- file ids ---------------------------------------------------------------------------------

    def files_in(self, owner: str, parent: str, names: Iterable[str]) -> dict[str, FileRecord]:
        """What is recorded of ``names`` in folder ``parent`` of ``owner``'s space."""
        wanted = set(names)
        found: dict[str, FileRecord] = {}
        prefix = f"{parent}/" if parent else ""
        rows = self._db().cursor()
        rows.row_factory = None  # tuples: a big folder reads 100,000 rows
        if len(wanted) > CHUNK:
            # the whole folder in one statement (by the unique index) rather than one per chunk
            rows.execute(
                "SELECT name, id, inode, mtime_ns FROM files WHERE owner = ? AND parent = ?",
                (owner, parent),
            )
            selected: Iterable[tuple] = (r for r in rows if r[0] in wanted)
        else:
            marks = ",".join("?" * len(wanted))
            rows.execute(
                "SELECT name, id, inode, mtime_ns FROM files "  # noqa: S608 - only marks
                f"WHERE owner = ? AND parent = ? AND name IN ({marks})",
                (owner, parent, *wanted),
            )
            selected = rows
        for name, file_id, inode, mtime_ns in selected:
            found[name] = FileRecord(file_id, prefix + name, inode, mtime_ns)
        return found

    def files_with_inodes(self, owner: str, inodes: Iterable[int]) -> dict[int, list[FileRecord]]:
        """The records of ``owner``'s files and folders last seen with one of ``inodes``."""
        found: dict[int, list[FileRecord]] = {}
        db = self._db()
        for chunk in _chunks(list(set(inodes))):
            marks = ",".join("?" * len(chunk))
            for r in db.execute(
                "SELECT id, parent, name, inode, mtime_ns FROM files "  # noqa: S608 - only marks
                f"WHERE owner = ? AND inode IN ({marks})",
                (owner, *chunk),
            ):
                path = f"{r['parent']}/{r['name']}" if r["parent"] else r["name"]
                record = FileRecord(r["id"], path, r["inode"], r["mtime_ns"])
                found.setdefault(r["inode"], []).append(record)
        return found

    def add_files(self, owner: str, parent: str, seen: dict[str, Seen | None]) -> dict[str, int]:
        """New ids for the entries ``seen`` of folder ``parent`` (existing ones are kept)."""
        if not seen:
            return {}
        with self._write() as db:
            db.executemany(
                "INSERT OR IGNORE INTO files (owner, parent, name, inode, mtime_ns) "
                "VALUES (?, ?, ?, ?, ?)",
                [(owner, parent, name, *(s or (None, None))) for name, s in seen.items()],
            )
        return {name: record.id for name, record in self.files_in(owner, parent, seen).items()}

    def note_seen(self, owner: str, parent: str, seen: dict[str, Seen]) -> None:
        """Remember the inodes and mtimes the entries ``seen`` of ``parent`` have now."""
        with self._write() as db:
            db.executemany(
                "UPDATE files SET inode = ?, mtime_ns = ? "
                "WHERE owner = ? AND parent = ? AND name = ?",
                [(*s, owner, parent, name) for name, s in seen.items()],
            )

    def adopt(self, owner: str, record: FileRecord, path: str) -> bool:
        """Move ``record`` (and, for a folder, everything below it) to ``path``, where a file
        or folder renamed beside the drive now is, unless the records changed meanwhile."""
        parent, _, name = path.rpartition("/")
        with self._write() as db:
            current = db.execute(
                "SELECT id FROM files WHERE owner = ? AND parent = ? AND name = ?",
                (owner, *record.path.rpartition("/")[::2]),
            ).fetchone()
            taken = db.execute(
                "SELECT id FROM files WHERE owner = ? AND parent = ? AND name = ?",
                (owner, parent, name),
            ).fetchone()
            if current is None or current["id"] != record.id or taken is not None:
                return False
            self._move_records(db, owner, record.path, path)
        return True

    def path_of_file_id(self, owner: str, file_id: int) -> str | None:
        row = (
            self._db()
            .execute("SELECT parent, name FROM files WHERE owner = ? AND id = ?", (owner, file_id))
            .fetchone()
        )
        if row is None:
            return None
        return f"{row['parent']}/{row['name']}" if row["parent"] else row["name"]

    def moved(self, owner: str, src: str, dst: str) -> None:
        """Record that ``src`` (a file or a whole folder) of ``owner`` is now at ``dst``."""
        with self._write() as db:
            self._move_records(db, owner, src, dst)

    @staticmethod
    def _move_records(db: sqlite3.Connection, owner: str, src: str, dst: str) -> None:
        src_parent, _, src_name = src.rpartition("/")
        dst_parent, _, dst_name = dst.rpartition("/")
        db.execute(
            "DELETE FROM files WHERE owner = ? AND parent = ? AND name = ?",
            (owner, dst_parent, dst_name),
        )
        db.execute(
            "UPDATE files SET parent = ?, name = ? WHERE owner = ? AND parent = ? AND name = ?",
            (dst_parent, dst_name, owner, src_parent, src_name),
        )
        db.execute(
            "UPDATE files SET parent = ? || substr(parent, ?) "
            "WHERE owner = ? AND (parent = ? OR parent LIKE ? ESCAPE '\\')",
            (dst, len(src) + 1, owner, src, _like_prefix(src)),
        )
        db.execute(
            "UPDATE shares SET path = ? || substr(path, ?) "
            "WHERE owner = ? AND (path = ? OR path LIKE ? ESCAPE '\\')",
            (dst, len(src) + 1, owner, src, _like_prefix(src)),
        )

    # -- dead properties (WebDAV PROPPATCH) -------------------------------------------------------

    def properties(self, file_id: int) -> dict[str, bytes]:
        """The dead properties of a file or folder: name (Clark notation) -> XML of the value."""
        rows = self._db().execute(
            "SELECT name, value FROM properties WHERE file_id = ?", (file_id,)
        )
        return {r["name"]: bytes(r["value"]) for r in rows}

    def paths_with_property(self, owner: str, name: str) -> list[str]:
        """The paths in ``owner``'s space of the files and folders that have the dead property
        ``name`` (whatever its value)."""
        rows = self._db().execute(
            "SELECT f.parent, f.name FROM properties p JOIN files f ON f.id = p.file_id "
            "WHERE f.owner = ? AND p.name = ? ORDER BY f.parent, f.name",
            (owner, name),
        )
        return [f"{r['parent']}/{r['name']}" if r["parent"] else r["name"] for r in rows]

    def set_property(self, file_id: int, name: str, value: bytes | None) -> None:
        """Store (or with ``value`` None remove) one dead property."""
        with self._write() as db:
            if value is None:
                db.execute("DELETE FROM properties WHERE file_id = ? AND name = ?", (file_id, name))
            else:
                db.execute(
                    "INSERT INTO properties (file_id, name, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (file_id, name) DO UPDATE SET value = excluded.value",
                    (file_id, name, value),
                )

    def copy_properties(self, src_id: int, dst_id: int) -> None:
        """Give ``dst_id`` the dead properties of ``src_id`` (a COPY), replacing its own."""
        with self._write() as db:
            db.execute("DELETE FROM properties WHERE file_id = ?", (dst_id,))
            db.execute(
                "INSERT INTO properties (file_id, name, value) "
                "SELECT ?, name, value FROM properties WHERE file_id = ?",
                (dst_id, src_id),
            )

    def forgotten(self, owner: str, path: str) -> None:
        """Forget the ids and shares of ``path`` (and below) after it left ``owner``'s space."""
        parent, _, name = path.rpartition("/")
        with self._write() as db:
            db.execute(
                "DELETE FROM files WHERE owner = ? AND ((parent = ? AND name = ?) "
                "OR parent = ? OR parent LIKE ? ESCAPE '\\')",
                (owner, parent, name, path, _like_prefix(path)),
            )
            db.execute(
                "DELETE FROM shares WHERE owner = ? AND (path = ? OR path LIKE ? ESCAPE '\\')",
                (owner, path, _like_prefix(path)),
            )

    # -- shares -----------------------------------------------------------------------------------

    _SHARE_COLUMNS = (
        "s.id, s.share_type, s.owner, s.path, s.item_type, s.file_id, s.share_with, "
        "s.permissions, s.token, s.password_hash, s.expiration, s.label, s.note, s.stime, "
        "s.app_token"
    )

    def _share(self, row: sqlite3.Row) -> ShareRecord:
        data: dict[str, Any] = dict(row)
        return ShareRecord(**data)

    def create_share(self, **fields: Any) -> ShareRecord:
        fields.setdefault("stime", int(time.time()))
        share = self.share(self._insert("shares", **fields))
        assert share is not None
        return share

    def share(self, share_id: int) -> ShareRecord | None:
        row = (
            self._db()
            .execute(f"SELECT {self._SHARE_COLUMNS} FROM shares s WHERE s.id = ?", (share_id,))  # noqa: S608
            .fetchone()
        )
        return self._share(row) if row else None

    def share_by_token(self, token: str, share_type: int = SHARE_LINK) -> ShareRecord | None:
        """The share of ``share_type`` (a public link, or a federated share by its secret)
        that ``token`` opens."""
        row = (
            self._db()
            .execute(
                f"SELECT {self._SHARE_COLUMNS} FROM shares s "  # noqa: S608
                "WHERE s.token = ? AND s.share_type = ?",
                (token, share_type),
            )
            .fetchone()
        )
        return self._share(row) if row else None

    def share_by_app_token(self, app_token: str) -> ShareRecord | None:
        """The federated share whose view-only page (OCM ``webapp``) ``app_token`` names."""
        row = (
            self._db()
            .execute(
                f"SELECT {self._SHARE_COLUMNS} FROM shares s "  # noqa: S608
                "WHERE s.app_token = ? AND s.share_type = ?",
                (app_token, SHARE_FEDERATED),
            )
            .fetchone()
        )
        return self._share(row) if row else None

    def shares_of_owner(
        self, owner: str, path: str | None = None, subfiles: bool = False
    ) -> list[ShareRecord]:
        query = f"SELECT {self._SHARE_COLUMNS} FROM shares s WHERE s.owner = ?"  # noqa: S608
        args: list[Any] = [owner]
        if path is not None and subfiles:
            query += " AND s.path LIKE ? ESCAPE '\\'"
            args.append(_like_prefix(path) if path else "%")
        elif path is not None:
            query += " AND s.path = ?"
            args.append(path)
        rows = self._db().execute(query + " ORDER BY s.id", args).fetchall()
        return [self._share(r) for r in rows]

    def update_share(self, share_id: int, **fields: Any) -> ShareRecord | None:
        if fields:
            assignments = ", ".join(f"{k} = ?" for k in fields)
            with self._write() as db:
                db.execute(
                    f"UPDATE shares SET {assignments} WHERE id = ?",  # noqa: S608 - fixed names
                    (*fields.values(), share_id),
                )
        return self.share(share_id)

    def delete_share(self, share_id: int) -> None:
        with self._write() as db:
            db.execute("DELETE FROM shares WHERE id = ?", (share_id,))

    def received_shares(
        self, user: str, groups: Iterable[str], default_state: int
    ) -> list[ShareRecord]:
        """Shares with ``user`` directly or through one of ``groups``, with the user's state."""
        groups = list(groups)
        marks = ",".join("?" * len(groups)) or "NULL"
        rows = (
            self._db()
            .execute(
                f"SELECT {self._SHARE_COLUMNS}, st.state AS state, st.mount_name AS mount_name "  # noqa: S608
                "FROM shares s LEFT JOIN share_state st ON st.share_id = s.id AND st.user = ? "
                "WHERE s.owner != ? AND ((s.share_type = ? AND s.share_with = ?) "
                f"OR (s.share_type = ? AND s.share_with IN ({marks}))) ORDER BY s.id",
                (user, user, SHARE_USER, user, SHARE_GROUP, *groups),
            )
            .fetchall()
        )
        shares = []
        for row in rows:
            share = self._share(row)
            if share.state is None:
                share.state = default_state
            shares.append(share)
        return shares

    def share_state(self, share_id: int, user: str) -> int | None:
        """``user``'s answer to the share (None: none recorded)."""
        row = (
            self._db()
            .execute(
                "SELECT state FROM share_state WHERE share_id = ? AND user = ?", (share_id, user)
            )
            .fetchone()
        )
        return None if row is None else int(row["state"])

    def set_share_state(self, share_id: int, user: str, state: int, mount_name: str | None) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO share_state (share_id, user, state, mount_name) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (share_id, user) DO UPDATE SET state = excluded.state, "
                "mount_name = excluded.mount_name",
                (share_id, user, state, mount_name),
            )

    # -- shares received from other sites (Open Cloud Mesh) --------------------------------------

    def _received_share(self, row: sqlite3.Row) -> ReceivedShare:
        data: dict[str, Any] = dict(row)
        data["permissions"] = json.loads(data["permissions"])
        return ReceivedShare(**data)

    def receive_share(self, **fields: Any) -> ReceivedShare:
        """Store a share another site sent (pending); the same share sent again (a retry)
        replaces what it says and keeps the recipient's answer."""
        fields["permissions"] = json.dumps(fields["permissions"])
        fields.setdefault("created", int(time.time()))
        fields.setdefault("state", STATE_PENDING)
        columns = ", ".join(fields)
        marks = ", ".join("?" * len(fields))
        kept = {"id", "user", "provider", "provider_id", "state", "mount_name", "created"}
        updates = ", ".join(f"{k} = excluded.{k}" for k in fields if k not in kept)
        with self._write() as db:
            db.execute(
                f"INSERT INTO received_shares ({columns}) VALUES ({marks}) "  # noqa: S608
                f"ON CONFLICT (provider, provider_id, user) DO UPDATE SET {updates}",
                tuple(fields.values()),
            )
        found = self.received_share_from(fields["provider"], fields["provider_id"], fields["user"])
        assert found is not None
        return found

    def received_share(self, share_id: int) -> ReceivedShare | None:
        row = (
            self._db().execute("SELECT * FROM received_shares WHERE id = ?", (share_id,)).fetchone()
        )
        return self._received_share(row) if row else None

    def received_share_from(
        self, provider: str, provider_id: str, user: str | None = None
    ) -> ReceivedShare | None:
        """The share ``provider`` knows as ``provider_id`` (for ``user``, or the first one)."""
        query = "SELECT * FROM received_shares WHERE provider = ? AND provider_id = ?"
        args: list[Any] = [provider, provider_id]
        if user is not None:
            query += " AND user = ?"
            args.append(user)
        row = self._db().execute(query + " ORDER BY id", args).fetchone()
        return self._received_share(row) if row else None

    def received_shares_of(self, user: str, state: int | None = None) -> list[ReceivedShare]:
        query = "SELECT * FROM received_shares WHERE user = ?"
        args: list[Any] = [user]
        if state is not None:
            query += " AND state = ?"
            args.append(state)
        rows = self._db().execute(query + " ORDER BY id", args).fetchall()
        return [self._received_share(r) for r in rows]

    def set_received_state(self, share_id: int, state: int, mount_name: str | None) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE received_shares SET state = ?, mount_name = ? WHERE id = ?",
                (state, mount_name, share_id),
            )

    def change_received_share(
        self, share_id: int, permissions: list[str], expiration: int | None
    ) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE received_shares SET permissions = ?, expiration = ? WHERE id = ?",
                (json.dumps(permissions), expiration, share_id),
            )

    def forget_received_share(self, share_id: int) -> None:
        with self._write() as db:
            db.execute("DELETE FROM received_shares WHERE id = ?", (share_id,))

    # -- OCM invites and contacts -----------------------------------------------------------------

    def create_invite(self, user: str, token: str, expires: int) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO ocm_invites (token, user, created, expires) VALUES (?, ?, ?, ?)",
                (token, user, int(time.time()), expires),
            )

    def invite(self, token: str) -> sqlite3.Row | None:
        return self._db().execute("SELECT * FROM ocm_invites WHERE token = ?", (token,)).fetchone()

    def use_invite(self, token: str, contact: dict[str, str]) -> bool:
        """Mark the invite ``token`` accepted and add ``contact`` (address, name, email) to
        its user's contacts, in one step; False if it was accepted already."""
        now = int(time.time())
        with self._write() as db:
            row = db.execute(
                "UPDATE ocm_invites SET accepted = ? WHERE token = ? AND accepted IS NULL "
                "RETURNING user",
                (now, token),
            ).fetchone()
            if row is None:
                return False
            self._add_contact(db, row["user"], contact, now)
        return True

    def add_contact(self, user: str, contact: dict[str, str]) -> None:
        with self._write() as db:
            self._add_contact(db, user, contact, int(time.time()))

    @staticmethod
    def _add_contact(db: sqlite3.Connection, user: str, contact: dict[str, str], now: int) -> None:
        db.execute(
            "INSERT INTO ocm_contacts (user, address, name, email, added) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (user, address) DO UPDATE SET name = excluded.name, "
            "email = excluded.email",
            (user, contact["address"], contact["name"], contact["email"], now),
        )

    def open_invites_of(self, user: str, now: float) -> list[sqlite3.Row]:
        """``user``'s invites not accepted yet and not expired at ``now``, newest first."""
        query = (
            "SELECT * FROM ocm_invites WHERE user = ? AND accepted IS NULL AND expires >= ? "
            "ORDER BY created DESC, token"
        )
        return self._db().execute(query, (user, now)).fetchall()

    def withdraw_invite(self, user: str, token: str) -> bool:
        """Forget ``user``'s invite ``token`` if it is still open; whether it was."""
        with self._write() as db:
            cur = db.execute(
                "DELETE FROM ocm_invites WHERE token = ? AND user = ? AND accepted IS NULL",
                (token, user),
            )
            return cur.rowcount > 0

    def contacts_of(self, user: str) -> list[sqlite3.Row]:
        query = "SELECT * FROM ocm_contacts WHERE user = ? ORDER BY added, id"
        return self._db().execute(query, (user,)).fetchall()

    def remove_contact(self, user: str, address: str) -> bool:
        """Forget ``address`` among ``user``'s contacts; whether it was one."""
        with self._write() as db:
            cur = db.execute(
                "DELETE FROM ocm_contacts WHERE user = ? AND address = ?", (user, address)
            )
            return cur.rowcount > 0

    # -- OCM notifications not delivered yet -----------------------------------------------------

    def keep_notification(self, key: str, provider: str, document: str, now: float) -> None:
        """Keep ``document`` (JSON) for ``provider``, due at once, in place of any kept under
        ``key``."""
        with self._write() as db:
            db.execute(
                "INSERT INTO ocm_outbox (key, provider, document, first_tried, next_try) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "provider = excluded.provider, document = excluded.document, attempts = 0, "
                "first_tried = excluded.first_tried, next_try = excluded.next_try",
                (key, provider, document, now, now),
            )

    def kept_notification(self, key: str) -> sqlite3.Row | None:
        query = "SELECT * FROM ocm_outbox WHERE key = ?"
        return self._db().execute(query, (key,)).fetchone()

    def due_notifications(self, now: float) -> list[sqlite3.Row]:
        query = "SELECT key FROM ocm_outbox WHERE next_try <= ? ORDER BY next_try"
        return self._db().execute(query, (now,)).fetchall()

    def next_notification_time(self) -> float | None:
        row = self._db().execute("SELECT min(next_try) FROM ocm_outbox").fetchone()
        return row[0]

    def retry_notification(self, key: str, document: str, attempts: int, at: float) -> None:
        """Count a failed try of ``document`` (unless a newer one replaced it meanwhile)."""
        with self._write() as db:
            db.execute(
                "UPDATE ocm_outbox SET attempts = ?, next_try = ? WHERE key = ? AND document = ?",
                (attempts, at, key, document),
            )

    def forget_notification(self, key: str, document: str) -> None:
        """Forget ``document`` (delivered, refused or given up), not a newer one."""
        with self._write() as db:
            db.execute("DELETE FROM ocm_outbox WHERE key = ? AND document = ?", (key, document))

    # -- trash and versions -----------------------------------------------------------------------

    def add_trash(
        self, owner: str, original_path: str, kind: str, size: int, file_id: int | None = None
    ) -> TrashRecord:
        item = TrashRecord(0, owner, original_path, kind, size, time.time(), file_id)
        fields = {k: v for k, v in vars(item).items() if k != "id"}
        item.id = self._insert("trash", **fields)
        return item

    def trash(self, owner: str) -> list[TrashRecord]:
        rows = self._db().execute(
            "SELECT * FROM trash WHERE owner = ? ORDER BY deleted_at", (owner,)
        )
        return [TrashRecord(**dict(r)) for r in rows]

    def remove_trash(self, item_id: int) -> None:
        with self._write() as db:
            db.execute("DELETE FROM trash WHERE id = ?", (item_id,))

    def add_version(self, owner: str, file_id: int, mtime: int, size: int) -> VersionRecord:
        version = VersionRecord(0, owner, file_id, mtime, size, time.time())
        fields = {k: v for k, v in vars(version).items() if k != "id"}
        version.id = self._insert("versions", **fields)
        return version

    def versions(self, owner: str, file_id: int) -> list[VersionRecord]:
        rows = self._db().execute(
            "SELECT * FROM versions WHERE owner = ? AND file_id = ? ORDER BY mtime, id",
            (owner, file_id),
        )
        return [VersionRecord(**dict(r)) for r in rows]

    def remove_version(self, version_id: int) -> None:
        with self._write() as db:
            db.execute("DELETE FROM versions WHERE id = ?", (version_id,))
