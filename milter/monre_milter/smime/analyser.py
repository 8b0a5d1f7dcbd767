"""S/MIME analyser (art. 9.2): find signed and encrypted parts in a MIME tree, verify signatures, unwrap opaque
signed content so every other rule sees inside, and leave the results in `facts.extra["smime"]`.

Runs in extract/ (not in the engine) because it reads the spool and does cryptography. The `smime` engine rule only
reads the `SmimeFacts` left here and applies the pack's actions.

What a signature covers is sliced from the ORIGINAL bytes of the spool (`Part.raw` offsets) and canonicalised to
CRLF while hashing, never re-serialised: the `email` package re-encodes and re-folds, which breaks valid signatures.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import tempfile
import time
from dataclasses import dataclass, field

from ..engine.addresses import header_addresses
from ..extract.message import ANALYSERS, inspect_tree, limits_from_pack
from ..extract.mime import CHUNK, MimeWalker, Part
from . import cms
from .store import cert_emails, cert_issuer, usage_problem

log = logging.getLogger(__name__)

SIGNATURE_TYPES = ("application/pkcs7-signature", "application/x-pkcs7-signature")
MIME_TYPES = ("application/pkcs7-mime", "application/x-pkcs7-mime")
MAX_SIGNATURE_BYTES = 1 << 20  # a detached signature (certificates included) is a few KB
MAX_UNWRAP_DEPTH = 5  # opaque signed data inside opaque signed data ...


@dataclass
class Signature:
    """One S/MIME signature found in the message."""

    part: str  # MIME index of the signed entity (multipart/signed or application/pkcs7-mime), "" for the top
    form: str  # "detached" or "opaque"
    msg_depth: int  # 0: the message itself; >0: inside a forwarded message (message/rfc822)
    result: str  # RFC 7281: pass, fail, policy, neutral, permerror, temperror
    reason: str
    crypto_ok: bool | None = None  # digest and signature verified (None: could not be processed)
    problems: list[str] = field(default_factory=list)  # policy problems: untrusted, expired, usage, mismatch, weak
    signer: str | None = None  # the signer's e-mail address (first one in the certificate)
    signer_emails: list[str] = field(default_factory=list)
    serial: str | None = None
    issuer: str | None = None
    digest_algorithm: str = ""
    signature_algorithm: str = ""
    expected_from: list[str] = field(default_factory=list)
    layer: int = 0  # 0: the outermost signature; 1: a signature inside signed content (nested signing) ...


@dataclass
class SmimeFacts:
    signatures: list[Signature] = field(default_factory=list)
    encrypted: list[tuple[str, int, str]] = field(default_factory=list)  # (part, msg_depth, CMS type)
    authserv_id: str = ""
    verified: bool = False  # False when the rule is disabled: signatures found but not checked
    # inner trees this analyser unwrapped: id(root) -> (From addresses, unwrap depth, signature layer)
    inner: dict = field(default_factory=dict)

    def top_signatures(self) -> list[Signature]:
        """Signatures of the message itself: not of a forwarded message, not nested inside another signature."""
        return [s for s in self.signatures if s.msg_depth == 0 and s.layer == 0]

    def message_result(self) -> str | None:
        """The RFC 7281 result for the message: fail if any of its own signatures fails, else the outermost's."""
        top = self.top_signatures()
        if not top:
            return None
        if any(s.result == "fail" for s in top):
            return "fail"
        return top[0].result


# -- helpers ----------------------------------------------------------------------------------------------------------
_BARE_LF = re.compile(rb"(?<!\r)\n")


def crlf_chunks(chunks):
    """Canonicalise line ends to CRLF across chunk boundaries (RFC 8551 3.1.1), without joining the chunks."""
    prev_cr = False
    for c in chunks:
        if not c:
            continue
        if prev_cr and c[:1] == b"\n":
            out = b"\n" + _BARE_LF.sub(b"\r\n", c[1:])
        else:
            out = _BARE_LF.sub(b"\r\n", c)
        prev_cr = c[-1:] == b"\r"
        yield out


def raw_chunks(part: Part, chunk: int = CHUNK):
    pos = part.start
    while pos < part.end:
        data = part.raw(pos, min(part.end, pos + chunk))
        if not data:
            return
        pos += len(data)
        yield data


def decoded_bytes(part: Part, cap: int) -> bytes:
    out = bytearray()
    for c in part.iter_decoded():
        out += c
        if len(out) > cap:
            raise cms.CmsError(f"S/MIME part over {cap} bytes", "permerror")
    return bytes(out)


def message_from(part: Part, state: SmimeFacts) -> tuple[list[str], int]:
    """From addresses of the message a part belongs to, and how many signatures enclose the part."""
    root = _tree_root(part)
    layer = sum(1 for a in _ancestors(part) if is_signed_multipart(a))
    layer += state.inner.get(id(root), ([], 0, 0))[2]
    p = part
    while p.parent is not None and p.parent.content_type != "message/rfc822":
        p = p.parent
    if p.parent is None and id(p) in state.inner:
        return state.inner[id(p)][0], layer
    try:
        froms = header_addresses([str(v) for v in p.headers.get_all("from", [])])
    except Exception:  # an unparseable From: compare with nothing (the signer cannot match it)
        froms = []
    return froms, layer


def _ancestors(part: Part):
    p = part.parent
    while p is not None:
        yield p
        p = p.parent


def _tree_root(part: Part) -> Part:
    while part.parent is not None:
        part = part.parent
    return part


def is_signed_multipart(part: Part) -> bool:
    if part.content_type != "multipart/signed":
        return False
    proto = (part.param("protocol") or "").strip().lower()
    if proto in SIGNATURE_TYPES:
        return True
    # the protocol parameter is missing or disagrees: trust the signature part's own type
    return len(part.children) >= 2 and part.children[1].content_type in SIGNATURE_TYPES


def pkcs7_mime_kind(part: Part) -> str | None:
    """"signed-data", "enveloped-data", "authEnveloped-data", "compressed-data", "certs-only", or "unknown"
    (to be sniffed from the DER) for application/(x-)pkcs7-mime and .p7m octet-streams; None otherwise."""
    ctype = part.content_type
    if ctype in MIME_TYPES:
        kind = (part.param("smime-type") or "").strip().lower()
        return {"signed-data": "signed-data", "enveloped-data": "enveloped-data",
                "authenveloped-data": "authEnveloped-data", "compressed-data": "compressed-data",
                "certs-only": "certs-only"}.get(kind, "unknown")
    if ctype == "application/octet-stream" and (part.filename or "").lower().endswith(".p7m"):
        return "unknown"
    return None


# -- verification -----------------------------------------------------------------------------------------------------
def verify(sd: cms.SignedData, digest_chunks, content: bytes | None, store, at: dt.datetime,
           expected_from: list[str], allow_weak: bool = True) -> dict:
    """Verify a parsed SignedData over the content (chunks factory) and judge the signer's certificate.
    Returns the fields of a Signature (result, reason, problems, crypto_ok, signer ...)."""
    algs = cms.signer_digest_algorithms(sd)
    digests: dict[str, bytes] = {}
    for alg in algs:
        try:
            digests[alg] = cms.digest_of(alg, digest_chunks())
        except cms.CmsError:
            continue  # verify_signer reports the unsupported algorithm for that signer
    results = [cms.verify_signer(sd, si, digests, content) for si in sd.signer_infos]
    out: dict = {"problems": []}
    first = results[0]
    if first.cert is not None:
        out["signer_emails"] = cert_emails(first.cert)
        out["signer"] = out["signer_emails"][0] if out["signer_emails"] else None
        out["serial"] = format(first.cert.serial_number, "x")
        out["issuer"] = cert_issuer(first.cert)
    out["digest_algorithm"] = first.digest_algorithm
    out["signature_algorithm"] = first.signature_algorithm
    bad = [r for r in results if not r.ok and r.error_kind is None]
    if bad:
        out.update(result="fail", crypto_ok=False, reason=bad[0].reason)
        return out
    errors = [r for r in results if r.error_kind]
    if errors:
        out.update(result=errors[0].error_kind, crypto_ok=None, reason=errors[0].reason)
        return out
    out["crypto_ok"] = True
    reasons = []
    for r in results:
        if store is None:
            break
        chain = store.verify_chain(r.cert, sd.certificates, at)
        if chain.status != "trusted":
            out["problems"].append(chain.status)
            reasons.append(chain.reason)
        usage = usage_problem(r.cert)
        if usage:
            out["problems"].append("usage")
            reasons.append(usage)
    emails = set(out.get("signer_emails") or [])
    if expected_from and not emails.intersection(a.lower() for a in expected_from):
        out["problems"].append("mismatch")
        reasons.append(f"signer {', '.join(sorted(emails)) or '(no address)'} is not the From address "
                       f"{', '.join(expected_from)}")
    if not allow_weak and any(r.digest_algorithm in cms.WEAK_DIGESTS for r in results):
        out["problems"].append("weak")
        reasons.append(f"weak digest algorithm {first.digest_algorithm}")
    out["problems"] = list(dict.fromkeys(out["problems"]))
    if out["problems"]:
        out.update(result="policy", reason="; ".join(reasons))
    else:
        out.update(result="pass", reason=f"signature verified, signer {out.get('signer') or '?'} trusted")
    return out


class Analyser:
    def __init__(self, pack, facts, direction: str, unit: str):
        self.pack, self.facts, self.direction, self.unit = pack, facts, direction, unit
        self.cfg = pack.rule_config("smime", unit, direction) if pack is not None else None
        state = facts.extra.get("smime")
        if state is None:
            state = SmimeFacts(authserv_id=getattr(pack, "authserv_id", "") or "", verified=self.cfg is not None)
            facts.extra["smime"] = state
        self.state = state
        now = time.time()
        self.at = dt.datetime.fromtimestamp(now, dt.timezone.utc)
        self.max_size = getattr(self.cfg, "max_size", 32 * 1024 * 1024)

    def run(self, root: Part) -> None:
        for part in list(root.walk()):
            try:
                if is_signed_multipart(part):
                    self.detached(part)
                else:
                    kind = pkcs7_mime_kind(part)
                    if kind is not None:
                        self.pkcs7_mime(part, kind)
            except Exception as exc:  # a bug or an unforeseen structure: a clear temperror, never silence
                log.exception("S/MIME analysis of part %s failed", part.index or "top")
                froms, layer = message_from(part, self.state)
                self.state.signatures.append(Signature(part.index, "unknown", part.msg_depth, "temperror",
                                                       f"internal error: {exc.__class__.__name__}",
                                                       expected_from=froms, layer=layer))

    def _add(self, part: Part, form: str, fields: dict, froms: list[str], layer: int) -> None:
        self.state.signatures.append(Signature(part=part.index, form=form, msg_depth=part.msg_depth,
                                               expected_from=froms, layer=layer, **fields))

    def detached(self, part: Part) -> None:
        froms, layer = message_from(part, self.state)
        if len(part.children) < 2:
            self._add(part, "detached", {"result": "permerror", "reason": "multipart/signed without a signature "
                                         "part"}, froms, layer)
            return
        content, sig_part = part.children[0], part.children[1]
        if not self.state.verified:
            self._add(part, "detached", {"result": "neutral", "reason": "not verified (rule disabled)"}, froms, layer)
            return
        try:
            sd = cms.parse_signed_data(decoded_bytes(sig_part, MAX_SIGNATURE_BYTES))
            held = None
            if cms.needs_content(sd):
                if content.end - content.start > self.max_size:
                    raise cms.CmsError("signed content too large to verify without signed attributes", "permerror")
                held = b"".join(crlf_chunks(raw_chunks(content)))
            fields = verify(sd, lambda: crlf_chunks(raw_chunks(content)), held, self.cfg.store, self.at, froms,
                            self.cfg.allow_weak_digests)
        except cms.CmsError as exc:
            fields = {"result": exc.kind, "reason": str(exc)}
        self._add(part, "detached", fields, froms, layer)

    def pkcs7_mime(self, part: Part, kind: str) -> None:
        if kind == "certs-only":
            return
        froms, layer = message_from(part, self.state)
        try:
            der = decoded_bytes(part, self.max_size)
            if kind == "unknown":
                kind = {"signed_data": "signed-data", "enveloped_data": "enveloped-data",
                        "authenticated_enveloped_data": "authEnveloped-data",
                        "compressed_data": "compressed-data"}.get(cms.outer_content_type(der), "other")
        except cms.CmsError as exc:
            if kind != "signed-data":
                self.facts.problems.append(f"part {part.index or 'top'}: unreadable S/MIME content: {exc}")
                return
            self._add(part, "opaque", {"result": exc.kind, "reason": str(exc)}, froms, layer)
            self._unreadable(part)
            return
        if kind != "signed-data":
            if kind in ("enveloped-data", "authEnveloped-data", "compressed-data"):
                self._encrypted(part, kind)
            return
        try:
            sd = cms.parse_signed_data(der)
        except cms.CmsError as exc:
            self._add(part, "opaque", {"result": exc.kind, "reason": str(exc)}, froms, layer)
            self._unreadable(part)
            return
        del der
        if sd.econtent is None:
            self._add(part, "opaque", {"result": "permerror", "reason": "opaque signed-data without content"},
                      froms, layer)
            return
        if self.state.verified:
            econtent = sd.econtent
            fields = verify(sd, lambda: [econtent], econtent, self.cfg.store, self.at, froms,
                            self.cfg.allow_weak_digests)
        else:
            fields = {"result": "neutral", "reason": "not verified (rule disabled)"}
        self._add(part, "opaque", fields, froms, layer)
        if sd.content_type == "data":
            self.unwrap(part, sd.econtent, froms, layer + 1)
        elif sd.content_type in ("enveloped_data", "authenticated_enveloped_data"):
            self._encrypted(part, "enveloped-data (inside signed-data)")
        else:
            self.facts.uninspectable.append((f"part {part.index or 'top'}", f"S/MIME signed {sd.content_type}"))

    def _unreadable(self, part: Part) -> None:
        """Opaque signed data we cannot parse may still carry content a client would show: that content was not
        inspected, so the pack's `uninspectable` action applies (the reason deliberately does not start with
        "S/MIME", which classified leaves to smime.on_encrypted)."""
        self.facts.uninspectable.append((f"part {part.index or 'top'}", "opaque signed content could not be read"))

    def _encrypted(self, part: Part, kind: str) -> None:
        self.state.encrypted.append((part.index, part.msg_depth, kind))
        self.facts.uninspectable.append((f"part {part.index or 'top'}", f"S/MIME encrypted ({kind})"))

    def _replace_container(self, part: Part) -> None:
        """The smime.p7m of an opaque signature is not a file the sender attached: its content (unwrapped next) is
        what counts, so the container's own attachment entry is dropped instead of counting the bytes twice."""
        where = part.index or "1"
        for i, a in enumerate(self.facts.attachments):
            if a.part == where and a.content_type == part.content_type:
                self.facts.attachments_total -= a.size
                del self.facts.attachments[i]
                return

    def unwrap(self, part: Part, content: bytes, froms: list[str], layer: int) -> None:
        """Parse the signed content as a MIME entity and run attachment accounting and every analyser on it."""
        depth = self.state.inner.get(id(_tree_root(part)), ([], 0, 0))[1] + 1
        if depth > MAX_UNWRAP_DEPTH:
            self.facts.uninspectable.append((f"part {part.index or 'top'}",
                                             f"S/MIME nesting deeper than {MAX_UNWRAP_DEPTH}"))
            return
        prefix = (part.index + ".1") if part.index else "1"
        spool = tempfile.SpooledTemporaryFile(max_size=1 << 20)
        walker = MimeWalker(limits_from_pack(self.pack))
        inner = None
        try:
            spool.write(content)
            inner = walker.parse(spool, 0, len(content))
            for p in inner.walk():
                p.index = prefix + ("." + p.index if p.index else "")
                p.msg_depth += part.msg_depth
            self.state.inner[id(inner)] = (froms, depth, layer)
            self._replace_container(part)
            inspect_tree(self.pack, inner, self.facts, self.direction, self.unit)
            self.facts.problems.extend(f"signed content of part {part.index or 'top'}: {t}" for t in walker.truncated)
        finally:
            if inner is not None:
                self.state.inner.pop(id(inner), None)
            walker.close()
            spool.close()


def analyse_smime(pack, root: Part, facts, direction: str, unit: str) -> None:
    Analyser(pack, facts, direction, unit).run(root)


ANALYSERS.append(analyse_smime)
