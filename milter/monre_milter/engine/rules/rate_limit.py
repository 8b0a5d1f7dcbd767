"""Art. 10.2 ("không phát tán thư rác": do not spread spam): an authenticated account sending to more recipients
than the pack allows in a window is tempfailed at RCPT time, the sign of a compromised mailbox.

Art. 10.2 is the user's duty that a compromised account breaks; art. 11.5 (the IT department installs spam
filtering) is only the mandate for having the filter, so findings name 10.2.

Counting: the compiled options hold the process-wide `RateStore` (see `monre_milter.spam.rate` for why the count lives
there and not in facts). Each recipient the rule lets through adds 1 for the account; once the window holds `limit`
recipients, that recipient and every later one is answered 451 4.7.1 and reported as a finding: result
"over-limit" for the first refusal of a burst (the incident metrics and the journal count), "over-limit-repeat" for
the recipients refused after it until the account has stayed quiet for a whole window. Refused recipients are not counted, so a client
that keeps retrying gets through again as soon as the window slides.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..base import Compiled, CompileContext, Rule, register

STRINGS = {"type": "array", "items": {"type": "string"}}


@dataclass
class Cfg(Compiled):
    limit: int = 0
    window: int = 3600
    exempt: frozenset = frozenset()
    store: Any = None


def _window_text(seconds: int) -> str:
    if seconds % 3600 == 0:
        h = seconds // 3600
        return "hour" if h == 1 else f"{h} hours"
    if seconds % 60 == 0:
        m = seconds // 60
        return "minute" if m == 1 else f"{m} minutes"
    return f"{seconds} seconds"


@register
class RateLimit(Rule):
    id = "rate-limit"
    article = "10.2"
    title = "an authenticated account may send to at most N recipients per window (compromised mailboxes)"
    options_schema = {
        "limit": {"type": "integer", "minimum": 1, "description": "recipients per window per account"},
        "window": {"type": "integer", "minimum": 1, "maximum": 604800, "description": "window length in seconds"},
        "exempt": {**STRINGS, "description": "accounts (SASL login names) never limited, e.g. a mailing-list robot"},
        "store": {"enum": ["memory"], "description": "where counts live: memory (this process)"},
        "max_accounts": {"type": "integer", "minimum": 1, "description": "accounts tracked at most (memory bound)"},
    }
    defaults = {"action": "tempfail", "limit": 200, "window": 3600, "exempt": [], "store": "memory",
                "max_accounts": 100000}

    def compile(self, options: dict, ctx: CompileContext) -> Cfg:
        from ...spam.rate import get_store  # noqa: PLC0415  (pure in-memory; no I/O)

        return Cfg(action=options["action"], limit=options["limit"], window=options["window"],
                   exempt=frozenset(a.strip().lower() for a in options["exempt"]),
                   store=get_store(options["store"], options["window"], options["max_accounts"]))

    def check_rcpt(self, cfg: Cfg, facts, rcpt: str):
        user = (facts.connection.sasl_user or "").strip().lower()
        if not user or user in cfg.exempt:
            return []
        now = facts.now if facts.now is not None else time.time()
        count = cfg.store.add(user, 1, now)
        if count <= cfg.limit:
            return []
        if cfg.action in ("reject", "tempfail"):
            cfg.store.add(user, -1, now)  # this recipient is refused: it does not count
        # One incident per account until it stays under the limit for a whole window; later refusals of the same
        # burst are "over-limit-repeat", so metrics count compromised accounts, not refused recipients.
        result = "over-limit" if cfg.store.incident(user, now) else "over-limit-repeat"
        return [self.finding(cfg, result,
                             f"account {user} reached {cfg.limit} recipients within {cfg.window} s "
                             f"(limit {cfg.limit}); possible compromised mailbox",
                             f"Too many recipients for this account (limit {cfg.limit} per "
                             f"{_window_text(cfg.window)}), try again later",
                             code="451", xcode="4.7.1", rcpt=rcpt)]
