"""Where the time of a listing and of a notebook save goes, layer by layer, timed in this process
(with jupyter-server imported, so the heap the garbage collector scans is a server's).

- listing 1,000 entries: the PROPFIND answers of real WsgiDAV and Apache servers, parsed into
  entries (XML, hrefs, etags, dates), turned into models, and encoded by Jupyter's handler;
- saving 1 MB and 10 MB notebooks: Jupyter's handler decoding the body, then what every contents
  manager does (sign into the trust database, validate, serialize; ours against nbformat's
  serializer too) and what ours adds (keep a version); and reading the notebook back, ours against
  nbformat.reads. Each layer is printed with its share of the whole.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import hashlib
import json
import sys
import time
from pathlib import Path

import httpx
import jupyter_server.serverapp  # noqa: F401 - a server's heap, as the collector sees it there
import nbformat
from jupyter_client.jsonutil import json_default
from nbformat.v4.rwbase import split_lines

sys.path.insert(0, str(Path(__file__).resolve().parent))
import webdav  # noqa: E402

from swan_contents import SwanContentsManager  # noqa: E402
from swan_contents.notebook_json import notebook_bytes, read_notebook  # noqa: E402
from swan_contents.storage import WebDAVStorage  # noqa: E402
from swan_contents.storage.webdav.multistatus import parse_xml  # noqa: E402


def ms(fn, rounds: int = 15) -> float:
    """Median ms of `fn`, after one warm-up call."""
    fn()
    return webdav.median_ms(fn, rounds)


def table(title: str, rows: dict[str, float]) -> None:
    total = sum(rows.values())
    print(f"\n== {title} (median ms, share of the sum)")
    for label, value in rows.items():
        print(f"  {label:<58} {value:8.2f} ms {value / total:6.1%}")
    print(f"  {'sum':<58} {total:8.2f} ms")


def listing_layers(name: str, answer: bytes, url: str, cm: SwanContentsManager) -> None:
    storage = WebDAVStorage(url=url)
    entries = storage.parse_multistatus(answer, "")
    own, children = entries[0], entries[1:]
    listed = cm._listed_names()
    model = cm._model(own)
    model["content"] = [cm._model(c) for c in children]
    rows = {
        "XML parse (ElementTree, collector on)": ms(lambda: parse_xml(answer)),
        "XML parse + entries (ours, collector paused)": ms(
            lambda: storage.parse_multistatus(answer, "")
        ),
        "models (ours)": ms(lambda: [cm._model(c) for c in children if listed(c.name)]),
        "json.dumps of the models (Jupyter's handler)": ms(
            lambda: json.dumps(model, default=json_default)
        ),
    }
    parse = rows.pop("XML parse (ElementTree, collector on)")
    table(
        f"Listing 1,000 entries, {name} ({len(answer) // 1024} KiB of XML; "
        f"the parse alone with the collector on: {parse:.2f} ms)",
        rows,
    )


def save_layers(size: int, cm: SwanContentsManager) -> None:
    body = json.dumps(webdav.save_model(size)).encode()
    content = json.loads(body)["content"]
    nb = nbformat.from_dict(content)
    data = notebook_bytes(nb)
    versions = cm.local_versions

    def keep_version() -> None:
        asyncio.run(versions._record("nb.ipynb", data + str(time.perf_counter()).encode()))

    def stock_bytes() -> bytes:
        return (nbformat.writes(nb, version=nbformat.NO_CONVERT) + "\n").encode("utf-8")

    ours = ms(lambda: notebook_bytes(nb), 5)
    rows = {
        "decode the request body (Jupyter's handler: json.loads)": ms(
            lambda: json.loads(body.strip().decode("utf-8")), 5
        ),
        "sign into the trust database (ours: its commit beside the PUT)": ms(
            lambda: cm.check_and_sign(nb), 5
        ),
        "the file's bytes (ours: validate, split, serialize, UTF-8)": ours,
        "keep a version (ours: sha256 + copy, after the answer)": ms(keep_version, 5),
    }
    table(f"Saving a {size // webdav.MIB} MB notebook, before its PUT", rows)
    stock = ms(stock_bytes, 5)
    print(
        f"  (the same bytes from nbformat.writes, as the stock manager makes them: {stock:.2f} ms,"
        f" {stock / ours:.1f}x ours; of which validating {ms(lambda: nbformat.validate(nb), 5):.2f}"
        f" ms, copying and splitting into lines {ms(lambda: split_lines(copy.deepcopy(nb)), 5):.2f}"
        " ms)"
    )
    text = data.decode("utf-8")
    read_ours = ms(lambda: read_notebook(text), 5)
    read_stock = ms(lambda: nbformat.reads(text, as_version=4), 5)
    print(
        f"  (opening it, the notebook from the stored text: ours {read_ours:.2f} ms, nbformat.reads"
        f" {read_stock:.2f} ms, {read_stock / read_ours:.1f}x ours)"
    )


def main() -> None:
    with webdav.servers_running("swan-bench-layers-") as servers:
        space = webdav.scratch()
        cm = SwanContentsManager(root_dir=str(space), versions_dir=str(webdav.scratch()))
        gc.collect()
        for name, server in servers.items():
            local, url = server.folder("listing")
            webdav.fill(local, 1000)
            body = WebDAVStorage(url=url).propfind_body
            answer = httpx.request("PROPFIND", url, headers={"Depth": "1"}, content=body).content
            listing_layers(name, answer, url, cm)
        for size in (webdav.MIB, 10 * webdav.MIB):
            save_layers(size, cm)
        print(
            "\n  (sha256 of the 10 MB alone: "
            f"{ms(lambda: hashlib.sha256(b'x' * 10 * webdav.MIB).digest(), 5):.2f} ms)"
        )


if __name__ == "__main__":
    main()
