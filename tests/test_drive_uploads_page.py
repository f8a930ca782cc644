"""Uploads on the drive page, through `swan up` (real hub, proxy and drive on 127.0.0.1), in
Debian's Chromium: files and a folder dropped on the Files view or onto a folder's row, a large
file sent in parts (Nextcloud chunking v2) that survives a refused part and a reload without
sending again what the drive holds (also after the drive was killed and started again by
the hub), a cancel that leaves nothing behind, and a taken name that
asks before anything is replaced; the file that was there stays intact on every failure.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from harness.drive import answering_drive, running_drive
from harness.lab_browser import chromium_browser, fill_hub_login, needs_chromium, person
from harness.swan import SWAN_UP_MARKS, _processes

pytestmark = [*SWAN_UP_MARKS, needs_chromium]

MiB = 1 << 20
PART = 8 * MiB  # the page's part size
BIG = 25 * MiB  # four parts: 8 + 8 + 8 + 1 MiB

DROP = """([names, rowPath]) => {
  const data = new DataTransfer();
  for (const name of names) data.items.add(new File(["dropped " + name], name));
  const target = rowPath
    ? document.querySelector(`tr[data-path="${rowPath}"] td a`)
    : document.querySelector("#drive div.table");
  for (const type of ["dragenter", "dragover", "drop"]) {
    const event = { dataTransfer: data, bubbles: true, cancelable: true };
    target.dispatchEvent(new DragEvent(type, event));
  }
}"""


#: a folder dropped as Chromium hands one over: a directory entry whose reader gives its
#: entries in batches, then an empty one (a synthetic DataTransfer cannot hold folders)
DROP_FOLDER = """(tree) => {
  const entry = (name, content) =>
    typeof content === "string"
      ? { isFile: true, isDirectory: false, name, file: (ok) => ok(new File([content], name)) }
      : {
          isFile: false, isDirectory: true, name,
          createReader() {
            const batches = [Object.entries(content).map(([n, c]) => entry(n, c)), []];
            return { readEntries: (ok) => ok(batches.shift()) };
          },
        };
  const [name, content] = Object.entries(tree)[0];
  const item = { kind: "file", webkitGetAsEntry: () => entry(name, content) };
  const data = { types: ["Files"], items: [item], files: [] };
  const target = document.querySelector("#drive div.table");
  for (const type of ["dragover", "drop"]) {
    const event = new DragEvent(type, { bubbles: true, cancelable: true });
    Object.defineProperty(event, "dataTransfer", { value: data });
    target.dispatchEvent(event);
  }
}"""


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    with running_drive(tmp_path_factory.mktemp("uploads-page")) as drive:
        yield drive


@pytest.fixture
def page(drive):
    pytest.importorskip("playwright.sync_api")
    (drive.space("alice") / "up").mkdir(parents=True, exist_ok=True)
    with chromium_browser() as browser:
        page = person(browser)
        page.goto(f"{drive.base}/?dir=up")
        fill_hub_login(page, "alice", drive.swan.passwords()["alice"])
        page.get_by_role("button", name="Upload").wait_for()
        yield page


def uploads_held(drive) -> list[str]:
    """The upload folders alice's uploads area holds on the drive's disk."""
    area = drive.swan.data / "drive" / "uploads" / "alice"
    return sorted(p.name for p in area.iterdir()) if area.exists() else []


def count_parts(page) -> Counter:
    """Counts the requests of uploads in parts the page sends, by method and part name."""
    sent: Counter = Counter()

    def seen(request):
        if "/remote.php/dav/uploads/" in request.url:
            sent[(request.method, request.url.rsplit("/", 1)[1])] += 1

    page.on("request", seen)
    return sent


def choose_and_upload(page, path: Path) -> None:
    page.get_by_label("Choose files").set_input_files(str(path))
    page.get_by_role("button", name="Upload", exact=True).click()


def test_files_dropped_on_the_page_or_a_folder_row_upload_there(drive, page):
    space = drive.space("alice") / "up"
    (space / "inbox").mkdir()
    page.reload()
    status = page.get_by_role("status")
    page.evaluate(DROP, [["a.txt", "b.txt", "c.txt"], None])
    status.filter(has_text="Uploaded 3 files.").wait_for()
    for name in ("a.txt", "b.txt", "c.txt"):
        assert (space / name).read_bytes() == f"dropped {name}".encode()
        page.get_by_role("link", name=name, exact=True).wait_for()
    page.evaluate(DROP, [["d.txt"], "up/inbox"])
    status.filter(has_text="Uploaded 1 file.").wait_for()
    assert (space / "inbox" / "d.txt").read_bytes() == b"dropped d.txt"
    assert not (space / "d.txt").exists()

    # a dropped folder comes with what is in it, its folders made on the way
    page.evaluate(DROP_FOLDER, {"run": {"log.txt": "log", "plots": {"a.csv": "1,2"}}})
    status.filter(has_text="Uploaded 2 files.").wait_for()
    assert (space / "run" / "log.txt").read_bytes() == b"log"
    assert (space / "run" / "plots" / "a.csv").read_bytes() == b"1,2"

    # a taken name asks; Skip keeps it, Keep both adds a name, Replace replaces
    for choice, expected in (("Skip", None), ("Keep both", "a (2).txt"), ("Replace", "a.txt")):
        (space / "a.txt").write_bytes(b"the old a")
        page.evaluate(DROP, [["a.txt"], None])
        page.get_by_role("dialog").get_by_role("button", name=choice).click()
        said = "Uploaded 1 file." if expected else "Uploaded 0 of 1 file"
        status.filter(has_text=said).wait_for()
        if expected == "a (2).txt":
            assert (space / "a.txt").read_bytes() == b"the old a"
        if expected:
            assert (space / expected).read_bytes() == b"dropped a.txt"
        else:
            assert (space / "a.txt").read_bytes() == b"the old a"
            assert "skipped" in page.locator("ul#uploads").inner_text()


def test_a_large_file_goes_in_parts_and_a_refused_part_is_sent_again_alone(drive, page, tmp_path):
    space = drive.space("alice") / "up"
    data = os.urandom(BIG)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    sent = count_parts(page)
    refused: list[str] = []

    def refuse_once(route):
        if route.request.method == "PUT" and route.request.url.endswith("/00002") and not refused:
            refused.append(route.request.url)
            route.fulfill(status=503, body="restarting")
        else:
            route.continue_()

    page.route("**/remote.php/dav/uploads/**", refuse_once)
    choose_and_upload(page, source)
    page.get_by_role("status").filter(has_text="Uploaded 1 file.").wait_for(timeout=60_000)
    assert (space / "big.bin").read_bytes() == data
    puts = {name: n for (method, name), n in sent.items() if method == "PUT"}
    assert puts == {"00001": 1, "00002": 2, "00003": 1, "00004": 1}
    assert sent[("MOVE", ".file")] == 1 and refused
    assert uploads_held(drive) == []
    assert page.get_by_role("progressbar", name="Upload of big.bin").evaluate(
        "bar => bar.value === bar.max"
    )


def test_an_upload_cut_off_by_a_reload_resumes_from_the_parts_the_drive_holds(
    drive, page, tmp_path
):
    space = drive.space("alice") / "up"
    old = b"the file before"
    (space / "resumed.bin").write_bytes(old)
    data = os.urandom(BIG)
    source = tmp_path / "resumed.bin"
    source.write_bytes(data)

    # the third part never gets through: the page retries, then the user reloads
    page.route(
        "**/remote.php/dav/uploads/**",
        lambda route: route.abort() if route.request.url.endswith("/00003") else route.continue_(),
    )
    choose_and_upload(page, source)
    page.get_by_role("dialog").get_by_role("button", name="Replace").click()
    page.locator("ul#uploads").filter(has_text="trying again").wait_for(timeout=60_000)
    assert (space / "resumed.bin").read_bytes() == old
    page.unroute("**/remote.php/dav/uploads/**")
    page.reload()
    assert len(uploads_held(drive)) == 1

    sent = count_parts(page)
    choose_and_upload(page, source)
    page.get_by_role("dialog").get_by_role("button", name="Replace").click()
    page.get_by_role("status").filter(has_text="Uploaded 1 file.").wait_for(timeout=60_000)
    assert (space / "resumed.bin").read_bytes() == data
    puts = {name: n for (method, name), n in sent.items() if method == "PUT"}
    assert puts == {"00003": 1, "00004": 1}
    assert not any(method == "MKCOL" for method, _ in sent)
    assert uploads_held(drive) == []
    assert page.evaluate("Object.keys(localStorage).length") == 0


def test_cancel_deletes_the_parts_and_leaves_the_old_file(drive, page, tmp_path):
    space = drive.space("alice") / "up"
    (space / "kept.bin").write_bytes(b"keep me")
    source = tmp_path / "kept.bin"
    source.write_bytes(os.urandom(BIG))
    page.route(
        "**/remote.php/dav/uploads/**",
        lambda route: (
            route.fulfill(status=502) if route.request.url.endswith("/00002") else route.continue_()
        ),
    )
    choose_and_upload(page, source)
    page.get_by_role("dialog").get_by_role("button", name="Replace").click()
    page.locator("ul#uploads").filter(has_text="trying again").wait_for(timeout=60_000)
    assert len(uploads_held(drive)) == 1
    page.get_by_role("button", name="Cancel the upload of kept.bin").click()
    page.locator("ul#uploads").filter(has_text="cancelled").wait_for()
    page.get_by_role("status").filter(has_text="Uploaded 0 of 1 file").wait_for()
    assert uploads_held(drive) == []
    assert (space / "kept.bin").read_bytes() == b"keep me"
    assert page.evaluate("Object.keys(localStorage).length") == 0


def test_a_file_made_meanwhile_is_not_replaced_by_the_upload_in_parts(drive, page, tmp_path):
    space = drive.space("alice") / "up"
    source = tmp_path / "raced.bin"
    source.write_bytes(os.urandom(BIG))

    def someone_else_first(route):
        # another client writes the same name before the page publishes its parts
        if route.request.method == "MOVE":
            (space / "raced.bin").write_bytes(b"theirs")
        route.continue_()

    page.route("**/remote.php/dav/uploads/**", someone_else_first)
    choose_and_upload(page, source)
    page.get_by_role("status").filter(has_text="Uploaded 0 of 1 file").wait_for(timeout=60_000)
    assert "changed or made by someone else" in page.locator("ul#uploads").inner_text()
    assert (space / "raced.bin").read_bytes() == b"theirs"
    assert uploads_held(drive) == []


def test_a_publish_whose_answer_is_lost_is_not_reported_as_a_failed_upload(drive, page, tmp_path):
    space = drive.space("alice") / "up"
    data = os.urandom(BIG)
    source = tmp_path / "lost.bin"
    source.write_bytes(data)
    lost: list[int] = []

    def lose_the_answer(route):
        # the drive publishes the file, but its answer never reaches the page
        if route.request.method == "MOVE" and not lost:
            lost.append(route.fetch().status)
            route.abort()
        else:
            route.continue_()

    page.route("**/remote.php/dav/uploads/**", lose_the_answer)
    choose_and_upload(page, source)
    page.get_by_role("status").filter(has_text="Uploaded 0 of 1 file").wait_for(timeout=60_000)
    assert lost and 200 <= lost[0] < 300
    assert "it is probably there" in page.locator("ul#uploads").inner_text()
    assert (space / "lost.bin").read_bytes() == data
    page.get_by_role("link", name="lost.bin", exact=True).wait_for()
    assert uploads_held(drive) == []
    assert page.evaluate("Object.keys(localStorage).length") == 0


def drive_processes(drive) -> list[int]:
    """The pids of this `swan up`'s drive process (the hub's managed service)."""
    data = f"--data-dir={drive.swan.data}"
    return [
        pid
        for pid, (_, state, command) in _processes().items()
        if f"swan_hub.stoppable swan_hub.drive {data}" in command and state != "Z"
    ]


def test_a_drive_killed_mid_upload_is_started_again_and_the_upload_resumes(drive, page, tmp_path):
    space = drive.space("alice") / "up"
    data = os.urandom(BIG)
    source = tmp_path / "killed.bin"
    source.write_bytes(data)
    [before] = drive_processes(drive)
    killed: list[int] = []

    def kill_the_drive(route):
        # the drive dies as the third part is on its way: the part never arrives
        if route.request.url.endswith("/00003") and not killed:
            os.kill(before, signal.SIGKILL)
            killed.append(before)
        route.continue_()

    page.route("**/remote.php/dav/uploads/**", kill_the_drive)
    choose_and_upload(page, source)
    page.locator("ul#uploads").filter(has_text="trying again").wait_for(timeout=60_000)
    page.unroute("**/remote.php/dav/uploads/**")
    assert killed and not (space / "killed.bin").exists()

    # the hub starts its drive again (it looks at its services every 30 s or so) ...
    deadline = time.monotonic() + 120
    while not (drive_processes(drive) and drive_processes(drive) != [before]):
        assert time.monotonic() < deadline, "the hub did not start the drive again"
        time.sleep(0.5)
    answering_drive(drive.swan)
    # ... and the upload, chosen again after a reload, sends only what the drive lacks
    page.reload()
    page.get_by_role("button", name="Upload").wait_for()
    sent = count_parts(page)
    choose_and_upload(page, source)
    page.get_by_role("status").filter(has_text="Uploaded 1 file.").wait_for(timeout=60_000)
    assert (space / "killed.bin").read_bytes() == data
    puts = {name for (method, name), _ in sent.items() if method == "PUT"}
    assert "00001" not in puts and "00002" not in puts
    assert uploads_held(drive) == []
