"""Observers: where verdicts go besides Postfix (logs, Prometheus metrics, the incident journal).

The glue reports every finding exactly once (`on_findings`: refusals at MAIL FROM / RCPT when they happen, the rest
at end of message), every finished transaction once (`on_message`), every internal error (`on_error`) and every
pack load (`on_reload`). Observers must never see bodies, subjects or attachment contents, and an observer that
fails must not change the verdict: `Observers` isolates them and logs the failure.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from .engine.addresses import domain_of
from .engine.verdict import Finding, Verdict

log = logging.getLogger("monre_milter")


@dataclass
class EventContext:
    """Who/where of an event, with no message content. Domains only, never full addresses."""

    queue_id: str | None
    direction: str
    unit: str
    sender_domain: str = ""
    rcpt_domains: list[str] = field(default_factory=list)
    client_ip: str | None = None
    time: float = field(default_factory=time.time)

    @classmethod
    def build(cls, queue_id, direction, unit, mail_from: str, rcpts: list[str], client_ip=None) -> "EventContext":
        doms = sorted({domain_of(r) for r in rcpts if domain_of(r)})
        return cls(queue_id, direction, unit, domain_of(mail_from) if mail_from else "", doms, client_ip)


class Observer:
    def on_findings(self, findings: list[Finding], ctx: EventContext) -> None: ...

    def on_message(self, verdict: Verdict, ctx: EventContext, size: int, seconds: float) -> None: ...

    def on_error(self, stage: str, ctx: EventContext | None) -> None: ...

    def on_reload(self, ok: bool, pack) -> None: ...


class LogObserver(Observer):
    """Log lines carry queue id, rule, article, action, direction and unit; never content. Findings that refuse
    get a line when they happen (a refused RCPT has no end of message); each finished message gets one line that
    names every finding, so the log costs one write per message, not one per finding."""

    def on_findings(self, findings, ctx):
        for f in findings:
            if f.action in ("reject", "tempfail") and ctx.queue_id is None:
                log.info("NOQUEUE: rule=%s article=%s result=%s action=%s direction=%s unit=%s", f.rule, f.article,
                         f.result, f.action, ctx.direction, ctx.unit)

    def on_message(self, verdict, ctx, size, seconds):
        rules = ",".join(f"{f.rule}/{f.article}/{f.result}/{f.action}" for f in verdict.findings) or "-"
        log.info("%s: verdict=%s direction=%s unit=%s size=%d seconds=%.3f rules=%s%s", ctx.queue_id or "NOQUEUE",
                 verdict.action, ctx.direction, ctx.unit, size, seconds, rules,
                 f" reply={verdict.reply}" if verdict.reply else "")

    def on_error(self, stage, ctx):
        log.error("%s: internal error at %s, answered with tempfail", (ctx and ctx.queue_id) or "NOQUEUE", stage)

    def on_reload(self, ok, pack):
        if ok:
            log.info("policy loaded: version=%s sha256=%s files=%s", pack.version, pack.sha256[:12],
                     ",".join(pack.files))
        else:
            log.error("policy reload refused; keeping the running pack")


class Observers(Observer):
    def __init__(self, *observers: Observer):
        self.observers = list(observers)

    def add(self, o: Observer) -> None:
        self.observers.append(o)

    def _each(self, method: str, *args) -> None:
        for o in self.observers:
            try:
                getattr(o, method)(*args)
            except Exception:  # an observer failing must not change the verdict; it is logged
                log.exception("observer %s.%s failed", type(o).__name__, method)

    def on_findings(self, findings, ctx):
        if findings:
            self._each("on_findings", findings, ctx)

    def on_message(self, verdict, ctx, size, seconds):
        self._each("on_message", verdict, ctx, size, seconds)

    def on_error(self, stage, ctx):
        self._each("on_error", stage, ctx)

    def on_reload(self, ok, pack):
        self._each("on_reload", ok, pack)
