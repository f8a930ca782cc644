"""Open in SWAN inside a real jupyter-server: the confirmation page, POST /swan/api/open landing
sources in SWAN_projects/ through the contents manager, and the promise that a repeated click
never destroys the user's edits (single files, zips, git repositories over real git smart-HTTP)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date
from pathlib import Path

import pytest
from harness.open_servers import (
    GitHttpServer,
    SourceServer,
    UpstreamRepository,
    post_open,
    redirect,
    reply,
    server_config,
)

from swan_share_ext.open_in.fetch import Fetcher
from swan_share_ext.open_in.run import _valid_notebook
from swan_share_ext.open_in.safety import BadLink, OpenRefused, UrlPolicy
from swan_share_ext.open_in.sources import LinkReader

SOURCE_HOST = "127.0.0.2"


def notebook(source: str) -> str:
    return (
        json.dumps(
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "execution_count": None,
                        "id": "c1",
                        "metadata": {},
                        "outputs": [],
                        "source": source,
                    }
                ],
                "metadata": {},
                "nbformat": 4,
                "nbformat_minor": 5,
            },
            indent=1,
        )
        + "\n"
    )


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def jp_server_config(space, tmp_path):
    return server_config(
        space,
        tmp_path,
        allowed_hosts=[SOURCE_HOST, "github.com"],
        allowed_schemes=["https", "http"],
        allowed_networks=[f"{SOURCE_HOST}/32"],
        share_link_hosts=[SOURCE_HOST],
        max_download_bytes=1024 * 1024,
        download_timeout=5.0,
        storage_path_template="/eos/user/{initial}/{username}",
    )


@pytest.fixture
def source():
    server = SourceServer(SOURCE_HOST)
    yield server
    server.stop()


@pytest.fixture
def git_server(tmp_path):
    server = GitHttpServer(tmp_path / "served", SOURCE_HOST)
    yield server
    server.stop()


@pytest.fixture
def open_api(jp_fetch):
    """``await open_api(**query)``: the events of POST /swan/api/open, or the JSON error."""

    async def call(**params: str) -> list[dict]:
        return await post_open(jp_fetch, params)

    return call


def last(events: list[dict]) -> dict:
    return events[-1]


def written(space: Path) -> list[str]:
    return sorted(str(p.relative_to(space)) for p in space.rglob("*") if p.is_file())


async def test_a_notebook_url_lands_in_its_project_folder_and_the_page_goes_to_it(
    open_api, source, space, jp_base_url
):
    source.routes["/data/analysis.ipynb"] = reply(200, notebook("print(1)").encode())
    events = await open_api(url=source.url("/data/analysis.ipynb"))
    done = last(events)
    assert done["event"] == "done", events
    assert done["path"] == "SWAN_projects/analysis/analysis.ipynb"
    assert done["url"] == f"{jp_base_url}lab/tree/SWAN_projects/analysis/analysis.ipynb"
    assert (space / "SWAN_projects/analysis/analysis.ipynb").read_text() == notebook("print(1)")
    assert any(e["event"] == "file" and e["action"] == "added" for e in events)


async def test_the_confirmation_page_shows_what_from_where_and_into_which_folder_and_writes_nothing(
    jp_fetch, source, space
):
    source.routes["/a.ipynb"] = reply(200, notebook("x").encode())
    r = await jp_fetch("swan", "open", params={"url": source.url("/a.ipynb")})
    page = r.body.decode()
    assert r.code == 200
    assert source.url("/a.ipynb") in page
    assert SOURCE_HOST in page
    assert "SWAN_projects/a/" in page
    assert 'id="open-confirm"' in page
    assert source.requests == []
    assert written(space) == []


async def test_clicking_again_keeps_an_edited_file_and_puts_the_new_version_beside_it(
    open_api, source, space
):
    url = source.url("/lesson.ipynb")
    source.routes["/lesson.ipynb"] = reply(200, notebook("v1").encode())
    assert last(await open_api(url=url))["event"] == "done"
    mine = space / "SWAN_projects/lesson/lesson.ipynb"
    mine.write_text(notebook("my edit"))

    source.routes["/lesson.ipynb"] = reply(200, notebook("v2").encode())
    events = await open_api(url=url)
    done = last(events)
    assert done["event"] == "done", events
    assert mine.read_text() == notebook("my edit")
    [change] = [e for e in events if e["event"] == "file"]
    assert change["action"] == "beside"
    beside = mine.parent / change["beside"]
    assert beside.name == f"lesson (new version {date.today():%Y-%m-%d}).ipynb"
    assert beside.read_text() == notebook("v2")
    assert "new version beside" in done["summary"]

    # The same upstream version again: nothing new is written, the edit still stands.
    again = await open_api(url=url)
    assert [e["action"] for e in again if e["event"] == "file"] == ["kept"]
    assert sorted(p.name for p in mine.parent.iterdir()) == sorted([mine.name, beside.name])
    assert mine.read_text() == notebook("my edit")

    # Another upstream version gets the next name; going back to one kept already finds it.
    source.routes["/lesson.ipynb"] = reply(200, notebook("v3").encode())
    [third] = [e for e in await open_api(url=url) if e["event"] == "file"]
    assert third["beside"] == f"lesson (new version {date.today():%Y-%m-%d}, 2).ipynb"
    source.routes["/lesson.ipynb"] = reply(200, notebook("v2").encode())
    [back] = [e for e in await open_api(url=url) if e["event"] == "file"]
    assert back["action"] == "beside" and back["beside"] == beside.name
    assert len(list(mine.parent.iterdir())) == 3


async def test_an_unedited_file_is_updated_in_place_when_upstream_changes(open_api, source, space):
    url = source.url("/lesson.ipynb")
    source.routes["/lesson.ipynb"] = reply(200, notebook("v1").encode())
    await open_api(url=url)
    source.routes["/lesson.ipynb"] = reply(200, notebook("v2").encode())
    events = await open_api(url=url)
    assert [e["action"] for e in events if e["event"] == "file"] == ["updated"]
    assert (space / "SWAN_projects/lesson/lesson.ipynb").read_text() == notebook("v2")
    assert len(list((space / "SWAN_projects/lesson").iterdir())) == 1


async def test_a_zip_is_unpacked_without_its_top_folder_and_hidden_files(open_api, source, space):
    source.routes["/course.zip"] = reply(
        200,
        zip_of(
            {
                "course-main/intro.ipynb": notebook("hi").encode(),
                "course-main/data/table.csv": b"a,b\n1,2\n",
                "course-main/.binder/environment.yml": b"name: x\n",
            }
        ),
    )
    done = last(await open_api(url=source.url("/course.zip")))
    assert done["event"] == "done", done
    assert written(space) == [
        "SWAN_projects/course/data/table.csv",
        "SWAN_projects/course/intro.ipynb",
    ]
    assert done["path"] == "SWAN_projects/course/intro.ipynb"


async def test_a_public_share_link_downloads_the_shared_file_under_its_own_name(
    open_api, source, space
):
    # A double of a Nextcloud/ownCloud public link (no such server runs here): appending
    # /download to /index.php/s/<token> answers the shared file, named in Content-Disposition,
    # as the Nextcloud maintainers describe in nextcloud/server issues #3776 and #16858; the
    # header's RFC 6266 form `attachment; filename*=UTF-8''<name>` is what the client parses.
    source.routes["/s/Ab12Cd34/download"] = reply(
        200,
        notebook("shared").encode(),
        Content_Disposition="attachment; filename*=UTF-8''Shared%20results.ipynb",
    )
    done = last(await open_api(url=source.url("/s/Ab12Cd34")))
    assert done["event"] == "done", done
    assert done["path"] == "SWAN_projects/Shared results/Shared results.ipynb"
    assert source.requested("/s/Ab12Cd34/download") == 1


async def test_a_path_in_the_own_space_opens_in_place_without_copying(jp_fetch, space):
    (space / "analysis").mkdir()
    (space / "analysis" / "plots.ipynb").write_text(notebook("x"))
    r = await jp_fetch(
        "swan",
        "open",
        params={"path": "analysis/plots.ipynb"},
        follow_redirects=False,
        raise_error=False,
    )
    assert r.code == 302
    assert r.headers["Location"].endswith("/lab/tree/analysis/plots.ipynb")
    assert written(space) == ["analysis/plots.ipynb"]


async def test_a_missing_own_path_is_a_page_that_says_so(jp_fetch):
    r = await jp_fetch("swan", "open", params={"path": "nope.ipynb"}, raise_error=False)
    assert r.code == 404
    assert "There is no /nope.ipynb in your space" in r.body.decode()


async def test_a_path_in_someone_elses_space_asks_to_have_it_shared(jp_fetch, space):
    r = await jp_fetch(
        "swan", "open", params={"path": "thesis.ipynb", "owner": "zoe"}, raise_error=False
    )
    page = r.body.decode()
    assert r.code == 403
    assert "Ask zoe to share it with you" in page
    assert written(space) == []


async def test_a_swan_projurl_with_an_eos_path_maps_through_the_storage_template(jp_fetch, space):
    r = await jp_fetch(
        "download",
        params={"projurl": "file://eos/user/z/zoe/thesis.ipynb"},
        follow_redirects=False,
        raise_error=False,
    )
    assert r.code == 302
    assert "/swan/open?projurl=file" in r.headers["Location"]
    page = await jp_fetch(
        "swan",
        "open",
        params={"projurl": "file://eos/user/z/zoe/thesis.ipynb"},
        raise_error=False,
    )
    assert page.code == 403
    assert "in the space of zoe" in page.body.decode()


async def test_a_projurl_with_an_https_url_opens_like_url(open_api, source, space):
    source.routes["/p.ipynb"] = reply(200, notebook("p").encode())
    done = last(await open_api(projurl=source.url("/p.ipynb")))
    assert done["path"] == "SWAN_projects/p/p.ipynb"


async def test_the_links_api_gives_the_open_link_the_badge_and_markdown(jp_fetch):
    r = await jp_fetch(
        "swan", "api", "links", method="POST", body=json.dumps({"path": "a b/plots.ipynb"})
    )
    links = json.loads(r.body)
    assert "/hub/user-redirect/swan/open?path=a+b%2Fplots.ipynb&owner=" in links["link"]
    assert links["badge"].endswith("/services/swan-links/badge.svg")
    assert links["markdown"] == f"[![Open in SWAN]({links['badge']})]({links['link']})"


async def test_the_links_api_refuses_a_link_that_could_never_be_opened(jp_fetch):
    r = await jp_fetch(
        "swan",
        "api",
        "links",
        method="POST",
        body=json.dumps({"url": "file:///etc/passwd"}),
        raise_error=False,
    )
    assert r.code == 403
    assert "Only https or http links" in json.loads(r.body)["message"]


# -- git repositories over real smart HTTP -----------------------------------------------------


async def test_a_git_repository_is_cloned_and_reopening_merges_upstream_into_local_edits(
    open_api, git_server, space, tmp_path
):
    upstream = UpstreamRepository(git_server.root.parent, "course")
    upstream.commit(
        {
            "README.md": "# Course\n",
            "notes.txt": "line 1\nline 2\nline 3\nline 4\nline 5\n",
            "intro.ipynb": notebook("print('v1')"),
        }
    )
    url = git_server.url("course.git")
    done = last(await open_api(url=url, open="intro.ipynb"))
    assert done["event"] == "done", done
    project = space / "SWAN_projects/course"
    assert done["path"] == "SWAN_projects/course/intro.ipynb"
    assert (project / "notes.txt").read_text().startswith("line 1")

    # The user edits the top of notes.txt and the notebook; upstream edits the bottom of
    # notes.txt, the notebook too, and adds a file.
    (project / "notes.txt").write_text("line 1 (mine)\nline 2\nline 3\nline 4\nline 5\n")
    (project / "intro.ipynb").write_text(notebook("print('my version')"))
    upstream.commit(
        {
            "notes.txt": "line 1\nline 2\nline 3\nline 4\nline 5 (upstream)\n",
            "intro.ipynb": notebook("print('v2')"),
            "part2.ipynb": notebook("print('new')"),
        }
    )
    events = await open_api(url=url, open="intro.ipynb")
    assert last(events)["event"] == "done", events
    actions = {e["path"]: e["action"] for e in events if e["event"] == "file"}
    assert actions == {
        "README.md": "unchanged",
        "notes.txt": "merged",
        "intro.ipynb": "beside",
        "part2.ipynb": "added",
    }
    assert (project / "notes.txt").read_text() == (
        "line 1 (mine)\nline 2\nline 3\nline 4\nline 5 (upstream)\n"
    )
    assert (project / "intro.ipynb").read_text() == notebook("print('my version')")
    beside = [e for e in events if e.get("action") == "beside"][0]["beside"]
    assert (space / "SWAN_projects/course" / beside).read_text() == notebook("print('v2')")
    assert (project / "part2.ipynb").exists()
    assert not (project / ".git").exists()


async def test_a_file_deleted_by_the_user_comes_back_and_untouched_files_follow_upstream(
    open_api, git_server, space
):
    upstream = UpstreamRepository(git_server.root.parent, "lab")
    upstream.commit({"a.txt": "a1\n", "b.txt": "b1\n"})
    url = git_server.url("lab.git")
    await open_api(url=url)
    project = space / "SWAN_projects/lab"
    (project / "a.txt").unlink()
    upstream.commit({"b.txt": "b2\n"})
    events = await open_api(url=url)
    actions = {e["path"]: e["action"] for e in events if e["event"] == "file"}
    assert actions == {"a.txt": "restored", "b.txt": "updated"}
    assert (project / "b.txt").read_text() == "b2\n"


# -- reading links, without a server -----------------------------------------------------------


def reader(**kwargs) -> LinkReader:
    policy = UrlPolicy.from_lists(["github.com", "cloud.example.org", "gitlab.cern.ch"])
    defaults = {
        "user": "alice",
        "space": "/eos/user/a/alice",
        "storage_path_template": "/eos/user/{initial}/{username}",
        "git_hosts": ("github.com",),
        "share_link_hosts": ("cloud.example.org",),
    }
    return LinkReader(policy, **{**defaults, **kwargs})


def test_a_merged_notebook_counts_only_if_nbformat_reads_it_cleanly():
    # a merge of a notebook that is not one goes beside the user's file, never in its place
    assert _valid_notebook(notebook("print('merged')").encode())
    for merged in (b"[]", b"null", b'"text"', b"{", b"\xff", b'{"nbformat": 4}'):
        assert not _valid_notebook(merged), merged
    unknown_field = notebook("1").replace('"cell_type": "code",', '"cell_type": "code", "x": 1,')
    assert not _valid_notebook(unknown_field.encode())


def test_links_name_their_kind_source_and_project_folder():
    r = reader()
    repo = r.plan({"url": "https://github.com/owner/my-repo", "branch": "dev"})
    assert (repo.kind, repo.name, repo.branch) == ("git", "my-repo", "dev")
    assert r.plan({"url": "https://gitlab.cern.ch/a/b/c.git"}).name == "c"
    assert r.plan({"url": "https://github.com/o/r/raw/main/x.ipynb"}).kind == "download"
    zipped = r.plan({"url": "https://github.com/o/r/archive/main.zip", "kind": "file"})
    assert (zipped.kind, zipped.name) == ("download", "main")
    share = r.plan({"url": "https://cloud.example.org/index.php/s/AbCdEf123"})
    assert share.kind == "share-link"
    assert share.fetch_url == "https://cloud.example.org/index.php/s/AbCdEf123/download"
    odd = r.plan({"url": "https://github.com/o/r/raw/main/%3Cscript%3E%20x.ipynb"})
    assert odd.name == "script- x"


def test_eos_paths_map_to_their_owner_and_own_paths_open_in_place():
    r = reader()
    own = r.plan({"projurl": "file://eos/user/a/alice/work/fit.ipynb"})
    assert (own.kind, own.path) == ("own-path", "work/fit.ipynb")
    other = r.plan({"path": "/eos/user/b/bob/thesis.ipynb"})
    assert (other.kind, other.owner, other.path) == ("other-path", "bob", "thesis.ipynb")
    with pytest.raises(BadLink):
        r.plan({"path": "/eos/user/x/bob/thesis.ipynb"})  # the initial must match the name


def test_a_public_link_of_this_hubs_drive_is_fetched_from_the_drive_itself():
    r = reader(drive_url="http://127.0.0.1:8000/services/drive/", hub_host="swan.example.org")
    plan = r.plan({"url": "https://swan.example.org/services/drive/s/Tok3n_abc"})
    assert plan.kind == "share-link"
    assert plan.fetch_url == "http://127.0.0.1:8000/services/drive/s/Tok3n_abc/download"
    # a file inside a folder link (its preview page's button) is the one opened
    inside = r.plan(
        {"url": "https://swan.example.org/services/drive/s/Tok3n_abc", "open": "data/fit.ipynb"}
    )
    assert (inside.kind, inside.open) == ("share-link", "data/fit.ipynb")
    # The same path on another host is just a URL, held to the allowlist.
    with pytest.raises(OpenRefused, match="not among the hosts"):
        r.plan({"url": "https://evil.example/services/drive/s/Tok3n_abc"})


async def test_a_second_source_with_the_same_name_gets_its_own_folder(
    open_api, jp_fetch, source, space
):
    source.routes["/a/report.ipynb"] = reply(200, notebook("a").encode())
    source.routes["/b/report.ipynb"] = reply(200, notebook("b").encode())
    assert last(await open_api(url=source.url("/a/report.ipynb")))["event"] == "done"
    page = await jp_fetch("swan", "open", params={"url": source.url("/b/report.ipynb")})
    assert "SWAN_projects/report-2/" in page.body.decode()
    done = last(await open_api(url=source.url("/b/report.ipynb")))
    assert done["path"] == "SWAN_projects/report-2/report.ipynb"
    assert (space / "SWAN_projects/report/report.ipynb").read_text() == notebook("a")


async def test_a_drive_link_password_goes_to_the_drive_alone_not_along_a_redirect():
    seen: dict[str, list[str | None]] = {"drive": [], "elsewhere": []}

    def recording(where: str, answer):
        def record(handler) -> None:
            seen[where].append(handler.headers.get("Authorization"))
            answer(handler)

        return record

    elsewhere = SourceServer("127.0.0.3")
    drive = SourceServer(SOURCE_HOST)
    try:
        elsewhere.routes["/x.ipynb"] = recording("elsewhere", reply(200, b"{}"))
        drive.routes["/drive/s/Tok3n_abc/download"] = recording(
            "drive", redirect(elsewhere.url("/x.ipynb"))
        )
        fetcher = Fetcher(
            UrlPolicy.from_lists(["127.0.0.3"], ["http"], ["127.0.0.3/32"]),
            max_bytes=1024,
            timeout=5.0,
            max_redirects=2,
            trusted_prefix=drive.url("/drive/"),
        )
        got = await fetcher.fetch(
            drive.url("/drive/s/Tok3n_abc/download"), auth=("Tok3n_abc", "pw")
        )
        assert got.data == b"{}"
        assert seen["drive"] == ["Basic VG9rM25fYWJjOnB3"]  # base64 of Tok3n_abc:pw
        assert seen["elsewhere"] == [None]
    finally:
        drive.stop()
        elsewhere.stop()
