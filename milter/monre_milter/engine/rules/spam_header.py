"""Art. 10.2 (no spam), filter mandated by art. 11.5: act on the verdict of a trusted upstream spam filter.

SpamAssassin writes `X-Spam-Flag: YES` and `X-Spam-Status: Yes, score=7.1 required=5.0 ...`; rspamd writes
`X-Spamd-Result: default: True [12.40 / 15.00]; ...` and `X-Spam: Yes`. Anyone can put these headers in a message,
so they are believed only when the connecting client is one of the pack's `organisation.trusted_hosts`: the glue (and
`monre-milter check`) put that flag in `facts.message.extra["spam-header"]["trusted_relay"]`
(`monre_milter.spam.hooks.prepare_facts`). Only the first (topmost, i.e. most recently added) header of each name is
read: that is the one the nearest filter wrote.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..base import Compiled, CompileContext, Rule, register

NUM = r"(-?\d+(?:\.\d+)?)"
SA_STATUS = re.compile(r"^\s*(yes|no)\b(?:.*?\bscore=" + NUM + r")?(?:.*?\brequired=" + NUM + r")?",
                       re.IGNORECASE | re.DOTALL)
RSPAMD_RESULT = re.compile(r"^\s*[\w-]+:\s*(true|false)\s*\[\s*" + NUM + r"\s*/\s*" + NUM + r"\s*\]",
                           re.IGNORECASE)
REPLY = "Message classified as spam by the upstream filter"


@dataclass
class Cfg(Compiled):
    spamassassin: bool = True
    rspamd: bool = True
    score_threshold: float | None = None


def _first(headers: list[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return " ".join(str(v).split())
    return None


def upstream_verdict(cfg: Cfg, headers: list[tuple[str, str]]) -> tuple[str, str] | None:
    """(filter, evidence) when the upstream filter says spam (or its score reaches score_threshold), else None."""
    found: list[tuple[str, str]] = []
    if cfg.spamassassin:
        flag = _first(headers, "X-Spam-Flag")
        status = _first(headers, "X-Spam-Status")
        m = SA_STATUS.match(status) if status else None
        if flag is not None and flag.strip().upper() == "YES":
            found.append(("spamassassin", "X-Spam-Flag: YES"))
        if m:
            yes, score, required = m.group(1).lower() == "yes", m.group(2), m.group(3)
            detail = f"X-Spam-Status: {m.group(1)}" + (f", score={score}" if score else "") + \
                (f" required={required}" if required else "")
            if yes or (cfg.score_threshold is not None and score and float(score) >= cfg.score_threshold):
                found.append(("spamassassin", detail))
    if cfg.rspamd:
        result = _first(headers, "X-Spamd-Result")
        m = RSPAMD_RESULT.match(result) if result else None
        if m:
            is_spam, score, limit = m.group(1).lower() == "true", float(m.group(2)), m.group(3)
            if is_spam or (cfg.score_threshold is not None and score >= cfg.score_threshold):
                found.append(("rspamd", f"X-Spamd-Result: {m.group(1)} [{m.group(2)} / {limit}]"))
        flag = _first(headers, "X-Spam")
        if flag is not None and flag.strip().lower() == "yes":
            found.append(("rspamd", "X-Spam: Yes"))
    if not found:
        return None
    return found[0][0], "; ".join(e for _, e in found)


@register
class SpamHeader(Rule):
    id = "spam-header"
    article = "10.2"
    title = "messages an upstream filter on a trusted host marked as spam"
    options_schema = {
        "spamassassin": {"type": "boolean", "description": "believe X-Spam-Flag / X-Spam-Status"},
        "rspamd": {"type": "boolean", "description": "believe X-Spamd-Result / X-Spam"},
        "score_threshold": {"type": ["number", "null"], "description": "also spam when the upstream score is at "
                            "least this, whatever its own verdict (null: the upstream verdict only)"},
    }
    defaults = {"action": "quarantine", "spamassassin": True, "rspamd": True, "score_threshold": None}

    def compile(self, options: dict, ctx: CompileContext) -> Cfg:
        st = options["score_threshold"]
        return Cfg(action=options["action"], spamassassin=options["spamassassin"], rspamd=options["rspamd"],
                   score_threshold=float(st) if st is not None else None)

    def check_message(self, cfg: Cfg, facts):
        msg = facts.message
        if msg is None or not (msg.extra.get("spam-header") or {}).get("trusted_relay"):
            return []
        v = upstream_verdict(cfg, msg.headers)
        if v is None:
            return []
        flt, evidence = v
        return [self.finding(cfg, "spam", f"trusted upstream {flt} ({facts.connection.client_ip}) says spam: "
                             f"{evidence}", REPLY, code="550", xcode="5.7.1")]
