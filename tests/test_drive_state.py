"""The drive's SQLite state (swan_hub.drive.state) on a real database file: what it keeps
survives a restart of the drive, and a database of an earlier release is brought up to date."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from swan_hub.drive.state import (
    INDEXES,
    MIGRATIONS,
    SCHEMA,
    SHARE_USER,
    STATE_ACCEPTED,
    DriveState,
    StateTooNew,
    migrate,
    schema_version,
)


def test_dead_properties_survive_a_restart_and_go_with_their_file(tmp_path):
    path = str(tmp_path / "drive" / "drive.sqlite")
    state = DriveState(path)
    file_id = state.add_files("alice", "notes", {"a.md": (42, 1_000)})["a.md"]
    state.set_property(file_id, "{urn:x}colour", b"<colour xmlns='urn:x'>blue</colour>")

    restarted = DriveState(path)
    assert restarted.properties(file_id) == {
        "{urn:x}colour": b"<colour xmlns='urn:x'>blue</colour>"
    }
    restarted.forgotten("alice", "notes")
    assert restarted.properties(file_id) == {}


def test_a_database_of_an_earlier_release_gets_the_new_columns_and_keeps_its_ids(tmp_path):
    path = tmp_path / "drive.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE files (id INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT NOT NULL, "
        "parent TEXT NOT NULL, name TEXT NOT NULL, UNIQUE (owner, parent, name));"
        "INSERT INTO files (owner, parent, name) VALUES ('alice', '', 'kept.txt');"
    )
    old.commit()
    old.close()

    state = DriveState(str(path))
    (record,) = state.files_in("alice", "", ["kept.txt"]).values()
    assert record.id == 1 and record.inode is None
    state.note_seen("alice", "", {"kept.txt": (7, 8)})
    assert state.files_with_inodes("alice", [7])[7][0].path == "kept.txt"


def connect(path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def schema_of(path) -> list[tuple[str, str, str]]:
    db = connect(path)
    try:
        return db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    finally:
        db.close()


def database_made_before_numbered_migrations(path) -> None:
    """What the drive wrote before its migrations were numbered: the tables created with
    CREATE ... IF NOT EXISTS, rows in each, and user_version left at 0."""
    db = connect(path)
    db.executescript(SCHEMA + INDEXES)
    db.executescript(
        "INSERT INTO files (owner, parent, name, inode, mtime_ns) "
        "VALUES ('alice', 'notes', 'a.md', 42, 1000);"
        "INSERT INTO properties (file_id, name, value) VALUES (1, '{urn:x}colour', x'626c7565');"
        "INSERT INTO shares (share_type, owner, path, item_type, file_id, share_with, "
        "permissions, stime) VALUES (0, 'alice', 'notes/a.md', 'file', 1, 'bob', 1, 1700000000);"
        "INSERT INTO share_state (share_id, user, state, mount_name) VALUES (1, 'bob', 0, 'a.md');"
        "INSERT INTO trash (owner, original_path, kind, size, deleted_at) "
        "VALUES ('alice', 'old.txt', 'file', 3, 1700000001.5);"
        "INSERT INTO versions (owner, file_id, mtime, size, created) "
        "VALUES ('alice', 1, 999, 4, 1700000002.5);"
    )
    assert schema_version(db) == 0
    db.close()


def test_a_database_made_before_the_migrations_were_numbered_is_upgraded_with_every_row(tmp_path):
    path = tmp_path / "drive.sqlite"
    database_made_before_numbered_migrations(path)

    state = DriveState(str(path))
    assert schema_version(state._db()) == len(MIGRATIONS)
    assert state.files_in("alice", "notes", ["a.md"])["a.md"].inode == 42
    assert state.properties(1) == {"{urn:x}colour": b"blue"}
    (share,) = state.received_shares("bob", [], default_state=1)
    assert (share.path, share.share_type, share.state, share.mount_name) == (
        "notes/a.md",
        SHARE_USER,
        STATE_ACCEPTED,
        "a.md",
    )
    assert [item.original_path for item in state.trash("alice")] == ["old.txt"]
    assert [version.mtime for version in state.versions("alice", 1)] == [999]
    # the same tables and indexes as a database the drive creates today
    DriveState(str(tmp_path / "fresh" / "drive.sqlite"))
    assert schema_of(path) == schema_of(tmp_path / "fresh" / "drive.sqlite")


def test_migrations_appended_later_run_once_each_in_order(tmp_path):
    path = tmp_path / "drive.sqlite"
    DriveState(str(path))
    ran = []

    def add_colour(db: sqlite3.Connection) -> None:
        ran.append("colour")
        db.execute("ALTER TABLE files ADD COLUMN colour TEXT")

    def colour_everything(db: sqlite3.Connection) -> None:
        ran.append("paint")
        db.execute("UPDATE files SET colour = 'blue'")

    state = DriveState(str(path))
    state.add_files("alice", "", {"kept.txt": (1, 2)})
    steps = (*MIGRATIONS, add_colour, colour_everything)
    db = connect(path)
    assert migrate(db, steps) == len(MIGRATIONS) + 2
    assert migrate(db, steps) == len(MIGRATIONS) + 2
    assert ran == ["colour", "paint"]
    assert db.execute("SELECT name, colour FROM files").fetchall() == [("kept.txt", "blue")]
    db.close()


def test_a_migration_that_fails_leaves_the_database_as_it_was(tmp_path):
    path = tmp_path / "drive.sqlite"
    DriveState(str(path)).add_files("alice", "", {"kept.txt": (1, 2)})
    before = schema_of(path)

    def half_done(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE files ADD COLUMN colour TEXT")
        db.execute("DELETE FROM files")
        raise sqlite3.OperationalError("disk I/O error")

    db = connect(path)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        migrate(db, (*MIGRATIONS, half_done))
    assert schema_version(db) == len(MIGRATIONS)
    db.close()
    assert schema_of(path) == before
    assert list(DriveState(str(path)).files_in("alice", "", ["kept.txt"])) == ["kept.txt"]


def test_a_database_of_a_newer_release_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "drive.sqlite"
    DriveState(str(path)).add_files("alice", "", {"kept.txt": (1, 2)})
    newer = len(MIGRATIONS) + 1
    db = connect(path)
    db.execute(f"PRAGMA user_version = {newer}")
    db.close()

    with pytest.raises(StateTooNew) as refused:
        DriveState(str(path))
    message = str(refused.value)
    assert str(path) in message
    assert f"schema version {newer}, written by a newer release" in message
    assert f"knows versions up to {len(MIGRATIONS)}" in message
    db = connect(path)
    assert schema_version(db) == newer
    assert db.execute("SELECT name FROM files").fetchall() == [("kept.txt",)]
    db.close()


def test_migrations_started_at_once_by_several_connections_run_once(tmp_path):
    path = tmp_path / "drive.sqlite"
    ran = []

    def add_colour(db: sqlite3.Connection) -> None:
        ran.append("colour")
        db.execute("ALTER TABLE files ADD COLUMN colour TEXT")

    steps = (*MIGRATIONS, add_colour)
    start = threading.Barrier(4)
    reached: list[int] = []
    failed: list[BaseException] = []

    def open_and_migrate() -> None:
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
        start.wait()
        try:
            reached.append(migrate(db, steps))
        except BaseException as e:  # noqa: BLE001 - reported by the test
            failed.append(e)
        finally:
            db.close()

    threads = [threading.Thread(target=open_and_migrate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failed
    assert reached == [len(steps)] * 4
    assert ran == ["colour"]
