"""Bounded content extraction: the text a content rule can search, and every file a message carries.

For each MIME tree this analyser leaves in the facts:
- `facts.texts`: Subject (RFC 2047 decoded again from the raw header, so a character split across folded encoded
  words survives), text and HTML bodies, attachment names, subjects of attached messages, and the text of
  attachments (DOCX/XLSX/PPTX/ODF, PDF text layer, legacy Office strings, plain text, RTF, TNEF winmail.dat), also
  inside ZIP/TAR/GZIP archives, recursively. All text is NFC-normalised with zero-width characters removed.
- `facts.extra["content"].files`: an AttachmentFact for every file found inside an archive or a TNEF container
  (name, content type detected by libmagic, size, container path). These do NOT count in attachments_total: an
  archive counts its own size (art. 4.4). Top-level attachments get their `detected_type` filled in place.
- `facts.uninspectable`: (where, why) for content that could not be read: password-protected archives, encrypted
  PDF/Office files, archives past the depth, member or expansion limits, parts over the byte limit, time budget.

Every extraction is bounded (bytes per part, total bytes, expansion ratio, members per archive, archive depth,
characters of text kept, a time budget); limits come from the `scan` options of the `classified` rule.
"""
from __future__ import annotations

import bz2
import email.header
import gzip
import codecs
import html
import io
import logging
import lzma
import re
import struct
import tarfile
import tempfile
import time
import unicodedata
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

from ..facts import AttachmentFact, MessageFacts, TextFact
from . import message
from .mime import Limits, MimeWalker, Part, decode_header

log = logging.getLogger(__name__)

HEAD = 8192  # bytes handed to libmagic
MB = 1_000_000


@dataclass
class ScanLimits:
    part_bytes: int = 25 * MB  # decoded bytes of one attachment or archive member that we read
    total_bytes: int = 100 * MB  # bytes decoded or decompressed for one message, all parts together
    max_ratio: int = 100  # an archive member may expand at most this many times its compressed size
    archive_members: int = 1000  # members read per archive
    archive_depth: int = 4  # archives inside archives (a zip in a zip is depth 2)
    text_chars: int = 8_000_000  # characters of text kept per message
    needles: tuple = ()  # stamp words, lower case (from the classified rule): long texts keep only their lines
    pdf_pages: int = 2000
    seconds: float = 10.0  # time budget for the whole message

    @classmethod
    def from_options(cls, scan: dict | None) -> "ScanLimits":
        return cls(**(scan or {}))


class Budget:
    """What is left for one message: bytes, characters of text, time."""

    def __init__(self, limits: ScanLimits):
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds
        self.bytes_left = limits.total_bytes
        self.chars_left = limits.text_chars
        self.timed_out = False

    def time_up(self) -> bool:
        if not self.timed_out and time.monotonic() > self.deadline:
            self.timed_out = True
        return self.timed_out


@dataclass
class ContentScan:
    """Result kept in facts.extra["content"]."""

    files: list[AttachmentFact] = field(default_factory=list)  # files inside archives / TNEF containers
    budget: Budget | None = None
    text_truncated: bool = False


class Unreadable(Exception):
    """Content that cannot be inspected; the message is the `why` recorded in facts.uninspectable."""


# ---------------------------------------------------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------------------------------------------------
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u202a\u202b\u202c\u202d\u202e"
                                    "\u2066\u2067\u2068\u2069"))


def normalise(text: str) -> str:
    """NFC, no zero-width or bidi-control characters, no NULs, \\n line ends."""
    text = text.translate(_INVISIBLE).replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", text)


BODY_WINDOW = 1 << 20
KEEP_WHOLE = 4096  # texts up to this many characters are kept whole (subjects, names, short bodies)


def _body_codec(sample: bytes, charset: str | None) -> str:
    """The codec decode_bytes would pick for this text, judged on its first window."""
    for cs in (charset, "utf-8"):
        if not cs:
            continue
        try:
            codecs.lookup(cs)
            sample.decode(cs)
            return cs
        except LookupError:
            continue
        except UnicodeDecodeError as exc:
            if cs == "utf-8" and exc.start >= len(sample) - 3:
                return cs  # only a character cut at the end of the window
            continue
    if sample[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    return "cp1258"


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Text of a body or file: the declared charset, else UTF-8, else Windows-1258 (Vietnamese)."""
    for cs in (charset, "utf-8"):
        if not cs:
            continue
        try:
            return data.decode(cs)
        except (LookupError, UnicodeDecodeError):
            continue
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16", "replace")
    return data.decode("cp1258", "replace")


_HTML_BLOCK = frozenset({"p", "div", "br", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "table",
                         "title", "blockquote", "pre", "hr", "section", "article", "header", "footer", "ul", "ol",
                         "center", "dt", "dd"})
_HTML_SKIP_OPEN = re.compile(r"<(script|style|head)\b")
# A tag never spans a "<": matching stops at the next one, so the scan is linear even on "<a <a <a ..." (the
# standard html.parser re-scans unclosed tags and takes minutes on 3 MB of them).
_HTML_TAG = re.compile(r"<\s*/?\s*([a-zA-Z][a-zA-Z0-9]*)?[^<>]*>")


def html_to_text(markup: str) -> str:
    """Visible text of HTML: script/style/head dropped, block tags become line breaks, entities decoded.
    Linear in the input, whatever it holds."""
    low = markup.lower()
    kept, pos = [], 0
    while True:
        m = _HTML_SKIP_OPEN.search(low, pos)
        if not m:
            kept.append(markup[pos:])
            break
        kept.append(markup[pos:m.start()])
        end = low.find("</" + m.group(1), m.end())
        if end == -1:
            break  # never closed: a browser shows nothing of the rest either
        close = low.find(">", end)
        pos = len(markup) if close == -1 else close + 1
    text = _HTML_TAG.sub(lambda t: "\n" if (t.group(1) or "").lower() in _HTML_BLOCK else "", "".join(kept))
    return html.unescape(text)


_RTF_TOKEN = re.compile(rb"\\u(-?\d+)\??|\\'([0-9a-fA-F]{2})|\\(par|line|cell|row|tab)\b ?|\\[a-zA-Z]+-?\d* ?|\\[{}\\]|[{}]|[^\\{}]+")


def rtf_to_text(data: bytes) -> str:
    """Rough RTF to text: \\uN escapes, \\'hh bytes (Windows-1258), paragraph marks; control words dropped."""
    out: list[str] = []
    skip_depth = None
    depth = 0
    for m in _RTF_TOKEN.finditer(data):
        tok = m.group(0)
        if tok == b"{":
            depth += 1
            continue
        if tok == b"}":
            if skip_depth is not None and depth <= skip_depth:
                skip_depth = None
            depth -= 1
            continue
        if skip_depth is not None:
            continue
        if tok.startswith(b"\\*") or tok.rstrip() in (b"\\fonttbl", b"\\colortbl", b"\\stylesheet", b"\\info",
                                                      b"\\pict"):
            skip_depth = depth
        elif m.group(1):
            n = int(m.group(1))
            out.append(chr(n + 65536 if n < 0 else n))
        elif m.group(2):
            out.append(bytes([int(m.group(2), 16)]).decode("cp1258", "replace"))
        elif m.group(3):
            out.append(" " if m.group(3) == b"tab" else "\n")
        elif tok.startswith(b"\\"):
            if tok[1:2] in (b"{", b"}", b"\\"):
                out.append(tok[1:2].decode())
        else:
            out.append(tok.replace(b"\r", b"").replace(b"\n", b"").decode("cp1258", "replace"))
    return "".join(out)


_UTF16_RUN = re.compile(rb"(?:[\x20-\x7e\xa0-\xff][\x00]|[\x00-\xff][\x01-\x02\x1e\x20]|\r\x00){4,}")


def ole_strings(data: bytes) -> str:
    """Legacy Office (Word 97-2003, Excel, PowerPoint, Outlook .msg) store Vietnamese text as UTF-16LE:
    the readable runs, one per line."""
    return "\n".join(m.group(0).decode("utf-16-le", "replace") for m in _UTF16_RUN.finditer(data))


# ---------------------------------------------------------------------------------------------------------------------
# XML documents (OOXML and ODF): paragraphs of text, streamed
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class XmlSpec:
    para: frozenset  # local names that end a paragraph (one line of output)
    text: frozenset = frozenset()  # elements whose own text is content (OOXML); ignored in mixed mode
    mixed: bool = False  # ODF: text and tails everywhere are content
    skip: frozenset = frozenset({"delText", "instrText", "annotation", "tracked-changes"})
    space: frozenset = frozenset({"tab", "s"})
    newline: frozenset = frozenset({"br", "cr", "line-break"})


WORD = XmlSpec(para=frozenset({"p"}), text=frozenset({"t"}))
DRAWING = XmlSpec(para=frozenset({"p"}), text=frozenset({"t"}))
SHEET = XmlSpec(para=frozenset({"si", "is", "comment", "oddHeader", "evenHeader", "firstHeader", "oddFooter",
                                "evenFooter", "firstFooter"}),
                text=frozenset({"t", "oddHeader", "evenHeader", "firstHeader", "oddFooter", "evenFooter",
                                "firstFooter"}))
ODF = XmlSpec(para=frozenset({"p", "h"}), mixed=True)
PROPS = XmlSpec(para=frozenset({"title", "subject", "keywords", "description", "category"}), mixed=True)

OOXML_PARTS = [
    (re.compile(r"word/(document|header\d*|footer\d*|footnotes|endnotes|comments)\.xml$"), WORD, None),
    (re.compile(r"ppt/(slides/slide|notesSlides/notesSlide|slideMasters/slideMaster)\d+\.xml$"), DRAWING, None),
    (re.compile(r"xl/(sharedStrings|worksheets/sheet\d+|comments\d*)\.xml$"), SHEET, None),
    (re.compile(r"docProps/core\.xml$"), PROPS, "properties"),
    # Any other XML part: Word finds its main part through _rels/.rels, not by name, so a document whose text
    # lives in "word/main.xml" (or anywhere) opens fine; read every part that can carry text runs.
    (re.compile(r"^(?!.*(?:_rels/|theme/|\[Content_Types\]|styles|settings|fontTable|webSettings|numbering|"
                r"docProps/app|presProps|viewProps|tableStyles|calcChain)).*\.xml$"), WORD, None),
]
ODF_PARTS = [
    (re.compile(r"(content|styles)\.xml$"), ODF, None),
    (re.compile(r"meta\.xml$"), PROPS, "properties"),
]
_XLSX_CODES = re.compile(r'&(?:"[^"]*"|\d+|[A-Za-z])')


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _collect(e, spec: XmlSpec, out: list[str]) -> None:
    name = _local(e.tag)
    if name in spec.skip:
        return
    if name in spec.space:
        out.append(" " * max(1, int(next((v for k, v in e.attrib.items() if _local(k) == "c"), "1") or 1)))
    elif name in spec.newline:
        out.append("\n")
    if (spec.mixed or name in spec.text) and e.text:
        out.append(e.text)
    for c in e:
        _collect(c, spec, out)
        if spec.mixed and c.tail:
            out.append(c.tail)


def xml_paragraphs(stream: BinaryIO, spec: XmlSpec, budget: Budget) -> Iterator[str]:
    """Paragraph texts of an XML part, in document order. Memory stays small: finished paragraphs and
    elements outside paragraphs are cleared as the parser goes."""
    open_paras = 0
    n = 0
    for event, e in ET.iterparse(stream, events=("start", "end")):
        name = _local(e.tag)
        if event == "start":
            if name in spec.para:
                open_paras += 1
            continue
        if name in spec.para:
            open_paras -= 1
            out: list[str] = []
            _collect(e, spec, out)
            text = "".join(out)
            if spec is SHEET and "&" in text:
                text = _XLSX_CODES.sub("\n", text)
            if text.strip():
                yield text
            e.clear()
            n += 1
            if n % 500 == 0 and budget.time_up():
                raise Unreadable(f"time budget of {budget.limits.seconds:g} s exceeded")
        elif open_paras == 0:
            e.clear()


class _CountingReader(io.RawIOBase):
    """Read at most `cap` bytes from `src`, charging the message budget; past the cap, Unreadable."""

    def __init__(self, src: BinaryIO, cap: int, budget: Budget, what: str):
        self.src, self.cap, self.budget, self.what, self.n = src, cap, budget, what, 0

    def readable(self):
        return True

    def readinto(self, b):
        data = self.src.read(len(b))
        self.n += len(data)
        self.budget.bytes_left -= len(data)
        if self.n > self.cap:
            raise Unreadable(f"{self.what} expands past {self.cap} bytes")
        if self.budget.bytes_left < 0:
            raise Unreadable(f"total scan limit of {self.budget.limits.total_bytes} bytes reached")
        b[: len(data)] = data
        return len(data)


# ---------------------------------------------------------------------------------------------------------------------
# Type detection
# ---------------------------------------------------------------------------------------------------------------------
try:
    import magic as _magic

    _MAGIC = _magic.Magic(mime=True)
    _MAGIC_DESC = _magic.Magic()
except Exception as exc:  # libmagic missing: names still work; content detection reports "unknown"
    log.error("libmagic unavailable, content type detection off: %s", exc)
    _MAGIC = _MAGIC_DESC = None


def detect(head: bytes) -> str:
    if _MAGIC is None or not head:
        return "application/x-empty" if not head else "application/octet-stream"
    try:
        return _MAGIC.from_buffer(head)
    except Exception as exc:  # libmagic error on odd bytes: unknown type
        log.warning("libmagic failed: %s", exc)
        return "application/octet-stream"


def describe(head: bytes) -> str:
    if _MAGIC_DESC is None:
        return ""
    try:
        return _MAGIC_DESC.from_buffer(head)
    except Exception as exc:
        log.warning("libmagic failed: %s", exc)
        return ""


def _ole_encrypted(data: bytes, desc: str) -> bool:
    return ("ncrypt" in desc or "E\0n\0c\0r\0y\0p\0t\0e\0d\0P\0a\0c\0k\0a\0g\0e".encode() in data
            or "E\0n\0c\0r\0y\0p\0t\0i\0o\0n\0I\0n\0f\0o".encode() in data)


def _zip_entry_count(f: BinaryIO) -> int | None:
    """Number of entries from the end-of-central-directory record, read before zipfile loads the whole
    directory (a hostile archive could declare millions). None when not found."""
    f.seek(0, io.SEEK_END)
    size = f.tell()
    f.seek(max(0, size - 65557))
    tail = f.read()
    i = tail.rfind(b"PK\x05\x06")
    if i < 0 or len(tail) < i + 22:
        return None
    total = struct.unpack("<H", tail[i + 10:i + 12])[0]
    if total == 0xFFFF:
        j = tail.rfind(b"PK\x06\x06", 0, i)
        if j >= 0 and len(tail) >= j + 40:
            total = struct.unpack("<Q", tail[j + 32:j + 40])[0]
    return total


# ---------------------------------------------------------------------------------------------------------------------
# The scanner
# ---------------------------------------------------------------------------------------------------------------------
class Scanner:
    def __init__(self, facts: MessageFacts, scan: ContentScan, limits: ScanLimits, want_text: bool):
        self.facts, self.scan, self.limits, self.want_text = facts, scan, limits, want_text
        self.budget = scan.budget

    # -- results ----------------------------------------------------------------------------------------------
    def text(self, where: str, text: str) -> None:
        if not self.want_text or not text:
            return
        text = normalise(text)
        if not text.strip():
            return
        if self.limits.needles and len(text) > KEEP_WHOLE:
            # Long texts keep only the lines a stamp could stand on (lines with a stamp word): the content rule
            # matches line by line, and a 20 MB log or CSV then costs a few bytes, not a hold for size.
            # Case-insensitive, so prose that merely uses the word ("mật khẩu") is still there to be judged.
            needles = self.limits.needles
            low = text.lower()
            if not any(n in low for n in needles):
                return  # the usual case: one pass over the text, nothing kept
            text = "\n".join(line for line in text.split("\n") if any(n in line.lower() for n in needles))
            if not text:
                return
        if len(text) > self.budget.chars_left:
            text = text[: max(0, self.budget.chars_left)]
            if not self.scan.text_truncated:
                self.scan.text_truncated = True
                self.unreadable("message", f"text beyond {self.limits.text_chars} characters not scanned")
        self.budget.chars_left -= len(text)
        if text:
            self.facts.texts.append(TextFact(where=where, text=text))

    def unreadable(self, where: str, why: str) -> None:
        entry = (where, why)
        if entry not in self.facts.uninspectable:
            self.facts.uninspectable.append(entry)

    # -- MIME tree --------------------------------------------------------------------------------------------
    def tree(self, root: Part, top: bool) -> None:
        pending = {}
        for a in self.facts.attachments:
            if a.detected_type is None and a.container is None:
                pending[a.part] = a
        for part in root.walk():
            if self.budget.time_up():
                self.unreadable("message", f"time budget of {self.limits.seconds:g} s exceeded")
                return
            where_part = part.index or "1"
            if part is root or (part.parent is not None and part.parent.content_type == "message/rfc822"):
                self._headers(part, "subject" if part is root and top else f"subject of attached message "
                                                                            f"(part {where_part})")
            if part.children or part.content_type.startswith("multipart/") or part.content_type == "message/rfc822":
                continue
            try:
                if part.is_attachment:
                    self._attachment(part, pending.get(where_part))
                elif part.content_type.startswith("text/"):
                    self._body(part)
            except Unreadable as exc:
                self.unreadable(f"part {where_part}", str(exc))

    def _headers(self, part: Part, where: str) -> None:
        raw = [v for k, v in part.headers.raw_items() if k.lower() == "subject"]
        if raw:
            self.text(where, decode_header(str(raw[0])))

    def _read_part(self, part: Part) -> tuple[BinaryIO, int, bool]:
        """Decoded body in a spool, at most part_bytes; (spool, bytes read, complete)."""
        out = tempfile.SpooledTemporaryFile(max_size=1 << 20)
        n, complete = 0, True
        for chunk in part.iter_decoded():
            room = self.limits.part_bytes - n
            if len(chunk) > room:
                out.write(chunk[:room])
                n += room
                complete = False
                break
            out.write(chunk)
            n += len(chunk)
        self.budget.bytes_left -= n
        out.seek(0)
        return out, n, complete

    def _body(self, part: Part) -> None:
        """A text or HTML body, read in windows of about 1 MiB so a 20 MB body is never in memory several times
        over (bytes, text, HTML-stripped text, normalised text). Windows end at a line end (text) or a tag end
        (HTML), so a stamp standing on its own line is never cut in two."""
        spool, n, complete = self._read_part(part)
        where = f"body (part {part.index or '1'})"
        if not complete:
            self.unreadable(where, f"body larger than the scan limit of {self.limits.part_bytes} bytes")
        is_html = part.content_type == "text/html"
        cut_at = b">" if is_html else b"\n"
        decoder = None
        with spool:
            rest = b""
            while True:
                chunk = spool.read(BODY_WINDOW)
                data = rest + chunk
                if not data:
                    break
                if chunk:
                    cut = data.rfind(cut_at) + 1
                    if cut == 0 and len(data) < 4 * BODY_WINDOW:
                        rest = data
                        continue
                    cut = cut or len(data)
                    data, rest = data[:cut], data[cut:]
                else:
                    rest = b""
                if decoder is None:  # the charset is chosen on the first window, as decode_bytes would
                    decoder = codecs.getincrementaldecoder(_body_codec(data, part.param("charset")))("replace")
                text = decoder.decode(data, final=not chunk)
                self.text(where, html_to_text(text) if is_html else text)
                if not chunk:
                    break

    def _attachment(self, part: Part, fact: AttachmentFact | None) -> None:
        name = part.filename
        label = f"attachment {name}" if name else f"attachment (part {part.index or '1'})"
        if name:
            self.text(f"attachment name (part {part.index or '1'})", name)
        spool, n, complete = self._read_part(part)
        with spool:
            head = spool.read(HEAD)
            spool.seek(0)
            detected = detect(head)
            if fact is not None:
                fact.detected_type = detected
            if not complete:
                raise Unreadable(f"larger than the scan limit of {self.limits.part_bytes} bytes")
            if self.budget.bytes_left < 0:
                raise Unreadable(f"total scan limit of {self.limits.total_bytes} bytes reached")
            self.blob(spool, n, name or "", part.content_type, detected, head, label, "", 0,
                      charset=part.param("charset"), part_index=part.index or "1", msg_depth=part.msg_depth)

    # -- one file (attachment, archive member, TNEF attachment) ------------------------------------------------
    def blob(self, f: BinaryIO, size: int, name: str, declared: str, detected: str, head: bytes, label: str,
             container: str, depth: int, charset: str | None = None, part_index: str = "",
             msg_depth: int = 0) -> None:
        lname = name.lower()
        try:
            if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06") or detected == "application/zip":
                self._zip(f, name, label, container, depth, part_index, msg_depth)
            elif detected == "application/pdf" or head.startswith(b"%PDF-"):
                self._pdf(f, label)
            elif head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
                data = f.read()
                if _ole_encrypted(data, describe(head)):
                    raise Unreadable("encrypted Office document")
                self.text(label, ole_strings(data))
            elif head.startswith(b"\x78\x9f\x3e\x22") or detected == "application/vnd.ms-tnef":
                self._tnef(f.read(), name, label, container, depth, part_index, msg_depth)
            elif detected in ("application/gzip", "application/x-gzip", "application/x-bzip2", "application/x-xz"):
                self._compressed(f, detected, name, label, container, depth, part_index, msg_depth)
            elif detected in ("application/x-tar",) or lname.endswith(".tar"):
                self._tar(f, name, label, container, depth, part_index, msg_depth)
            elif detected in ("application/x-rar", "application/vnd.rar", "application/x-7z-compressed",
                              "application/x-arj", "application/x-lzh-compressed", "application/x-ace-compressed",
                              "application/x-cab", "application/vnd.ms-cab-compressed"):
                raise Unreadable(f"archive format {detected} cannot be inspected")
            elif detected == "message/rfc822" or lname.endswith(".eml"):
                self._message(f, size, label, container, depth, part_index, msg_depth)
            elif detected == "text/rtf" or head.startswith(b"{\\rtf"):
                self.text(label, rtf_to_text(f.read()))
            elif detected == "text/html" or declared == "text/html":
                self.text(label, html_to_text(decode_bytes(f.read(), charset)))
            elif detected.startswith("text/") or declared.startswith("text/"):
                self.text(label, decode_bytes(f.read(), charset))
        except Unreadable:
            raise
        except Exception as exc:  # a damaged file: say so, do not crash the message
            raise Unreadable(f"unreadable {detected} ({type(exc).__name__})") from exc

    def _member(self, data_or_file, size: int, name: str, label: str, container: str, depth: int,
                part_index: str, msg_depth: int) -> None:
        """Record a file found in a container, then scan it."""
        f = data_or_file if not isinstance(data_or_file, (bytes, bytearray)) else io.BytesIO(data_or_file)
        head = f.read(HEAD)
        f.seek(0)
        detected = detect(head)
        self.scan.files.append(AttachmentFact(part=part_index, filename=name, content_type="", size=size,
                                              detected_type=detected, container=container, msg_depth=msg_depth))
        try:
            self.blob(f, size, name, "", detected, head, label, container, depth, part_index=part_index,
                      msg_depth=msg_depth)
        except Unreadable as exc:
            self.unreadable(label, str(exc))

    def _enter_archive(self, depth: int, label: str) -> None:
        if depth + 1 > self.limits.archive_depth:
            raise Unreadable(f"archives nested deeper than {self.limits.archive_depth}")
        if self.budget.time_up():
            raise Unreadable(f"time budget of {self.limits.seconds:g} s exceeded")

    def _spool_stream(self, src: BinaryIO, cap: int, what: str) -> tuple[BinaryIO, int]:
        out = tempfile.SpooledTemporaryFile(max_size=1 << 20)
        reader = _CountingReader(src, cap, self.budget, what)
        n = 0
        while True:
            chunk = reader.read(1 << 20)
            if not chunk:
                break
            out.write(chunk)
            n += len(chunk)
            if self.budget.time_up():
                out.close()
                raise Unreadable(f"time budget of {self.limits.seconds:g} s exceeded")
        out.seek(0)
        return out, n

    # -- containers -------------------------------------------------------------------------------------------
    def _zip(self, f, name, label, container, depth, part_index, msg_depth) -> None:
        count = _zip_entry_count(f)
        f.seek(0)
        if count is not None and count > max(self.limits.archive_members, 5000):
            self._enter_archive(depth, label)
            raise Unreadable(f"archive with {count} members (limit {self.limits.archive_members})")
        try:
            zf = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
            raise Unreadable(f"damaged zip archive ({exc})") from exc
        with zf:
            names = zf.namelist()
            if "[Content_Types].xml" in names:
                self._office(zf, OOXML_PARTS, label, container, depth, part_index, msg_depth)
                return
            if "mimetype" in names and any(n in names for n in ("content.xml", "styles.xml")):
                self._office(zf, ODF_PARTS, label, container, depth, part_index, msg_depth)
                return
            self._enter_archive(depth, label)
            here = f"{container}/{name}" if container else f"zip:{name}"
            infos = [i for i in zf.infolist() if not i.is_dir()]
            if len(infos) > self.limits.archive_members:
                self.unreadable(label, f"archive with {len(infos)} members, only {self.limits.archive_members} read")
            for info in infos[: self.limits.archive_members]:
                mlabel = f"{label} > {info.filename}"
                if self.budget.time_up():
                    raise Unreadable(f"time budget of {self.limits.seconds:g} s exceeded")
                if info.flag_bits & 0x1:
                    self.scan.files.append(AttachmentFact(part=part_index, filename=info.filename, content_type="",
                                                          size=info.file_size, container=here, msg_depth=msg_depth))
                    self.unreadable(mlabel, "password-protected archive member")
                    continue
                self.text(f"file name in {label}", info.filename)
                bad = self._member_limits(info.file_size, info.compress_size)
                if bad:
                    self.scan.files.append(AttachmentFact(part=part_index, filename=info.filename, content_type="",
                                                          size=info.file_size, container=here, msg_depth=msg_depth))
                    self.unreadable(mlabel, bad)
                    continue
                try:
                    with zf.open(info) as src:
                        spool, n = self._spool_stream(src, min(info.file_size, self.limits.part_bytes), mlabel)
                except Unreadable as exc:
                    self.scan.files.append(AttachmentFact(part=part_index, filename=info.filename, content_type="",
                                                          size=info.file_size, container=here, msg_depth=msg_depth))
                    self.unreadable(mlabel, str(exc))
                    continue
                except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError,
                        zlib_error, lzma.LZMAError) as exc:
                    self.scan.files.append(AttachmentFact(part=part_index, filename=info.filename, content_type="",
                                                          size=info.file_size, container=here, msg_depth=msg_depth))
                    self.unreadable(mlabel, f"unreadable archive member ({type(exc).__name__}: {exc})")
                    continue
                with spool:
                    self._member(spool, n, info.filename, mlabel, here, depth + 1, part_index, msg_depth)

    def _member_limits(self, size: int, compressed: int) -> str | None:
        if size > self.limits.part_bytes:
            return f"member of {size} bytes over the scan limit of {self.limits.part_bytes} bytes"
        if size > 1 << 20 and size > self.limits.max_ratio * max(compressed, 1):
            return f"member expands {size // max(compressed, 1)} times (limit {self.limits.max_ratio})"
        if size > self.budget.bytes_left:
            return f"total scan limit of {self.limits.total_bytes} bytes reached"
        return None

    def _office(self, zf: zipfile.ZipFile, parts, label, container, depth, part_index, msg_depth) -> None:
        total = 0
        for info in zf.infolist():
            spec = where = None
            for rx, s, w in parts:
                if rx.search(info.filename):
                    spec, where = s, w
                    break
            if "/embeddings/" in info.filename and not info.is_dir():
                bad = self._member_limits(info.file_size, info.compress_size)
                mlabel = f"{label} > {info.filename.rsplit('/', 1)[-1]}"
                if bad:
                    self.unreadable(mlabel, bad)
                    continue
                if depth + 1 > self.limits.archive_depth:
                    self.unreadable(mlabel, f"documents nested deeper than {self.limits.archive_depth}")
                    continue
                with zf.open(info) as src:
                    spool, n = self._spool_stream(src, info.file_size, mlabel)
                here = f"{container}/{label}" if container else f"document:{label.removeprefix('attachment ')}"
                with spool:
                    self._member(spool, n, info.filename.rsplit("/", 1)[-1], mlabel, here, depth + 1, part_index,
                                 msg_depth)
                continue
            if spec is None:
                continue
            bad = self._member_limits(info.file_size, info.compress_size)
            if bad:
                raise Unreadable(f"{info.filename}: {bad}")
            total += info.file_size
            with zf.open(info) as src:
                reader = io.BufferedReader(_CountingReader(src, self.limits.part_bytes, self.budget, info.filename))
                lines = list(xml_paragraphs(reader, spec, self.budget))
            suffix = f" ({where})" if where else ""
            self.text(label + suffix, "\n".join(lines))

    def _pdf(self, f, label) -> None:
        import pypdf
        logging.getLogger("pypdf").setLevel(logging.ERROR)
        try:
            reader = pypdf.PdfReader(f, strict=False)
            if reader.is_encrypted:
                try:
                    ok = reader.decrypt("")
                except Exception as exc:  # unsupported encryption: cannot read
                    raise Unreadable(f"encrypted PDF ({type(exc).__name__})") from exc
                if not ok:
                    raise Unreadable("encrypted PDF")
            pages = reader.pages
            out = []
            for i, page in enumerate(pages):
                if i >= self.limits.pdf_pages:
                    self.unreadable(label, f"PDF pages after {self.limits.pdf_pages} not scanned")
                    break
                if self.budget.time_up():
                    raise Unreadable(f"time budget of {self.limits.seconds:g} s exceeded")
                out.append(page.extract_text() or "")
        except Unreadable:
            raise
        except Exception as exc:  # damaged PDF
            raise Unreadable(f"unreadable PDF ({type(exc).__name__})") from exc
        self.text(label, "\n".join(out))

    def _tnef(self, data, name, label, container, depth, part_index, msg_depth) -> None:
        import tnefparse
        logging.getLogger("tnefparse").setLevel(logging.ERROR)
        self._enter_archive(depth, label)
        try:
            t = tnefparse.TNEF(data)
        except Exception as exc:  # damaged TNEF
            raise Unreadable(f"unreadable TNEF ({type(exc).__name__})") from exc
        here = f"{container}/{name}" if container else f"tnef:{name or 'winmail.dat'}"
        if t.body:
            self.text(f"{label} (body)", decode_bytes(t.body if isinstance(t.body, bytes) else str(t.body).encode()))
        if t.htmlbody:
            hb = t.htmlbody if isinstance(t.htmlbody, str) else decode_bytes(t.htmlbody)
            self.text(f"{label} (body)", html_to_text(hb))
        rtf = t.rtfbody or b""
        if rtf and not rtf.lstrip().startswith(b"{\\rtf"):  # still compressed (tnefparse without compressed_rtf)
            try:
                import compressed_rtf
                rtf = compressed_rtf.decompress(rtf)
            except Exception as exc:  # missing library or damaged body: the other bodies are still read
                log.warning("TNEF RTF body not decompressed: %s", exc)
                rtf = b""
        if rtf:
            self.text(f"{label} (body)", rtf_to_text(rtf))
        for i, att in enumerate(t.attachments[: self.limits.archive_members]):
            try:
                aname = att.long_filename() or att.name or f"attachment {i + 1}"
            except Exception:  # a name tnefparse cannot decode
                aname = f"attachment {i + 1}"
            aname = aname.rstrip("\x00") if isinstance(aname, str) else str(aname)
            adata = att.data or b""
            mlabel = f"{label} > {aname}"
            self.text(f"file name in {label}", aname)
            if len(adata) > self.limits.part_bytes:
                self.unreadable(mlabel, f"over the scan limit of {self.limits.part_bytes} bytes")
                continue
            self._member(adata, len(adata), aname, mlabel, here, depth + 1, part_index, msg_depth)

    def _compressed(self, f, detected, name, label, container, depth, part_index, msg_depth) -> None:
        self._enter_archive(depth, label)
        opener = {"application/x-bzip2": bz2.open, "application/x-xz": lzma.open}.get(detected, gzip.open)
        inner = re.sub(r"\.(gz|tgz|bz2|xz)$", lambda m: ".tar" if m.group(1) == "tgz" else "", name, flags=re.I)
        f.seek(0, io.SEEK_END)
        size = f.tell()
        f.seek(0)
        cap = min(self.limits.part_bytes, max(1 << 20, self.limits.max_ratio * size))
        try:
            with opener(f) as src:
                spool, n = self._spool_stream(src, cap, label)
        except Unreadable:
            raise
        except (OSError, EOFError, lzma.LZMAError) as exc:
            raise Unreadable(f"damaged compressed file ({type(exc).__name__})") from exc
        here = f"{container}/{name}" if container else f"{detected.rsplit('/', 1)[-1]}:{name}"
        with spool:
            self._member(spool, n, inner or "data", f"{label} > {inner or 'data'}", here, depth + 1, part_index,
                         msg_depth)

    def _tar(self, f, name, label, container, depth, part_index, msg_depth) -> None:
        self._enter_archive(depth, label)
        here = f"{container}/{name}" if container else f"tar:{name}"
        try:
            tf = tarfile.open(fileobj=f, mode="r:")
        except tarfile.TarError as exc:
            raise Unreadable(f"damaged tar archive ({exc})") from exc
        with tf:
            count = 0
            for info in tf:
                if not info.isfile():
                    continue
                count += 1
                if count > self.limits.archive_members:
                    self.unreadable(label, f"archive with more than {self.limits.archive_members} members")
                    break
                mlabel = f"{label} > {info.name}"
                self.text(f"file name in {label}", info.name)
                bad = self._member_limits(info.size, info.size)
                if bad:
                    self.unreadable(mlabel, bad)
                    continue
                src = tf.extractfile(info)
                if src is None:
                    continue
                spool, n = self._spool_stream(src, info.size, mlabel)
                with spool:
                    self._member(spool, n, info.name, mlabel, here, depth + 1, part_index, msg_depth)

    def _message(self, f, size, label, container, depth, part_index, msg_depth) -> None:
        """A message file (.eml) inside an archive: its own MIME tree, scanned like the outer one."""
        self._enter_archive(depth, label)
        walker = MimeWalker(Limits(max_parts=200, max_depth=10))
        try:
            root = walker.parse(f, 0, size)
            for p in root.walk():
                if p is root or (p.parent is not None and p.parent.content_type == "message/rfc822"):
                    self._headers(p, f"subject of {label}")
                if p.children or p.content_type.startswith("multipart/") or p.content_type == "message/rfc822":
                    continue
                spool, n, complete = self._read_part(p)
                with spool:
                    head = spool.read(HEAD)
                    spool.seek(0)
                    pname = p.filename or ""
                    if p.is_attachment:
                        if pname:
                            self.text(f"file name in {label}", pname)
                        self._member(spool, n, pname or f"part {p.index}", f"{label} > {pname or p.index}",
                                     f"{container}/{label}", depth + 1, part_index, msg_depth + 1)
                    elif p.content_type.startswith("text/"):
                        self.blob(spool, n, pname, p.content_type, detect(head), head, label, container, depth,
                                  charset=p.param("charset"))
        finally:
            walker.close()


try:
    from zlib import error as zlib_error
except ImportError:  # pragma: no cover
    zlib_error = OSError


# ---------------------------------------------------------------------------------------------------------------------
def _options(pack, unit: str, direction: str):
    """(scan limits, want text, enabled at all) from the rules that read what this analyser produces."""
    if pack is None:
        return ScanLimits(), True, True
    classified = pack.rule_config("classified", unit, direction)
    banned = pack.rule_config("banned-type", unit, direction)
    scan = ScanLimits.from_options(getattr(classified, "scan", None))
    scan.needles = tuple(n.lower() for n in getattr(classified, "needles", ()))
    return scan, classified is not None, classified is not None or banned is not None


def content_analyser(pack, root: Part, facts: MessageFacts, direction: str, unit: str) -> None:
    limits, want_text, enabled = _options(pack, unit, direction)
    if not enabled:
        return
    scan = facts.extra.get("content")
    top = scan is None
    if scan is None:
        scan = ContentScan(budget=Budget(limits))
        facts.extra["content"] = scan
    Scanner(facts, scan, limits, want_text).tree(root, top)


message.ANALYSERS.append(content_analyser)
