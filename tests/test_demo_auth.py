"""The demo accounts of `swan up`: generated passwords, stored hashed in private files, kept across
restarts, and a login that lets in exactly the listed users with their own password."""

from __future__ import annotations

import asyncio
import json
import os
import stat

from swan_hub.auth import (
    CREDENTIALS_FILE,
    PASSWORDS_FILE,
    SwanDemoAuthenticator,
    ensure_demo_credentials,
    read_plain_passwords,
)


def _login(auth: SwanDemoAuthenticator, username: str, password: str):
    return asyncio.run(
        auth.get_authenticated_user(None, {"username": username, "password": password})
    )


def _authenticator(hub_dir) -> SwanDemoAuthenticator:
    return SwanDemoAuthenticator(credentials_file=str(hub_dir / CREDENTIALS_FILE))


def test_credentials_are_private_files_and_never_hold_a_plain_password(tmp_path):
    passwords = ensure_demo_credentials(str(tmp_path), ["alice", "bob"])
    for name in (CREDENTIALS_FILE, PASSWORDS_FILE):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
    stored = (tmp_path / CREDENTIALS_FILE).read_text()
    assert passwords["alice"] not in stored and passwords["bob"] not in stored
    assert set(json.loads(stored)["users"]) == {"alice", "bob"}
    assert read_plain_passwords(str(tmp_path / PASSWORDS_FILE)) == passwords


def test_each_user_gets_a_different_random_password(tmp_path):
    passwords = ensure_demo_credentials(str(tmp_path), ["alice", "bob"])
    assert passwords["alice"] != passwords["bob"]
    assert len(passwords["alice"] or "") >= 16


def test_passwords_survive_a_restart_unless_reset(tmp_path):
    first = ensure_demo_credentials(str(tmp_path), ["alice"])
    assert ensure_demo_credentials(str(tmp_path), ["alice"]) == first
    assert ensure_demo_credentials(str(tmp_path), ["alice"], reset=True) != first


def test_a_deleted_plain_file_does_not_change_the_password(tmp_path):
    first = ensure_demo_credentials(str(tmp_path), ["alice"])
    os.remove(tmp_path / PASSWORDS_FILE)
    assert ensure_demo_credentials(str(tmp_path), ["alice"]) == {"alice": None}
    assert _login(_authenticator(tmp_path), "alice", first["alice"])["name"] == "alice"


def test_a_listed_user_logs_in_with_their_password_only(tmp_path):
    passwords = ensure_demo_credentials(str(tmp_path), ["alice", "bob"])
    auth = _authenticator(tmp_path)
    assert _login(auth, "alice", passwords["alice"])["name"] == "alice"
    assert _login(auth, "Alice", passwords["alice"])["name"] == "alice"
    assert _login(auth, "alice", passwords["bob"]) is None
    assert _login(auth, "alice", "") is None


def test_users_not_listed_are_refused(tmp_path):
    passwords = ensure_demo_credentials(str(tmp_path), ["alice", "carol"])
    ensure_demo_credentials(str(tmp_path), ["alice"])
    auth = _authenticator(tmp_path)
    assert auth.allowed_users == {"alice"}
    assert _login(auth, "carol", passwords["carol"]) is None
    assert _login(auth, "mallory", passwords["alice"]) is None


def test_without_a_credentials_file_nobody_logs_in(tmp_path):
    assert _login(_authenticator(tmp_path), "alice", "anything") is None
