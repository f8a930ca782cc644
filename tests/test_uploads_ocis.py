"""Uploads to an oCIS-style storage: checksums the storage verifies and reports, and large
uploads by TUS, resumed when a request breaks off, with the spool and one PUT as the fallback.

No oCIS can run here: `tests/harness/ocis_standin.py` stands in for it (WsgiDAV plus oCIS's
capabilities, `OC-Checksum`, `oc:checksums` and TUS 1.0, written from the TUS protocol and
Reva's ocdav handlers; see its docstring). The contents API is a real jupyter-server.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import chunk_body, notebook_body, text_body
from harness.ocis_standin import OcisStandIn

MiB = 1024 * 1024


@pytest.fixture
def standin_options() -> dict:
    return {}


@pytest.fixture
def ocis(tmp_path, standin_options):
    root = tmp_path / "ocis"
    root.mkdir()
    server = OcisStandIn(root, **standin_options)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def space(ocis):
    return ocis.folder("space")


@pytest.fixture
def jp_server_config(space, tmp_path, monkeypatch, ocis):
    monkeypatch.setenv("SWAN_TEST_DAV_PASSWORD", ocis.password)
    return {
        "ServerApp": {
            "contents_manager_class": "swan_contents.SwanContentsManager",
            "jpserver_extensions": {"swan_share_ext": True},
        },
        "SwanContentsManager": {
            "versions_dir": str(tmp_path / "versions"),
            "hash_algorithm": "sha1",
        },
        "WebDAVStorage": {
            "url": space[1],
            "username": ocis.username,
            "password_env": "SWAN_TEST_DAV_PASSWORD",
            "chunk_size": 5 * MiB,
            "spool_dir": str(tmp_path / "spool"),
        },
    }


@pytest.fixture(autouse=True)
def webdav_storage(jp_server_config):
    jp_server_config["SwanContentsManager"]["storage_class"] = "swan_contents.storage.WebDAVStorage"


def on_space(ocis, method: str) -> list[str]:
    return [p for m, p in ocis.requests() if m == method and "/space" in p]


async def upload(api, path: str, data: bytes, part: int = MiB, **last: str):
    """Upload `data` in parts as JupyterLab does; the reply to the last part."""
    pieces = [data[i : i + part] for i in range(0, len(data), part)]
    for number, piece in enumerate(pieces[:-1], start=1):
        reply = await api("PUT", path, chunk_body(number, piece))
        assert reply.code in (200, 201), reply.body
    return await api("PUT", path, {**chunk_body(-1, pieces[-1]), **last})


async def test_a_save_sends_a_checksum_and_bytes_corrupted_on_the_way_are_refused(api, ocis, space):
    assert (await api("PUT", "nb.ipynb", notebook_body("intact"))).code == 201
    ocis.corrupt("PUT")
    refused = await api("PUT", "nb.ipynb", notebook_body("bent on the way"))
    assert refused.code == 502
    assert "did not arrive intact" in refused.message
    assert "The storage said: The computed checksum does not match" in refused.message
    assert "intact" in (space[0] / "nb.ipynb").read_text()
    assert (await api("PUT", "nb.ipynb", notebook_body("sent again"))).code == 200


async def test_the_hash_of_a_model_is_the_storages_checksum_without_reading_the_file(
    api, ocis, space
):
    await api("PUT", "data.csv", text_body("a,b\n1,2\n"))
    before = len(ocis.requests())
    model = await api("GET", "data.csv", content="0", hash="1")
    assert model.body["hash_algorithm"] == "sha1"
    assert model.body["hash"] == hashlib.sha1(b"a,b\n1,2\n").hexdigest()  # noqa: S324
    assert [m for m, _ in ocis.requests()[before:]] == ["PROPFIND"]


@pytest.mark.parametrize("standin_options", [{"max_chunk_size": 4 * MiB}])
async def test_a_large_upload_goes_by_tus_in_parts_the_server_accepts(api, ocis, space, tmp_path):
    data = bytes(range(256)) * (12 * MiB // 256)
    reply = await upload(api, "big.bin", data)
    assert reply.code in (200, 201), reply.body
    assert (space[0] / "big.bin").read_bytes() == data
    assert len(on_space(ocis, "POST")) == 1
    assert [n for m, _, n in ocis.sized_log if m == "PATCH"] == [4 * MiB] * 3
    assert not on_space(ocis, "PUT"), "no PUT of the file: TUS carried it"
    assert ocis.uploads == {}
    assert not list((tmp_path / "spool").glob("*.part"))


@pytest.mark.parametrize("standin_options", [{"max_chunk_size": 4 * MiB}])
async def test_a_tus_upload_broken_off_resumes_from_the_offset_the_server_reports(api, ocis, space):
    data = b"0123456789abcdef" * (9 * MiB // 16)
    ocis.break_next_patch_after(MiB)
    reply = await upload(api, "resumed.bin", data)
    assert reply.code in (200, 201), reply.body
    assert (space[0] / "resumed.bin").read_bytes() == data
    methods = [m for m, p in ocis.requests() if p.startswith("/data/")]
    assert methods == ["PATCH", "HEAD", "PATCH", "PATCH"]
    # the second PATCH starts where the server's HEAD said: 1 MiB in, not from the start
    assert ocis.bytes_received("PATCH") == 4 * MiB + (len(data) - MiB)


async def test_a_tus_upload_corrupted_on_the_way_is_refused_and_nothing_appears(
    api, ocis, space, tmp_path
):
    ocis.corrupt("PATCH")
    reply = await upload(api, "bent.bin", b"z" * (6 * MiB))
    assert reply.code == 502, reply.body
    assert "did not arrive intact" in reply.message
    assert not (space[0] / "bent.bin").exists()
    assert ocis.uploads == {}
    assert not list((tmp_path / "spool").glob("*.part"))


async def test_a_conditional_last_part_goes_as_one_put_with_if_match_not_by_tus(api, ocis, space):
    first = await api("PUT", "big.bin", text_body("small at first"))
    reply = await upload(api, "big.bin", b"y" * (6 * MiB), etag=first.body["etag"])
    assert reply.code in (200, 201), reply.body
    assert not on_space(ocis, "POST")
    assert len(on_space(ocis, "PUT")) == 2
    assert (space[0] / "big.bin").read_bytes() == b"y" * (6 * MiB)


async def test_an_upload_no_larger_than_one_part_is_one_put(api, ocis, space):
    reply = await upload(api, "small.bin", b"s" * (3 * MiB))
    assert reply.code in (200, 201)
    assert not on_space(ocis, "POST") and len(on_space(ocis, "PUT")) == 1


@pytest.mark.parametrize("standin_options", [{"tus": False}])
async def test_without_tus_a_large_upload_is_one_streamed_put_from_the_spool(api, ocis, space):
    data = b"p" * (7 * MiB)
    reply = await upload(api, "plain.bin", data)
    assert reply.code in (200, 201)
    assert not on_space(ocis, "POST")
    assert on_space(ocis, "PUT") == ["/remote.php/dav/files/alice/space/plain.bin"]
    assert ocis.bytes_received("PUT") == len(data)
    assert (space[0] / "plain.bin").read_bytes() == data


@pytest.mark.parametrize("standin_options", [{"checksum_types": ()}])
async def test_a_storage_that_verifies_no_checksums_is_sent_none(api, ocis, space):
    assert (await api("PUT", "a.txt", text_body("a"))).code == 201
    model = await api("GET", "a.txt", content="0", hash="1")
    # the hash is then computed from the content, as the stock manager does
    assert model.body["hash"] == hashlib.sha1(b"a").hexdigest()  # noqa: S324
    assert json.loads(json.dumps(model.body))["hash_algorithm"] == "sha1"
