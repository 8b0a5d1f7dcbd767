"""The pure policy engine: facts in, verdict out.

`Transaction` follows one SMTP transaction through its stages (MAIL FROM, each RCPT, end of message) and asks the
pack's rules at each. It does no I/O: the milter glue and `monre-milter check` drive it the same way, so both give
the same verdict for the same input. This package must not import pymilter, prometheus_client, sockets or files.
"""
from __future__ import annotations

from ..facts import Connection, Envelope, Facts, MessageFacts
from . import rules as _rules  # noqa: F401  (registers the rule modules)
from .base import REGISTRY, Rule  # noqa: F401
from .verdict import SEVERITY, TAG_HEADER, Finding, Reply, Verdict, most_severe

REFUSING = ("reject", "tempfail")


class Transaction:
    """One SMTP transaction against one pack snapshot. A new MAIL FROM starts a new transaction."""

    def __init__(self, pack, connection: Connection, now: float | None = None):
        self.pack = pack
        self.connection = connection
        self.now = now
        self.direction = pack.direction(connection.client_ip, connection.sasl_user)
        self.envelope = Envelope()
        self.early: list[Finding] = []  # findings at MAIL/RCPT that did not refuse
        self.refused: list[tuple[str, Reply, Finding]] = []  # recipients refused at RCPT time
        self.mail_refusal: Finding | None = None

    # -- helpers -------------------------------------------------------------------------------------------------------
    def sender_unit(self) -> str:
        unit = self.pack.unit_of(self.envelope.mail_from)
        if unit == "other" and self.connection.sasl_user:
            unit = self.pack.unit_of(self.connection.sasl_user)
        return unit

    def message_unit(self) -> str:
        """Outbound: the sender's unit. Inbound: the unit of the first recipient that has one."""
        if self.direction == "outbound":
            return self.sender_unit()
        for r in self.envelope.rcpts:
            u = self.pack.unit_of(r)
            if u != "other":
                return u
        return "other"

    def _facts(self, unit: str, message: MessageFacts | None = None) -> Facts:
        return Facts(self.connection, self.envelope, message, self.now, self.direction, unit)

    # -- stages --------------------------------------------------------------------------------------------------------
    def mail_from(self, addr: str, size: int | None = None) -> Reply | None:
        """Start a transaction. Returns a reply to refuse MAIL FROM, or None to go on."""
        self.envelope = Envelope(mail_from=addr, size=size)
        self.early, self.refused, self.mail_refusal = [], [], None
        unit = self.sender_unit() if self.direction == "outbound" else "other"
        facts = self._facts(unit)
        for rule, cfg in self.pack.rules(unit, self.direction):
            for f in rule.check_mail_from(cfg, facts):
                if f.action in REFUSING:
                    self.mail_refusal = f
                    return f.reply()
                self.early.append(f)
        return None

    def rcpt(self, addr: str) -> Reply | None:
        """Check one recipient. Returns a reply to refuse this recipient only, or None to accept it."""
        unit = self.sender_unit() if self.direction == "outbound" else self.pack.unit_of(addr)
        facts = self._facts(unit)
        found: list[Finding] = []
        for rule, cfg in self.pack.rules(unit, self.direction):
            found.extend(rule.check_rcpt(cfg, facts, addr))
        refusing = sorted((f for f in found if f.action in REFUSING), key=lambda f: -SEVERITY[f.action])
        if refusing:
            reply = refusing[0].reply()
            self.refused.append((addr, reply, refusing[0]))
            return reply
        self.envelope.rcpts.append(addr)
        self.early.extend(found)
        return None

    def end_of_message(self, message: MessageFacts, queue_id: str | None = None) -> Verdict:
        self.envelope.queue_id = queue_id
        unit = self.message_unit()
        verdict = Verdict(direction=self.direction, unit=unit)
        verdict.rejected_rcpts = [(r, rep) for r, rep, _ in self.refused]
        verdict.findings = [f for _, _, f in self.refused] + list(self.early)
        if not self.envelope.rcpts:
            # every recipient was refused at RCPT time: nothing to deliver
            if self.refused:
                verdict.action, verdict.reply = "reject", self.refused[0][1]
            return verdict
        facts = self._facts(unit, message)
        found: list[Finding] = []
        for rule, cfg in self.pack.rules(unit, self.direction):
            found.extend(rule.check_message(cfg, facts))
            add, remove = rule.header_changes(cfg, facts)
            verdict.add_headers.extend(add)
            verdict.remove_headers.extend(remove)
        verdict.findings.extend(found)

        # Findings about single recipients refuse those recipients only, unless none would be left.
        per_rcpt = {f.rcpt.lower() for f in found if f.rcpt and f.action in REFUSING}
        remaining = [r for r in self.envelope.rcpts if r.lower() not in per_rcpt]
        message_level = [f for f in verdict.findings if not (f.rcpt and f.action in REFUSING)]
        if per_rcpt and remaining:
            for f in found:
                if f.rcpt and f.action in REFUSING and f.rcpt in self.envelope.rcpts:
                    verdict.rejected_rcpts.append((f.rcpt, f.reply()))
        elif per_rcpt:
            message_level += [f for f in found if f.rcpt and f.action in REFUSING]
        # RCPT-time refusals were already answered; they do not decide the message.
        decided = [f for f in message_level if f not in [x for _, _, x in self.refused]]
        verdict.action = most_severe(f.action for f in decided) if decided else "accept"
        if verdict.action == "monitor":
            verdict.action = "accept"  # monitor only logs and counts
        deciding = [f for f in decided if f.action == verdict.action]
        if verdict.action in REFUSING:
            verdict.reply = deciding[0].reply()
            verdict.add_headers = []
            return verdict
        tags = [f for f in decided if f.action == "tag"]
        if tags:
            verdict.add_headers.append((TAG_HEADER, "; ".join(
                f"{f.rule} (art. {f.article}): {f.result}" for f in tags)))
        if verdict.action == "tag":
            verdict.action = "accept"  # tagged mail is accepted, with the header
        if verdict.action == "quarantine":
            verdict.quarantine_reason = "; ".join(f"{f.rule} art. {f.article}: {f.result}" for f in deciding)
        return verdict


__all__ = ["Transaction", "Verdict", "Finding", "Reply", "REGISTRY"]
