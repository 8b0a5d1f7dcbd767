"""Incident journal: every rule hit and every internal error, durably, in SQLite (WAL).

Counters reset when the milter restarts; the journal does not, so the yearly report (appendix 2) is right without a
Prometheus that keeps a year. One row per finding: time, queue id, direction, unit, rule, article, action, result,
sender domain and recipient domains. Never bodies, subjects, attachment contents or full addresses.

libmilter calls observers from many threads: one connection, one lock, one short transaction per event (WAL with
synchronous=NORMAL: a commit is an append to the WAL, no fsync; durable across a crash of the milter, at most the
last commits lost on power loss). Retention: `journal: {retention_days: N}` in the pack (default 731 days); old rows
are pruned at start, at each pack load and hourly.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass

from .engine.addresses import domain_of
from .observe import Observer
from .report.categories import MILTER_ERROR

log = logging.getLogger("monre_milter")

DEFAULT_RETENTION_DAYS = 731
PRUNE_EVERY = 3600.0
MAX_DOMAINS = 50  # recipient domains kept per row at most

SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id            INTEGER PRIMARY KEY,
    ts            REAL NOT NULL,      -- Unix time (UTC)
    kind          TEXT NOT NULL,      -- 'finding' | 'error'
    queue_id      TEXT,
    direction     TEXT NOT NULL,
    unit          TEXT NOT NULL,
    rule          TEXT NOT NULL,      -- rule id, or 'milter-error'
    article       TEXT NOT NULL,
    action        TEXT NOT NULL,
    result        TEXT NOT NULL,      -- rule's result word, or the glue stage of an error
    sender_domain TEXT NOT NULL,
    rcpt_domains  TEXT NOT NULL       -- space-separated
);
CREATE INDEX IF NOT EXISTS incidents_ts ON incidents (ts);
CREATE TABLE IF NOT EXISTS packs (
    ts REAL NOT NULL, ok INTEGER NOT NULL, version TEXT, sha256 TEXT
);
"""

INSERT = ("INSERT INTO incidents (ts, kind, queue_id, direction, unit, rule, article, action, result, sender_domain,"
          " rcpt_domains) VALUES (?,?,?,?,?,?,?,?,?,?,?)")


def connect(path: str, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        return db
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    return db


@dataclass
class Row:
    ts: float
    kind: str
    queue_id: str | None
    direction: str
    unit: str
    rule: str
    article: str
    action: str
    result: str
    sender_domain: str
    rcpt_domains: str

    def tuple(self):
        return (self.ts, self.kind, self.queue_id, self.direction, self.unit, self.rule, self.article, self.action,
                self.result, self.sender_domain, self.rcpt_domains)


class Journal:
    """The SQLite file. Thread-safe: one connection, one lock."""

    def __init__(self, path: str, retention_days: float = DEFAULT_RETENTION_DAYS):
        self.path = path
        self.retention_days = retention_days
        self._lock = threading.Lock()
        self._db = connect(path)
        self._last_prune = 0.0
        self.prune()

    def write(self, rows: list[Row]) -> None:
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(INSERT, [r.tuple() for r in rows])
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        if time.time() - self._last_prune > PRUNE_EVERY:
            self.prune()

    def record_pack(self, ok: bool, version: str | None, sha256: str | None) -> None:
        with self._lock:
            self._db.execute("INSERT INTO packs VALUES (?,?,?,?)", (time.time(), int(ok), version, sha256))

    def prune(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        self._last_prune = now
        if not self.retention_days:
            return 0
        with self._lock:
            cur = self._db.execute("DELETE FROM incidents WHERE ts < ?", (now - self.retention_days * 86400,))
        if cur.rowcount:
            log.info("journal: pruned %d rows older than %s days", cur.rowcount, self.retention_days)
        return cur.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _domains(ctx, rcpt: str | None) -> str:
    if rcpt:
        return domain_of(rcpt) or ""
    return " ".join(ctx.rcpt_domains[:MAX_DOMAINS])


class JournalObserver(Observer):
    """Observer that writes findings and errors to the journal (one transaction per event)."""

    def __init__(self, path: str, retention_days: float | None = None):
        self.journal = Journal(path, DEFAULT_RETENTION_DAYS if retention_days is None else retention_days)
        self._fixed_retention = retention_days is not None

    def on_findings(self, findings, ctx):
        rows = [Row(ctx.time, "finding", ctx.queue_id, ctx.direction, ctx.unit or "other", f.rule, f.article,
                    f.action, f.result, ctx.sender_domain or "", _domains(ctx, f.rcpt)) for f in findings]
        self._write(rows)

    def on_error(self, stage, ctx):
        if ctx is None:
            row = Row(time.time(), "error", None, "other", "other", MILTER_ERROR, "", "tempfail", stage, "", "")
        else:
            row = Row(ctx.time, "error", ctx.queue_id, ctx.direction, ctx.unit or "other", MILTER_ERROR, "",
                      "tempfail", stage, ctx.sender_domain or "", _domains(ctx, None))
        self._write([row])

    def on_reload(self, ok, pack):
        if ok and pack is not None and not self._fixed_retention:
            days = ((pack.data or {}).get("journal") or {}).get("retention_days", DEFAULT_RETENTION_DAYS)
            if days != self.journal.retention_days:
                self.journal.retention_days = days
                self.journal.prune()
        self.journal.record_pack(ok, str(pack.version) if pack else None, pack.sha256 if pack else None)

    def _write(self, rows: list[Row]) -> None:
        try:
            self.journal.write(rows)
        except Exception:
            from .metrics import count_error  # noqa: PLC0415

            count_error("journal")
            raise  # Observers logs it; the verdict stands
