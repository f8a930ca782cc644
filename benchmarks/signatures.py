"""What a request signature costs the drive, per kind: signing an outgoing OCM request and
checking an incoming one, in the drive's own code (`swan_hub.drive.signing`, the keys it makes at
first start), for a NewShare body of the size the drive sends.

Baseline, measured in the same run: RFC 9421 (Ed25519, what two SWAN sites use between them).
Against it: draft-cavage (RSA 2048 with SHA-256, what the drive uses with a Nextcloud peer). The
check includes the replay memory; no network (the peer's key is at hand, as once it is cached).
Medians of many rounds, in microseconds.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from swan_hub.drive.signing import CavageKey, SiteKey, Verifier, cavage_public_keys, public_keys

ROUNDS = 300
URL = "https://swan.example.org/services/drive/ocm/shares"
#: a NewShare as the drive sends it; each request its own ``providerId`` (the same body signed
#: twice in one second is the same draft-cavage signature: a replay)
SHARE = json.dumps(
    {
        "shareWith": "bob@other.example",
        "name": "course material",
        "providerId": "{}",
        "owner": "alice@swan.example.org",
        "sender": "alice@swan.example.org",
        "shareType": "user",
        "resourceType": "folder",
        "protocol": {
            "name": "multi",
            "webdav": {
                "uri": "https://swan.example.org/services/drive/public.php/webdav/",
                "sharedSecret": "x" * 43,
                "permissions": ["read"],
            },
        },
    }
)


def median_us(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1e6)
    return statistics.median(times)


def measure(key, check, keys: dict, rounds: int) -> tuple[float, float]:
    """Median microseconds to sign a NewShare with ``key``, and to ``check`` one (with the
    peer's ``keys`` at hand); every request has a body of its own."""
    bodies = iter([SHARE.replace("{}", str(i)).encode() for i in range(2 * rounds)])

    def signed() -> tuple[dict[str, str], bytes]:
        body = next(bodies)
        headers = {"Host": "swan.example.org", "Content-Type": "application/json"}
        key.sign("POST", URL, headers, body)
        return headers, body

    requests = iter([signed() for _ in range(rounds)])
    sign_us = median_us(signed, rounds)
    check_us = median_us(lambda: check("POST", URL, *next(requests), lambda: keys), rounds)
    return sign_us, check_us


def main(rounds: int = ROUNDS) -> dict:
    with tempfile.TemporaryDirectory(prefix="swan-bench-sigs-") as tmp:
        rfc = SiteKey(str(Path(tmp) / "ocm-signing-key.pem"), "swan.example.org")
        cavage = CavageKey(
            str(Path(tmp) / "ocm-cavage-key.pem"), "https://swan.example.org/ocm#signature"
        )
    rfc_keys = public_keys(rfc.jwks())
    cavage_keys = cavage_public_keys({"publicKey": cavage.public_key()})
    results = {
        "RFC 9421 (Ed25519)": measure(rfc, Verifier().verify, rfc_keys, rounds),
        "draft-cavage (RSA 2048)": measure(cavage, Verifier().verify_cavage, cavage_keys, rounds),
    }
    base_sign, base_check = results["RFC 9421 (Ed25519)"]
    size = len(SHARE.replace("{}", "0"))
    print(f"\nrequest signatures: one NewShare of {size} bytes, medians of {rounds} (µs)")
    print(f"  {'kind':<26} {'sign':>8} {'ratio':>7} {'check':>8} {'ratio':>7}")
    for name, (sign_us, check_us) in results.items():
        print(
            f"  {name:<26} {sign_us:>8.0f} {sign_us / base_sign:>6.2f}x"
            f" {check_us:>8.0f} {check_us / base_check:>6.2f}x"
        )
    return {"results_us": results}


if __name__ == "__main__":
    main()
