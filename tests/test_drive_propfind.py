"""The drive's streamed PROPFIND (Depth 0 and 1) answers what WsgiDAV's own PROPFIND answered:
the same responses, properties, values and statuses for the property lists clients send, over a
folder with odd names, a lock, properties clients set and a read-only share. A conditional
PROPFIND still takes WsgiDAV's path, which is how the old answer is asked for here."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from harness.drive import DAV, PROPFIND_BODY, ocs_share, parse_xml, running_drive

pytestmark = pytest.mark.hub

#: a condition that always holds: it sends the request down WsgiDAV's own PROPFIND
OLD_PATH = {"If-Unmodified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}

NS = 'xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns"'
BODIES = {
    "drive harness": PROPFIND_BODY,
    "empty (allprop)": "",
    "allprop": f'<?xml version="1.0"?><d:propfind {NS}><d:allprop/></d:propfind>',
    "nextcloud desktop": (
        f'<?xml version="1.0"?><d:propfind {NS}><d:prop><d:resourcetype/>'
        "<d:getlastmodified/><d:getcontentlength/><d:getetag/><oc:size/><oc:id/>"
        "<oc:fileid/><oc:downloadURL/><oc:dDC/><oc:permissions/><oc:checksums/>"
        "<nc:is-encrypted/><nc:lock/><oc:share-types/><d:quota-available-bytes/>"
        "<d:lockdiscovery/></d:prop></d:propfind>"
    ),
    "rclone": (
        '<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
        "<d:prop><d:displayname/><d:getlastmodified/><d:getcontentlength/>"
        "<d:resourcetype/><d:getcontenttype/><oc:checksums/><oc:permissions/>"
        "</d:prop></d:propfind>"
    ),
    "favorites and dead": (
        f'<?xml version="1.0"?><d:propfind {NS} xmlns:x="urn:example:x"><d:prop>'
        "<oc:favorite/><x:colour/><d:supportedlock/><d:creationdate/></d:prop></d:propfind>"
    ),
    "no prop list": f'<?xml version="1.0"?><d:propfind {NS}></d:propfind>',
}
ODD_NAMES = ["plain.txt", "ünïcode ✓.txt", "a & b <c>.txt", "100% sure.txt", "with  spaces.csv"]
LOCK_BODY = (
    '<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/>'
    "</d:lockscope><d:locktype><d:write/></d:locktype><d:owner>alice &amp; co</d:owner>"
    "</d:lockinfo>"
)


def canonical(content: bytes) -> dict:
    """A multistatus as {href: {status: {property: its XML}}}, prefixes and order aside (a
    lock's remaining seconds rounded, as two answers come a moment apart)."""
    found: dict = {}
    for response in parse_xml(content).iter("{DAV:}response"):
        statuses = found.setdefault(response.findtext("{DAV:}href"), {})
        for propstat in response.iter("{DAV:}propstat"):
            props = statuses.setdefault(propstat.findtext("{DAV:}status"), {})
            for prop in propstat.find("{DAV:}prop"):
                text = ET.tostring(prop, encoding="unicode")
                props[prop.tag] = re.sub(r"Second-\d+", "Second-N", text)
    return found


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    with running_drive(tmp_path_factory.mktemp("propfind"), users="alice,bob") as drive:
        assert drive.dav("alice", "MKCOL", "mix").status_code == 201
        assert drive.dav("alice", "MKCOL", "mix/sub folder & co").status_code == 201
        for name in ODD_NAMES:
            assert drive.dav("alice", "PUT", f"mix/{name}", content=b"x").status_code == 201
        assert drive.dav("alice", "PUT", "mix/sub folder & co/in.txt", content=b"y").is_success
        locked = drive.dav("alice", "LOCK", "mix/plain.txt", content=LOCK_BODY)
        assert locked.status_code == 200, locked.text
        patch = (
            f'<?xml version="1.0"?><d:propertyupdate {NS} xmlns:x="urn:example:x"><d:set>'
            "<d:prop><oc:favorite>1</oc:favorite><x:colour>r&amp;d</x:colour></d:prop>"
            "</d:set></d:propertyupdate>"
        )
        assert drive.dav("alice", "PROPPATCH", "mix/100% sure.txt", content=patch).is_success
        share = ocs_share(
            drive, "alice", path="/mix/sub folder & co", shareType=0, shareWith="bob", permissions=1
        )
        accepted = drive.ocs("bob", "POST", f"shares/pending/{share['id']}")
        assert accepted.status_code == 200, accepted.text
        yield drive


def both(drive, user: str, path: str, depth: str, body: str):
    def ask(headers: dict):
        return drive.dav(user, "PROPFIND", path, headers={"Depth": depth, **headers}, content=body)

    return ask({}), ask(OLD_PATH)


@pytest.mark.parametrize("body", BODIES, ids=list(BODIES))
@pytest.mark.parametrize(
    ("user", "path"),
    [("alice", "mix"), ("alice", ""), ("bob", ""), ("bob", "Shared"), ("alice", "mix/plain.txt")],
)
@pytest.mark.parametrize("depth", ["0", "1"])
def test_the_streamed_answer_is_wsgidavs_answer(drive, body, user, path, depth):
    new, old = both(drive, user, path, depth, BODIES[body])
    assert new.status_code == old.status_code == 207, new.text
    assert "content-length" not in new.headers  # streamed
    assert canonical(new.content) == canonical(old.content)
    assert len(canonical(new.content)) >= 1


def test_a_shared_read_only_folder_lists_the_same_for_its_recipient(drive):
    listed = drive.propfind("bob", "Shared", depth="1")
    inside = [href for href in listed if href.rstrip("/").endswith("sub%20folder%20%26%20co")]
    assert inside, listed
    new, old = both(drive, "bob", "Shared/sub folder & co", "1", BODIES["nextcloud desktop"])
    assert canonical(new.content) == canonical(old.content)
    permissions = [
        p for r in canonical(new.content).values() for p in r.get("HTTP/1.1 200 OK", {}).items()
    ]
    letters = [value for name, value in permissions if name.endswith("}permissions")]
    assert letters, permissions
    # read-only: no letter of writing (W), creating (C, K) or deleting (D)
    assert all(not set(re.sub(r"<[^>]*>", "", v)) & set("WCKD") for v in letters), letters


def test_odd_names_come_back_escaped_and_the_lock_shows_once(drive):
    new, _ = both(drive, "alice", "mix", "1", BODIES["nextcloud desktop"])
    found = canonical(new.content)
    hrefs = "\n".join(found)
    assert "%26%20b%20%3Cc%3E.txt" in hrefs and "100%25%20sure.txt" in hrefs
    locks = [
        href
        for href, statuses in found.items()
        if "activelock" in statuses.get("HTTP/1.1 200 OK", {}).get("{DAV:}lockdiscovery", "")
    ]
    assert [h.rsplit("/", 1)[-1] for h in locks] == ["plain.txt"]
    assert b"alice &amp; co" in new.content


def test_other_depths_take_wsgidavs_path(drive):
    answers = [
        drive.dav(
            "alice", "PROPFIND", "mix", headers={"Depth": "2", **extra}, content=PROPFIND_BODY
        )
        for extra in ({}, OLD_PATH)
    ]
    assert [a.status_code for a in answers] == [400, 400]
    assert "content-length" in answers[0].headers


@pytest.mark.parametrize("depth", ["infinity", "Infinity", None])
def test_depth_infinity_or_none_is_answered_as_depth_1_as_sabre_does(drive, depth):
    """No request walks a whole tree: the folder and its members, not their members."""
    headers = {} if depth is None else {"Depth": depth}
    deep, one = (
        drive.dav("alice", "PROPFIND", "", headers=h, content=PROPFIND_BODY)
        for h in (headers, {"Depth": "1"})
    )
    assert deep.status_code == one.status_code == 207
    hrefs = [[h.text for h in parse_xml(r.content).iter(f"{DAV}href")] for r in (deep, one)]
    assert hrefs[0] == hrefs[1]
    assert any(h.rstrip("/").endswith("/mix") for h in hrefs[0])
    assert not [h for h in hrefs[0] if re.search(r"/mix/.", h)]


def test_what_does_not_exist_is_404(drive):
    answer = drive.dav("alice", "PROPFIND", "missing", headers={"Depth": "1"})
    assert answer.status_code == 404


def test_a_body_that_is_not_a_propfind_is_refused(drive):
    for body in ("<not xml", '<?xml version="1.0"?><d:prop xmlns:d="DAV:"/>'):
        answer = drive.dav("alice", "PROPFIND", "mix", headers={"Depth": "1"}, content=body)
        assert answer.status_code == 400


def test_another_users_space_is_not_listed(drive):
    answer = drive.dav("bob", "PROPFIND", "mix", owner="alice", headers={"Depth": "1"})
    assert answer.status_code == 404


def test_a_folder_of_more_entries_than_one_statement_lists_the_same(drive):
    """A folder of more than 500 entries reads its file ids in one statement; files made
    beside the drive get their ids on the first listing."""
    folder = drive.space("alice") / "many"
    folder.mkdir()
    for i in range(700):
        (folder / f"f{i:04d}.txt").write_bytes(b"x" * (i % 7))
    (folder / "a folder").mkdir()
    for body in ("drive harness", "nextcloud desktop"):
        new, old = both(drive, "alice", "many", "1", BODIES[body])
        assert canonical(new.content) == canonical(old.content)
        assert len(canonical(new.content)) == 702
    ids = [
        props.get("{http://owncloud.org/ns}fileid")
        for props in (r["HTTP/1.1 200 OK"] for r in canonical(new.content).values())
    ]
    assert len(set(ids)) == 702
