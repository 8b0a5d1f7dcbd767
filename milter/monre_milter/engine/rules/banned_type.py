"""Art. 10.2, 11.5: no viruses: executables and scripts are refused, by content and by name, also inside archives.

Two independent tests on every file (top-level attachments, files inside ZIP/TAR/GZIP archives at any depth,
files inside TNEF winmail.dat):
- by content: the type libmagic detects from the first bytes (a PE file named invoice.pdf is still a PE file);
- by decoded name (RFC 2231 / RFC 2047 already undone by the MIME walker): the last extension, after removing
  the tricks used to hide it (bidi overrides such as U+202E, zero-width characters, trailing dots and spaces).
  "invoice.pdf.exe" is reported as a double extension.
The lists are data (policies/lists/banned-types.txt): extensions start with ".", MIME types contain "/".
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ...facts import AttachmentFact
from ..addresses import parse_list
from ..base import Compiled, CompileContext, PackError, Rule, register
from .classified import _ascii

STRINGS = {"type": "array", "items": {"type": "string"}}
REPLY = "Executable or script attachments are not accepted: {name}"
_HIDE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u202a\u202b\u202c\u202d\u202e"
                               "\u2066\u2067\u2068\u2069"))
# Extensions of documents a sender would use as the visible part of a double extension.
_DECOY = {"pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "txt", "rtf", "odt", "jpg", "jpeg", "png", "gif",
          "zip", "rar", "htm", "html", "csv", "mp3", "mp4", "avi", "xml"}


@dataclass
class Cfg(Compiled):
    extensions: frozenset = frozenset()
    mime_types: frozenset = frozenset()


def clean_name(name: str) -> str:
    """The name as the recipient's system would treat it: NFC, no invisible or bidi characters, no trailing
    dots or spaces (Windows drops them), last path component only, lower case."""
    name = unicodedata.normalize("NFC", name.translate(_HIDE))
    name = re.split(r"[/\\]", name)[-1]
    return name.rstrip(". \t").lower()


def extensions_of(name: str) -> list[str]:
    parts = clean_name(name).split(".")
    return [p.strip() for p in parts[1:]] if len(parts) > 1 else []


@register
class BannedType(Rule):
    id = "banned-type"
    article = "11.5"  # 11.5: anti-virus filtering; 10.2: no spreading of harmful mail
    title = "no executables or scripts (art. 10.2, 11.5: viruses), by content and by name, also in archives"
    options_schema = {
        "lists": {**STRINGS, "description": "files of banned types: extensions (.exe) and MIME types "
                                            "(application/x-dosexec), one a line"},
        "extensions": {**STRINGS, "description": "more banned extensions, inline (.exe)"},
        "mime_types": {**STRINGS, "description": "more banned content types, inline, as libmagic names them"},
        "allow_extensions": {**STRINGS, "description": "extensions to take off the lists (e.g. .iso for a unit "
                                                       "that exchanges disk images)"},
    }
    defaults = {"action": "reject", "lists": [], "extensions": [], "mime_types": [], "allow_extensions": []}

    def compile(self, options: dict, ctx: CompileContext) -> Cfg:
        entries: list[tuple[str, tuple]] = []
        for i, path in enumerate(options["lists"]):
            entries += [(e, ("lists", i)) for e in parse_list(ctx.read_text(path, ("lists", i)))]
        entries += [(e, ("extensions", i)) for i, e in enumerate(options["extensions"])]
        entries += [(e, ("mime_types", i)) for i, e in enumerate(options["mime_types"])]
        exts, mimes = set(), set()
        for e, where in entries:
            e = e.strip().lower()
            if "/" in e:
                mimes.add(e)
            elif e.startswith(".") and len(e) > 1 and "." not in e[1:]:
                exts.add(e[1:])
            else:
                raise PackError(f"{e!r} is neither an extension nor a MIME type", where,
                                'write an extension with its dot (".exe") or a type with its slash')
        for e in options["allow_extensions"]:
            exts.discard(e.strip().lower().lstrip("."))
        if not exts and not mimes:
            raise PackError("no banned types configured", ("lists",), "name lists/banned-types.txt or set "
                                                                      "enabled: false")
        return Cfg(action=options["action"], extensions=frozenset(exts), mime_types=frozenset(mimes))

    def judge(self, cfg: Cfg, f: AttachmentFact) -> tuple[str, str, str | None] | None:
        """(result, reason, the name that decided) when the file is banned."""
        where = f" in {f.container}" if f.container else ""
        for name in (f.filename, *f.other_names):
            exts = extensions_of(name) if name else []
            if exts and exts[-1] in cfg.extensions:
                if len(exts) > 1 and exts[-2] in _DECOY:
                    return "double-extension", f"double extension .{exts[-2]}.{exts[-1]}{where}", name
                return "name", f"banned extension .{exts[-1]}{where}", name
        detected = (f.detected_type or "").lower()
        if detected in cfg.mime_types:
            return "content", f"content is {detected}{where}", f.filename
        return None

    def check_message(self, cfg: Cfg, facts):
        msg = facts.message
        content = msg.extra.get("content")
        files = list(msg.attachments) + (list(content.files) if content is not None else [])
        for f in files:
            hit = self.judge(cfg, f)
            if hit:
                result, reason, name = hit
                name = _ascii(name or f"part {f.part}", 80)
                return [self.finding(cfg, result, f"{name}: {reason}", REPLY.format(name=name))]
        return []
