"""Art. 9.1: official mail must not use free-mail addresses (gmail.com, yahoo.com, ...), neither to nor from."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..addresses import DomainSet, normalise_domain, parse_list
from ..base import Compiled, CompileContext, Rule, register

STRINGS = {"type": "array", "items": {"type": "string"}}
TO_FREEMAIL = "Official mail may not go to free-mail addresses"
FROM_FREEMAIL = "Official mail may not come from free-mail addresses"
HEADER_FREEMAIL = "Official mail may not use a free-mail address in {header}"


@dataclass
class Cfg(Compiled):
    domains: DomainSet = field(default_factory=DomainSet)
    exempt: frozenset = frozenset()
    check_headers: bool = True


@register
class Freemail(Rule):
    id = "freemail"
    article = "9.1"
    title = "no free-mail addresses in official mail, to or from"
    options_schema = {
        "lists": {**STRINGS, "description": "files of free-mail domains, one per line (relative to the pack file)"},
        "domains": {**STRINGS, "description": "more free-mail domains, inline"},
        "exempt_recipients": {**STRINGS, "description": "internal addresses that may receive mail from free-mail "
                                                          "senders (e.g. the incident address of art. 10.6)"},
        "check_headers": {"type": "boolean",
                          "description": "also check From / Reply-To / Sender headers, not only the envelope"},
    }
    defaults = {"action": "reject", "lists": [], "domains": [], "exempt_recipients": [], "check_headers": True}

    def compile(self, options: dict, ctx: CompileContext) -> Cfg:
        domains = DomainSet()
        for i, path in enumerate(options["lists"]):
            for d in parse_list(ctx.read_text(path, ("lists", i))):
                domains.add(d)
        for d in options["domains"]:
            domains.add(d)
        # Our own domains are never free-mail, whatever a public list says.
        for d in ctx.internal_domains:
            domains._set.discard(d)
        exempt = frozenset(a.strip().lower() for a in options["exempt_recipients"])
        return Cfg(action=options["action"], domains=domains, exempt=exempt, check_headers=options["check_headers"])

    def check_rcpt(self, cfg: Cfg, facts, rcpt: str):
        if facts.direction == "outbound":
            hit = cfg.domains.match_address(rcpt, routed=True)
            if hit:
                return [self.finding(cfg, "recipient", f"recipient domain {hit} is free-mail", TO_FREEMAIL,
                                     rcpt=rcpt)]
            return []
        hit = cfg.domains.match_address(facts.envelope.mail_from)
        if hit and rcpt.lower() not in cfg.exempt:
            return [self.finding(cfg, "sender", f"envelope sender domain {hit} is free-mail", FROM_FREEMAIL,
                                 rcpt=rcpt)]
        return []

    def check_message(self, cfg: Cfg, facts):
        msg = facts.message
        if facts.direction == "outbound":
            if not cfg.check_headers:
                return []
            for header, addrs in (("From", msg.header_from), ("Reply-To", msg.reply_to), ("Sender", msg.sender)):
                for a in addrs:
                    hit = cfg.domains.match_address(a)
                    if hit:
                        return [self.finding(cfg, "header-" + header.lower(), f"{header} header domain {hit} is "
                                             "free-mail", HEADER_FREEMAIL.format(header=header))]
            return []
        # inbound: the envelope sender was handled per recipient at RCPT time; here the header From.
        if not cfg.check_headers or cfg.domains.match_address(facts.envelope.mail_from):
            return []
        for a in msg.header_from:
            hit = cfg.domains.match_address(a)
            if hit:
                return [self.finding(cfg, "header-from", f"From header domain {hit} is free-mail", FROM_FREEMAIL,
                                     rcpt=r) for r in facts.envelope.rcpts if r.lower() not in cfg.exempt]
        return []


__all__ = ["Freemail", "normalise_domain"]
