"""pymilter glue: turn libmilter callbacks into facts, drive the engine, apply the verdict.

- Connection facts at connect / MAIL FROM (client address, SASL login), envelope per transaction.
- Headers and body go to a bounded spool (memory up to a threshold, then a temp file), exactly once.
- Decisions as early as the facts allow: SIZE= at MAIL FROM, recipients at RCPT, the rest at end of message.
- Steps that need no reply are declared `noreply` (protocol v6), saving a round trip each.
- Any internal error becomes 451 4.7.1 (tempfail), logged with the queue id and counted. Never an accept by
  accident: an error in a no-reply step is remembered and answered at end of message.
"""
from __future__ import annotations

import logging
import socket
import tempfile
import time

import Milter

from ..engine import Transaction
from ..engine.addresses import strip_angles
from ..engine.verdict import TEMPFAIL_INTERNAL, Verdict
from ..extract.message import analyse
from ..facts import Connection
from ..observe import EventContext, Observers
from .state import STATE

log = logging.getLogger("monre_milter")

SPOOL_MEMORY = 1 << 20  # bytes of a message kept in memory before the spool moves to a temp file


def _esmtp_size(params) -> int | None:
    for p in params:
        if p.upper().startswith("SIZE="):
            try:
                return int(p[5:])
            except ValueError:
                return None
    return None


def _raw(value: str) -> bytes:
    """pymilter hands headers as str decoded with surrogateescape: get the original bytes back."""
    return value.encode("utf-8", "surrogateescape")


class PolicyMilter(Milter.Base):
    """One instance per SMTP connection (libmilter thread)."""

    def __init__(self):
        self.pack = STATE.pack  # snapshot: a reload applies to new connections
        self.observers: Observers = STATE.observers
        self.conn = Connection()
        self.tx: Transaction | None = None
        self.spool = None
        self.failed: str | None = None  # stage of an internal error in a no-reply step
        self.in_body = False
        self.eom_seen = False

    # -- helpers -------------------------------------------------------------------------------------------------------
    def _event_ctx(self) -> EventContext:
        tx = self.tx
        qid = self._queue_id()
        if tx is None:
            return EventContext(qid, "inbound", "other", client_ip=self.conn.client_ip)
        rcpts = tx.envelope.rcpts + [r for r, _, _ in tx.refused]
        return EventContext.build(qid, tx.direction, tx.message_unit(), tx.envelope.mail_from, rcpts,
                                  self.conn.client_ip)

    def _queue_id(self) -> str | None:
        try:
            return self.getsymval("i")
        except Exception:  # no context (tests) or macro not sent: not fatal, the id is only for logs
            return None

    def _internal_error(self, stage: str) -> int:
        log.exception("%s: internal error at %s", self._queue_id() or "NOQUEUE", stage)
        try:
            self.observers.on_error(stage, self._event_ctx() if self.tx else None)
        except Exception:  # counting failed; the tempfail below still stands
            log.exception("could not report the error")
        try:
            self.setreply(TEMPFAIL_INTERNAL.code, TEMPFAIL_INTERNAL.xcode, TEMPFAIL_INTERNAL.text)
        except Exception:  # setreply failing leaves Postfix's own 451; still a tempfail
            log.exception("setreply failed")
        return Milter.TEMPFAIL

    def _reply(self, reply) -> None:
        self.setreply(reply.code, reply.xcode, reply.text.replace("%", "%%"))

    def _close_spool(self) -> None:
        if self.spool is not None:
            self.spool.close()
            self.spool = None

    def _finish_transaction(self) -> None:
        """A transaction that ended before end of message (all recipients refused, RSET, QUIT): report it once."""
        tx = self.tx
        if tx is not None and not self.eom_seen and (tx.refused or tx.mail_refusal):
            refusal = tx.mail_refusal or tx.refused[0][2]
            v = Verdict(action="reject" if not tx.envelope.rcpts else "accept", direction=tx.direction,
                        unit=tx.message_unit(), findings=[refusal])
            if not tx.envelope.rcpts:
                self.observers.on_message(v, self._event_ctx(), 0, 0.0)
        self.tx = None
        self.eom_seen = False
        self.in_body = False
        self._close_spool()

    # -- callbacks -----------------------------------------------------------------------------------------------------
    # Each stage asks only for the macros it reads (protocol v6 SETSYMLIST): less for Postfix to send and for
    # libmilter to parse on every message.
    @Milter.noreply
    @Milter.symlist("{daemon_name}")
    def connect(self, hostname, family, hostaddr):
        try:
            ip = hostaddr[0] if family in (socket.AF_INET, socket.AF_INET6) and hostaddr else None
            self.conn = Connection(client_ip=ip, client_name=hostname)
            STATE.hooks.on_connect(self)
        except Exception:
            self.failed = "connect"
            log.exception("internal error at connect")
        return Milter.CONTINUE

    # No hello callback: no rule uses the HELO name, and each step not negotiated is a message less per connection.

    @Milter.symlist("{auth_authen}")
    def envfrom(self, mailfrom, *params):
        try:
            self._finish_transaction()
            if self.failed:
                return self._internal_error(self.failed)
            sasl = self.getsymval("{auth_authen}") or None
            if sasl != self.conn.sasl_user:
                self.conn = Connection(self.conn.client_ip, self.conn.client_name, sasl)
            self.tx = Transaction(self.pack, self.conn, time.time())
            reply = self.tx.mail_from(strip_angles(mailfrom), _esmtp_size(params))
            if reply is not None:
                self.observers.on_findings([self.tx.mail_refusal], self._event_ctx())
                self._reply(reply)
                return Milter.REJECT if reply.code.startswith("5") else Milter.TEMPFAIL
            STATE.hooks.on_mail_from(self)
            return Milter.CONTINUE
        except Exception:
            return self._internal_error("envfrom")

    @Milter.symlist("{rcpt_addr}")
    def envrcpt(self, to, *params):
        try:
            addr = strip_angles(to)
            reply = self.tx.rcpt(addr)
            if reply is not None:
                self.observers.on_findings([self.tx.refused[-1][2]], self._event_ctx())
                self._reply(reply)
                return Milter.REJECT if reply.code.startswith("5") else Milter.TEMPFAIL
            return Milter.CONTINUE
        except Exception:
            return self._internal_error("envrcpt")

    @Milter.decode("bytes")  # header values as the original bytes: no decode / re-encode per header
    @Milter.noreply
    def header(self, name, value):
        if self.failed:
            return Milter.CONTINUE
        try:
            if self.spool is None:
                self.spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)
            if isinstance(value, str):  # a harness that does not honour the bytes strategy
                value = _raw(value)
            self.spool.write(name.encode("ascii", "surrogateescape") + b": "
                             + value.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b"\r\n")
        except Exception:
            self.failed = "header"
            log.exception("internal error at header")
        return Milter.CONTINUE

    # No eoh callback (one message less per mail): the blank line is written before the first body chunk or at
    # end of message.
    def _end_headers(self) -> None:
        if self.spool is None:
            self.spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)
        if not self.in_body:
            self.spool.write(b"\r\n")
            self.in_body = True

    @Milter.noreply
    def body(self, chunk):
        if self.failed:
            return Milter.CONTINUE
        try:
            self._end_headers()
            self.spool.write(chunk)
        except Exception:
            self.failed = "body"
            log.exception("internal error at body")
        return Milter.CONTINUE

    @Milter.symlist("i")
    def eom(self):
        started = time.monotonic()
        try:
            self.eom_seen = True
            if self.failed:
                return self._internal_error(self.failed)
            self._end_headers()
            tx = self.tx
            STATE.hooks.before_eom(self)
            facts = analyse(self.spool, self.pack, tx.direction, tx.message_unit())
            facts.extra.update(getattr(self, "spam_extra", None) or {})  # left by spam.hooks (DNSBL, trusted relay)
            verdict = tx.end_of_message(facts, self._queue_id())
            result = self._apply(verdict)
            ctx = self._event_ctx()
            reported = {id(f) for _, _, f in tx.refused} | ({id(tx.mail_refusal)} if tx.mail_refusal else set())
            self.observers.on_findings([f for f in verdict.findings if id(f) not in reported], ctx)
            self.observers.on_message(verdict, ctx, facts.size, time.monotonic() - started)
            return result
        except Exception:
            return self._internal_error("eom")
        finally:
            self._close_spool()
            self.in_body = False

    def _apply(self, v: Verdict) -> int:
        if v.action in ("reject", "tempfail"):
            self._reply(v.reply)
            return Milter.REJECT if v.action == "reject" else Milter.TEMPFAIL
        if v.action == "discard":
            return Milter.DISCARD
        for rcpt, _reply in v.rejected_rcpts:
            if rcpt in self.tx.envelope.rcpts:
                self.delrcpt(f"<{rcpt}>")
        for name, idx in v.remove_headers:
            self.chgheader(name, idx, "")
        for name, value in v.add_headers:
            self.addheader(name, value)
        if v.action == "quarantine":
            self.quarantine(v.quarantine_reason or "policy")
        return Milter.ACCEPT

    def abort(self):
        try:
            self._finish_transaction()
        except Exception:  # abort has no reply to give; log and go on
            log.exception("internal error at abort")
        return Milter.CONTINUE

    def close(self):
        try:
            self._finish_transaction()
            STATE.hooks.on_close(self)
        except Exception:  # close has no reply to give; log and go on
            log.exception("internal error at close")
        return Milter.CONTINUE
