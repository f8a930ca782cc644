"""Hostile links against a real jupyter-server: every one is refused with a reason a person can
read, nothing lands in the user's space, and nothing is fetched beyond the hop that was refused.

Name resolution never leaves this machine: a recording resolver answers for public names (the
addresses public DNS gave for them; invented names carry what a hostile DNS server would answer),
and the only real source is a local HTTP server on 127.0.0.2, allowed by this test's config."""

from __future__ import annotations

import io
import stat
import zipfile

import pytest
from harness.open_servers import (
    GitHttpServer,
    SourceServer,
    endless,
    post_open,
    redirect,
    reply,
    server_config,
    trickle,
)

from swan_share_ext.open_in.fetch import Fetcher
from swan_share_ext.open_in.safety import OpenRefused, SourceFailed, UrlPolicy

SOURCE = "127.0.0.2"

RECORDED_ANSWERS = {
    # github.com's A record as public resolvers return it (GitHub's published 140.82.112.0/20).
    "github.com": ["140.82.121.4"],
    "localhost": ["127.0.0.1", "::1"],
    # Invented names under a wildcard rule, resolving where an attacker would point them.
    "rebind.example.org": ["127.0.0.1"],
    "metadata.example.org": ["169.254.169.254"],
    "metadata6.example.org": ["fd00:ec2::254"],
    "intranet.example.org": ["10.20.30.40"],
    "home.example.org": ["192.168.1.1"],
    "mixed.example.org": ["140.82.121.4", "172.16.0.5"],
    "v6loopback.example.org": ["::1"],
    "v6mapped.example.org": ["::ffff:10.0.0.1"],
    "linklocal6.example.org": ["fe80::1"],
    "multicast.example.org": ["224.0.0.251"],
    "cgnat.example.org": ["100.64.0.1"],
    "nothing.example.org": ["0.0.0.0"],
    "127.0.0.1.example.org": ["127.0.0.1"],
    # A name for the local source server: works only if the fetch uses the checked address.
    "pinned.example.org": [SOURCE],
}


async def recorded_resolver(host: str, port: int) -> list[str]:
    if host not in RECORDED_ANSWERS:
        raise SourceFailed(f"The host {host} could not be found (no recorded answer).")
    return RECORDED_ANSWERS[host]


def zip_with(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in entries:
            z.writestr(info, data)
    return buffer.getvalue()


def symlink_entry(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


SOURCE_ROUTES = {
    "/ok.ipynb": reply(200, b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'),
    "/to-loopback": redirect("http://127.0.0.1:9/secret"),
    "/to-loopback-v6": redirect("http://[::1]:9/secret"),
    "/to-metadata": redirect("http://169.254.169.254/latest/meta-data/iam/"),
    "/to-rebind": redirect("http://rebind.example.org/admin"),
    "/to-evil-host": redirect("https://github.com.evil.example/x.ipynb"),
    "/to-file": redirect("file:///etc/passwd"),
    "/loop": redirect("/loop"),
    "/to-broken-v6": redirect("http://[::1/x.ipynb"),
    "/to-two-ports": redirect("http://127.0.0.2:1:80/x.ipynb"),
    "/huge.ipynb": reply(200, b"{}", Content_Length=str(50 * 1024 * 1024)),
    "/endless.ipynb": endless(),
    "/slow.ipynb": trickle(1000, 0.05),
    "/zipslip.zip": reply(200, zip_with([("ok.txt", b"ok"), ("../../escaped.txt", b"pwned")])),
    "/zipslip-backslash.zip": reply(200, zip_with([("..\\..\\escaped.txt", b"pwned")])),
    "/absolute.zip": reply(200, zip_with([("/etc/cron.d/evil", b"* * * * * root sh")])),
    "/symlink.zip": reply(200, zip_with([symlink_entry("data", "/etc"), ("data/passwd", b"x")])),
    "/bomb.zip": reply(200, zip_with([("zeros.bin", b"\0" * (20 * 1024 * 1024))])),
    "/many.zip": reply(200, zip_with([(f"f{i}.txt", b"x") for i in range(60)])),
    "/big-unpacked.zip": reply(
        200, zip_with([(f"r{i}.bin", bytes(range(256)) * 4096) for i in range(5)])
    ),
    "/repo.git/info/refs": redirect("http://169.254.169.254/repo.git/info/refs"),
}

# (id, link parameters, words the refusal must contain, paths the source may have been asked)
CASES = [
    # hosts that only look like an allowed one
    ("suffix-host", {"url": "https://github.com.evil.example/a.ipynb"}, "not among the hosts", []),
    ("prefix-host", {"url": "https://evilgithub.com/a.ipynb"}, "not among the hosts", []),
    ("host-in-path", {"url": "https://evil.example/github.com/a.ipynb"}, "not among", []),
    ("userinfo-allowed-first", {"url": "https://github.com@evil.example/"}, "user name", []),
    ("userinfo-allowed-last", {"url": "https://evil.example@github.com/a"}, "user name", []),
    ("userinfo-with-port", {"url": "https://github.com:443@evil.example/"}, "user name", []),
    ("backslash-userinfo", {"url": "https://github.com\\@evil.example/"}, "backslashes", []),
    ("encoded-dot-host", {"url": "https://github.com%2eevil.example/"}, "not a valid host", []),
    ("homoglyph-host", {"url": "https://gіthub.com/a/b"}, "not among the hosts", []),
    ("space-in-url", {"url": "https://github.com /a"}, "spaces", []),
    ("two-ports", {"url": "http://github.com:1:80/x.ipynb"}, "cannot be read", []),
    ("broken-ipv6", {"url": "http://[::1/x.ipynb"}, "cannot be read", []),
    # loopback in every spelling
    ("ipv4-loopback", {"url": "https://127.0.0.1/a.ipynb"}, "loopback", []),
    ("ipv4-short", {"url": "https://127.1/a.ipynb"}, "loopback", []),
    ("ipv4-hex", {"url": "https://0x7f000001/a.ipynb"}, "loopback", []),
    ("ipv4-decimal", {"url": "https://2130706433/a.ipynb"}, "loopback", []),
    ("ipv4-octal", {"url": "https://0177.0.0.1/a.ipynb"}, "loopback", []),
    ("ipv4-mixed", {"url": "https://0x7f.1/a.ipynb"}, "loopback", []),
    ("ipv6-loopback", {"url": "https://[::1]/a.ipynb"}, "loopback", []),
    ("ipv6-mapped", {"url": "https://[::ffff:127.0.0.1]/a.ipynb"}, "loopback", []),
    ("ipv6-mapped-hex", {"url": "https://[::ffff:7f00:1]/a.ipynb"}, "loopback", []),
    ("unspecified", {"url": "https://0.0.0.0/a.ipynb"}, "unspecified", []),
    ("localhost-name", {"url": "https://localhost/a.ipynb"}, "loopback", []),
    ("name-to-loopback", {"url": "https://rebind.example.org/a"}, "loopback", []),
    ("ip-named-host", {"url": "https://127.0.0.1.example.org/a"}, "loopback", []),
    ("v6-name-to-loopback", {"url": "https://v6loopback.example.org/a"}, "loopback", []),
    # metadata, private and other non-public addresses
    ("metadata-ip", {"url": "http://169.254.169.254/latest/meta-data/"}, "metadata", []),
    ("metadata-name", {"url": "https://metadata.example.org/x"}, "metadata", []),
    ("metadata-v6", {"url": "https://metadata6.example.org/x"}, "metadata", []),
    ("private-10", {"url": "https://intranet.example.org/x"}, "private", []),
    ("private-192", {"url": "https://home.example.org/x"}, "private", []),
    ("private-among-public", {"url": "https://mixed.example.org/x"}, "private", []),
    ("mapped-private", {"url": "https://v6mapped.example.org/x"}, "private", []),
    ("link-local-v6", {"url": "https://linklocal6.example.org/x"}, "link-local", []),
    ("multicast", {"url": "https://multicast.example.org/x"}, "multicast", []),
    ("shared-cgnat", {"url": "https://cgnat.example.org/x"}, "reserved", []),
    ("resolves-to-zero", {"url": "https://nothing.example.org/x"}, "unspecified", []),
    # transports other than https/http
    ("file-url", {"url": "file:///etc/passwd"}, "Only https or http", []),
    ("file-url-as-git", {"url": "file:///srv/repo.git", "kind": "git"}, "Only https", []),
    ("ext-transport", {"url": "ext::sh -c touch% /tmp/pwned", "kind": "git"}, "ext::", []),
    ("fd-transport", {"url": "fd::17", "kind": "git"}, "fd::", []),
    ("git-protocol", {"url": "git://github.com/a/b.git"}, "Only https", []),
    ("ssh-url", {"url": "ssh://git@github.com/a/b.git"}, "Only https", []),
    ("scp-like", {"url": "git@github.com:a/b.git"}, "Only https", []),
    ("javascript", {"url": "javascript:alert(1)"}, "Only https", []),
    ("data-url", {"url": "data:text/plain,hello"}, "Only https", []),
    # redirects: each hop is checked; the hostile hop is never requested
    ("redirect-loopback", {"url": "/to-loopback"}, "loopback", ["/to-loopback"]),
    ("redirect-loopback-v6", {"url": "/to-loopback-v6"}, "loopback", ["/to-loopback-v6"]),
    ("redirect-metadata", {"url": "/to-metadata"}, "metadata", ["/to-metadata"]),
    ("redirect-rebind", {"url": "/to-rebind"}, "loopback", ["/to-rebind"]),
    ("redirect-evil-host", {"url": "/to-evil-host"}, "not among the hosts", ["/to-evil-host"]),
    ("redirect-file", {"url": "/to-file"}, "Only https or http", ["/to-file"]),
    ("redirect-loop", {"url": "/loop"}, "redirected more than 3 times", ["/loop"] * 4),
    ("redirect-unparsable", {"url": "/to-broken-v6"}, "not a valid URL", ["/to-broken-v6"]),
    ("redirect-two-ports", {"url": "/to-two-ports"}, "invalid port", ["/to-two-ports"]),
    ("git-redirect", {"url": "/repo.git", "kind": "git"}, "redirects", ["/repo.git/info/refs"]),
    # sizes and time
    ("oversized-declared", {"url": "/huge.ipynb"}, "more than the 1.0 MiB", ["/huge.ipynb"]),
    ("oversized-streamed", {"url": "/endless.ipynb"}, "grew past", ["/endless.ipynb"]),
    ("slow-response", {"url": "/slow.ipynb"}, "longer than 1.5 s", ["/slow.ipynb"]),
    # archives
    ("zip-slip", {"url": "/zipslip.zip"}, "climbs out", ["/zipslip.zip"]),
    (
        "zip-slip-backslash",
        {"url": "/zipslip-backslash.zip"},
        "climbs out",
        ["/zipslip-backslash.zip"],
    ),
    ("zip-absolute", {"url": "/absolute.zip"}, "absolute path", ["/absolute.zip"]),
    ("zip-symlink", {"url": "/symlink.zip"}, "symbolic link", ["/symlink.zip"]),
    ("zip-bomb", {"url": "/bomb.zip"}, "zip bomb", ["/bomb.zip"]),
    ("zip-too-many", {"url": "/many.zip"}, "more than the 50 allowed", ["/many.zip"]),
    ("zip-unpacks-too-big", {"url": "/big-unpacked.zip"}, "unpacks to", ["/big-unpacked.zip"]),
    # paths and other parameters
    ("path-traversal", {"path": "../../etc/passwd"}, "'..'", []),
    ("path-traversal-inner", {"path": "a/../../b.ipynb"}, "'..'", []),
    ("absolute-path-elsewhere", {"path": "/etc/passwd"}, "not a path of any user", []),
    ("projurl-file-elsewhere", {"projurl": "file:///etc/shadow"}, "not a path of any user", []),
    ("projurl-eos-traversal", {"projurl": "file://eos/user/a/alice/../../b/bob/x"}, "'..'", []),
    ("open-traversal", {"url": "https://github.com/a/b", "open": "../../x"}, "'..'", []),
    ("owner-traversal", {"path": "x.ipynb", "owner": "../bob"}, "not a user name", []),
    (
        "branch-option",
        {"url": "https://github.com/a/b", "branch": "--upload-pack=sh"},
        "branch",
        [],
    ),
    ("branch-traversal", {"url": "https://github.com/a/b", "branch": "../../x"}, "branch", []),
    ("unknown-kind", {"url": "https://github.com/a/b", "kind": "svn"}, "kind=", []),
    ("two-sources", {"url": "https://github.com/a/b", "path": "x"}, "exactly one", []),
    ("unknown-parameter", {"url": "https://github.com/a/b", "upload_pack": "sh"}, "unknown", []),
]


@pytest.fixture
def jp_server_config(space, tmp_path):
    return server_config(
        space,
        tmp_path,
        # Literal addresses and a wildcard are allowed as *hosts* so that the address
        # checks behind the allowlist are what refuses them.
        allowed_hosts=[
            SOURCE,
            "github.com",
            "localhost",
            "*.example.org",
            "127.0.0.1",
            "::1",
            "::ffff:7f00:1",
            "0.0.0.0",
            "169.254.169.254",
        ],
        allowed_schemes=["https", "http"],
        allowed_networks=[f"{SOURCE}/32"],
        max_download_bytes=1024 * 1024,
        download_timeout=1.5,
        max_redirects=3,
        max_files=50,
        max_unpacked_bytes=4 * 1024 * 1024,
        git_timeout=20.0,
        storage_path_template="/eos/user/{initial}/{username}",
    )


@pytest.fixture
def resolver_installed(jp_serverapp):
    jp_serverapp.web_app.settings["swan_open_resolver"] = recorded_resolver


@pytest.fixture
def source():
    server = SourceServer(SOURCE, routes=dict(SOURCE_ROUTES))
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("params", "reason", "asked"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_a_hostile_link_is_refused_with_its_reason_and_nothing_is_written(
    jp_fetch, resolver_installed, source, space, params, reason, asked
):
    params = {
        k: source.url(v) if k == "url" and v.startswith("/") else v for k, v in params.items()
    }
    events = await post_open(jp_fetch, params)
    refusal = events[-1]
    assert refusal["event"] == "error", events
    assert refusal["status"] in (400, 403, 404, 413, 502, 504)
    assert reason.lower() in refusal["message"].lower(), refusal["message"]
    assert [p for p in space.rglob("*") if p.is_file()] == []
    assert [p.split("?", 1)[0] for p in source.requests] == asked


async def test_the_table_holds_at_least_forty_hostile_links():
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)


async def test_the_confirmation_page_refuses_a_hostile_link_and_says_why(jp_fetch, space):
    r = await jp_fetch(
        "swan",
        "open",
        params={"url": "https://github.com.evil.example/x.ipynb"},
        raise_error=False,
    )
    page = r.body.decode()
    assert r.code == 403
    assert "This link cannot be opened" in page
    assert "github.com.evil.example is not among the hosts" in page
    assert 'id="open-confirm"' not in page


async def test_a_download_connects_to_the_address_that_was_checked(
    jp_fetch, resolver_installed, source, space
):
    # pinned.example.org exists only in the recorded answers: if the fetch resolved the name
    # again (a DNS rebinding window), it would fail instead of reaching the checked address.
    url = f"http://pinned.example.org:{source.port}/ok.ipynb"
    events = await post_open(jp_fetch, {"url": url})
    assert events[-1]["event"] == "done", events
    assert (space / "SWAN_projects/ok/ok.ipynb").exists()


async def test_a_git_clone_connects_to_the_address_that_was_checked(
    jp_fetch, resolver_installed, tmp_path, space
):
    from harness.open_servers import UpstreamRepository

    server = GitHttpServer(tmp_path / "served", SOURCE)
    try:
        UpstreamRepository(tmp_path, "pinned").commit({"a.txt": "a\n"})
        url = f"http://pinned.example.org:{server.port}/pinned.git"
        events = await post_open(jp_fetch, {"url": url})
        assert events[-1]["event"] == "done", events
        assert (space / "SWAN_projects/pinned/a.txt").read_text() == "a\n"
    finally:
        server.stop()


# -- the policy on its own, for what the table's config cannot show ---------------------------


async def test_by_default_only_https_is_allowed_and_http_is_refused():
    policy = UrlPolicy.from_lists(["github.com"], resolver=recorded_resolver)
    checked = await policy.check("https://github.com/a/b")
    assert str(checked.address) == "140.82.121.4"
    with pytest.raises(OpenRefused, match="Only https links"):
        await policy.check("http://github.com/a/b")


async def test_a_subdomain_rule_admits_subdomains_only_and_hosts_compare_exactly():
    policy = UrlPolicy.from_lists(["*.example.org", "github.com"], resolver=recorded_resolver)
    assert policy.host_allowed("a.example.org")
    assert policy.host_allowed("a.b.example.org")
    assert not policy.host_allowed("example.org")
    assert not policy.host_allowed("badexample.org")
    assert not policy.host_allowed("gist.github.com")
    # A trailing dot and upper case are the same host after parsing.
    assert policy.check_form("https://GitHub.COM./a")[1] == "github.com"


async def test_a_repository_larger_than_allowed_is_refused_and_nothing_is_written(
    jp_fetch, jp_serverapp, tmp_path, space
):
    import os

    from harness.open_servers import UpstreamRepository

    jp_serverapp.web_app.settings["swan_open_in"].max_repository_bytes = 512 * 1024
    server = GitHttpServer(tmp_path / "served", SOURCE)
    try:
        UpstreamRepository(tmp_path, "heavy").commit({"blob.bin": os.urandom(2 * 1024 * 1024)})
        events = await post_open(jp_fetch, {"url": server.url("heavy.git")})
        assert events[-1]["event"] == "error", events
        assert events[-1]["status"] == 413
        assert "allowed" in events[-1]["message"]
        assert [p for p in space.rglob("*") if p.is_file()] == []
    finally:
        server.stop()


BAD_FORM = {"two-ports", "broken-ipv6", "redirect-unparsable", "redirect-two-ports"}


@pytest.mark.parametrize(
    "params",
    [c[1] for c in CASES if c[0] in BAD_FORM],
    ids=[c[0] for c in CASES if c[0] in BAD_FORM],
)
async def test_a_link_or_redirect_that_is_no_valid_url_is_a_bad_request_not_a_server_error(
    jp_fetch, resolver_installed, source, params
):
    params = {k: source.url(v) if v.startswith("/") else v for k, v in params.items()}
    events = await post_open(jp_fetch, params)
    assert (events[-1]["event"], events[-1]["status"]) == ("error", 400), events


async def test_a_redirect_from_an_allowed_host_to_the_drive_is_checked_like_any_other_hop():
    # The drive is trusted where a fetch starts at it (its public links); an allowed outside
    # host that redirects to the drive's internal address must meet the address checks.
    drive = SourceServer("127.0.0.1")
    outside = SourceServer(SOURCE)
    try:
        drive.routes["/drive/remote.php/secret.ipynb"] = reply(200, b"secret")
        outside.routes["/x.ipynb"] = redirect(drive.url("/drive/remote.php/secret.ipynb"))
        fetcher = Fetcher(
            UrlPolicy.from_lists([SOURCE, "127.0.0.1"], ["http"], [f"{SOURCE}/32"]),
            max_bytes=1024,
            timeout=5.0,
            max_redirects=2,
            trusted_prefix=drive.url("/drive/"),
        )
        with pytest.raises(OpenRefused, match="loopback"):
            await fetcher.fetch(outside.url("/x.ipynb"))
        assert drive.requests == []
        # a fetch that starts at the drive is still trusted
        got = await fetcher.fetch(drive.url("/drive/remote.php/secret.ipynb"))
        assert got.data == b"secret"
    finally:
        drive.stop()
        outside.stop()
