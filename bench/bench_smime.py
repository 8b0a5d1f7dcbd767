"""Median time to verify a signed 50 KB message (art. 9.2 target: <= 5 ms on the reference machine).

Makes a throw-away CA + signer with `cryptography`, signs a ~50 KB multipart message (text + base64 PDF-like
attachment) with `openssl cms -sign`, loads the pack ONCE (anchors parsed at load, as in the milter), then times
only the S/MIME analyser over the spooled message (MIME walk of the message included, other analysers excluded).

    .venv/bin/python bench/bench_smime.py [--runs 200]
"""
from __future__ import annotations

import argparse
import base64
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "milter"))

from monre_milter.pack import load_pack  # noqa: E402  (first: loads the engine, then extract)
from monre_milter.extract.mime import MimeWalker  # noqa: E402
from monre_milter.facts import MessageFacts  # noqa: E402
from monre_milter.smime.analyser import Analyser  # noqa: E402
from test_smime_pki import build_pki, entity, outer_headers, sign  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        pki = build_pki(Path(d))
        blob = base64.encodebytes(os.urandom(34_000)).replace(b"\n", b"\r\n")
        inner = entity({"Content-Type": 'multipart/mixed; boundary="b1"'},
                       b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + b"Noi dung cong van.\r\n" * 200
                       + b"--b1\r\nContent-Type: application/pdf; name=r.pdf\r\nContent-Transfer-Encoding: base64\r\n"
                       b"Content-Disposition: attachment; filename=r.pdf\r\n\r\n" + blob + b"--b1--\r\n")
        msg = sign(inner, pki.alice, [pki.inter], outer_headers("alice@partner.gov.vn", "nva@monre.gov.vn"))
        pack = load_pack([str(REPO / "policies" / "monre.yaml"), str(pki.overlay())])
        src = io.BytesIO(msg)
        times = []
        for i in range(args.runs + 10):
            t0 = time.perf_counter()
            walker = MimeWalker()
            root = walker.parse(src, 0, len(msg))
            facts = MessageFacts(size=len(msg))
            facts.header_from = ["alice@partner.gov.vn"]
            Analyser(pack, facts, "inbound", "other").run(root)
            walker.close()
            dt = time.perf_counter() - t0
            if i >= 10:  # warm-up
                times.append(dt)
            [s] = facts.extra["smime"].signatures
            assert s.result == "pass", s
        med = statistics.median(times) * 1000
        p95 = sorted(times)[int(len(times) * 0.95)] * 1000
        print(f"S/MIME verify, signed message of {len(msg) / 1000:.1f} KB (RSA-2048, SHA-256, chain of 3): "
              f"median {med:.2f} ms, p95 {p95:.2f} ms over {len(times)} runs (target <= 5 ms)")
        return 0 if med <= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
