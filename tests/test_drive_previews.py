"""Previews of files on the drive's pages, over HTTP through `swan up` (real hub, proxy, drive
and its renderer process on 127.0.0.1): what each kind of file shows, the headers that keep a
rendered notebook inert, notebooks that do not parse, are too slow or too big to render, links
planted in a space, and the same previews on public link pages for anonymous visitors.

The drive here gives a preview 3 s and 300 MB, so that the bounds are reached quickly.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from harness.drive import ocs_share, running_drive, send_password_form
from test_drive import signed_in

pytestmark = pytest.mark.hub

SETTINGS = (
    "c.DriveService.preview_seconds = 3\n"
    "c.DriveService.preview_memory_bytes = 300 << 20\n"
    "c.DriveService.preview_file_bytes = 60 << 20\n"
)


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    with running_drive(tmp_path_factory.mktemp("previews"), settings=SETTINGS) as drive:
        yield drive


def notebook(*cells: dict) -> bytes:
    return json.dumps(
        {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": list(cells)}
    ).encode()


def code(source: str, *outputs: dict) -> dict:
    return {
        "cell_type": "code",
        "metadata": {},
        "execution_count": 1,
        "source": source,
        "outputs": list(outputs),
    }


def markdown(source: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def display(data: dict) -> dict:
    return {"output_type": "display_data", "metadata": {}, "data": data}


#: what a hostile notebook tries: scripts in every place a notebook can hold HTML or JavaScript
HOSTILE = notebook(
    markdown("# Results\n<script>window.scripted = 'markdown'</script>"),
    code(
        "show()",
        display({"text/html": "<b>bold table</b><script>window.scripted = 'html'</script>"}),
        display({"text/html": "<img src=x onerror=\"window.scripted = 'onerror'\">"}),
        display({"application/javascript": "window.scripted = 'javascript'", "text/plain": "js"}),
        display({"text/html": "<a href='javascript:alert(1)'>click</a><iframe src='/hub'>"}),
        {"output_type": "stream", "name": "stdout", "text": "printed 42\n"},
    ),
)


def render_url(preview_page: str) -> str:
    return re.search(r"<iframe class='rendered' src='([^']*)'", preview_page)[1].replace(
        "&amp;", "&"
    )


def test_a_notebook_preview_is_rendered_sanitised_and_served_inert(drive):
    assert drive.dav("alice", "PUT", "hostile.ipynb", content=HOSTILE).status_code == 201
    with signed_in(drive, "alice") as (browser, page):
        # the file's name on the drive page opens its preview; the row still offers the bytes
        assert "/services/drive/preview?path=hostile.ipynb" in page.text
        assert "remote.php/dav/files/alice/hostile.ipynb' download" in page.text
        preview = browser.get(f"{drive.base}/preview", params={"path": "hostile.ipynb"})
        assert preview.status_code == 200
        assert "Open in SWAN" in preview.text and ">Download</a>" in preview.text
        assert "/hub/user-redirect/swan/open?path=hostile.ipynb" in preview.text
        assert "frame-ancestors 'none'" in preview.headers["content-security-policy"]

        rendered = browser.get(drive.base.split("/services")[0] + render_url(preview.text))
        assert rendered.status_code == 200, rendered.text
        csp = rendered.headers["content-security-policy"]
        assert csp.startswith("sandbox;") and "default-src 'none'" in csp
        assert "img-src data:" in csp and "frame-ancestors 'self'" in csp
        assert rendered.headers["x-content-type-options"] == "nosniff"
        body = rendered.text
        assert "<b>bold table</b>" in body and "printed 42" in body and "Results</h1>" in body
        # nothing that runs or fetches is left as markup
        assert "<script" not in body.lower() and "<iframe" not in body.lower()
        assert "onerror=" not in body and "javascript:" not in body
        assert "window.scripted = 'javascript'" not in body


def test_a_second_preview_comes_from_the_cache_until_the_file_changes(drive):
    assert drive.dav("alice", "PUT", "cached.ipynb", content=notebook(markdown("first"))).is_success
    with signed_in(drive, "alice") as (browser, _):
        url = f"{drive.base}/preview/render"
        assert "<p>first</p>" in browser.get(url, params={"path": "cached.ipynb"}).text
        started = time.monotonic()
        assert "<p>first</p>" in browser.get(url, params={"path": "cached.ipynb"}).text
        assert time.monotonic() - started < 1
        # a browser that has this version is told so, without the page
        tag = browser.get(url, params={"path": "cached.ipynb"}).headers["etag"]
        again = browser.get(url, params={"path": "cached.ipynb"}, headers={"If-None-Match": tag})
        assert again.status_code == 304 and again.content == b""
        drive.dav("alice", "PUT", "cached.ipynb", content=notebook(markdown("second")))
        changed = browser.get(url, params={"path": "cached.ipynb"}, headers={"If-None-Match": tag})
        assert changed.status_code == 200 and "<p>second</p>" in changed.text


def test_a_notebook_that_does_not_parse_gets_a_sentence_not_an_error(drive):
    drive.dav("alice", "PUT", "broken.ipynb", content=b'{"cells": [ not json')
    drive.dav("alice", "PUT", "latin.ipynb", content=b"\xff\xfe\x00{")
    drive.dav("alice", "PUT", "list.ipynb", content=b"[1, 2]")
    with signed_in(drive, "alice") as (browser, _):
        assert browser.get(f"{drive.base}/preview", params={"path": "broken.ipynb"}).is_success
        for name, words in (
            ("broken.ipynb", "it is not valid JSON"),
            ("latin.ipynb", "it is not UTF-8 text"),
            ("list.ipynb", "it has no list of cells"),
        ):
            r = browser.get(f"{drive.base}/preview/render", params={"path": name})
            assert r.status_code == 422, (name, r.status_code)
            assert "could not be read" in r.text and words in r.text, r.text
            assert "sandbox" in r.headers["content-security-policy"]


def test_a_slow_or_huge_notebook_is_too_large_to_preview_and_the_drive_stays_up(drive):
    # 1,000 cells of 5,000 operators each: ten million tokens to highlight, over a minute of work
    # here and far beyond the 3 s allowed on any machine (a long comment is one token: fast)
    slow = notebook(*[code("x" + "+x" * 5_000) for _ in range(1000)])
    # one output of 40 MB: more memory than the 300 MB a preview may use
    huge = notebook(
        code("print(s)", {"output_type": "stream", "name": "stdout", "text": "y" * (40 << 20)})
    )
    drive.dav("alice", "PUT", "slow.ipynb", content=slow)
    drive.dav("alice", "PUT", "huge.ipynb", content=huge)
    drive.dav("alice", "PUT", "fine.ipynb", content=notebook(markdown("still *fine*")))
    with signed_in(drive, "alice") as (browser, _):
        for name in ("slow.ipynb", "huge.ipynb"):
            started = time.monotonic()
            r = browser.get(f"{drive.base}/preview/render", params={"path": name})
            assert r.status_code == 413, (name, r.text[:300])
            assert "too large to preview" in r.text
            assert time.monotonic() - started < 15
        assert httpx.get(f"{drive.base}/status.php").status_code == 200
        r = browser.get(f"{drive.base}/preview/render", params={"path": "fine.ipynb"})
        assert r.status_code == 200 and "<em>fine</em>" in r.text


def test_a_long_notebook_is_cut_with_a_notice(drive):
    many = notebook(*[markdown(f"cell number {i}") for i in range(1100)])
    drive.dav("alice", "PUT", "long.ipynb", content=many)
    with signed_in(drive, "alice") as (browser, _):
        r = browser.get(f"{drive.base}/preview/render", params={"path": "long.ipynb"})
        assert r.status_code == 200
        assert "shows the first 1,000 of 1,100 cells" in r.text
        assert "cell number 999" in r.text and "cell number 1000" not in r.text


def test_each_kind_of_file_shows_what_it_can_escaped(drive):
    files = {
        "table.csv": b"name,score\n<script>x</script>,1\nbob,2\n",
        "notes.txt": b"plain <b>text</b> & more\n",
        "readme.md": b"# Title\n\nsome *words* <script>window.scripted = 1</script>\n",
        "plot.svg": b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
        "paper.pdf": b"%PDF-1.4\n",
        "blob.bin": b"\x00\x01\x02binary",
    }
    assert drive.dav("alice", "MKCOL", "kinds").status_code == 201
    for name, data in files.items():
        assert drive.dav("alice", "PUT", f"kinds/{name}", content=data).status_code == 201
    with signed_in(drive, "alice") as (browser, _):

        def page(name: str) -> str:
            r = browser.get(f"{drive.base}/preview", params={"path": f"kinds/{name}"})
            assert r.status_code == 200, name
            return r.text

        csv_page = page("table.csv")
        assert "<th scope='col'>name</th>" in csv_page
        assert "<td>&lt;script&gt;x&lt;/script&gt;</td>" in csv_page
        assert "plain &lt;b&gt;text&lt;/b&gt; &amp; more" in page("notes.txt")
        assert "<iframe class='rendered'" in page("readme.md")
        md = browser.get(f"{drive.base}/preview/render", params={"path": "kinds/readme.md"})
        assert "<em>words</em>" in md.text and "<script" not in md.text
        svg = page("plot.svg")
        assert (
            "<img class='shown' src='/services/drive/remote.php/dav/files/alice/kinds/plot.svg'"
            in svg
        )
        assert "<svg" not in svg
        assert "PDF files are not shown" in page("paper.pdf")
        other = page("blob.bin")
        assert "no preview for this kind of file" in other and "Download" in other
        # a folder's preview is the folder; nothing there is a 404 with a sentence
        folder = browser.get(f"{drive.base}/preview", params={"path": "kinds"})
        assert folder.status_code == 200 and "table.csv" in folder.text
        missing = browser.get(f"{drive.base}/preview", params={"path": "kinds/nothing.ipynb"})
        assert missing.status_code == 404


def test_a_link_planted_in_a_space_is_not_followed_by_a_preview(drive):
    drive.dav("bob", "PUT", "private.ipynb", content=notebook(markdown("bob's secret")))
    space = drive.space("alice")
    (space / "planted.ipynb").symlink_to(drive.space("bob") / "private.ipynb")
    (space / "planted-dir").symlink_to(drive.space("bob"))
    with signed_in(drive, "alice") as (browser, page):
        assert "planted" not in page.text
        for path in ("planted.ipynb", "planted-dir/private.ipynb"):
            for url in (f"{drive.base}/preview", f"{drive.base}/preview/render"):
                r = browser.get(url, params={"path": path})
                assert r.status_code == 404, (url, path)
                assert "secret" not in r.text


def test_public_links_preview_their_files_for_anyone(drive):
    drive.dav("alice", "MKCOL", "course")
    drive.dav("alice", "MKCOL", "course/data")
    drive.dav("alice", "PUT", "course/lesson.ipynb", content=notebook(markdown("the *lesson*")))
    drive.dav("alice", "PUT", "course/data/points.csv", content=b"x,y\n1,2\n")
    (drive.space("alice") / "course" / "escape.ipynb").symlink_to(
        drive.space("bob") / "private.ipynb"
    )
    folder = ocs_share(drive, "alice", path="course", shareType="3")
    anyone = httpx.Client(timeout=60)
    page = anyone.get(folder["url"])
    assert page.status_code == 200
    assert "href='?path=lesson.ipynb'" in page.text and "href='?path=data'" in page.text
    assert "escape.ipynb" not in page.text
    opened = re.search(r"<a class='open' href='([^']*)'>Open in SWAN", page.text)[1]
    query = parse_qs(urlsplit(opened.replace("&amp;", "&")).query)
    assert query == {"url": [folder["url"]]}

    lesson = anyone.get(folder["url"], params={"path": "lesson.ipynb"})
    assert lesson.status_code == 200 and "Open in SWAN" in lesson.text
    assert "Shared by alice" in lesson.text
    opened = re.search(r"<a class='open' href='([^']*)'>", lesson.text)[1].replace("&amp;", "&")
    assert opened.startswith("/hub/user-redirect/swan/open?")
    assert parse_qs(urlsplit(opened).query) == {"url": [folder["url"]], "open": ["lesson.ipynb"]}
    rendered = anyone.get(f"{folder['url']}/render", params={"path": "lesson.ipynb"})
    assert rendered.status_code == 200 and "<em>lesson</em>" in rendered.text
    assert rendered.headers["content-security-policy"].startswith("sandbox;")

    sub = anyone.get(folder["url"], params={"path": "data"})
    assert "href='?path=data%2Fpoints.csv'" in sub.text
    csv_page = anyone.get(folder["url"], params={"path": "data/points.csv"})
    assert "<th scope='col'>x</th>" in csv_page.text
    got = anyone.get(f"{folder['url']}/download", params={"path": "data/points.csv"})
    assert got.content == b"x,y\n1,2\n" and got.headers["content-disposition"].startswith(
        "attachment"
    )
    for path in ("escape.ipynb", "../course", "data/../lesson.ipynb"):
        for sub_path in ("", "/render", "/raw", "/download"):
            r = anyone.get(f"{folder['url']}{sub_path}", params={"path": path})
            assert r.status_code in (400, 404), (path, sub_path, r.status_code)
            assert "secret" not in r.text

    drive.dav("alice", "PUT", "logo.svg", content=b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    image = ocs_share(drive, "alice", path="/logo.svg", shareType="3")
    page = anyone.get(image["url"])
    assert f"<img class='shown' src='/services/drive/s/{image['token']}/raw'" in page.text
    raw = anyone.get(f"{image['url']}/raw")
    assert raw.headers["content-type"] == "image/svg+xml"
    assert raw.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in raw.headers["content-security-policy"]


def test_a_password_link_previews_nothing_before_its_password(drive):
    drive.dav("alice", "PUT", "exam-prev.ipynb", content=notebook(markdown("the answers")))
    link = ocs_share(drive, "alice", path="/exam-prev.ipynb", shareType="3", password="Pass-4-exam")
    for sub in ("", "/render", "/raw"):
        r = httpx.get(f"{link['url']}{sub}")
        assert r.status_code in (401, 404) and "answers" not in r.text
    browser = httpx.Client(timeout=60)
    opened = send_password_form(browser, link["url"], "Pass-4-exam", follow_redirects=True)
    assert opened.status_code == 200 and "<iframe class='rendered'" in opened.text
    assert "the answers" in browser.get(f"{link['url']}/render").text


def test_outputs_past_the_limits_are_left_out_and_html_past_its_budget_shows_as_text():
    nbformat = pytest.importorskip("nbformat")
    from swan_hub.drive.render import Limits, cut_to_limits

    many = notebook(
        code("t", display({"text/html": "<b>x</b>" * 100, "text/plain": "the plain form"})),
        code("x", *[display({"text/plain": "y" * 1000}) for _ in range(10)]),
        code("w", display({"application/vnd.jupyter.widget-view+json": {"model_id": "1"}})),
    )
    parsed = nbformat.from_dict(json.loads(many))
    notices = cut_to_limits(parsed, Limits(output_bytes=5000, html_bytes=100))
    table, first, widget = parsed.cells
    assert len(first.outputs) == 4  # about 1,100 bytes each in JSON
    assert table.outputs[0]["data"] == {"text/plain": "the plain form"}
    assert widget.outputs == []
    assert "leaves out 6 outputs past the first 0 MB" in notices[0]
    assert "shows 1 cells or outputs as plain text" in notices[1]
    assert "Download the notebook" in notices[-1]


def test_sanitised_html_keeps_text_tables_and_inline_images_only():
    pytest.importorskip("bleach")
    from swan_hub.drive.render import clean_html

    png = "data:image/png;base64,iVBORw0KGgo="
    cleaned = clean_html(
        f"<h2>Fit</h2><table><tr><th>a</th></tr></table><img src='{png}' alt='plot'>"
        "<img src='https://tracker.example/pixel.png'><img src='data:image/svg+xml,<svg/>'>"
        "<a href='javascript:alert(1)'>x</a><a href='https://cern.ch'>CERN</a>"
        "<style>body{}</style><form action='/hub'><input></form><p onclick='f()'>p</p>"
    )
    assert "<h2>Fit</h2>" in cleaned and "<th>a</th>" in cleaned
    assert f'<img src="{png}" alt="plot">' in cleaned
    assert "tracker.example" not in cleaned and "svg+xml" not in cleaned
    assert "javascript:" not in cleaned and '<a href="https://cern.ch">CERN</a>' in cleaned
    assert "<style" not in cleaned and "<form" not in cleaned and "onclick" not in cleaned


def renderer_pids(drive) -> list[int]:
    """The renderer processes of this test's drive (children of its service process)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
            parent_cmdline = Path(f"/proc/{parent}/cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, IndexError):
            continue
        if "swan_hub.drive.render" in cmdline and str(drive.swan.data).encode() in parent_cmdline:
            found.append(int(pid))
    return found


def test_a_renderer_that_died_is_started_again_for_the_next_preview(drive):
    drive.dav("alice", "PUT", "after.ipynb", content=notebook(markdown("rendered *again*")))
    with signed_in(drive, "alice") as (browser, _):
        (pid,) = renderer_pids(drive)  # started by the first page
        os.kill(pid, signal.SIGKILL)
        r = browser.get(f"{drive.base}/preview/render", params={"path": "after.ipynb"})
        assert r.status_code == 200 and "<em>again</em>" in r.text
    assert len(renderer_pids(drive)) == 1 and renderer_pids(drive) != [pid]
