"""Art. 4.4: at most 15 MB of attachments per message (decoded, all attachments together)."""
from __future__ import annotations

from dataclasses import dataclass

from ..base import Compiled, CompileContext, PackError, Rule, register
from ..sizes import format_size, parse_size

SIZE = {"type": "string", "description": 'a size with its unit, e.g. "15 MB" or "15 MiB"'}


@dataclass
class Cfg(Compiled):
    limit: int = 0
    limit_text: str = ""
    wire_limit: int = 0
    wire_text: str = ""


@register
class AttachmentSize(Rule):
    id = "attachment-size"
    article = "4.4"
    title = "attachments are capped per message (decoded size, all attachments together)"
    options_schema = {"limit": SIZE, "wire_limit": SIZE}
    defaults = {"action": "reject", "limit": "15 MB", "wire_limit": "25 MB"}

    def compile(self, options: dict, ctx: CompileContext) -> Cfg:
        limit = parse_size(options["limit"], ("limit",))
        wire = parse_size(options["wire_limit"], ("wire_limit",))
        if wire < limit:
            raise PackError(f"wire_limit {options['wire_limit']} is below limit {options['limit']}", ("wire_limit",),
                            "base64 makes attachments about 37% larger on the wire; use at least 1.4 x limit")
        return Cfg(action=options["action"], limit=limit, limit_text=options["limit"].strip(), wire_limit=wire,
                   wire_text=options["wire_limit"].strip())

    def _too_big(self, cfg: Cfg, size: int, result: str):
        return self.finding(cfg, result, f"message size {size} bytes over the wire limit {cfg.wire_limit}",
                            f"Message size {format_size(size, cfg.wire_text)} exceeds the limit "
                            f"{format_size(cfg.wire_limit, cfg.wire_text)}", code="552", xcode="5.3.4")

    def check_mail_from(self, cfg: Cfg, facts):
        size = facts.envelope.size
        if size is not None and size > cfg.wire_limit:
            return [self._too_big(cfg, size, "announced-size")]
        return []

    def check_message(self, cfg: Cfg, facts):
        msg = facts.message
        if msg.attachments_total > cfg.limit:
            total = format_size(msg.attachments_total, cfg.limit_text)
            limit = format_size(cfg.limit, cfg.limit_text)
            return [self.finding(cfg, "over-limit",
                                 f"attachments total {msg.attachments_total} bytes in {len(msg.attachments)} "
                                 f"file(s), limit {cfg.limit}",
                                 f"Attachments total {total}, limit {limit}", code="552", xcode="5.3.4")]
        if msg.size > cfg.wire_limit:
            return [self._too_big(cfg, msg.size, "message-size")]
        return []
