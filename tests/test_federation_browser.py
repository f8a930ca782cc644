"""A class shared between two SWAN sites, in a real browser: two `swan up` on two ports of
127.0.0.1, trusted to each other (`--ocm-peer`), Debian's Chromium driven by Playwright, one
browser context per person. The teacher at site A shares a folder with the student at site B in
the share dialog; the student views it at site A ("View at" in Shared with me), accepts it,
opens and runs the notebook in their own JupyterLab and saves; the teacher sees the
change at A; revoked, the share is gone at B and the student's next save says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from harness.lab_browser import (
    add_to_the_cell_and_save,
    chromium_browser,
    eventually,
    needs_chromium,
    notebook_json,
    open_lab,
    share_dialog_of,
)
from harness.swan import SWAN_UP_MARKS, Swan, log_in, start_server, start_swan, user_api

from swan_hub.cli import free_port

pytest.importorskip("playwright.sync_api")
pytestmark = [*SWAN_UP_MARKS, needs_chromium]

TEACHER_WROTE = "print('the teacher wrote this')"
NO_NEWS = {"raw": json.dumps({"fetchNews": "false"})}


class Sites:
    def __init__(self, a: Swan, b: Swan, provider_a: str, provider_b: str):
        self.a, self.b = a, b
        self.provider_a, self.provider_b = provider_a, provider_b


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> Iterator[Sites]:
    """Site A with teacher alice, site B with student bob, each one's server running; alice's
    space holds the course folder."""
    port_a, port_b = free_port(), free_port()
    started: list[Swan] = []
    try:
        for name, port, peer, user in (
            ("a", port_a, port_b, "alice"),
            ("b", port_b, port_a, "bob"),
        ):
            workdir = tmp_path_factory.mktemp(f"federated-{name}")
            swan = start_swan(workdir, "--ocm-peer", f"127.0.0.1:{peer}", users=user, port=port)
            started.append(swan)
            log_in(swan, user)
            start_server(swan, user)
            settings = f"{user}/lab/api/settings/@jupyterlab/apputils-extension:notification"
            assert user_api(swan, user, "PUT", settings, json=NO_NEWS).status_code == 204
        course = started[0].data / "users" / "alice" / "course"
        course.mkdir(parents=True)
        (course / "intro.ipynb").write_text(json.dumps(notebook_json(TEACHER_WROTE)))
        yield Sites(started[0], started[1], f"127.0.0.1:{port_a}", f"127.0.0.1:{port_b}")
    finally:
        for swan in started:
            swan.kill_everything()


@pytest.fixture
def browser():
    with chromium_browser() as opened:
        yield opened


def source_at_a(sites: Sites) -> str:
    """The first cell of the course notebook as the teacher's server reads it at site A."""
    r = user_api(sites.a, "alice", "GET", "alice/api/contents/course/intro.ipynb")
    assert r.status_code == 200, r.text
    source = r.json()["content"]["cells"][0]["source"]
    return "".join(source) if isinstance(source, list) else source


def test_a_teacher_shares_a_folder_with_a_student_of_another_site_who_runs_and_saves_it(
    sites, browser
):
    student_address = f"bob@{sites.provider_b}"
    teacher = open_lab(browser, sites.a, "alice")
    dialog = share_dialog_of(teacher, "course")
    dialog.locator(".swan-ShareDialog-search").press_sequentially(student_address, delay=30)
    found = dialog.locator(".swan-ShareDialog-sharee", has_text=student_address)
    assert "person on another site" in found.inner_text()
    found.click()
    dialog.get_by_label("Rights of the new share").select_option("edit")
    dialog.get_by_role("button", name="Share", exact=True).click()
    row = dialog.locator(".swan-ShareDialog-share", has_text=student_address)
    row.wait_for()
    assert "person on another site" in row.inner_text()
    assert row.locator("select").input_value() == "edit"
    teacher.get_by_role("button", name="Done").click()

    student = open_lab(browser, sites.b, "bob")
    student.locator('.lm-TabBar-tab[data-id="swan-shared-with-me"]').click()
    panel = student.locator(".swan-SharedWithMe")
    share = panel.locator(".swan-SharedWithMe-share", has_text="course")
    assert f"from alice@{sites.provider_a}" in share.inner_text()
    # the teacher's site offers a view-only page of the share: a new tab, told nothing of this one
    view = share.get_by_role("link", name=f"View at {sites.provider_a}")
    assert (view.get_attribute("target"), view.get_attribute("rel")) == (
        "_blank",
        "noopener noreferrer",
    )
    with student.context.expect_page() as opened:
        view.click()
    shown = opened.value
    shown.get_by_role("link", name="intro.ipynb").click()
    shown.frame_locator("iframe.rendered").get_by_text("the teacher wrote this").wait_for()
    assert shown.evaluate("window.opener") is None
    shown.close()
    share.get_by_role("button", name="Accept").click()
    share.get_by_role("button", name="Open").click()
    student.locator(".jp-BreadCrumbs", has_text="course").wait_for()
    student.locator(".jp-DirListing-item", has_text="intro.ipynb").dblclick()
    notebook = student.locator(".jp-NotebookPanel:visible")
    notebook.locator(".jp-Cell", has_text="the teacher wrote this").wait_for()

    # run in the student's own kernel at site B, once the notebook's session has it: the
    # toolbar's indicator says idle before that, and a cell run then runs nothing
    student.locator("#jp-main-statusbar", has_text="(ipykernel) | Idle").wait_for(timeout=90_000)
    notebook.locator(".jp-Cell .cm-content").first.click()
    student.keyboard.press("Shift+Enter")
    output = notebook.locator(".jp-OutputArea-output", has_text="the teacher wrote this")
    output.wait_for(timeout=60_000)

    add_to_the_cell_and_save(notebook, "  # the student's answer")
    eventually(lambda: "the student's answer" in source_at_a(sites))

    # revoked at A: gone from the student's panel, and the open notebook's save says why
    dialog = share_dialog_of(teacher, "course")
    dialog.locator(".swan-ShareDialog-share", has_text=student_address).get_by_role(
        "button", name="Revoke"
    ).click()
    teacher.locator(".swan-ShareDialog-status", has_text="no longer has access").wait_for()

    add_to_the_cell_and_save(notebook, " # after")
    student.get_by_text("this share was removed by alice@").first.wait_for()
    student.keyboard.press("Escape")
    student.locator('.lm-TabBar-tab[data-id="swan-shared-with-me"]').click()
    panel.get_by_role("button", name="Refresh").click()
    eventually(lambda: share.count() == 0)
    gone = user_api(sites.b, "bob", "GET", "bob/api/contents/Shared/course/intro.ipynb")
    assert gone.status_code == 404
    assert "after" not in source_at_a(sites)
