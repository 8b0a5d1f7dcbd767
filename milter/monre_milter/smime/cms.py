"""CMS SignedData verification (RFC 5652) over bytes we are given: parse with asn1crypto, check with cryptography.

`cryptography` has no API that verifies a CMS signature, so this module does the two CMS steps itself, for each
SignerInfo:
  1. the digest named by the SignerInfo's digestAlgorithm (never the MIME `micalg` parameter) over the content must
     equal the messageDigest signed attribute;
  2. the signature must verify over the DER of the signed attributes, re-tagged from [0] IMPLICIT to SET OF
     (or over the content itself when there are no signed attributes).
Certificate paths are not checked here (see store.py). Nothing here touches the MIME structure: the caller passes the
exact bytes the signature covers (or an iterable of chunks, so a large detached part is hashed without holding it).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable

from asn1crypto import cms as acms
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa

# digestAlgorithm names (asn1crypto) -> hashlib name and cryptography hash class
_DIGESTS = {
    "md5": ("md5", hashes.MD5), "sha1": ("sha1", hashes.SHA1), "sha224": ("sha224", hashes.SHA224),
    "sha256": ("sha256", hashes.SHA256), "sha384": ("sha384", hashes.SHA384), "sha512": ("sha512", hashes.SHA512),
    "sha512_224": ("sha512_224", hashes.SHA512_224), "sha512_256": ("sha512_256", hashes.SHA512_256),
    "sha3_224": ("sha3_224", hashes.SHA3_224), "sha3_256": ("sha3_256", hashes.SHA3_256),
    "sha3_384": ("sha3_384", hashes.SHA3_384), "sha3_512": ("sha3_512", hashes.SHA3_512),
    "shake256": ("shake_256", None),
}
WEAK_DIGESTS = frozenset({"md5", "sha1"})


class CmsError(Exception):
    """The structure cannot be processed (syntax error, unsupported algorithm, missing certificate).
    `kind` is the RFC 7281 result it leads to: "neutral" (syntax / unsupported) or "permerror" (missing data)."""

    def __init__(self, message: str, kind: str = "neutral"):
        super().__init__(message)
        self.kind = kind


@dataclass
class SignerResult:
    ok: bool  # digest and signature both verified
    reason: str  # why not, or "signature verified"
    digest_algorithm: str = ""
    signature_algorithm: str = ""
    cert: x509.Certificate | None = None  # the signer's certificate (found among the message's certificates)
    error_kind: str | None = None  # "neutral"/"permerror" when the signer could not be processed at all


@dataclass
class SignedData:
    """A parsed SignedData: what verification needs, nothing of the content beyond eContent for opaque messages."""

    content_type: str  # eContentType, e.g. "data"
    econtent: bytes | None  # encapsulated content (opaque signing), None when detached
    certificates: list[x509.Certificate] = field(default_factory=list)
    signer_infos: list = field(default_factory=list)  # asn1crypto SignerInfo objects
    digest_algorithms: list[str] = field(default_factory=list)


def outer_content_type(der: bytes) -> str:
    """"signed_data", "enveloped_data", "authenticated_enveloped_data", ... of a ContentInfo."""
    try:
        return acms.ContentInfo.load(der)["content_type"].native
    except Exception as exc:  # asn1crypto raises ValueError/TypeError on garbage
        raise CmsError(f"not a CMS ContentInfo: {exc.__class__.__name__}") from None


def parse_signed_data(der: bytes) -> SignedData:
    try:
        ci = acms.ContentInfo.load(der)
        ctype = ci["content_type"].native
        if ctype != "signed_data":
            raise CmsError(f"CMS content is {ctype}, not signed-data")
        sd = ci["content"]
        eci = sd["encap_content_info"]
        econtent_type = eci["content_type"].native
        raw = eci["content"]
        econtent = None
        if raw.native is not None:
            econtent = raw.__bytes__()  # the octets (constructed BER chunks joined)
        certs = []
        for choice in sd["certificates"] or []:
            if choice.name != "certificate":
                continue  # attribute / other certificate formats: not used for S/MIME
            try:
                certs.append(x509.load_der_x509_certificate(choice.chosen.dump()))
            except ValueError as exc:
                raise CmsError(f"unreadable certificate in the signature: {exc}") from None
        digests = [a["algorithm"].native for a in sd["digest_algorithms"]]
        signer_infos = list(sd["signer_infos"])
    except CmsError:
        raise
    except Exception as exc:  # asn1crypto parses lazily: errors surface on access, as ValueError/TypeError/...
        raise CmsError(f"malformed SignedData ({exc.__class__.__name__}: {str(exc)[:120]})") from None
    if not signer_infos:
        raise CmsError("SignedData has no SignerInfo", "permerror")
    return SignedData(econtent_type, econtent, certs, signer_infos, digests)


def _find_cert(sid, certs: list[x509.Certificate]) -> x509.Certificate | None:
    if sid.name == "issuer_and_serial_number":
        issuer = sid.chosen["issuer"].dump()
        serial = sid.chosen["serial_number"].native
        for c in certs:
            if c.serial_number == serial and c.issuer.public_bytes() == issuer:
                return c
        # the same name may be encoded differently (PrintableString vs UTF8String): compare normalised names
        wanted = ax509.Name.load(issuer)
        for c in certs:
            if c.serial_number == serial and ax509.Name.load(c.issuer.public_bytes()) == wanted:
                return c
        return None
    ski = sid.chosen.native
    for c in certs:
        try:
            if c.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest == ski:
                return c
        except x509.ExtensionNotFound:
            continue
    return None


def digest_of(algorithm: str, chunks: Iterable[bytes]) -> bytes:
    name = _DIGESTS.get(algorithm, (None, None))[0]
    if name is None:
        raise CmsError(f"unsupported digest algorithm {algorithm}")
    h = hashlib.new(name)
    for c in chunks:
        h.update(c)
    return h.digest(64) if name == "shake_256" else h.digest()


def _verify_signature(cert: x509.Certificate, si, digest_alg: str, data: bytes) -> str:
    """Raises InvalidSignature on a bad signature, CmsError on an unsupported one. Returns the algorithm name."""
    sig_alg = si["signature_algorithm"]
    signature = si["signature"].native
    try:
        algo = sig_alg.signature_algo  # rsassa_pkcs1v15, rsassa_pss, dsa, ecdsa, ed25519, ed448
    except ValueError:
        raise CmsError(f"unsupported signature algorithm {sig_alg['algorithm'].dotted}") from None
    hash_cls = _DIGESTS.get(digest_alg, (None, None))[1]
    key = cert.public_key()
    try:
        if algo == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hash_cls())
        elif algo == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
            params = sig_alg["parameters"]
            h = _DIGESTS.get(params["hash_algorithm"]["algorithm"].native, (None, None))[1]
            mgf = params["mask_gen_algorithm"]
            mgf_hash = _DIGESTS.get(mgf["parameters"]["algorithm"].native, (None, None))[1]
            if h is None or mgf_hash is None or mgf["algorithm"].native != "mgf1":
                raise CmsError("unsupported RSASSA-PSS parameters")
            key.verify(signature, data, padding.PSS(padding.MGF1(mgf_hash()), params["salt_length"].native), h())
        elif algo == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hash_cls()))
        elif algo == "dsa" and isinstance(key, dsa.DSAPublicKey):
            key.verify(signature, data, hash_cls())
        elif algo == "ed25519" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        elif algo == "ed448" and isinstance(key, ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            raise CmsError(f"signature algorithm {algo} does not match the signer's {type(key).__name__}")
    except (UnsupportedAlgorithm, TypeError) as exc:
        raise CmsError(f"unsupported signature: {exc}") from None
    return algo


def verify_signer(sd: SignedData, si, content_digest: dict[str, bytes],
                  content: bytes | None = None) -> SignerResult:
    """Verify one SignerInfo. `content_digest` maps digest algorithm -> digest of the signed content (computed by
    the caller, possibly streamed); `content` is needed only when the SignerInfo has no signed attributes."""
    try:
        digest_alg = si["digest_algorithm"]["algorithm"].native
        cert = _find_cert(si["sid"], sd.certificates)
    except Exception as exc:
        return SignerResult(False, f"malformed SignerInfo ({exc.__class__.__name__})", error_kind="neutral")
    res = SignerResult(False, "", digest_algorithm=digest_alg, cert=cert)
    if cert is None:
        res.reason, res.error_kind = "the signer's certificate is not in the message", "permerror"
        return res
    if digest_alg not in _DIGESTS:
        res.reason, res.error_kind = f"unsupported digest algorithm {digest_alg}", "neutral"
        return res
    if digest_alg not in sd.digest_algorithms:
        # RFC 5652 5.1: digestAlgorithms lists every signer's algorithm; OpenSSL refuses the same way
        res.reason, res.error_kind = f"digest algorithm {digest_alg} not listed in SignedData", "permerror"
        return res
    try:
        attrs = si["signed_attrs"]
        if attrs is not None and len(attrs):
            md = [a["values"][0].native for a in attrs if a["type"].native == "message_digest"]
            ctypes = [a["values"][0].native for a in attrs if a["type"].native == "content_type"]
            if len(md) != 1:
                res.reason, res.error_kind = "signed attributes without one messageDigest", "permerror"
                return res
            if ctypes and ctypes[0] != sd.content_type:
                res.reason = f"contentType attribute {ctypes[0]} differs from the content ({sd.content_type})"
                return res
            if md[0] != content_digest[digest_alg]:
                res.reason = f"message digest mismatch ({digest_alg}): the signed content was altered"
                return res
            # RFC 5652 5.4: the signature covers the DER of the attributes with an EXPLICIT SET OF tag.
            der = attrs.dump()
            data = b"\x31" + der[1:]
        else:
            if content is None:
                raise CmsError("signature without signed attributes over content not kept in memory")
            data = content
        res.signature_algorithm = _verify_signature(cert, si, digest_alg, data)
    except InvalidSignature:
        res.reason = "signature does not verify with the signer's public key"
        return res
    except CmsError as exc:
        res.reason, res.error_kind = str(exc), exc.kind
        return res
    except Exception as exc:  # asn1crypto lazy-parse errors on a malformed SignerInfo
        res.reason, res.error_kind = f"malformed SignerInfo ({exc.__class__.__name__})", "neutral"
        return res
    res.ok, res.reason = True, "signature verified"
    return res


def needs_content(sd: SignedData) -> bool:
    """True when some SignerInfo has no signed attributes (its signature covers the content directly)."""
    for si in sd.signer_infos:
        try:
            attrs = si["signed_attrs"]
            if attrs is None or not len(attrs):
                return True
        except Exception:  # malformed: verify_signer reports it
            continue
    return False


def signer_digest_algorithms(sd: SignedData) -> set[str]:
    out = set()
    for si in sd.signer_infos:
        try:
            out.add(si["digest_algorithm"]["algorithm"].native)
        except Exception:  # malformed: verify_signer reports it
            continue
    return out
