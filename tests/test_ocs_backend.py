"""OCSShareBackend against the recorded answers of Nextcloud, ownCloud 10 and Reva (CERNBox, oCIS)
served over real HTTP on 127.0.0.1 (tests/harness/ocs_replay.py): each dialect is spoken as its
server expects, and every refusal keeps the storage's own message."""

from __future__ import annotations

import socket

import pytest
from harness.ocs_replay import OCSReplay
from traitlets.config import Config

from swan_contents.storage import WebDAVStorage
from swan_share_ext.sharing.backend import (
    InvalidShareRequest,
    NewShare,
    ShareForbidden,
    ShareNotFound,
    SharingAuthFailed,
    SharingUnavailable,
)
from swan_share_ext.sharing.ocs import OCSShareBackend

SETTINGS = {
    "nextcloud": {"api_version": "2"},
    "owncloud10": {"api_version": "1"},
    "reva": {"api_version": "1"},
}


@pytest.fixture
def serve(tmp_path):
    """`serve(name, **traits)` starts the replay of a recording and a backend pointed at it."""
    started: list[tuple[OCSReplay, OCSShareBackend]] = []

    def start(name: str, **traits) -> tuple[OCSReplay, OCSShareBackend]:
        replay = OCSReplay.load(name).start()
        credentials = replay.recording["credentials"]
        secret = tmp_path / f"{name}-password"
        secret.write_text(credentials["password"] + "\n")
        traits = {
            "url": replay.url,
            "username": credentials["user"],
            "password_file": str(secret),
            **SETTINGS[name],
            **traits,
        }
        backend = OCSShareBackend(**traits)
        started.append((replay, backend))
        return replay, backend

    yield start
    for replay, _ in started:
        replay.stop()


@pytest.fixture
def closing(jp_asyncio_loop):
    """`closing(backend)` closes the backend's connections after the test."""
    backends: list[OCSShareBackend] = []
    yield backends.append
    for backend in backends:
        jp_asyncio_loop.run_until_complete(backend.close())


# -- Nextcloud ----------------------------------------------------------------------------------


async def test_a_folder_shared_with_a_group_is_listed_changed_and_revoked(serve, closing):
    replay, backend = serve("nextcloud")
    closing(backend)
    assert await backend.list_shares("class-2026") == []

    share = await backend.create_share(
        NewShare(path="class-2026", kind="group", share_with="class-2026", permissions=1)
    )
    assert (share.id, share.kind, share.path, share.item_type) == (
        "7",
        "group",
        "class-2026",
        "folder",
    )
    assert (share.share_with, share.share_with_name) == ("class-2026", "Class of 2026")
    assert share.owner_name == "Prof. Ada Teacher"
    assert [s.id for s in await backend.list_shares("class-2026")] == ["7"]

    changed = await backend.update_share("7", {"permissions": 15})
    assert changed.permissions == 15
    await backend.delete_share("7")
    assert await backend.list_shares("class-2026") == []

    assert replay.unmatched == []
    # one request per operation, each with the OCS header, JSON asked for and the app password
    assert len(replay.requests()) == 6
    for seen in replay.requests():
        assert seen.headers["ocs-apirequest"] == "true"
        assert seen.query["format"] == "json"
        assert seen.headers["authorization"].startswith("Basic ")
        assert seen.path.startswith("/ocs/v2.php/apps/files_sharing/api/v1/")


async def test_a_public_link_has_its_url_and_expiry_but_never_the_password_hash(serve, closing):
    _, backend = serve("nextcloud")
    closing(backend)
    link = await backend.create_share(
        NewShare(
            path="class-2026",
            kind="link",
            permissions=1,
            password="Correct-Horse-7",
            expiration="2026-12-31",
            name="Students",
        )
    )
    assert link.url == "https://cloud.example.org/s/Kq8ZrD3bXf6yN2p"
    assert (link.expiration, link.name, link.password_protected) == ("2026-12-31", "Students", True)
    assert link.share_with is None and "$2y$" not in str(link.to_json())


async def test_nextcloud_lists_pending_shares_apart_and_accepting_mounts_them(serve, closing):
    replay, backend = serve("nextcloud", dialect="auto")
    closing(backend)
    received = await backend.received_shares("all")
    assert [(s.id, s.state, s.location) for s in received] == [
        ("21", "accepted", "class-2026"),
        ("22", "pending", "physics-lab"),
    ]
    accepted = await backend.accept_share("22")
    assert (accepted.id, accepted.state, accepted.location) == ("22", "accepted", "physics-lab")
    assert [s.path for s in replay.seen][0] == "/status.php"  # the dialect is asked once
    assert sum(s.path == "/status.php" for s in replay.seen) == 1
    assert replay.unmatched == []


async def test_nextcloud_declines_by_removing_the_share_from_the_recipients_space(serve, closing):
    replay, backend = serve("nextcloud", dialect="nextcloud")
    closing(backend)
    await backend.decline_share("21")
    assert [(s.method, s.path.rsplit("/api/v1", 1)[1]) for s in replay.requests()] == [
        ("DELETE", "/shares/21")
    ]


async def test_sharee_search_puts_exact_matches_first_and_names_each_once(serve, closing):
    _, backend = serve("nextcloud")
    closing(backend)
    found = await backend.search_sharees("class", "folder")
    assert [(s.kind, s.share_with, s.name) for s in found] == [
        ("group", "class-2026", "Class of 2026"),
        ("user", "student1", "Student One"),
        ("group", "class-2025", "Class of 2025"),
    ]
    assert found[1].info == "student1@example.org"


async def test_credentials_the_storage_refuses_are_reported_as_such(serve, closing, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password")
    _, backend = serve("nextcloud", password_file=str(wrong))
    closing(backend)
    with pytest.raises(SharingAuthFailed, match="did not accept this server's credentials"):
        await backend.list_shares()


async def test_an_unreadable_credentials_file_is_reported_without_calling_the_storage(
    serve, closing, tmp_path
):
    replay, backend = serve("nextcloud", password_file=str(tmp_path / "missing"))
    closing(backend)
    with pytest.raises(SharingUnavailable, match="cannot use its storage credentials"):
        await backend.list_shares()
    assert replay.seen == []


# -- ownCloud 10 --------------------------------------------------------------------------------


async def test_owncloud_shares_a_notebook_with_a_student_for_editing(serve, closing):
    replay, backend = serve("owncloud10", dialect="owncloud")
    closing(backend)
    share = await backend.create_share(
        NewShare(
            path="class-2026/exercise-1.ipynb", kind="user", share_with="student1", permissions=3
        )
    )
    assert (share.id, share.item_type, share.permissions) == ("41", "file", 3)
    assert share.path == "class-2026/exercise-1.ipynb"
    assert replay.requests()[0].path == "/ocs/v1.php/apps/files_sharing/api/v1/shares"


async def test_owncloud_received_shares_carry_their_state_and_accept_and_decline_them(
    serve, closing
):
    replay, backend = serve("owncloud10", dialect="owncloud")
    closing(backend)
    (pending,) = await backend.received_shares("pending")
    assert (pending.id, pending.state, pending.location) == ("42", "pending", "Shares/class-2026")
    accepted = await backend.accept_share("42")
    assert accepted.state == "accepted"
    await backend.decline_share("42")
    assert [(s.method, s.path.rsplit("/api/v1", 1)[1]) for s in replay.requests()] == [
        ("GET", "/shares"),
        ("POST", "/shares/pending/42"),
        ("DELETE", "/shares/pending/42"),
    ]
    assert replay.requests()[0].query["state"] == "1"


async def test_revoking_a_share_that_is_gone_says_so(serve, closing):
    _, backend = serve("owncloud10", dialect="owncloud")
    closing(backend)
    with pytest.raises(ShareNotFound, match="Wrong share ID"):
        await backend.delete_share("404")


# -- Reva (CERNBox, oCIS) -----------------------------------------------------------------------


@pytest.fixture
def reva(serve, tmp_path, closing):
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.teacher.sig\n")
    replay, backend = serve("reva", token_file=str(token))
    closing(backend)
    return replay, backend


async def test_reva_federated_shares_name_the_user_and_the_provider_apart(reva):
    replay, backend = reva
    share = await backend.create_share(
        NewShare(path="class-2026", kind="federated", share_with="alice@university.example")
    )
    assert (share.kind, share.share_with) == ("federated", "alice@university.example")
    form = replay.requests("POST")[0].form
    assert (form["shareWithUser"], form["shareWithProvider"]) == ("alice", "university.example")
    assert "shareWith" not in form
    assert replay.requests("POST")[0].headers["authorization"].startswith("Bearer ")


async def test_reva_link_passwords_are_redacted_and_opaque_ids_kept(reva):
    _, backend = reva
    link = await backend.create_share(NewShare(path="class-2026", kind="link", name="Students"))
    assert (link.id, link.password_protected, link.share_with) == ("Vn4Ld1", True, None)
    assert link.expiration == "2026-12-31"


async def test_reva_received_shares_are_filtered_by_state(reva):
    replay, backend = reva
    everything = await backend.received_shares("all")
    assert [(s.state, s.location) for s in everything] == [
        ("accepted", "Shares/class-2026"),
        ("declined", "Shares/old-course"),
    ]
    declined = await backend.received_shares("declined")
    assert [s.path for s in declined] == ["old-course"]
    await backend.decline_share("b1d7f0aa-0c3e-4a19-8d0e-5d2a9c4e7f20")
    assert replay.unmatched == []


async def test_reva_remote_sharees_are_addressed_as_user_at_provider(reva):
    _, backend = reva
    found = await backend.search_sharees("alice")
    assert [(s.kind, s.share_with) for s in found] == [
        ("user", "alocal"),
        ("federated", "alice@university.example"),
    ]


# -- any server ---------------------------------------------------------------------------------

NOBODY = NewShare(path="class-2026", kind="user", share_with="nobody")


@pytest.mark.parametrize(
    ("recording", "new", "error", "message"),
    [
        ("nextcloud", NOBODY, ShareNotFound, "Please specify a valid user"),
        (
            "nextcloud",
            NewShare(path="not-mine", kind="user", share_with="student1"),
            ShareNotFound,
            "Wrong path, file/folder doesn't exist",
        ),
        (
            "nextcloud",
            NewShare(path="physics-lab", kind="user", share_with="student2", permissions=15),
            ShareNotFound,
            "Cannot increase permissions of /physics-lab",
        ),
        (
            "nextcloud",
            NewShare(path="class-2026", kind="link", expiration="2099-01-01"),
            ShareNotFound,
            "Cannot set expiration date more than 7 days in the future",
        ),
        # ownCloud answers its refusals with HTTP 200: the meta statuscode decides
        ("owncloud10", NOBODY, ShareNotFound, "Please specify a valid user"),
        (
            "owncloud10",
            NewShare(path="class-2026", kind="user", share_with="student1", permissions=9),
            InvalidShareRequest,
            "invalid permissions",
        ),
        (
            "owncloud10",
            NewShare(path="restricted", kind="user", share_with="student1"),
            ShareForbidden,
            "Sharing is not allowed for this user",
        ),
        # Reva's own codes: 998 not found, 996 server error
        ("reva", NOBODY, ShareNotFound, "error searching recipient"),
        (
            "reva",
            NewShare(path="eos-down", kind="user", share_with="student1"),
            SharingUnavailable,
            "The storage's share service failed: error sending a grpc stat request",
        ),
    ],
)
async def test_refusals_of_each_storage_keep_the_storages_message(
    serve, closing, tmp_path, recording, new, error, message
):
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.teacher.sig")
    traits = {"token_file": str(token)} if recording == "reva" else {}
    _, backend = serve(recording, dialect="auto", **traits)
    closing(backend)
    with pytest.raises(error) as refused:
        await backend.create_share(new)
    assert refused.value.message == message


async def test_a_share_id_cannot_reach_another_endpoint(serve, closing):
    replay, backend = serve("owncloud10", dialect="owncloud")
    closing(backend)
    with pytest.raises(SharingUnavailable):
        await backend.get_share("../../../cloud/users?x=")
    (seen,) = replay.requests()
    assert (
        seen.path
        == "/ocs/v1.php/apps/files_sharing/api/v1/shares/..%2F..%2F..%2Fcloud%2Fusers%3Fx%3D"
    )


async def test_paths_are_mapped_through_the_prefix_of_the_servers_folder(serve, closing):
    replay, backend = serve("owncloud10", dialect="owncloud", path_prefix="class-2026")
    closing(backend)
    share = await backend.create_share(
        NewShare(path="exercise-1.ipynb", kind="user", share_with="student1", permissions=3)
    )
    assert replay.requests("POST")[0].form["path"] == "/class-2026/exercise-1.ipynb"
    assert share.path == "exercise-1.ipynb"
    (pending,) = await backend.received_shares("pending")
    assert pending.path == "" and pending.location is None  # outside this server's folder


async def test_without_settings_of_its_own_it_uses_the_storage_drivers(tmp_path, closing):
    replay = OCSReplay.load("owncloud10").start()
    try:
        secret = tmp_path / "app-password"
        secret.write_text("app-password-teacher")
        config = Config()
        config.WebDAVStorage.url = f"{replay.url}remote.php/dav/files/teacher/"
        config.WebDAVStorage.password_file = str(secret)
        backend = OCSShareBackend(config=config, dialect="owncloud")
        closing(backend)
        assert (backend.url, backend.username, backend.path_prefix) == (replay.url, "teacher", "")
        (pending,) = await backend.received_shares("pending")
        assert pending.id == "42"
        assert replay.requests()[0].headers["authorization"].startswith("Basic ")
    finally:
        replay.stop()


def test_the_share_backend_reaches_the_storage_as_the_driver_does(tmp_path):
    secret = tmp_path / "app-password"
    secret.write_text("app-password-teacher")
    config = Config()
    config.WebDAVStorage.url = "https://cloud.example.org/remote.php/dav/files/teacher/"
    config.WebDAVStorage.password_file = str(secret)
    config.WebDAVStorage.verify_tls = False
    config.WebDAVStorage.connect_timeout = 2.5
    driver = WebDAVStorage(config=config).connection
    backend = OCSShareBackend(config=config, dialect="owncloud")
    assert backend.url == "https://cloud.example.org/"
    assert (backend.username, backend.password_file) == ("teacher", str(secret))
    shared = ("username", "password_file", "verify_tls", "connect_timeout")
    assert [getattr(backend.connection, n) for n in shared] == [getattr(driver, n) for n in shared]
    assert backend.connection.timeout == backend.timeout  # the share service's own wait
    # the backend's own settings still win
    config.OCSShareBackend.verify_tls = True
    config.OCSShareBackend.username = "teacher-shares"
    own = OCSShareBackend(config=config, dialect="owncloud").connection
    assert (own.verify_tls, own.username) == (True, "teacher-shares")


async def test_the_storage_drivers_environment_gives_url_folder_and_token(monkeypatch, closing):
    replay = OCSReplay.load("reva").start()
    try:
        monkeypatch.setenv("SWAN_WEBDAV_URL", f"{replay.url}remote.php/dav/files/teacher/")
        monkeypatch.setenv("SWAN_WEBDAV_TOKEN", replay.recording["credentials"]["token"])
        backend = OCSShareBackend(dialect="reva")
        closing(backend)
        assert [s.share_with for s in await backend.search_sharees("alice")] == [
            "alocal",
            "alice@university.example",
        ]
        monkeypatch.setenv("SWAN_WEBDAV_URL", f"{replay.url}remote.php/dav/files/teacher/SWAN/")
        assert OCSShareBackend().path_prefix == "SWAN"
    finally:
        replay.stop()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_an_unreachable_storage_is_unavailable_not_an_error_of_the_user(closing):
    backend = OCSShareBackend(url=f"http://127.0.0.1:{_closed_port()}/", dialect="owncloud")
    closing(backend)
    with pytest.raises(SharingUnavailable, match="cannot be reached"):
        await backend.list_shares()


async def test_an_answer_that_is_not_ocs_is_reported_with_its_status(serve, closing):
    replay, backend = serve("owncloud10", dialect="owncloud")
    closing(backend)
    with pytest.raises(SharingUnavailable, match="HTTP 500"):
        await backend.get_share("12345")  # no recording answers it: the replay says 500 text
    assert len(replay.unmatched) == 1


async def test_a_backend_without_a_url_says_sharing_is_not_set_up(closing):
    backend = OCSShareBackend()
    closing(backend)
    assert not backend.configured
    with pytest.raises(SharingUnavailable, match="not set up"):
        await backend.list_shares()
