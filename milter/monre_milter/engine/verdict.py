"""Findings and verdicts: the engine's output, as data.

A rule reports `Finding`s; the action of each comes from the pack. The verdict is the most severe action among the
findings, with the SMTP reply of the finding that decided it, plus header changes and per-recipient refusals.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# Least to most severe. "monitor" logs and counts only; "tag" adds a header; "quarantine" puts the message on
# Postfix's hold queue; "discard" accepts and drops (not a default anywhere); "tempfail" asks the client to retry.
ACTIONS = ("accept", "monitor", "tag", "quarantine", "discard", "tempfail", "reject")
RULE_ACTIONS = ("reject", "tempfail", "quarantine", "discard", "tag", "monitor")
SEVERITY = {a: i for i, a in enumerate(ACTIONS)}

TAG_HEADER = "X-MONRE-Policy"


@dataclass(frozen=True)
class Reply:
    code: str  # "550"
    xcode: str  # "5.7.1"
    text: str  # one line, ASCII, names the rule and the article

    def __str__(self) -> str:
        return f"{self.code} {self.xcode} {self.text}"


# Named replies shared by code and tests.
TEMPFAIL_INTERNAL = Reply("451", "4.7.1", "Temporary failure in the mail policy filter, please retry later")


@dataclass(frozen=True)
class Finding:
    rule: str  # rule id, e.g. "freemail"
    article: str  # regulation article, e.g. "9.1"
    result: str  # short machine word: what was found ("recipient", "sender", "over-limit", ...)
    reason: str  # one line for logs and `check` (no bodies, no attachment contents)
    action: str  # one of RULE_ACTIONS, from the pack
    reply_text: str = ""  # text of the SMTP reply, without code; "(regulation art. X)" is appended
    code: str = "550"
    xcode: str = "5.7.1"
    rcpt: str | None = None  # set when the finding concerns one recipient only

    def reply(self) -> Reply:
        text = self.reply_text or self.reason
        text = f"{text} (regulation art. {self.article})"
        if self.action == "tempfail":
            return Reply("451", "4.7.1", text)
        return Reply(self.code, self.xcode, text)

    def as_json(self) -> dict:
        d = {"id": self.rule, "article": self.article, "result": self.result, "action": self.action,
             "reason": self.reason}
        if self.rcpt:
            d["rcpt"] = self.rcpt
        return d


@dataclass
class Verdict:
    action: str = "accept"
    reply: Reply | None = None
    direction: str = "inbound"
    unit: str = "other"
    findings: list[Finding] = field(default_factory=list)
    rejected_rcpts: list[tuple[str, Reply]] = field(default_factory=list)
    add_headers: list[tuple[str, str]] = field(default_factory=list)
    remove_headers: list[tuple[str, int]] = field(default_factory=list)  # (name, 1-based index among that name)
    quarantine_reason: str | None = None

    def as_json(self) -> dict:
        return {
            "action": self.action,
            "smtp_reply": str(self.reply) if self.reply else "",
            "direction": self.direction,
            "unit": self.unit,
            "rules": [f.as_json() for f in self.findings],
            "rejected_rcpts": [{"rcpt": r, "reply": str(rep)} for r, rep in self.rejected_rcpts],
            "add_headers": [[n, v] for n, v in self.add_headers],
        }


def most_severe(actions) -> str:
    return max(actions, key=SEVERITY.__getitem__, default="accept")
