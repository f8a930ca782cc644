"""Request signatures between Open Cloud Mesh sites beyond RFC 9421: Nextcloud's draft-cavage HTTP
signatures both ways, checked with an implementation of the draft that is not ours (the `httpsig`
package), and a site that takes signed requests only.

Two real `swan up` sites on 127.0.0.1: site A, and site B started with
`--ocm-require-signatures`, trusted to each other. Two more trusted providers are tiny HTTP
servers on 127.0.0.1, started by the test:

- one plays a **Nextcloud peer's discovery**: a `publicKey` (RSA, the draft-cavage key) and no
  `http-sig`; it takes every POST (201) and keeps it, so the test reads what the drive sent;
- one plays a site that takes signed requests only (`criteria: ["must-use-http-sig"]`) but names
  no kind of signature the drive makes (neither `http-sig` nor a `publicKey`).
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import http.server
import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from harness.drive import answering_drive
from harness.swan import start_swan
from httpsig import HeaderSigner, HeaderVerifier
from test_federation import Sites, make_folder, new_share, ocm_post, pending_at_b, share_folder

from swan_hub.cli import free_port, make_parser
from swan_hub.drive.mesh import Mesh, PeerCannotSign, PeerEndpoint
from swan_hub.drive.signing import CavageKey, SiteKey

pytestmark = pytest.mark.hub

#: what a draft-cavage signature covers in Nextcloud's profile of OCM
COVERED = ["(request-target)", "content-length", "date", "digest", "host"]


class PeerHandler(http.server.BaseHTTPRequestHandler):
    """A peer's discovery (``self.server.discovery``) and an OCM endpoint that takes every POST
    (201) and keeps it in ``self.server.received``."""

    def do_GET(self):  # noqa: N802 - the standard library's name
        if self.path.rstrip("/") in ("/.well-known/ocm", "/ocm-provider"):
            self._answer(200, self.server.discovery)
        else:
            self._answer(404, {"message": "not here"})

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append((self.path, dict(self.headers.items()), body))
        self._answer(201, {"recipientDisplayName": "someone"})

    def _answer(self, status: int, document: dict) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def peer(port: int, discovery: dict) -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), PeerHandler)
    server.daemon_threads = True
    server.discovery = discovery
    server.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def discovery_of(port: int, **more) -> dict:
    """A discovery as Nextcloud answers it, without capabilities, plus ``more``."""
    return {
        "enabled": True,
        "apiVersion": "1.1",
        "endPoint": f"http://127.0.0.1:{port}/ocm",
        "provider": "Nextcloud",
        "resourceTypes": [
            {"name": "file", "shareTypes": ["user"], "protocols": {"webdav": "/public.php/webdav/"}}
        ],
        **more,
    }


class FourSites(Sites):
    """Sites A and B (B takes signed requests only), the Nextcloud peer and the demanding
    peer."""

    nextcloud: http.server.ThreadingHTTPServer
    demanding: http.server.ThreadingHTTPServer
    #: the Nextcloud peer's key id (Nextcloud writes it with https) and private key
    nc_key_id: str
    nc_private: bytes

    @property
    def provider_nc(self) -> str:
        """The Nextcloud peer's provider (`Sites` calls this third provider ``dead``)."""
        return self.dead


@pytest.fixture(scope="module")
def mesh(tmp_path_factory) -> Iterator[FourSites]:
    port_a, port_b, port_nc, port_odd = (free_port() for _ in range(4))
    nc_key = rsa.generate_private_key(65537, 2048)
    nc_key_id = f"https://127.0.0.1:{port_nc}/ocm#signature"
    public_pem = nc_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    nc_discovery = discovery_of(
        port_nc, publicKey={"keyId": nc_key_id, "publicKeyPem": public_pem.decode()}
    )
    odd_discovery = discovery_of(port_odd, criteria=["must-use-http-sig"])
    started = []
    with peer(port_nc, nc_discovery) as nextcloud, peer(port_odd, odd_discovery) as demanding:
        try:
            for name, port, other, extra in (
                ("a", port_a, port_b, []),
                ("b", port_b, port_a, ["--ocm-require-signatures"]),
            ):
                workdir = tmp_path_factory.mktemp(f"site-{name}")
                peers = [f"127.0.0.1:{p}" for p in (other, port_nc, port_odd)]
                args = [arg for p in peers for arg in ("--ocm-peer", p)] + extra
                started.append(start_swan(workdir, *args, users="alice,bob,carol", port=port))
            found = FourSites(*(answering_drive(s) for s in started), port_a, port_b, port_nc)
            found.nextcloud, found.demanding = nextcloud, demanding
            found.nc_key_id = nc_key_id
            found.nc_private = nc_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            yield found
        finally:
            for swan in started:
                swan.kill_everything()


def nc_share(sites: FourSites, **changes) -> dict:
    """A NewShare from nina of the Nextcloud peer to bob of site B."""
    document = new_share(
        sites,
        owner=f"nina@{sites.provider_nc}",
        sender=f"nina@{sites.provider_nc}",
        providerId="nc-1",
        protocol={"name": "webdav", "options": {"sharedSecret": "nc-secret-0123456789"}},
    )
    document.update(changes)
    return document


def cavage_signed(
    sites: FourSites,
    body: bytes,
    *,
    key_id: str | None = None,
    private: bytes | None = None,
    date: str | None = None,
    covered: list[str] = COVERED,
    path: str = "/services/drive/ocm/shares",
) -> dict[str, str]:
    """Headers of a POST of ``body`` to site B at ``path``, signed the draft-cavage way by
    `httpsig` (as the Nextcloud peer, unless ``key_id`` and ``private`` say otherwise)."""
    headers = {
        "Content-Type": "application/json",
        "Date": date or email.utils.formatdate(usegmt=True),
        "Content-Length": str(len(body)),
        "Digest": "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode(),
        "Host": sites.provider_b,
    }
    signer = HeaderSigner(
        key_id or sites.nc_key_id,
        private or sites.nc_private,
        algorithm="rsa-sha256",
        headers=covered,
        sign_header="signature",
    )
    return signer.sign(headers, method="POST", path=path)


def post_b(sites: FourSites, body: bytes, headers: dict[str, str], what: str = "shares"):
    return httpx.post(f"{sites.b.base}/ocm/{what}", content=body, headers=headers, timeout=30)


def received_at_b(sites: FourSites) -> list[tuple]:
    with sites.database(sites.b) as db:
        return [tuple(r) for r in db.execute("SELECT * FROM received_shares ORDER BY id")]


# -- what each site publishes ---------------------------------------------------------------------


def test_each_site_publishes_its_cavage_key_and_b_says_it_takes_signed_requests_only(mesh):
    for site in (mesh.a, mesh.b):
        found = httpx.get(f"{site.swan.url}/.well-known/ocm", timeout=30).json()
        key = found["publicKey"]
        assert key["keyId"] == key["id"] == f"{site.base}/ocm#signature"
        public = serialization.load_pem_public_key(key["publicKeyPem"].encode())
        assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
        assert "PRIVATE" not in key["publicKeyPem"]
        key_file = site.swan.data / "drive" / "ocm-cavage-key.pem"
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert "http-sig" in found["capabilities"]
    assert "criteria" not in httpx.get(f"{mesh.a.swan.url}/.well-known/ocm").json()
    b = httpx.get(f"{mesh.b.swan.url}/.well-known/ocm").json()
    assert b["criteria"] == ["must-use-http-sig"]


def test_swan_up_takes_the_flag_that_requires_signatures():
    assert make_parser().parse_args(["up", "--ocm-require-signatures"]).ocm_require_signatures
    assert not make_parser().parse_args(["up"]).ocm_require_signatures


# -- a site that takes signed requests only ------------------------------------------------------


def test_shares_from_a_still_reach_b_that_takes_signed_requests_only(mesh):
    make_folder(mesh.a, "alice", "signed-class", {"a.txt": b"a"})
    r = share_folder(mesh, "signed-class", f"bob@{mesh.provider_b}", 1)
    assert r.status_code == 200, r.text
    [pending] = [p for p in pending_at_b(mesh) if p["name"] == "/signed-class"]
    # bob's accept goes back to A (which signs, RFC 9421) and is taken there
    r = mesh.b.ocs("bob", "POST", f"remote_shares/pending/{pending['id']}")
    assert r.status_code == 200, r.text
    [sent] = mesh.a.ocs("alice", "GET", "shares").json()["ocs"]["data"]
    assert sent["path"].endswith("signed-class") and sent["state"] == 0  # accepted


def test_an_unsigned_request_to_b_is_refused_with_401_and_nothing_is_stored(mesh):
    before = received_at_b(mesh)
    # as site A (which signs), and as the demanding peer, which signs nothing: without the
    # requirement, B would take the second (a site that does not sign is taken at its word)
    odd = f"olga@127.0.0.1:{mesh.demanding.server_address[1]}"
    for sender in (f"alice@{mesh.provider_a}", odd):
        document = new_share(mesh, sender=sender, owner=sender, providerId="unsigned-1")
        r = ocm_post(mesh.b, "shares", key=None, json=document)
        assert r.status_code == 401, r.text
        assert "This site accepts only signed requests" in r.json()["message"]
        assert "nothing was changed" in r.json()["message"]
    unshare = {
        "notificationType": "SHARE_UNSHARED",
        "resourceType": "folder",
        "providerId": "1",
        "notification": {"sharedSecret": "x"},
    }
    invited = {"recipientProvider": mesh.provider_a, "token": "t", "userID": "u", "email": "",
               "name": "u"}  # fmt: skip
    for what, document in (("notifications", unshare), ("invite-accepted", invited)):
        r = ocm_post(mesh.b, what, key=None, json=document)
        assert r.status_code == 401 and "accepts only signed" in r.text, r.text
    assert received_at_b(mesh) == before
    # site A, which does not require signatures, takes the same share of the peer that
    # does not sign
    document = new_share(mesh, shareWith=f"bob@{mesh.provider_a}", sender=odd, owner=odd)
    document["protocol"]["webdav"]["uri"] = "/public.php/webdav/"
    assert ocm_post(mesh.a, "shares", key=None, json=document).status_code == 201


# -- draft-cavage signatures of a Nextcloud peer -------------------------------------------------


def test_malformed_cavage_signatures_are_refused_with_a_sentence(mesh):
    before = received_at_b(mesh)
    body = json.dumps(nc_share(mesh, providerId="nc-malformed")).encode()

    def refused(headers: dict, words: str) -> None:
        r = post_b(mesh, body, headers)
        assert r.status_code == 401, r.text
        assert words in r.json()["message"] and "nothing was changed" in r.text, r.text

    good = cavage_signed(mesh, body)
    refused({**good, "signature": 'algorithm="rsa-sha256"'}, "names no keyId")
    refused({**good, "signature": good["signature"].replace(mesh.nc_key_id, "https://[::1")},
            "names no provider")  # fmt: skip
    refused({**good, "signature": good["signature"].replace("rsa-sha256", "hmac-sha256")},
            "is not taken here")  # fmt: skip
    garbled = good["signature"].replace('signature="', 'signature="!!')
    refused({**cavage_signed(mesh, body), "signature": garbled}, "does not verify")
    refused({k: v for k, v in cavage_signed(mesh, body).items() if k != "digest"},
            "carries no Digest")  # fmt: skip
    refused({**cavage_signed(mesh, body), "date": "yesterday"}, "no valid Date")
    # the key id of a trusted site that publishes no publicKey
    odd = f"https://127.0.0.1:{mesh.demanding.server_address[1]}/ocm#signature"
    refused(cavage_signed(mesh, body, key_id=odd), "publishes no key")
    assert received_at_b(mesh) == before


def verified_by_httpsig(site, request: tuple[str, dict, bytes]) -> bool:
    """Whether `httpsig` verifies ``request`` (path, headers, body, as a peer received it)
    with the draft-cavage key ``site`` publishes, covering all of `COVERED`, and its
    ``Digest`` and ``Content-Length`` are its body's."""
    path, headers, body = request
    published = httpx.get(f"{site.swan.url}/.well-known/ocm", timeout=30).json()["publicKey"]
    assert f'keyId="{published["keyId"]}"' in headers["Signature"]
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    if headers["Digest"] != f"SHA-256={digest}" or headers["Content-Length"] != str(len(body)):
        return False
    return HeaderVerifier(
        headers,
        published["publicKeyPem"].encode(),
        required_headers=COVERED,
        method="POST",
        path=path,
        sign_header="signature",
    ).verify()


def test_a_share_signed_the_cavage_way_by_a_nextcloud_peer_is_taken(mesh):
    body = json.dumps(nc_share(mesh, providerId="nc-taken")).encode()
    r = post_b(mesh, body, cavage_signed(mesh, body))
    assert r.status_code == 201, r.text
    [pending] = [p for p in pending_at_b(mesh) if p["remote_id"] == "nc-taken"]
    assert pending["owner_address"] == f"nina@{mesh.provider_nc}"
    r = mesh.b.ocs("bob", "DELETE", f"remote_shares/pending/{pending['id']}")
    assert r.status_code == 200, r.text
    # bob's decline reached the peer, signed the cavage way too
    [declined] = [
        sent
        for sent in mesh.nextcloud.received
        if sent[0] == "/ocm/notifications" and json.loads(sent[2])["providerId"] == "nc-taken"
    ]
    assert json.loads(declined[2])["notificationType"] == "SHARE_DECLINED"
    assert verified_by_httpsig(mesh.b, declined)


def test_altered_stale_replayed_or_misattributed_cavage_requests_change_nothing(mesh, tmp_path):
    before = received_at_b(mesh)

    def refused(status: int, body: bytes, headers: dict, words: str) -> None:
        r = post_b(mesh, body, headers)
        assert r.status_code == status, r.text
        assert words in r.json()["message"], r.text
        assert received_at_b(mesh) == before

    body = json.dumps(nc_share(mesh)).encode()
    # the body changed on the way (its length kept)
    other = body.replace(b'"bob@', b'"cob@')
    refused(401, other, cavage_signed(mesh, body), "Digest is not the digest")
    # a signed header changed on the way
    headers = cavage_signed(mesh, body)
    headers["date"] = email.utils.formatdate(time.time() - 5, usegmt=True)
    refused(401, body, headers, "does not verify")
    # signed for another endpoint
    refused(401, body, cavage_signed(mesh, body, path="/services/drive/ocm/notifications"),
            "does not verify")  # fmt: skip
    # signed two minutes ago
    old = email.utils.formatdate(time.time() - 120, usegmt=True)
    refused(401, body, cavage_signed(mesh, body, date=old), "older than 60 seconds")
    # not covering the request's target: it could be sent to any endpoint
    refused(401, body, cavage_signed(mesh, body, covered=COVERED[1:]), "does not cover")
    # signed with another key under the peer's key id
    forger = rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    refused(401, body, cavage_signed(mesh, body, private=forger), "does not verify")
    # the key id of another trusted site (site A), with the peer's key
    key_id_a = f"{mesh.a.base}/ocm#signature"
    refused(401, body, cavage_signed(mesh, body, key_id=key_id_a), "does not verify")
    # site A's own valid cavage signature, on a share that claims to come from the peer
    key_a = CavageKey(str(mesh.a.swan.data / "drive" / "ocm-cavage-key.pem"), key_id_a)
    pem_a = key_a.private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    headers = cavage_signed(mesh, body, key_id=key_id_a, private=pem_a)
    refused(403, body, headers, "speaks for")
    # a provider this site does not trust
    evil = cavage_signed(mesh, body, key_id="https://evil.example/ocm#signature")
    refused(403, body, evil, "evil.example, which is not a trusted provider")
    # an RFC 9421 Signature-Input beside it: that is the signature checked, and it fails
    headers = {**cavage_signed(mesh, body), "Signature-Input": 'ocm=("@method")'}
    refused(401, body, headers, "no ocm signature")
    # the same signed request twice: the second is a replay
    headers = cavage_signed(mesh, body)
    assert post_b(mesh, body, headers).status_code == 201
    after_first = received_at_b(mesh)
    r = post_b(mesh, body, headers)
    assert r.status_code == 401 and "replay" in r.json()["message"], r.text
    assert received_at_b(mesh) == after_first
    [pending] = [p for p in pending_at_b(mesh) if p["remote_id"] == "nc-1"]
    assert mesh.b.ocs("bob", "DELETE", f"remote_shares/pending/{pending['id']}").status_code == 200


def test_a_share_to_a_nextcloud_peer_is_signed_the_cavage_way_and_httpsig_verifies_it(mesh):
    make_folder(mesh.a, "alice", "for-nina", {})
    r = share_folder(mesh, "for-nina", f"nina@{mesh.provider_nc}", 1)
    assert r.status_code == 200, r.text
    [(path, headers, body)] = [sent for sent in mesh.nextcloud.received if "/shares" in sent[0]]
    assert path == "/ocm/shares" and json.loads(body)["shareWith"] == f"nina@{mesh.provider_nc}"
    assert "Signature-Input" not in headers  # the cavage kind only, as the peer asks
    assert headers["Host"] == mesh.provider_nc
    assert verified_by_httpsig(mesh.a, (path, headers, body))
    # the same signature over another body, or with a signed header changed, does not
    digest = base64.b64encode(hashlib.sha256(body + b" ").digest()).decode()
    altered = {**headers, "Content-Length": str(len(body) + 1), "Digest": f"SHA-256={digest}"}
    assert not verified_by_httpsig(mesh.a, (path, altered, body + b" "))
    assert not verified_by_httpsig(mesh.a, (path, {**headers, "Host": "elsewhere"}, body))


def test_a_peer_that_takes_only_signatures_not_made_here_gets_nothing_and_the_owner_a_502(mesh):
    make_folder(mesh.a, "alice", "for-olga", {})
    odd = f"127.0.0.1:{mesh.demanding.server_address[1]}"
    rows = mesh.federated_rows()
    r = share_folder(mesh, "for-olga", f"olga@{odd}", 1)
    assert r.status_code == 502, r.text
    message = r.json()["ocs"]["meta"]["message"]
    assert f"{odd} takes signed requests only" in message and "Nothing was shared" in message
    assert mesh.demanding.received == [] and mesh.federated_rows() == rows


def test_each_peer_gets_the_one_kind_of_signature_it_verifies(tmp_path):
    mesh = Mesh(
        ["http://127.0.0.1:9"],
        public_url="http://127.0.0.1:8/services/drive",
        key=SiteKey(str(tmp_path / "ed.pem"), "127.0.0.1:8"),
        cavage_key=CavageKey(str(tmp_path / "rsa.pem"), "http://127.0.0.1:8/ocm#signature"),
    )
    both = PeerEndpoint("http://127.0.0.1:9/ocm", "", signs=True, cavage=True)
    assert mesh.signature_for("127.0.0.1:9", both) == mesh.key.sign
    nextcloud = PeerEndpoint("http://127.0.0.1:9/ocm", "", cavage=True, requires_signatures=True)
    assert mesh.signature_for("127.0.0.1:9", nextcloud) == mesh.cavage_key.sign
    assert mesh.signature_for("127.0.0.1:9", PeerEndpoint("http://127.0.0.1:9/ocm", "")) is None
    demanding = PeerEndpoint("http://127.0.0.1:9/ocm", "", requires_signatures=True)
    with pytest.raises(PeerCannotSign, match="takes signed requests only") as caught:
        mesh.signature_for("127.0.0.1:9", demanding)
    assert caught.value.status == 502
