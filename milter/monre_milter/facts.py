"""Immutable facts about a connection and a message: what the engine decides on.

Connection facts live as long as the SMTP session; envelope and message facts are per transaction (a new MAIL FROM
starts a new one). The milter glue and `monre-milter check` both build these, then call the same engine.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Connection:
    client_ip: str | None = None  # None: not known (e.g. local submission without a client address)
    client_name: str | None = None
    sasl_user: str | None = None  # set when the client authenticated (an outbound submission)


@dataclass
class Envelope:
    mail_from: str = ""  # addr-spec; "" is the null sender (bounces)
    size: int | None = None  # ESMTP SIZE= as announced, if any
    rcpts: list[str] = field(default_factory=list)  # addr-specs, in RCPT order
    queue_id: str | None = None


@dataclass
class AttachmentFact:
    """An attached file as the engine sees it (no contents, only what rules decide on)."""

    part: str  # MIME part index, e.g. "2" or "3.1.2"
    filename: str | None
    content_type: str  # as declared
    size: int  # decoded bytes
    detected_type: str | None = None  # from libmagic, when content detection ran
    container: str | None = None  # "zip:report.zip", ... when found inside an archive
    msg_depth: int = 0
    other_names: tuple[str, ...] = ()  # a Content-Type name= that differs from the Content-Disposition filename=


@dataclass
class TextFact:
    """A piece of text a content rule can search: where it came from and the text (NFC)."""

    where: str  # "subject", "body part 1", "attachment report.docx (header)", ...
    text: str


@dataclass
class MessageFacts:
    header_from: list[str] = field(default_factory=list)  # addr-specs from From:
    reply_to: list[str] = field(default_factory=list)
    sender: list[str] = field(default_factory=list)
    subject: str = ""  # RFC 2047 decoded
    headers: list[tuple[str, str]] = field(default_factory=list)  # (name, value) decoded, in order; for header rules
    attachments: list[AttachmentFact] = field(default_factory=list)
    attachments_total: int = 0  # decoded bytes of all attachments, including inside attached messages
    size: int = 0  # bytes of the message as received
    texts: list[TextFact] = field(default_factory=list)
    uninspectable: list[tuple[str, str]] = field(default_factory=list)  # (where, why) content that could not be read
    problems: list[str] = field(default_factory=list)  # MIME oddities and limits hit while reading
    extra: dict[str, Any] = field(default_factory=dict)  # analyser results keyed by rule id (e.g. "smime", "dnsbl")


@dataclass
class Facts:
    """Everything one verdict is made from."""

    connection: Connection
    envelope: Envelope
    message: MessageFacts | None = None  # None before end of data (RCPT-time checks)
    now: float | None = None  # epoch seconds, for rules that need time (rate-limit, certificate dates)
    direction: str = "inbound"  # set by the engine: "inbound" or "outbound"
    unit: str = "other"  # set by the engine: the appendix-1 unit code the message belongs to, or "other"
