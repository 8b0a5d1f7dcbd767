"""Hostile inputs that once stalled the filter: each must finish, in a separate process with a generous deadline
(a guard against hangs, not a speed target: bench/ measures speed)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO

HEAD = "From: a@example.org\r\nTo: b@monre.gov.vn\r\nSubject: s\r\nMIME-Version: 1.0\r\n"


def _cases():
    yield "html-unclosed-tags", HEAD + "Content-Type: text/html\r\n\r\n" + "<a " * 1_000_000
    yield "html-lt", HEAD + "Content-Type: text/html\r\n\r\n" + "<" * 3_000_000
    yield "html-unclosed-script", HEAD + "Content-Type: text/html\r\n\r\n" + "<script>" * 300_000
    yield "from-64k-no-at", ("From: " + "x" * 65_000 + "\r\n") * 20 + "To: b@monre.gov.vn\r\n\r\nbody\r\n"
    yield "from-quotes", "From: " + '"a' * 30_000 + "\r\nTo: b@monre.gov.vn\r\n\r\nbody\r\n"


@pytest.mark.parametrize("name, text", list(_cases()), ids=[n for n, _ in _cases()])
def test_finishes(tmp_path, name, text):
    path = tmp_path / f"{name}.eml"
    path.write_text(text)
    p = subprocess.run([sys.executable, "-m", "monre_milter.cli", "check", "--json", "--client-ip", "198.51.100.7",
                        str(path)], capture_output=True, text=True, timeout=60, cwd=REPO,
                       env={"PYTHONPATH": str(REPO / "milter"), "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0 and '"action"' in p.stdout, p.stderr[-500:]
