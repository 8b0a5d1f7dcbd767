"""Raw message (a spool) -> MessageFacts. Shared by the milter glue and `monre-milter check`.

Reads the spool through the streaming MIME walker, so memory stays bounded whatever the message size. Analysers
(content extraction, S/MIME) register in ANALYSERS and add to the facts; each is bounded by its own limits.
"""
from __future__ import annotations

import io
import unicodedata
from typing import BinaryIO, Callable

from ..engine.addresses import header_addresses
from ..facts import AttachmentFact, MessageFacts
from .mime import Limits, MimeWalker, Part, decode_header, unescape_8bit

# Each analyser: f(pack, root: Part, facts: MessageFacts, direction: str, unit: str) -> None
ANALYSERS: list[Callable] = []


def limits_from_pack(pack) -> Limits:
    lim = pack.limits if pack is not None else {}
    return Limits(max_parts=lim.get("max_parts", 1000), max_depth=lim.get("max_depth", 20))


def _header_values(part: Part, name: str) -> list[str]:
    """Values as sent, raw 8-bit read as UTF-8 (see mime.unescape_8bit)."""
    name = name.lower()
    return [unescape_8bit(str(v)) for k, v in part.headers.raw_items() if k.lower() == name]


def collect_headers(root: Part, facts: MessageFacts) -> None:
    """Facts from the top-level header block: addresses, subject, header list."""
    facts.header_from = header_addresses(_header_values(root, "from"))
    facts.reply_to = header_addresses(_header_values(root, "reply-to"))
    facts.sender = header_addresses(_header_values(root, "sender"))
    subject = _header_values(root, "subject")
    facts.subject = unicodedata.normalize("NFC", decode_header(subject[0])) if subject else ""
    facts.headers = [(k, unescape_8bit(str(v))) for k, v in root.headers.raw_items()]


def inspect_tree(pack, root: Part, facts: MessageFacts, direction: str, unit: str) -> None:
    """Attachments and analysers over one MIME tree. Analysers that unwrap content (opaque S/MIME) call this
    again on the inner tree, so every rule sees what is inside."""
    for part in root.walk():
        facts.problems.extend(f"part {part.index or 'top'}: {p}" for p in part.problems)
        if part.is_attachment:
            size = part.decoded_size()
            facts.attachments.append(AttachmentFact(part=part.index or "1", filename=part.filename,
                                                    content_type=part.content_type, size=size,
                                                    msg_depth=part.msg_depth, other_names=part.other_names))
            facts.attachments_total += size
    for analyser in ANALYSERS:
        analyser(pack, root, facts, direction, unit)


def analyse(src: BinaryIO, pack=None, direction: str = "inbound", unit: str = "other") -> MessageFacts:
    """Read the message in `src` (seekable, positioned anywhere) and return its facts."""
    src.seek(0, io.SEEK_END)
    size = src.tell()
    walker = MimeWalker(limits_from_pack(pack))
    try:
        root = walker.parse(src, 0, size)
        facts = MessageFacts(size=size)
        collect_headers(root, facts)
        inspect_tree(pack, root, facts, direction, unit)
        facts.problems.extend(walker.truncated)
        facts.uninspectable.extend(("message", why) for why in walker.truncated)
        return facts
    finally:
        walker.close()
