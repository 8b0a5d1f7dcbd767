"""Art. 9.2 end to end: a real Postfix on loopback, the milter with a pack trusting a test CA, S/MIME over SMTP.

A signed message is delivered with `Authentication-Results: ...; smime=pass` added and its signed body untouched
(the delivered message still verifies with openssl); a tampered one is refused at end of DATA with 550 5.7.5.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import send, sink_headers, wait_sink
from test_smime_pki import TEXT, openssl, outer_headers, pki, sign  # noqa: F401  (pki: fixture)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
OUTSIDE = "198.51.100.20"


@pytest.fixture(scope="module")
def smime_lab(lab_factory, pki):
    os.chmod(pki.dir, 0o755)  # the milter may run as another user: let it read the anchor
    os.chmod(pki.dir.parent, 0o755)
    return lab_factory("smime", policy=[str(REPO / "policies" / "monre.yaml"), str(pki.overlay())])


def _body_of_dump(dump: bytes) -> bytes:
    """The message as the sink got it, without smtp-sink's own X-* envelope lines at the top."""
    lines = dump.split(b"\r\n") if b"\r\n" in dump else dump.split(b"\n")
    i = 0
    while i < len(lines) and (lines[i].startswith(b"X-") or lines[i] == b""):
        i += 1
    return b"\r\n".join(lines[i:])


def test_signed_message_delivered_with_authentication_results(smime_lab, pki, tmp_path):
    msg = sign(TEXT, pki.alice, [pki.inter], outer_headers("alice@partner.gov.vn", "nva@monre.gov.vn"))
    r = send(smime_lab, msg, "alice@partner.gov.vn", ["nva@monre.gov.vn"], client_ip=OUTSIDE)
    assert r.data[0] == 250, r.data
    dump = wait_sink(smime_lab, r.queue_id)
    assert dump is not None, smime_lab.postfix_log()
    ar = [v for v in sink_headers(dump).get_all("Authentication-Results", [])]
    assert any(str(v).startswith("mail.monre.gov.vn; smime=pass body.smime-identifier=alice@partner.gov.vn")
               for v in ar), ar
    # the body (the signed part) was not modified: the delivered message still verifies
    delivered = tmp_path / "delivered.eml"
    delivered.write_bytes(_body_of_dump(dump))
    ok = openssl("cms", "-verify", "-CAfile", str(pki.root.cert_path), "-in", str(delivered), "-out", os.devnull)
    assert ok.returncode == 0, ok.stderr.decode()


def test_tampered_signed_message_rejected(smime_lab, pki):
    msg = sign(TEXT, pki.alice, [pki.inter], outer_headers("alice@partner.gov.vn", "nva@monre.gov.vn"))
    r = send(smime_lab, msg.replace(b"Hello from", b"Hellp from"), "alice@partner.gov.vn", ["nva@monre.gov.vn"],
             client_ip=OUTSIDE)
    assert f"{r.data[0]} {r.data[1]}" == ("550 5.7.5 The S/MIME signature of this message does not verify (content "
                                          "altered after signing) (regulation art. 9.2)")


def test_forged_authentication_results_removed(smime_lab, pki):
    msg = sign(TEXT, pki.alice, [pki.inter], outer_headers("alice@partner.gov.vn", "nva@monre.gov.vn"))
    forged = b"Authentication-Results: mail.monre.gov.vn; smime=pass body.smime-identifier=minister@monre.gov.vn\r\n"
    r = send(smime_lab, forged + msg, "alice@partner.gov.vn", ["nva@monre.gov.vn"], client_ip=OUTSIDE)
    assert r.data[0] == 250, r.data
    dump = wait_sink(smime_lab, r.queue_id)
    assert dump is not None
    assert b"minister@monre.gov.vn" not in dump
    assert b"smime=pass body.smime-identifier=alice@partner.gov.vn" in dump
