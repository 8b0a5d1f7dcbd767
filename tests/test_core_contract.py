"""The fixed contracts: `check --json`, the pure engine, internal errors become 451, corpus robustness."""
from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
from pathlib import Path

import Milter
import pytest
from Milter.testctx import TestCtx

TestCtx.__test__ = False  # not a test class

from conftest import CORPUS, REPO

CLI = [sys.executable, "-m", "monre_milter.cli"]
ENV = {"PYTHONPATH": str(REPO / "milter"), "PATH": "/usr/bin:/bin"}


def run_check(*args) -> dict:
    p = subprocess.run(CLI + ["check", "--json", *args], capture_output=True, text=True, env=ENV, cwd=REPO)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    return json.loads(p.stdout)


def test_check_json_contract(tmp_path):
    msg = tmp_path / "m.eml"
    msg.write_bytes(b"From: Nguyen Van A <nva_vea@monre.gov.vn>\r\nTo: friend@gmail.com, b@monre.gov.vn\r\n"
                    b"Subject: x\r\n\r\nhi\r\n")
    out = run_check(str(msg))
    assert set(out) >= {"action", "smtp_reply", "direction", "rules", "rejected_rcpts", "add_headers"}
    assert out["action"] == "accept" and out["direction"] == "outbound"
    assert out["rejected_rcpts"] == [{"rcpt": "friend@gmail.com", "reply": "550 5.7.1 Official mail may not go "
                                      "to free-mail addresses (regulation art. 9.1)"}]
    fm = [r for r in out["rules"] if r["id"] == "freemail"]
    assert fm and fm[0]["article"] == "9.1" and fm[0]["action"] == "reject" and fm[0]["result"] == "recipient"
    assert set(fm[0]) >= {"id", "article", "result", "action", "reason"}
    # every recipient refused -> reject; an outside client -> inbound
    out = run_check("--rcpt", "a@gmail.com", str(msg))
    assert out["action"] == "reject" and out["smtp_reply"].startswith("550 5.7.1")
    out = run_check("--client-ip", "198.51.100.7", "--mail-from", "x@gmail.com", "--rcpt", "nva@monre.gov.vn",
                    str(msg))
    assert out["direction"] == "inbound" and out["action"] == "reject"
    assert out["smtp_reply"] == "550 5.7.1 Official mail may not come from free-mail addresses (regulation art. 9.1)"
    out = run_check("--client-ip", "198.51.100.7", "--sasl-user", "nva", "--rcpt", "a@gmail.com", str(msg))
    assert out["direction"] == "outbound" and out["action"] == "reject"


def test_check_human_output(tmp_path):
    msg = tmp_path / "m.eml"
    msg.write_bytes(b"From: a@monre.gov.vn\r\nTo: z@gmail.com\r\n\r\nhi\r\n")
    p = subprocess.run(CLI + ["check", str(msg)], capture_output=True, text=True, env=ENV, cwd=REPO)
    assert p.returncode == 0
    assert p.stdout.startswith("verdict: REJECT  (outbound")
    assert "freemail (art. 9.1)" in p.stdout


def test_engine_imports_no_milter_metrics_or_sockets():
    code = ("import sys; sys.path.insert(0, %r); import monre_milter.engine, monre_milter.pack; "
            "bad = [m for m in ('Milter', 'milter', 'prometheus_client') if m in sys.modules]; print(bad)"
            % str(REPO / "milter"))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.stdout.strip() == "[]", p.stdout + p.stderr
    # and no module of the engine opens files or sockets itself
    for path in (REPO / "milter" / "monre_milter" / "engine").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] in ("socket", "Milter", "milter", "prometheus_client", "sqlite3")
                               for n in names), (path, names)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
                pytest.fail(f"{path}: open() in the engine")


class Boom(Exception):
    pass


def _ctx_with_pack():
    from monre_milter.glue.milter import PolicyMilter
    from monre_milter.glue.state import STATE
    from monre_milter.pack import load_pack

    STATE.pack = load_pack([str(REPO / "policies" / "monre.yaml")])
    Milter.factory = PolicyMilter
    # TestCtx does not understand NOREPLY: offer the protocol without the no-reply bits, as an old MTA would.
    nr = (Milter.P_NR_CONN | Milter.P_NR_HELO | Milter.P_NR_MAIL | Milter.P_NR_RCPT | Milter.P_NR_DATA
          | Milter.P_NR_UNKN | Milter.P_NR_EOH | Milter.P_NR_BODY | Milter.P_NR_HDR)
    TestCtx.default_opts = [Milter.CURR_ACTS, 0x1FFFFF & ~nr, 0, 0]
    ctx = TestCtx()
    ctx._setsymval("i", "QID123")
    return ctx


def test_internal_error_at_end_of_message_is_a_451_tempfail(monkeypatch, caplog):
    import monre_milter.glue.milter as glue

    ctx = _ctx_with_pack()
    assert ctx._connect(ip="198.51.100.20") == Milter.CONTINUE

    def explode(*a, **k):
        raise Boom("analyser crashed")

    monkeypatch.setattr(glue, "analyse", explode)
    rc = ctx._feedFile(io.BytesIO(b"From: a@example.org\nTo: b@monre.gov.vn\nSubject: s\n\nbody\n"),
                       "a@example.org", "b@monre.gov.vn")
    assert rc == Milter.TEMPFAIL
    assert ctx._reply[:2] == ("451", "4.7.1")
    assert any("QID123: internal error at eom" in r.getMessage() for r in caplog.records)


def test_internal_error_in_a_no_reply_step_is_answered_at_end_of_message(monkeypatch):
    import monre_milter.glue.milter as glue

    ctx = _ctx_with_pack()
    ctx._connect(ip="198.51.100.20")

    class BadSpool:
        def __init__(self, *a, **k):
            pass

        def write(self, _):
            raise OSError("disk full")

        def close(self):
            return None

    monkeypatch.setattr(glue.tempfile, "SpooledTemporaryFile", BadSpool)
    rc = ctx._feedFile(io.BytesIO(b"From: a@example.org\nTo: b@monre.gov.vn\n\nbody\n"), "a@example.org",
                       "b@monre.gov.vn")
    assert rc == Milter.TEMPFAIL and ctx._reply[0] == "451"


def test_milter_and_check_agree(tmp_path):
    """The same message through the glue (in process) and through check: same action and reply."""
    from monre_milter.check import check_file
    from monre_milter.glue.state import STATE

    raw = b"From: boss@gmail.com\nTo: nva@monre.gov.vn\nSubject: s\n\nbody\n"
    ctx = _ctx_with_pack()
    ctx._connect(ip="198.51.100.20")
    rc = ctx._feedFile(io.BytesIO(raw), "list@example.org", "nva@monre.gov.vn")
    (tmp_path / "m.eml").write_bytes(raw)
    v = check_file(STATE.pack, str(tmp_path / "m.eml"), mail_from="list@example.org", rcpts=["nva@monre.gov.vn"],
                   client_ip="198.51.100.20")
    assert rc == Milter.REJECT and v.action == "reject"
    assert " ".join(ctx._reply[:3]) == str(v.reply)


CORPUS_FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "SOURCES.md")


def test_every_corpus_file_through_check_without_a_traceback():
    """In one process for speed (the CLI path is covered above); any exception fails with the file name."""
    from monre_milter.check import check_file
    from monre_milter.pack import load_pack

    pack = load_pack([str(REPO / "policies" / "monre.yaml")])
    assert len(CORPUS_FILES) > 100
    for path in CORPUS_FILES:
        for kw in ({}, {"client_ip": "198.51.100.20"}):
            try:
                v = check_file(pack, str(path), **kw)
            except Exception as exc:  # report which file
                pytest.fail(f"{path.relative_to(CORPUS)}: {type(exc).__name__}: {exc}")
            assert v.action in ("accept", "reject", "tempfail", "quarantine", "discard")
            json.dumps(v.as_json())


def test_some_corpus_files_through_the_cli():
    picks = [p for p in CORPUS_FILES if p.suffix == ".eml"][:5]
    for p in picks:
        out = run_check(str(p))
        assert out["action"] in ("accept", "reject", "tempfail", "quarantine", "discard")
