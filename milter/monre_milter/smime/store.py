"""Trust anchors for S/MIME and certificate checks (paths, dates, key usage, signer address).

Anchors are read once when the pack is compiled (`TrustStore.load`); each message then only builds a verifier for
its verification time. Paths are built and checked by `cryptography.x509.verification` with policies adapted to
S/MIME (see docs/smime.md): the end-entity policy does not demand the TLS clientAuth usage (we check emailProtection
ourselves), and the CA policy accepts a basicConstraints extension that is not marked critical, as older private CAs
issue it.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (Criticality, ExtensionPolicy, PolicyBuilder, Store,
                                            VerificationError)

PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"
CERT_SUFFIXES = (".pem", ".crt", ".cer", ".der")


class AnchorError(Exception):
    pass


def read_certificates(path: str) -> list[x509.Certificate]:
    """Certificates of one file: a PEM bundle, or one DER certificate."""
    with open(path, "rb") as fh:
        data = fh.read()
    if PEM_BEGIN in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def _ca_policy() -> ExtensionPolicy:
    return ExtensionPolicy.permit_all().require_present(x509.BasicConstraints, Criticality.AGNOSTIC, None)


@dataclass
class ChainResult:
    status: str  # "trusted", "untrusted" (no path to an anchor), "expired" (outside validity at the time)
    reason: str
    chain: list[x509.Certificate] = field(default_factory=list)


@dataclass
class TrustStore:
    anchors: list[x509.Certificate] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # files the anchors came from, for logs
    _store: Store | None = None

    @classmethod
    def load(cls, paths: list[str]) -> "TrustStore":
        """Read every certificate in `paths` (files, or folders whose *.pem/*.crt/*.cer/*.der files are read)."""
        certs: list[x509.Certificate] = []
        sources: list[str] = []
        for p in paths:
            if os.path.isdir(p):
                files = sorted(os.path.join(p, n) for n in os.listdir(p) if n.lower().endswith(CERT_SUFFIXES))
            elif os.path.exists(p):
                files = [p]
            else:
                raise AnchorError(f"no such file or folder: {p}")
            for f in files:
                try:
                    found = read_certificates(f)
                except (OSError, ValueError) as exc:
                    raise AnchorError(f"cannot read a certificate from {f}: {exc}") from None
                certs.extend(found)
                sources.extend([f] * len(found))
        store = cls(certs, sources)
        store._store = Store(certs) if certs else None
        return store

    def verify_chain(self, leaf: x509.Certificate, intermediates: list[x509.Certificate],
                     at: dt.datetime) -> ChainResult:
        if not _valid_at(leaf, at):
            span = f"{leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d}"
            return ChainResult("expired", f"signer certificate not valid at {at:%Y-%m-%d %H:%M} (valid {span})")
        if self._store is None:
            return ChainResult("untrusted", "no trust anchors configured (smime.trust_anchors)")
        verifier = (PolicyBuilder().store(self._store).time(at)
                    .extension_policies(ca_policy=_ca_policy(), ee_policy=ExtensionPolicy.permit_all())
                    .build_client_verifier())
        try:
            verified = verifier.verify(leaf, [c for c in intermediates if c != leaf])
        except VerificationError as exc:
            text = _short(str(exc))
            if "not valid at validation time" in text:
                return ChainResult("expired", f"a certificate of the chain is not valid now ({text})")
            return ChainResult("untrusted", f"no valid path to a trust anchor ({text})")
        return ChainResult("trusted", "chain to a trust anchor", list(verified.chain))


def _short(text: str) -> str:
    """The verifier's message without its Rust debug dump of algorithm identifiers."""
    text = text.replace("validation failed: ", "").replace("candidates exhausted: ", "")
    text = text.split(": AlgorithmIdentifier", 1)[0].split(" { ", 1)[0]
    return text[:100]


def _valid_at(cert: x509.Certificate, at: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc


def usage_problem(cert: x509.Certificate) -> str | None:
    """Key usage / extended key usage that forbid signing mail, where those extensions are present."""
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        ku = None  # absent: no restriction (RFC 8550 4.4.2)
    if ku is not None and not (ku.digital_signature or ku.content_commitment):
        return "key usage allows neither digitalSignature nor nonRepudiation"
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None  # absent: any purpose
    if eku is not None and ExtendedKeyUsageOID.EMAIL_PROTECTION not in eku \
            and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku:
        return "extended key usage lacks emailProtection"
    return None


def cert_emails(cert: x509.Certificate) -> list[str]:
    """The signer's addresses: SAN rfc822Name entries, else the subject's emailAddress (older certificates)."""
    out: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        out = [str(v).strip().lower() for v in san.get_values_for_type(x509.RFC822Name)]
    except x509.ExtensionNotFound:
        out = []
    if not out:
        out = [str(a.value).strip().lower() for a in cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)]
    return out


def cert_issuer(cert: x509.Certificate) -> str:
    cn = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cn[0].value) if cn else cert.issuer.rfc4514_string()
