"""A throw-away PKI made at test time (keys with `cryptography`, messages signed with the real `openssl cms` CLI),
shared by the S/MIME tests. Nothing here is committed key material: every run makes new keys in a temp folder.

Also checks the PKI itself against OpenSSL, so a broken fixture cannot make the other tests pass for a wrong reason.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime.now(dt.timezone.utc)
DAY = dt.timedelta(days=1)


def _name(cn: str, email_addr: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if email_addr:
        attrs.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, email_addr))
    return x509.Name(attrs)


@dataclass
class Entity:
    name: str
    key: object
    cert: x509.Certificate
    cert_path: Path
    key_path: Path


def _write(d: Path, name: str, key, cert) -> Entity:
    cp, kp = d / f"{name}.pem", d / f"{name}.key"
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return Entity(name, key, cert, cp, kp)


def make_ca(d: Path, name: str, issuer: Entity | None = None) -> Entity:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = _name(name)
    b = (x509.CertificateBuilder().subject_name(subject)
         .issuer_name(issuer.cert.subject if issuer else subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(NOW - 30 * DAY)
         .not_valid_after(NOW + 3650 * DAY)
         .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                      data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                      crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                            critical=False)
    cert = b.sign(issuer.key if issuer else key, hashes.SHA256())
    return _write(d, name, key, cert)


def make_leaf(d: Path, name: str, addr: str, issuer: Entity, key_type: str = "rsa",
              not_before: dt.datetime | None = None, not_after: dt.datetime | None = None,
              eku=(ExtendedKeyUsageOID.EMAIL_PROTECTION,)) -> Entity:
    key = ec.generate_private_key(ec.SECP256R1()) if key_type == "ec" else \
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
    b = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(issuer.cert.subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(not_before or NOW - DAY).not_valid_after(not_after or NOW + 365 * DAY)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(addr)]), critical=False)
         .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True,
                                      key_encipherment=key_type == "rsa", data_encipherment=False,
                                      key_agreement=False, key_cert_sign=False, crl_sign=False,
                                      encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                        critical=False))
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    return _write(d, name, key, b.sign(issuer.key, hashes.SHA256()))


def openssl(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], input=data, capture_output=True, timeout=60)


def entity(headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def sign(content: bytes, signer: Entity, chain: list[Entity], outer: dict[str, str], opaque: bool = False,
         pss: bool = False, binary: bool = False) -> bytes:
    """Sign a MIME entity with `openssl cms -sign` and put the outer message headers in front."""
    args = ["cms", "-sign", "-signer", str(signer.cert_path), "-inkey", str(signer.key_path)]
    if chain:  # openssl keeps only the last -certfile: give one bundle
        bundle = chain[0].cert_path.parent / ("chain-" + "-".join(c.name for c in chain).replace(" ", "_") + ".pem")
        bundle.write_bytes(b"".join(c.cert_path.read_bytes() for c in chain))
        args += ["-certfile", str(bundle)]
    if opaque:
        args.append("-nodetach")  # detached (multipart/signed) is the default
    if pss:
        args += ["-keyopt", "rsa_padding_mode:pss"]
    if binary:
        args.append("-binary")
    r = openssl(*args, data=content)
    assert r.returncode == 0, r.stderr.decode()
    head = "".join(f"{k}: {v}\r\n" for k, v in outer.items()).encode()
    return head + r.stdout.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def outer_headers(frm: str, to: str, subject: str = "Signed test") -> dict[str, str]:
    return {"From": frm, "To": to, "Subject": subject, "Date": email.utils.formatdate(),
            "Message-ID": email.utils.make_msgid(domain="test.example")}


@dataclass
class Pki:
    dir: Path
    root: Entity
    inter: Entity
    other_root: Entity
    alice: Entity  # alice@partner.gov.vn, RSA, under inter
    alice_ec: Entity  # same address, ECDSA P-256
    expired: Entity
    stranger: Entity  # under other_root (not trusted)
    client_only: Entity  # EKU clientAuth only
    nva: Entity  # nva_vea@monre.gov.vn, an official of a unit, for outbound

    def overlay(self, extra: str = "") -> Path:
        """A pack layer trusting `root` (and writing `extra` YAML lines under rules.smime)."""
        p = self.dir / f"overlay-{abs(hash(extra))}.yaml"
        p.write_text(f"rules:\n  smime:\n    trust_anchors: [{self.root.cert_path}]\n{extra}")
        return p


def build_pki(d: Path) -> Pki:
    d.mkdir(parents=True, exist_ok=True)
    root = make_ca(d, "Test Gov Root")
    inter = make_ca(d, "Test Gov Issuing CA", root)
    other = make_ca(d, "Unknown Root")
    return Pki(
        d, root, inter, other,
        alice=make_leaf(d, "alice", "alice@partner.gov.vn", inter),
        alice_ec=make_leaf(d, "alice-ec", "alice@partner.gov.vn", inter, key_type="ec"),
        expired=make_leaf(d, "expired", "alice@partner.gov.vn", inter, not_before=NOW - 400 * DAY,
                          not_after=NOW - 30 * DAY),
        stranger=make_leaf(d, "stranger", "alice@partner.gov.vn", other),
        client_only=make_leaf(d, "client", "alice@partner.gov.vn", inter, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,)),
        nva=make_leaf(d, "nva", "nva_vea@monre.gov.vn", inter),
    )


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Pki:
    return build_pki(tmp_path_factory.mktemp("smime-pki"))


TEXT = entity({"Content-Type": "text/plain; charset=utf-8", "Content-Transfer-Encoding": "8bit"},
              "Kính gửi anh chị,\r\nHello from the partner ministry.\r\n".encode())


def test_pki_signs_and_openssl_verifies(pki, tmp_path):
    msg = sign(TEXT, pki.alice, [pki.inter], outer_headers("alice@partner.gov.vn", "nva@monre.gov.vn"))
    f = tmp_path / "m.eml"
    f.write_bytes(msg)
    ok = openssl("smime", "-verify", "-CAfile", str(pki.root.cert_path), "-in", str(f), "-out", os.devnull)
    assert ok.returncode == 0, ok.stderr.decode()
    bad = openssl("smime", "-verify", "-CAfile", str(pki.other_root.cert_path), "-in", str(f), "-out", os.devnull)
    assert bad.returncode != 0
