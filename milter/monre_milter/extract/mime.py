"""A bounded, streaming MIME walker over a spooled message.

Why not `email.message_from_binary_file`: the standard parser keeps every body line as a Python string and then the
whole payload again, so one 21 MB message costs ~250 MB. Here the body stays in the spool (memory or temp file); we
keep only offsets. Header blocks (small, capped) are still parsed by the standard library (`email.parser`), which
does RFC 2047 / RFC 2231 decoding, parameters and content types; this module only finds boundaries and decodes
transfer encodings in chunks.

Every part knows the byte range it came from in its source, so rules that need original bytes (S/MIME verifies
the signed part exactly as sent) can slice them without re-serialising.
"""
from __future__ import annotations

import binascii
import email.header
import email.message
import email.parser
import email.utils
import email.policy
import io
import re
import tempfile
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

CHUNK = 1 << 20  # bytes read at a time when scanning or decoding a body

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NON_B64 = bytes(b for b in range(256) if b not in _B64_ALPHABET)
# compat32: header values stay raw strings; only the few headers rules need are decoded, on demand. The modern
# policy parses every header into objects up front, which cost more than the rest of a small message.
_HEADER_PARSER = email.parser.BytesParser(policy=email.policy.compat32)


@dataclass
class Limits:
    """Hard caps so a hostile message cannot exhaust the milter."""

    max_parts: int = 1000
    max_depth: int = 20  # nesting of multiparts and attached messages
    max_header_bytes: int = 256 * 1024  # per header block


@dataclass
class Part:
    """One MIME entity: its headers (parsed) and where its bytes are in `src`."""

    index: str  # "1", "1.2", ... ("" for the top-level message)
    src: BinaryIO
    start: int  # first byte of the entity's header block
    body_start: int
    end: int  # one past the last byte of the body
    headers: email.message.Message  # header block only (compat32)
    msg_depth: int  # how many message/rfc822 levels above this part
    parent: "Part | None" = None
    children: list["Part"] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    # -- header-derived properties (all tolerant of malformed headers) -------------------------------------------
    @property
    def content_type(self) -> str:
        try:
            return self.headers.get_content_type()
        except Exception:  # malformed Content-Type: the standard library falls back, we do the same
            return "text/plain"

    def param(self, name: str) -> str | None:
        try:
            value = self.headers.get_param(name, header="content-type")
        except Exception:
            return None
        if value is None:
            return None
        if not isinstance(value, str):
            value = email.utils.collapse_rfc2231_value(value)
        return unescape_8bit(value)

    @property
    def filename(self) -> str | None:
        """Decoded file name (Content-Disposition filename, RFC 2231 / RFC 2047; else Content-Type name)."""
        try:
            name = self.headers.get_filename()
        except Exception:
            name = None
        if name is None:
            name = self.param("name")
        if name:
            name = decode_header(name)
        return name or None

    @property
    def other_names(self) -> tuple[str, ...]:
        """Names the part also carries: mail clients differ on which of filename= and name= they show, so a
        rule on names must judge both ("invoice.pdf" in one, "invoice.exe" in the other)."""
        main = self.filename
        other = self.param("name")
        other = decode_header(other) if other else None
        return (other,) if other and other != main else ()

    @property
    def disposition(self) -> str | None:
        try:
            return self.headers.get_content_disposition()
        except Exception:
            return None

    @property
    def cte(self) -> str:
        value = self.headers.get("content-transfer-encoding", "")
        return str(value).strip().lower() if value else "7bit"

    @property
    def is_multipart(self) -> bool:
        return bool(self.children) or self.content_type.startswith("multipart/")

    @property
    def is_attachment(self) -> bool:
        """A file the sender attached (art. 4.4 counts these): disposition attachment, a file name, or a leaf
        that is not a text body. S/MIME signatures are not user content."""
        if self.children or self.content_type.startswith("multipart/") or self.content_type == "message/rfc822":
            return False
        if self.content_type in ("application/pkcs7-signature", "application/x-pkcs7-signature"):
            return False
        if self.disposition == "attachment" or self.filename:
            return True
        return self.content_type not in ("text/plain", "text/html", "text/enriched", "text/rfc822-headers")

    # -- bytes ---------------------------------------------------------------------------------------------------
    def raw(self, start: int | None = None, end: int | None = None) -> bytes:
        """Original bytes of [start, end) (default: the whole entity). Callers bound the size."""
        s = self.start if start is None else start
        e = self.end if end is None else end
        self.src.seek(s)
        return self.src.read(e - s)

    def iter_decoded(self, chunk: int = CHUNK) -> Iterator[bytes]:
        """The body with its transfer encoding undone, in chunks; memory stays at about `chunk`."""
        cte = self.cte
        if cte == "base64":
            yield from _iter_b64(self.src, self.body_start, self.end, chunk)
        elif cte == "quoted-printable":
            yield from _iter_qp(self.src, self.body_start, self.end, chunk)
        elif cte in ("x-uuencode", "uuencode", "x-uue", "uue"):
            yield from _iter_uu(self.src, self.body_start, self.end, chunk)
        else:
            yield from _iter_range(self.src, self.body_start, self.end, chunk)

    def decoded_size(self) -> int:
        if self.cte == "base64":
            return _b64_size(self.src, self.body_start, self.end)
        return sum(len(c) for c in self.iter_decoded())

    def decoded_spool(self, max_memory: int = 1 << 20) -> BinaryIO:
        """The decoded body in a spooled temporary file (memory up to `max_memory`, then disk), positioned at 0."""
        out = tempfile.SpooledTemporaryFile(max_size=max_memory)
        for c in self.iter_decoded():
            out.write(c)
        out.seek(0)
        return out

    def walk(self) -> Iterator["Part"]:
        yield self
        for c in self.children:
            yield from c.walk()


def unescape_8bit(value: str) -> str:
    """Header text parsed from bytes carries raw 8-bit bytes as lone surrogates (surrogateescape). Clients that send
    unencoded UTF-8 (SMTPUTF8, or simply careless) must be read as UTF-8, else "[MẬT]" would hide as "[M??T]".
    Windows-1258 (Vietnamese) is the fallback for 8-bit text that is not UTF-8, then Latin-1, which never fails."""
    if value.isascii() or not any("\udc80" <= c <= "\udcff" for c in value):
        return value
    raw = value.encode("utf-8", "surrogateescape")
    for codec in ("utf-8", "cp1258", "latin-1"):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def _has_8bit(value) -> bool:
    return isinstance(value, str) and not value.isascii() and any("\udc80" <= c <= "\udcff" for c in value)


def decode_header(raw: str) -> str:
    """An unstructured header (Subject, a file name) as text: raw 8-bit read as UTF-8, RFC 2047 words decoded, with
    adjacent encoded words of one charset joined first so a character split across folded words comes out whole.
    Tolerant: broken encoded words stay as sent (still searchable)."""
    raw = re.sub(r"\r?\n[ \t]", " ", unescape_8bit(str(raw)))
    if "=?" not in raw:
        return raw.strip()
    try:
        pieces = email.header.decode_header(raw)
    except Exception:  # malformed encoded words: keep the raw text
        return raw.strip()
    out = []
    for chunk, cs in pieces:
        if isinstance(chunk, str):
            out.append(chunk)
        else:
            try:
                out.append(chunk.decode(cs or "ascii", "replace"))
            except LookupError:  # an unknown charset name
                out.append(chunk.decode("utf-8", "replace"))
    return "".join(out).strip()


def _iter_range(src: BinaryIO, start: int, end: int, chunk: int) -> Iterator[bytes]:
    pos = start
    while pos < end:
        src.seek(pos)
        data = src.read(min(chunk, end - pos))
        if not data:
            return
        pos += len(data)
        yield data


def _iter_b64(src: BinaryIO, start: int, end: int, chunk: int) -> Iterator[bytes]:
    rest = b""
    for data in _iter_range(src, start, end, chunk):
        data = rest + data.translate(None, _NON_B64 + b"=")
        cut = len(data) - len(data) % 4
        rest = data[cut:]
        if cut:
            yield binascii.a2b_base64(data[:cut])
    if len(rest) >= 2:  # a final group without its padding: decode what it carries
        yield binascii.a2b_base64(rest + b"=" * (4 - len(rest)))


def _b64_size(src: BinaryIO, start: int, end: int) -> int:
    n = 0
    for data in _iter_range(src, start, end, CHUNK):
        n += len(data.translate(None, _NON_B64 + b"="))
    return n // 4 * 3 + max(0, n % 4 - 1)


def _iter_qp(src: BinaryIO, start: int, end: int, chunk: int) -> Iterator[bytes]:
    rest = b""
    for data in _iter_range(src, start, end, chunk):
        data = rest + data
        cut = data.rfind(b"\n") + 1  # decode whole lines only: a soft break "=\n" must not be split
        if cut == 0 and len(data) < 4 * chunk:
            rest = data
            continue
        cut = cut or len(data)
        rest = data[cut:]
        yield binascii.a2b_qp(data[:cut])
    if rest:
        yield binascii.a2b_qp(rest)


def _iter_lines(src: BinaryIO, start: int, end: int, chunk: int) -> Iterator[bytes]:
    rest = b""
    for data in _iter_range(src, start, end, chunk):
        lines = (rest + data).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def _iter_uu(src: BinaryIO, start: int, end: int, chunk: int) -> Iterator[bytes]:
    """uuencoded bodies (old Outlook, some gateways): the lines between "begin" and "end"."""
    inside = False
    for line in _iter_lines(src, start, end, chunk):
        line = line.rstrip(b"\r")
        if not inside:
            inside = line.startswith(b"begin ")
            continue
        if line.strip() in (b"end", b"`") or not line.strip():
            if line.strip() == b"end":
                return
            continue
        try:
            yield binascii.a2b_uu(line)
        except binascii.Error:
            # A line some encoders pad wrongly: decode what its length byte announces, as the stdlib does.
            n = ((line[0] - 32) & 63) * 4 // 3 + 3 & ~3 if line else 0
            try:
                yield binascii.a2b_uu(line[:n + 1])
            except binascii.Error:
                continue  # an undecodable line carries nothing we can count


class MimeWalker:
    """Parse a spooled message into a tree of `Part`s, reading the body in chunks."""

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits()
        self.count = 0
        self.truncated: list[str] = []  # why the walk stopped early, if it did
        self._temp: list[BinaryIO] = []  # spools created for base64-encoded attached messages

    def parse(self, src: BinaryIO, start: int = 0, end: int | None = None) -> Part:
        if end is None:
            src.seek(0, io.SEEK_END)
            end = src.tell()
        return self._entity(src, start, end, "", 0, None, default_type="text/plain")

    def close(self) -> None:
        for f in self._temp:
            f.close()
        self._temp.clear()

    # ------------------------------------------------------------------------------------------------------------
    def _entity(self, src, start, end, index, msg_depth, parent, default_type) -> Part:
        self.count += 1
        header_bytes, body_start, problems = read_header_block(src, start, end, self.limits.max_header_bytes)
        if problems:  # headers past the cap would be read as body: what they say (a file name, a type) is unseen
            self.truncated.append(f"part {index or 'top'}: {problems[0]}")
        try:
            headers = _HEADER_PARSER.parsebytes(header_bytes, headersonly=True)
        except Exception as exc:  # the standard parser is tolerant; this guards against the unexpected
            headers = email.message.Message()
            problems.append(f"unparseable headers: {type(exc).__name__}")
        if any(_has_8bit(v) for _, v in headers.raw_items()):
            # Raw 8-bit header values (unencoded UTF-8): store them as text once, so every later look-up (file
            # names, parameters, subject) sees "tài liệu.exe" rather than a Header object printing "t??i li??u.exe".
            # compat32 keeps headers as a plain (name, value) list; replacing it keeps order and duplicates.
            headers._headers = [(k, unescape_8bit(v) if isinstance(v, str) else v) for k, v in headers._headers]
        if default_type != "text/plain" and "content-type" not in headers:
            headers.set_default_type(default_type)
        part = Part(index, src, start, body_start, end, headers, msg_depth, parent, problems=problems)
        depth = index.count(".") + (1 if index else 0) + msg_depth
        ctype = part.content_type
        if ctype.startswith("multipart/"):
            if depth >= self.limits.max_depth:
                self.truncated.append(f"nesting deeper than {self.limits.max_depth} at part {index or 'top'}")
                return part
            boundary = part.param("boundary")
            # RFC 2046: 1 to 70 characters from a restricted ASCII set. Without a usable boundary the parts cannot
            # be found, and content nobody inspected must not pass as an empty message.
            if not boundary or not boundary.isascii() or len(boundary) > 200:
                self.truncated.append(f"part {index or 'top'}: multipart without a usable boundary")
                return part
            child_default = "message/rfc822" if ctype == "multipart/digest" else "text/plain"
            for n, (s, e) in enumerate(_split_multipart(src, body_start, end, boundary.encode("ascii")), 1):
                if self.count >= self.limits.max_parts:
                    self.truncated.append(f"more than {self.limits.max_parts} parts")
                    break
                child_index = f"{index}.{n}" if index else str(n)
                part.children.append(self._entity(src, s, e, child_index, msg_depth, part, child_default))
            if not part.children and any(c.strip() for c in _iter_range(src, body_start, end, CHUNK)):
                self.truncated.append(f"part {index or 'top'}: multipart whose boundary never occurs")
        elif ctype == "message/rfc822" and body_start < end:
            if depth >= self.limits.max_depth:
                self.truncated.append(f"nesting deeper than {self.limits.max_depth} at part {index or 'top'}")
                return part
            if self.count >= self.limits.max_parts:
                self.truncated.append(f"more than {self.limits.max_parts} parts")
                return part
            if part.cte in ("base64", "quoted-printable"):
                inner = part.decoded_spool()
                self._temp.append(inner)
                inner.seek(0, io.SEEK_END)
                s, e, isrc = 0, inner.tell(), inner
            else:
                s, e, isrc = body_start, end, src
            child_index = f"{index}.1" if index else "1"
            part.children.append(self._entity(isrc, s, e, child_index, msg_depth + 1, part, "text/plain"))
        return part


_HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:|From |\r?\n")  # a field name, mbox "From ", or the blank line


def read_header_block(src: BinaryIO, start: int, end: int, cap: int) -> tuple[bytes, int, list[str]]:
    """Header bytes of the entity at `start` and where its body starts (after the blank line)."""
    src.seek(start)
    limit = min(end - start, cap)
    block = src.read(limit)
    # An entity that starts with an empty line, or with a line that is no header field, has no headers.
    if block and not _HEADER_LINE.match(block):
        return b"", start, []
    if block.startswith(b"\r\n"):
        return b"", start + 2, []
    if block.startswith(b"\n"):
        return b"", start + 1, []
    m = re.search(rb"\r?\n\r?\n", block)
    if m:
        return block[: m.end()], start + m.end(), []
    if len(block) < end - start:
        return block, start + len(block), [f"header block over {cap} bytes"]
    return block, end, []  # headers only, no body


def _split_multipart(src: BinaryIO, start: int, end: int, boundary: bytes) -> Iterator[tuple[int, int]]:
    """Yield (start, end) of each body part between delimiter lines `--boundary`.

    Per RFC 2046 the CRLF before a delimiter belongs to the delimiter. The preamble and the epilogue are skipped.
    A missing close delimiter ends the last part at the end of the region.
    """
    marker = b"\n--" + boundary
    part_start: int | None = None

    def delimiters() -> Iterator[int]:
        src.seek(start)
        if src.read(len(boundary) + 2) == b"--" + boundary:  # a delimiter may open the region directly
            yield start
        p, carry = start, b""
        while p < end:
            src.seek(p)
            data = src.read(min(CHUNK, end - p))
            if not data:
                return
            buf, base = carry + data, p - len(carry)
            i = buf.find(marker)
            while i != -1:
                yield base + i + 1
                i = buf.find(marker, i + 1)
            p += len(data)
            carry = buf[-(len(marker) - 1):]  # too short to hold a whole marker: no hit is reported twice

    for at in delimiters():
        # read the rest of the delimiter line
        src.seek(at + 2 + len(boundary))
        tail = src.read(2)
        line_end = _line_end(src, at, end)
        if tail.startswith(b"--"):
            close = True
        elif not tail or tail[:1] in b" \t\r\n":
            close = False
        else:
            continue  # "--boundaryX": a longer boundary, not ours
        if part_start is not None:
            part_end = at - 1  # drop the "\n" before "--"
            src.seek(part_end - 1)
            if part_end > part_start and src.read(1) == b"\r":
                part_end -= 1
            yield part_start, max(part_start, part_end)
        if close:
            return
        part_start = line_end
    if part_start is not None and part_start < end:
        yield part_start, end


def _line_end(src: BinaryIO, at: int, end: int) -> int:
    src.seek(at)
    line = src.readline(4096)
    return min(end, at + len(line))


def parse(src: BinaryIO, limits: Limits | None = None) -> tuple[Part, MimeWalker]:
    walker = MimeWalker(limits)
    return walker.parse(src), walker
