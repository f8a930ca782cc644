"""The drive's SQLite state (swan_hub.drive.state) on a real database file: what it keeps
survives a restart of the drive, and a database of an earlier release is brought up to date."""

from __future__ import annotations

import sqlite3

from swan_hub.drive.state import DriveState


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
