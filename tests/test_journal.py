"""Incident journal: what a row holds (domains only), errors, retention (pack key), many threads, cost per event."""
from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import replace

import pytest

from monre_milter.engine.verdict import Finding
from monre_milter.journal import JournalObserver
from monre_milter.observe import EventContext
from monre_milter.pack import load_pack

from conftest import REPO

PACK = load_pack([str(REPO / "policies" / "monre.yaml")])


def rows(path, where="1=1"):
    db = sqlite3.connect(path)
    try:
        return db.execute(f"SELECT kind, queue_id, direction, unit, rule, article, action, result, sender_domain, "
                          f"rcpt_domains FROM incidents WHERE {where} ORDER BY id").fetchall()
    finally:
        db.close()


def test_findings_and_errors_recorded_with_domains_only(tmp_path):
    path = tmp_path / "j.db"
    j = JournalObserver(str(path))
    ctx = EventContext.build("4AB12", "outbound", "vea", "Nguyen.Van.A_vea@monre.gov.vn",
                             ["friend@gmail.com", "ttb@monre.gov.vn", "x@Gmail.com"], "10.0.0.1")
    j.on_findings([Finding("freemail", "9.1", "recipient", "friend@gmail.com is free-mail", "reject",
                           rcpt="friend@gmail.com"),
                   Finding("attachment-size", "4.4", "over-limit", "Attachments total 16 MB", "reject")], ctx)
    j.on_error("eom", ctx)
    j.on_error("connect", None)
    j.journal.close()
    got = rows(path)
    assert got == [
        ("finding", "4AB12", "outbound", "vea", "freemail", "9.1", "reject", "recipient", "monre.gov.vn", "gmail.com"),
        ("finding", "4AB12", "outbound", "vea", "attachment-size", "4.4", "reject", "over-limit", "monre.gov.vn",
         "gmail.com monre.gov.vn"),
        ("error", "4AB12", "outbound", "vea", "milter-error", "", "tempfail", "eom", "monre.gov.vn",
         "gmail.com monre.gov.vn"),
        ("error", None, "other", "other", "milter-error", "", "tempfail", "connect", "", ""),
    ]
    raw = path.read_bytes() + (tmp_path / "j.db-wal").read_bytes() if (tmp_path / "j.db-wal").exists() \
        else path.read_bytes()
    assert b"friend@" not in raw and b"Nguyen" not in raw and b"16 MB" not in raw
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_retention_from_the_pack_prunes_old_rows(tmp_path):
    path = tmp_path / "j.db"
    j = JournalObserver(str(path))
    old = EventContext("OLD", "inbound", "other", time=time.time() - 40 * 86400)
    new = EventContext("NEW", "inbound", "other")
    f = [Finding("freemail", "9.1", "sender", "x", "reject")]
    j.on_findings(f, old)
    j.on_findings(f, new)
    j.on_reload(True, PACK)  # default pack: default retention (731 days) keeps both
    assert [r[1] for r in rows(path)] == ["OLD", "NEW"]
    short = replace(PACK, data={**PACK.data, "journal": {"retention_days": 30}})
    j.on_reload(True, short)
    assert [r[1] for r in rows(path)] == ["NEW"]
    db = sqlite3.connect(path)
    assert db.execute("SELECT ok, version FROM packs ORDER BY rowid").fetchall() == [(1, str(PACK.version))] * 2


def test_pack_schema_accepts_retention_and_refuses_nonsense(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("journal:\n  retention_days: 400\n")
    assert load_pack([str(REPO / "policies" / "monre.yaml"), str(good)]).data["journal"]["retention_days"] == 400
    bad = tmp_path / "bad.yaml"
    bad.write_text("journal:\n  retention_days: -1\n  keep: forever\n")
    with pytest.raises(Exception) as exc:
        load_pack([str(REPO / "policies" / "monre.yaml"), str(bad)])
    assert "journal" in str(exc.value)


def test_many_threads_cheap_per_event(tmp_path):
    """libmilter calls observers from many threads: nothing lost, and an event costs well under a millisecond."""
    path = tmp_path / "j.db"
    j = JournalObserver(str(path))
    threads, per_thread = 8, 400
    f = [Finding("freemail", "9.1", "recipient", "x", "reject", rcpt="a@gmail.com"),
         Finding("smime", "9.2", "pass", "ok", "monitor")]
    errors = []

    def work(t):
        try:
            for i in range(per_thread):
                j.on_findings(f, EventContext.build(f"T{t}Q{i}", "outbound", "vea", "a_vea@monre.gov.vn",
                                                    ["a@gmail.com"]))
        except Exception as exc:  # reported below
            errors.append(exc)

    started = time.perf_counter()
    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.perf_counter() - started
    assert not errors
    n = threads * per_thread
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*), count(DISTINCT queue_id) FROM incidents").fetchone() == (2 * n, n)
    per_event = elapsed / n
    print(f"journal: {n} events ({2 * n} rows) from {threads} threads in {elapsed:.2f}s, "
          f"{per_event * 1e6:.0f} us per event")
    assert per_event < 0.002, per_event
