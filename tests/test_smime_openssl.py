"""Differential test: our S/MIME verdicts against `openssl smime -verify` / `openssl cms -verify` (OpenSSL 3.0).

Two verdicts per message:
  crypto  our digest + signature check          vs  openssl ... -verify -noverify  (signature only)
  full    crypto + path to the anchor + dates    vs  openssl ... -verify -CAfile ANCHOR
          + key usage (the signer/From comparison is ours only: OpenSSL does not look at From)
Inputs: every signed sample of the corpus, and messages signed here with `openssl cms -sign` (detached, opaque,
LF-stored, 8bit, RSA-PSS, ECDSA, tampered, expired, wrong CA, signer != From, EKU without emailProtection).
The only accepted disagreements are listed in KNOWN with the reason; anything else fails the test.
"""
from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path

import pytest

from monre_milter.pack import load_pack  # first: it loads the engine, then extract (import order matters)
from monre_milter.extract.message import analyse
from monre_milter.smime import cms
from monre_milter.smime.analyser import verify
from monre_milter.smime.store import TrustStore
from test_smime_pki import TEXT, entity, openssl, outer_headers, pki, sign  # noqa: F401  (pki: fixture)

REPO = Path(__file__).resolve().parents[1]
from conftest import CORPUS  # noqa: E402

SMIME = CORPUS / "smime"
POLICY = REPO / "policies" / "monre.yaml"

# (folder, anchor) per corpus folder, from SOURCES.md
CORPUS = [
    ("hiraoka/outlook15-signed.eml", "hiraoka/ca_smime.crt"),
    ("hiraoka/thunderbird128-signed.eml", "hiraoka/ca_smime.crt"),
    *[(f"thunderbird-nss/{n}", "thunderbird-nss/TestCA.pem") for n in (
        "alice.dsig.SHA256.multipart.eml", "alice.dsig.SHA1.multipart.eml", "alice.dsig.SHA256.multipart.bad.eml",
        "alice.dsig.SHA256.multipart.mismatch-econtent.eml", "alice.future.dsig.SHA256.multipart.eml",
        "alice.sig.SHA256.opaque.eml", "alice.sig.SHA512.opaque.eml", "alice.html.sig.SHA256.opaque.eml",
        "alice.env.sig.SHA256.opaque.eml", "alice.env.dsig.SHA256.multipart.eml",
        "alice.plain.dsig.SHA256.multipart.dave.dsig.SHA256.multipart.eml",
        "alice.plain.sig.SHA256.opaque.dave.sig.SHA256.opaque.eml", "alice.env.mixed.dsig.SHA256.multipart.eml",
        "outer-smime-bad-sig-inner-smime-enc.eml")],
    ("protected-headers/smime-multipart-signed.eml", "protected-headers/sample-ca.pem"),
    ("protected-headers/smime-onepart-signed.eml", "protected-headers/sample-ca.pem"),
    ("rfc4134/4.8.eml", "rfc4134/CarlDSSSelf.cer"),
    ("rfc4134/4.9.eml", "rfc4134/CarlDSSSelf.cer"),
    ("mimekit/thunderbird-signed.txt", "mimekit/StartComCertificationAuthority.crt"),
    ("misc/flanker-signed.eml", None),
    ("misc/pkcs7-empty-digest-set.eml", None),
    ("pyca/signed-opaque.msg", None),
]
DER = [  # bare CMS SignedData (the body of an opaque application/pkcs7-mime), encapsulated content
    ("rfc9216/signedByAliceRSA.p7m", "rfc9216/Sample_LAMPS_RSA_Certification_Authority.selfsigned.pem"),
    ("rfc9216/signedByAliceRSAPSS.p7m", "rfc9216/Sample_LAMPS_RSA_Certification_Authority.selfsigned.pem"),
    ("rfc9216/signedByCarlosEd25519.p7m", "rfc9216/Sample_LAMPS_Ed25519_Certification_Authority.selfsigned.pem"),
    ("rfc9216/signedByAliceAndCarlosNoCerts.p7m",
     "rfc9216/Sample_LAMPS_RSA_Certification_Authority.selfsigned.pem"),
    ("rfc4134/4.1.bin", "rfc4134/CarlDSSSelf.cer"),
    ("rfc4134/4.2.bin", "rfc4134/CarlRSASelf.cer"),
]
# (name, verdict) -> why we knowingly differ from OpenSSL 3.0
KNOWN = {
    ("rfc4134/4.8.eml", "full"): "DSA root: cryptography's path validator forbids DSA keys (signature itself agrees)",
    ("rfc4134/4.9.eml", "full"): "DSA root: cryptography's path validator forbids DSA keys (signature itself agrees)",
    ("rfc4134/4.1.bin", "full"): "DSA root: cryptography's path validator forbids DSA keys (signature itself agrees)",
    ("rfc4134/4.2.bin", "full"): "SHA-1 / 1024-bit RSA root: refused by cryptography's path validator",
    ("rfc9216/signedByCarlosEd25519.p7m", "crypto"): "OpenSSL 3.0 cannot verify Ed25519 CMS; we can (RFC 8419)",
}


def _pem_anchor(path: Path, tmp: Path) -> Path:
    data = path.read_bytes()
    if b"-----BEGIN" in data:
        return path
    out = tmp / (path.name + ".pem")
    r = openssl("x509", "-inform", "DER", "-in", str(path), "-out", str(out))
    assert r.returncode == 0, r.stderr
    return out


def _openssl(cmd: str, msg: Path, anchor: Path | None, der: bool) -> tuple[bool, bool]:
    base = [cmd, "-verify", "-in", str(msg), "-out", os.devnull] + (["-inform", "DER"] if der else [])
    crypto = openssl(*base, "-noverify").returncode == 0
    full = anchor is not None and openssl(*base, "-CAfile", str(anchor)).returncode == 0
    return crypto, full


def _ours_message(data: bytes, anchor: Path | None, tmp: Path) -> tuple[bool, bool]:
    overlay = tmp / "anchor.yaml"
    overlay.write_text(f"rules:\n  smime:\n    trust_anchors: [{anchor or ''}]\n")
    pack = load_pack([str(POLICY), str(overlay)])
    facts = analyse(io.BytesIO(data), pack, "inbound", "other")
    top = facts.extra["smime"].top_signatures()
    assert top, "no signature found"
    s = top[0]
    return s.crypto_ok is True, s.crypto_ok is True and not set(s.problems) - {"mismatch", "weak"}


def _ours_der(data: bytes, anchor: Path) -> tuple[bool, bool]:
    try:
        sd = cms.parse_signed_data(data)
    except cms.CmsError:
        return False, False
    if sd.econtent is None:
        return False, False
    store = TrustStore.load([str(anchor)])
    r = verify(sd, lambda: [sd.econtent], sd.econtent, store, dt.datetime.now(dt.timezone.utc), [])
    return r.get("crypto_ok") is True, r.get("crypto_ok") is True and not set(r["problems"]) - {"mismatch"}


def _generated(pki, d: Path) -> list[tuple[str, bytes, Path]]:
    to = "nva@monre.gov.vn"
    hdr = outer_headers("alice@partner.gov.vn", to)
    att = entity({"Content-Type": 'multipart/mixed; boundary="b1"'},
                 b"--b1\r\nContent-Type: text/plain\r\n\r\nSee the attached report.\r\n--b1\r\n"
                 b"Content-Type: application/pdf; name=r.pdf\r\nContent-Disposition: attachment; filename=r.pdf\r\n"
                 b"Content-Transfer-Encoding: base64\r\n\r\n"
                 b"JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4K\r\n"
                 b"--b1--\r\n")
    detached = sign(TEXT, pki.alice, [pki.inter], hdr)
    msgs = [
        ("detached", detached),
        ("opaque", sign(att, pki.alice, [pki.inter], hdr, opaque=True)),
        ("detached-multipart-attachment", sign(att, pki.alice, [pki.inter], hdr)),
        ("lf-stored", detached.replace(b"\r\n", b"\n")),
        ("8bit-binary", sign(TEXT, pki.alice, [pki.inter], hdr, binary=True)),
        ("rsa-pss", sign(TEXT, pki.alice, [pki.inter], hdr, pss=True)),
        ("ecdsa", sign(TEXT, pki.alice_ec, [pki.inter], hdr)),
        ("tampered", detached.replace(b"Hello from", b"Hellp from")),
        ("tampered-multipart", sign(att, pki.alice, [pki.inter], hdr).replace(b"attached report",
                                                                             b"attached rep0rt")),
        ("expired", sign(TEXT, pki.expired, [pki.inter], hdr)),
        ("wrong-ca", sign(TEXT, pki.stranger, [pki.other_root], hdr)),
        ("no-intermediate", sign(TEXT, pki.alice, [], hdr)),
        ("signer-not-from", sign(TEXT, pki.alice, [pki.inter], outer_headers("boss@partner.gov.vn", to))),
        ("eku-client-only", sign(TEXT, pki.client_only, [pki.inter], hdr)),
    ]
    out = []
    for name, data in msgs:
        p = d / f"{name}.eml"
        p.write_bytes(data)
        out.append((name, data, p))
    return out


def test_differential_against_openssl(pki, tmp_path, capsys):
    rows = []  # (name, verdict, ours, openssl)
    for name, anchor in CORPUS:
        path = SMIME / name
        a = _pem_anchor(SMIME / anchor, tmp_path) if anchor else None
        ours = _ours_message(path.read_bytes(), a, tmp_path)
        theirs = _openssl("cms", path, a, der=False)
        rows += [(name, "crypto", ours[0], theirs[0]), (name, "full", ours[1], theirs[1])]
    for name, anchor in DER:
        path = SMIME / name
        a = _pem_anchor(SMIME / anchor, tmp_path)
        ours = _ours_der(path.read_bytes(), a)
        theirs = _openssl("cms", path, a, der=True)
        rows += [(name, "crypto", ours[0], theirs[0]), (name, "full", ours[1], theirs[1])]
    for name, data, path in _generated(pki, tmp_path):
        ours = _ours_message(data, pki.root.cert_path, tmp_path)
        theirs = _openssl("cms", path, pki.root.cert_path, der=False)
        rows += [(f"generated/{name}", "crypto", ours[0], theirs[0]), (f"generated/{name}", "full", ours[1],
                                                                       theirs[1])]
    agree = [r for r in rows if r[2] == r[3]]
    differ = [r for r in rows if r[2] != r[3]]
    unexpected = [r for r in differ if (r[0], r[1]) not in KNOWN]
    with capsys.disabled():
        print(f"\nS/MIME differential vs OpenSSL: {len(agree)}/{len(rows)} verdicts agree "
              f"({len({r[0] for r in rows})} messages); known differences: "
              + "; ".join(f"{r[0]} {r[1]}: {KNOWN[(r[0], r[1])]}" for r in differ if (r[0], r[1]) in KNOWN))
    assert not unexpected, unexpected
    # the generated messages must exercise both outcomes, or the comparison proves little
    gen = {(r[0], r[1]): r[2] for r in rows if r[0].startswith("generated/")}
    assert gen[("generated/detached", "full")] and not gen[("generated/tampered", "crypto")]
    assert gen[("generated/expired", "crypto")] and not gen[("generated/expired", "full")]
    assert not gen[("generated/wrong-ca", "full")] and not gen[("generated/eku-client-only", "full")]
