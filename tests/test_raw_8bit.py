"""Headers sent as raw UTF-8 (no RFC 2047), as SMTPUTF8 clients and careless ones do: read as text, not as '?'."""
from __future__ import annotations

import io

from monre_milter.check import check_file
from monre_milter.extract.message import analyse
from monre_milter.extract.mime import decode_header, unescape_8bit
from monre_milter.pack import load_pack

from conftest import REPO

PACK = load_pack([str(REPO / "policies" / "monre.yaml")])


def test_unescape_8bit():
    raw = "[MẬT] Báo cáo".encode("utf-8").decode("ascii", "surrogateescape")
    assert unescape_8bit(raw) == "[MẬT] Báo cáo"
    cp1258 = "Báo cáo".encode("cp1258").decode("ascii", "surrogateescape")
    assert unescape_8bit(cp1258) == "Báo cáo"
    assert decode_header("=?utf-8?B?W03huqxUXQ==?= x") == "[MẬT] x"


def test_raw_utf8_subject_and_file_name(tmp_path):
    raw = ("From: nva@monre.gov.vn\r\nTo: p@example.org\r\nSubject: [MẬT] Báo cáo quý\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nxin chào\r\n"
           "--B\r\nContent-Type: application/octet-stream; name=\"tài liệu.exe\"\r\n"
           "Content-Disposition: attachment; filename=\"tài liệu.exe\"\r\n\r\nMZ\r\n--B--\r\n").encode("utf-8")
    facts = analyse(io.BytesIO(raw), PACK)
    assert facts.subject == "[MẬT] Báo cáo quý"
    assert [a.filename for a in facts.attachments] == ["tài liệu.exe"]
    path = tmp_path / "m.eml"
    path.write_bytes(raw)
    v = check_file(PACK, str(path))
    assert v.action == "reject"
    assert str(v.reply) == ("550 5.7.1 Classified documents may not be sent by email: a secrecy marking was found "
                            "in the subject (regulation art. 10.1)")
    assert {f.rule for f in v.findings} >= {"classified", "banned-type"}
