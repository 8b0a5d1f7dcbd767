"""Art. 10.1: no classified documents (state secrets) by email, sent or received.

A classified document carries a level stamp in capitals, TUYỆT MẬT / TỐI MẬT / MẬT (the list is in the pack: the
law changed in 2026 and forms may change). The stamp stands on its own, so the rule looks for it only there:
- a line or paragraph that is the stamp and nothing else (apart from punctuation, brackets, a box drawn with
  characters), or "Độ mật: MẬT";
- the stamp in square brackets anywhere: "[MẬT]";
- at the start of the subject or of a file name, followed by a separator or the end: "[MẬT] Báo cáo",
  "TỐI MẬT - Kế hoạch", "MẬT_baocao.docx";
- a classification label set by the mail client (Microsoft Purview msip_labels, X-Classification) whose name is
  one of the pack's labels.
Ordinary prose ("mật khẩu", "bảo mật", "Luật Bảo vệ bí mật nhà nước", "văn bản mật") never matches: the stamp
must be upper case, with its diacritics, and stand alone. "GIẢI MẬT" (declassified) is not a stamp, and a document
that carries a declassification stamp is not counted at all.

Content the extractor could not read (facts.uninspectable) gets the pack's `uninspectable` action, by default
quarantine (Postfix hold): never a silent accept and never a tempfail loop.
"""
from __future__ import annotations

import email.header
import re
import unicodedata
from dataclasses import dataclass, field

from ..base import Compiled, CompileContext, PackError, Rule, register
from ..sizes import parse_size
from ..verdict import RULE_ACTIONS

STRINGS = {"type": "array", "items": {"type": "string"}}
REPLY = "Classified documents may not be sent by email: a secrecy marking was found in the {where}"
REPLY_LABEL = "Classified documents may not be sent by email: the message carries a classification label"
SEPARATORS = r"[:\-\u2013\u2014|_.,;/]"
# Reply/forward prefixes a client puts in front of a subject (English, Vietnamese, French Outlook).
SUBJECT_PREFIXES = r"(?i:(?:re|fw|fwd|tr|aw|sv|vs|trả lời|chuyển tiếp)\s*:\s*)*"


@dataclass
class Cfg(Compiled):
    line: re.Pattern | None = None  # a whole line that is a stamp
    bracket: re.Pattern | None = None  # [STAMP] anywhere
    prefix: re.Pattern | None = None  # subject / file name starting with the stamp
    declassified: re.Pattern | None = None  # a whole line that is a declassification stamp
    label_headers: tuple = ()
    labels: frozenset = frozenset()
    uninspectable: str = "quarantine"
    defer: tuple = ()
    scan: dict = field(default_factory=dict)  # limits for the content extractor (extract/content.py ScanLimits)
    needles: tuple = ()  # a word every stamp contains: texts without any of them are not searched


def _nfc(s: str) -> str:
    """NFC, whitespace (including header folding) collapsed to single spaces."""
    return unicodedata.normalize("NFC", " ".join(s.split()))


def _alternatives(stamps: list[str], key: str) -> str:
    forms = []
    for i, s in enumerate(stamps):
        s = _nfc(s)
        if not s:
            raise PackError("empty stamp", (key, i))
        words = s.split()
        forms.append(r"[ \t\u00a0\u2000-\u200a\u3000]+".join(re.escape(w) for w in words))
    # longest first, so "TỐI MẬT" wins over "MẬT"
    forms.sort(key=len, reverse=True)
    return "(?:" + "|".join(forms) + ")"


def parse_msip_labels(value: str) -> list[str]:
    """Label names from a Microsoft Purview msip_labels header: MSIP_Label_<guid>_Name=<name>; ..."""
    return [m.group(1).strip() for m in re.finditer(r"MSIP_Label_[0-9a-fA-F-]+_Name=([^;]*)", value)]


@register
class Classified(Rule):
    id = "classified"
    article = "10.1"
    title = "no classified (state-secret) documents by email, sent or received"
    options_schema = {
        "stamps": {**STRINGS, "description": "secrecy stamps, upper case with diacritics (TUYỆT MẬT, TỐI MẬT, MẬT)"},
        "declassified": {**STRINGS, "description": "stamps that lift the secrecy of a document (GIẢI MẬT)"},
        "label_headers": {**STRINGS, "description": "headers carrying a client classification label "
                                                    "(msip_labels is parsed for its label names)"},
        "labels": {**STRINGS, "description": "label names that mean classified (compared case-insensitively)"},
        "uninspectable": {"enum": list(RULE_ACTIONS),
                          "description": "action for content that cannot be inspected (encrypted, too deep...)"},
        "uninspectable_defer": {**STRINGS, "description": "reasons (prefixes) of uninspectable content another rule "
                                                          "decides on, e.g. S/MIME encryption (smime.on_encrypted)"},
        "scan": {
            "type": "object", "additionalProperties": False,
            "description": "limits of the content extraction (per message)",
            "properties": {
                "part_bytes": {"type": "string", "description": 'bytes read of one attachment, e.g. "25 MB"'},
                "total_bytes": {"type": "string", "description": "bytes decoded or decompressed per message"},
                "max_ratio": {"type": "integer", "minimum": 1, "description": "expansion ratio of a member"},
                "archive_members": {"type": "integer", "minimum": 1},
                "archive_depth": {"type": "integer", "minimum": 3, "description": "archives in archives"},
                "text_chars": {"type": "integer", "minimum": 1000},
                "pdf_pages": {"type": "integer", "minimum": 1},
                "seconds": {"type": "number", "exclusiveMinimum": 0, "description": "time budget per message"},
            },
        },
    }
    defaults = {"action": "reject", "stamps": ["TUYỆT MẬT", "TỐI MẬT", "MẬT"], "declassified": ["GIẢI MẬT"],
                "label_headers": ["X-Classification", "msip_labels"], "labels": [],
                "uninspectable": "quarantine", "uninspectable_defer": ["S/MIME"], "scan": {}}

    def compile(self, options: dict, ctx: CompileContext) -> Cfg:
        if not options["stamps"]:
            raise PackError("at least one stamp is needed", ("stamps",), "or set enabled: false")
        stamp = _alternatives(options["stamps"], "stamps")
        # A word character is a letter or digit: "[^\w\n]" is punctuation, spaces, box-drawing characters.
        line = re.compile(rf"^[^\w\n]*(?:(?i:độ mật|mức độ mật)[ \t]*:[ \t]*)?({stamp})[^\w\n]*$", re.M)
        bracket = re.compile(rf"\[[ \t]*({stamp})[ \t]*\]")
        prefix = re.compile(rf"^{SUBJECT_PREFIXES}[\[(\s*]*({stamp})[ \t]*(?:[\])]|{SEPARATORS}|$)", re.M)
        declass = None
        if options["declassified"]:
            d = _alternatives(options["declassified"], "declassified")
            declass = re.compile(rf"^[^\w\n]*({d})[^\w\n]*$|\[[ \t]*({d})[ \t]*\]", re.M)
        # Every stamp pattern matches its words literally, so a text lacking the last word of every stamp cannot
        # match: a cheap `in` test skips the regular expressions for almost all mail.
        needles = tuple(sorted({_nfc(s).split()[-1] for s in options["stamps"]}))
        scan = dict(options["scan"])
        for key in ("part_bytes", "total_bytes"):
            if key in scan:
                scan[key] = parse_size(scan[key], ("scan", key))
        return Cfg(action=options["action"], line=line, bracket=bracket, prefix=prefix, declassified=declass,
                   label_headers=tuple(h.lower() for h in options["label_headers"]),
                   labels=frozenset(_nfc(x).casefold() for x in options["labels"]),
                   uninspectable=options["uninspectable"],
                   defer=tuple(options["uninspectable_defer"]), scan=scan, needles=needles)

    # -- matching (also used by the labelled-set test) ------------------------------------------------------------
    def match_text(self, cfg: Cfg, where: str, text: str) -> str | None:
        """The stamp found in one text, or None."""
        if cfg.declassified is not None and cfg.declassified.search(text):
            return None
        is_name = where.startswith(("attachment name", "file name"))
        is_subject = where.startswith("subject")
        if is_name or is_subject:
            value = text.strip()
            if is_name:
                value = re.sub(r"(\.[A-Za-z0-9]{1,5})+$", "", value.rsplit("/", 1)[-1])
            m = cfg.prefix.search(value)
            if m:
                return m.group(1)
            m = cfg.bracket.search(value) or (cfg.line.search(value) if is_subject else None)
            return m.group(1) if m else None
        m = cfg.line.search(text) or cfg.bracket.search(text)
        return m.group(1) if m else None

    def check_message(self, cfg: Cfg, facts):
        msg = facts.message
        out = []
        # A declassification stamp anywhere in a document (header, body...) lifts the stamps of that document.
        texts = [t for t in msg.texts if any(n in t.text for n in cfg.needles)]
        lifted = {t.where for t in texts if cfg.declassified is not None and cfg.declassified.search(t.text)}
        for t in texts:
            if t.where in lifted:
                continue
            stamp = self.match_text(cfg, t.where, t.text)
            if stamp:
                where = _ascii(t.where)
                out.append(self.finding(cfg, "marking", f"secrecy stamp in {where}", REPLY.format(where=where)))
                break
        if not out and cfg.labels:
            for name, value in msg.headers:
                if name.lower() not in cfg.label_headers:
                    continue
                value = _decode_words(value)
                names = parse_msip_labels(value) if name.lower() == "msip_labels" else [value]
                for label in names:
                    if _nfc(label).casefold() in cfg.labels:
                        out.append(self.finding(cfg, "label", f"classification label in {name}: "
                                                f"{_ascii(_nfc(label))}", REPLY_LABEL))
                        break
                if out:
                    break
        unread = [(w, why) for w, why in msg.uninspectable if not why.startswith(cfg.defer)] if cfg.defer \
            else list(msg.uninspectable)
        if unread:
            where, why = unread[0]
            more = f" (+{len(unread) - 1} more)" if len(unread) > 1 else ""
            out.append(self.finding(cfg, "uninspectable", f"{_ascii(where)}: {_ascii(why)}{more}",
                                    "Message content could not be inspected", action=cfg.uninspectable))
        return out


def _decode_words(value: str) -> str:
    """RFC 2047 encoded words in a header value (facts.headers keeps them as sent)."""
    if "=?" not in value:
        return value
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except Exception:  # malformed encoded words: compare the raw text
        return value


def _ascii(s: str, limit: int = 120) -> str:
    """One line of ASCII for logs and SMTP replies: Vietnamese letters lose their marks (đ -> d)."""
    s = unicodedata.normalize("NFKD", " ".join(s.replace("đ", "d").replace("Đ", "D").split()))
    s = "".join(c for c in s if not unicodedata.combining(c))
    s = "".join(c if 32 <= ord(c) < 127 else "?" for c in s)
    return s if len(s) <= limit else s[: limit - 3] + "..."
