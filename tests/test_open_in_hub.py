"""Open in SWAN end to end through `swan up`: the real JupyterHub, configurable-http-proxy and
single-user servers. A client with the login cookie follows links exactly as a browser does:
/hub/user-redirect logs in, spawns the server when it is stopped, and lands in the notebook."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
import pytest
from harness.lab_browser import CHROMIUM, CHROMIUM_ARGS
from harness.open_servers import GitHttpServer, SourceServer, UpstreamRepository, reply
from harness.swan import SPAWN_TIMEOUT, Swan, log_in, start_swan

pytestmark = [pytest.mark.hub]

SOURCE = "127.0.0.2"
# The users' servers read this config (through JUPYTER_CONFIG_PATH): the local sources are
# allowed there, and nowhere else.
SERVER_CONFIG = {
    "SwanOpenIn": {
        "allowed_hosts": [SOURCE],
        "allowed_schemes": ["https", "http"],
        "allowed_networks": [f"{SOURCE}/32"],
    }
}
ADMIN_CONFIG = "c.Spawner.environment = {{'JUPYTER_CONFIG_PATH': {config_dir!r}}}\n"


def notebook(source: str, padding: int = 0) -> str:
    cell = {
        "cell_type": "code",
        "execution_count": None,
        "id": "c1",
        "metadata": {"padding": "x" * padding} if padding else {},
        "outputs": [],
        "source": source,
    }
    doc = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(doc, indent=1) + "\n"


def browser_login(swan: Swan, name: str) -> httpx.Client:
    """A client holding the hub's login cookie, logged in through the login form."""
    client = httpx.Client(base_url=swan.url, timeout=60, follow_redirects=True)
    form = client.get("/hub/login").text
    xsrf = re.search(r'name="_xsrf"\s+value="([^"]+)"', form)
    data = {"username": name, "password": swan.passwords()[name]}
    if xsrf:
        data["_xsrf"] = xsrf.group(1)
    r = client.post("/hub/login", data=data)
    assert r.status_code == 200 and "/hub/login" not in str(r.url), r.text[-2000:]
    return client


def follow_link(client: httpx.Client, link: str, until: str) -> httpx.Response:
    """Follow ``link`` like a browser, waiting on the spawn page until ``until`` is reached."""
    deadline = time.monotonic() + SPAWN_TIMEOUT
    r = client.get(link)
    while until not in r.url.path:
        assert time.monotonic() < deadline, f"stuck at {r.url}: {r.text[-1000:]}"
        assert r.status_code == 200, (r.url, r.status_code, r.text[-2000:])
        time.sleep(0.5)
        # The spawn-pending page sends the browser on to `next` once the server is ready.
        r = client.get(r.url)
    return r


def confirm(client: httpx.Client, page: httpx.Response, password: str = "") -> list[dict]:
    """Press "Open" on the confirmation page: POST its parameters with the page's XSRF token
    (and the ``password`` typed into its field)."""
    api = re.search(r'data-api="([^"]+)"', page.text).group(1)
    params = json.loads(
        re.search(r'data-params="([^"]+)"', page.text).group(1).replace("&#34;", '"')
    )
    if password:
        params["password"] = password
    xsrf = re.search(r'data-xsrf="([^"]+)"', page.text).group(1)
    r = client.post(api, json=params, headers={"X-XSRFToken": xsrf})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def swan(tmp_path_factory) -> Iterator[Swan]:
    workdir = tmp_path_factory.mktemp("open-in-hub")
    config_dir = workdir / "server-config"
    config_dir.mkdir()
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(SERVER_CONFIG))
    (workdir / "admin_config.py").write_text(ADMIN_CONFIG.format(config_dir=str(config_dir)))
    swan = start_swan(workdir, "-f", str(workdir / "admin_config.py"))
    try:
        yield swan
    finally:
        swan.kill_everything()


@pytest.fixture(scope="module")
def source() -> Iterator[SourceServer]:
    server = SourceServer(SOURCE)
    yield server
    server.stop()


def servers_of(swan: Swan, name: str) -> dict:
    headers = {"Authorization": f"token {swan.tokens[name]}"}
    return httpx.get(f"{swan.url}/hub/api/users/{name}", headers=headers, timeout=30).json()[
        "servers"
    ]


def test_a_path_link_for_a_stopped_server_spawns_it_and_opens_the_notebook(swan):
    space = swan.data / "users" / "alice"
    space.mkdir(parents=True, exist_ok=True)
    (space / "analysis.ipynb").write_text(notebook("print('mine')"))
    log_in(swan, "alice")
    assert servers_of(swan, "alice") == {}
    client = browser_login(swan, "alice")
    link = "/hub/user-redirect/swan/open?" + urlencode({"path": "analysis.ipynb"})

    landed = follow_link(client, link, until="/lab/tree/")
    assert landed.status_code == 200
    assert landed.url.path == "/user/alice/lab/tree/analysis.ipynb"
    assert servers_of(swan, "alice")[""]["ready"]
    assert (space / "analysis.ipynb").read_text() == notebook("print('mine')")


def test_a_swan_projurl_link_fetches_the_notebook_after_confirmation(swan, source):
    source.routes["/talks/demo.ipynb"] = reply(200, notebook("print('demo')").encode())
    client = browser_login(swan, "alice")
    link = "/hub/user-redirect/download?" + urlencode({"projurl": source.url("/talks/demo.ipynb")})

    page = follow_link(client, link, until="/swan/open")
    assert "Open in SWAN" in page.text and "SWAN_projects/demo/" in page.text
    assert source.requested("/talks/demo.ipynb") == 0  # the page alone fetches nothing

    events = confirm(client, page)
    done = events[-1]
    assert done["event"] == "done", events
    assert done["url"] == "/user/alice/lab/tree/SWAN_projects/demo/demo.ipynb"
    saved = swan.data / "users" / "alice" / "SWAN_projects" / "demo" / "demo.ipynb"
    assert saved.read_text() == notebook("print('demo')")
    assert client.get(done["url"]).status_code == 200


def test_a_post_from_the_browser_without_the_pages_xsrf_token_is_refused(swan, source):
    source.routes["/forged.ipynb"] = reply(200, notebook("forged").encode())
    client = browser_login(swan, "alice")
    link = "/hub/user-redirect/swan/open?" + urlencode({"url": source.url("/forged.ipynb")})
    follow_link(client, link, until="/swan/open")
    r = client.post("/user/alice/swan/api/open", json={"url": source.url("/forged.ipynb")})
    assert r.status_code == 403
    assert source.requested("/forged.ipynb") == 0
    assert not (swan.data / "users" / "alice" / "SWAN_projects" / "forged").exists()


def test_a_git_repository_is_cloned_edited_reopened_and_both_sides_survive(swan, tmp_path):
    git_server = GitHttpServer(tmp_path / "served", SOURCE)
    try:
        upstream = UpstreamRepository(tmp_path, "lecture")
        upstream.commit(
            {
                "lecture.ipynb": notebook("print('lecture v1')"),
                "exercises.py": "def one():\n    return 1\n\n\ndef two():\n    return 2\n",
            }
        )
        client = browser_login(swan, "bob")
        link = "/hub/user-redirect/swan/open?" + urlencode(
            {"url": git_server.url("lecture.git"), "open": "lecture.ipynb"}
        )
        page = follow_link(client, link, until="/swan/open")
        first = confirm(client, page)
        assert first[-1]["event"] == "done", first
        assert first[-1]["url"] == "/user/bob/lab/tree/SWAN_projects/lecture/lecture.ipynb"

        # Bob edits the top of exercises.py through his server's contents API.
        path = "SWAN_projects/lecture/exercises.py"
        xsrf = client.cookies.get("_xsrf", path="/user/bob/") or ""
        r = client.put(
            f"/user/bob/api/contents/{quote(path)}",
            json={
                "type": "file",
                "format": "text",
                "content": "def one():\n    return 'one, my way'\n\n\ndef two():\n    return 2\n",
            },
            headers={"X-XSRFToken": xsrf},
        )
        assert r.status_code in (200, 201), r.text
        upstream.commit(
            {
                "exercises.py": "def one():\n    return 1\n\n\ndef two():\n    return 'two, new'\n",
                "solutions.py": "ANSWER = 42\n",
            }
        )

        again = confirm(client, follow_link(client, link, until="/swan/open"))
        assert again[-1]["event"] == "done", again
        project = swan.data / "users" / "bob" / "SWAN_projects" / "lecture"
        merged = (project / "exercises.py").read_text()
        assert "return 'one, my way'" in merged  # the edit survives
        assert "return 'two, new'" in merged  # and so does the upstream change
        assert (project / "solutions.py").read_text() == "ANSWER = 42\n"
        actions = {e["path"]: e["action"] for e in again if e["event"] == "file"}
        assert actions["exercises.py"] == "merged"
    finally:
        git_server.stop()


def test_the_hub_serves_the_badge_and_the_link_generator(swan, source):
    badge = httpx.get(f"{swan.url}/services/swan-links/badge.svg", timeout=30)
    assert badge.status_code == 200
    assert badge.headers["content-type"].startswith("image/svg+xml")
    assert "Open in SWAN" in badge.text
    page = httpx.get(f"{swan.url}/services/swan-links/", timeout=30)
    assert page.status_code == 200 and 'id="link-form"' in page.text
    made = httpx.get(
        f"{swan.url}/services/swan-links/api/links",
        params={"url": "https://github.com/owner/repo", "kind": "git"},
        timeout=30,
    ).json()
    assert made["link"] == (
        f"{swan.url}/hub/user-redirect/swan/open?url=https%3A%2F%2Fgithub.com%2Fowner%2Frepo&kind=git"
    )
    assert made["markdown"] == f"[![Open in SWAN]({made['badge']})]({made['link']})"


def test_in_a_browser_a_generated_link_is_confirmed_and_lands_in_the_notebook(swan, source):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    source.routes["/browser/walkthrough.ipynb"] = reply(200, notebook("print('hi')").encode())
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{swan.url}/hub/login")
            page.fill("input[name=username]", "alice")
            page.fill("input[name=password]", swan.passwords()["alice"])
            page.click("[type=submit]")
            page.wait_for_url(re.compile(r".*/(hub/(home|spawn)|user/alice/).*"), timeout=60_000)

            page.goto(f"{swan.url}/services/swan-links/")
            page.fill("input[name=url]", source.url("/browser/walkthrough.ipynb"))
            page.click("#make-link")
            page.wait_for_selector("#link-result", state="visible")
            link = page.get_attribute("#link-open", "href")
            assert link.startswith(f"{swan.url}/hub/user-redirect/swan/open?url=")

            page.click("#link-open")
            page.wait_for_selector("#open-confirm", timeout=SPAWN_TIMEOUT * 1000)
            assert "SWAN_projects/walkthrough/" in page.inner_text("#open-folder")
            page.click("#open-confirm")
            page.wait_for_url(
                "**/user/alice/lab/tree/SWAN_projects/walkthrough/walkthrough.ipynb",
                timeout=60_000,
            )
            page.wait_for_selector(".jp-Notebook", timeout=60_000)
        finally:
            browser.close()
    saved = swan.data / "users" / "alice" / "SWAN_projects" / "walkthrough" / "walkthrough.ipynb"
    assert saved.read_text() == notebook("print('hi')")
