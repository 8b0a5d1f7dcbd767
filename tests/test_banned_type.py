"""Art. 11.5 / 10.2: executables and scripts, by content (libmagic) and by decoded name, also inside archives."""
from __future__ import annotations

import base64
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest

from monre_milter.pack.loader import PackErrors, load_pack
from samples import documents as D
from samples.documents import DOCX, found, run

MZ = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 240  # DOS/PE header
ELF = Path(shutil.which("true") or "/bin/true").read_bytes()[:65536]
SH = b"#!/bin/sh\nrm -rf ~\n"


@pytest.fixture(scope="module")
def pack():
    return load_pack([str(D.POLICY)])


def _raw_name_message(header_name: bytes, data: bytes) -> bytes:
    return (b"From: a@example.org\r\nTo: nva@monre.gov.vn\r\nSubject: hoa don\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\nContent-Type: text/plain\r\n\r\nXem.\r\n"
            b"--BB\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment;\r\n " + header_name + b"\r\n\r\n" + base64.encodebytes(data) +
            b"\r\n--BB--\r\n")


CASES = [
    # (description, attachments, expected result or None)
    ("exe by name", [("setup.exe", b"hello", "application/octet-stream")], "name"),
    ("double extension", [("invoice.pdf.exe", b"hello", "application/octet-stream")], "double-extension"),
    ("upper case and trailing dot", [("SCAN.PDF.SCR.", b"hello", "application/octet-stream")],
     "double-extension"),
    ("PE named .pdf", [("hoadon.pdf", MZ, "application/pdf")], "content"),
    ("ELF named .jpg", [("anh.jpg", ELF, "image/jpeg")], "content"),
    ("shell script named .txt", [("ghichu.txt", SH, "text/plain")], "content"),
    ("script .js", [("thongbao.js", b"var x = 1;", "application/javascript")], "name"),
    ("exe in zip", [("hoso.zip", D.zip_of([("a.docx", b"x"), ("run.exe", b"x")]), "application/zip")], "name"),
    ("PE in zip in zip, named .doc", [("hoso.zip", D.zip_of([("in.zip", D.zip_of([("bc.doc", MZ)]))]),
                                      "application/zip")], "content"),
    ("password-protected zip still shows names", [("a.zip", D.encrypted_zip("virus.vbs", b"x"),
                                                   "application/zip")], "name"),
    ("pdf", [("baocao.pdf", D.pdf(["Báo cáo"]), "application/pdf")], None),
    ("docx", [("baocao.docx", D.docx(["Báo cáo"]), DOCX)], None),
    ("exe as a word in the name", [("executive-summary.pdf", D.pdf(["x"]), "application/pdf")], None),
    ("exe as first extension", [("setup.exe.txt", b"plain words", "text/plain")], None),
    ("zip of documents", [("hoso.zip", D.zip_of([("a.txt", b"abc"), ("b.docx", D.docx(["x"]))]),
                           "application/zip")], None),
]


@pytest.mark.parametrize("desc,attachments,expected", CASES, ids=[c[0] for c in CASES])
def test_table(pack, desc, attachments, expected):
    verdict, _ = run(pack, D.message(attachments=attachments))
    got = [f.result for f in found(verdict, "banned-type")]
    assert got == ([expected] if expected else []), verdict.findings
    if expected:
        assert verdict.action == "reject"


def test_reply_text(pack):
    verdict, _ = run(pack, D.message(attachments=[("invoice.pdf.exe", b"x", "application/octet-stream")]),
                     inbound=False)
    assert str(verdict.reply) == ("550 5.7.1 Executable or script attachments are not accepted: invoice.pdf.exe "
                                  "(regulation art. 11.5)")


def test_rfc2231_and_rfc2047_names(pack):
    rfc2231 = b"filename*=UTF-8''" + quote("hóa đơn.pdf.exe").encode()
    verdict, facts = run(pack, _raw_name_message(rfc2231, b"x"))
    assert facts.attachments[0].filename == "hóa đơn.pdf.exe"
    assert [f.result for f in found(verdict, "banned-type")] == ["double-extension"]
    assert "hoa don.pdf.exe" in str(verdict.reply)
    rfc2047 = b'filename="=?UTF-8?B?' + base64.b64encode("báo cáo.vbs".encode()) + b'?="'
    verdict, _ = run(pack, _raw_name_message(rfc2047, b"x"))
    assert [f.result for f in found(verdict, "banned-type")] == ["name"]


def test_bidi_override_name(pack):
    # "hoadon\u202Efdp.exe" shows as "hoadonexe.pdf" in a mail client
    verdict, _ = run(pack, D.message(attachments=[("hoadon\u202efdp.exe", b"x", "application/octet-stream")]))
    assert [f.result for f in found(verdict, "banned-type")] == ["name"]


def test_archive_members_do_not_count_in_attachment_total(pack):
    inner = D.docx(["x"] * 50)
    _, facts = run(pack, D.message(attachments=[("hoso.zip", D.zip_of([("a.docx", inner), ("b.docx", inner)]),
                                                 "application/zip")]))
    assert len(facts.attachments) == 1
    assert facts.attachments_total == facts.attachments[0].size
    assert facts.attachments[0].detected_type == "application/zip"
    members = facts.extra["content"].files
    assert sorted(m.filename for m in members) == ["a.docx", "b.docx"]
    assert {m.container for m in members} == {"zip:hoso.zip"}


def test_corpus_rspamd_zips(pack):
    corpus = D.SHARED / "corpus" / "mime" / "rspamd"
    verdict, _ = run(pack, (corpus / "zip.eml").read_bytes())
    assert [(f.result, f.reason) for f in found(verdict, "banned-type")] == [
        ("name", "fake.exe: banned extension .exe in zip:f.zip")]
    verdict, _ = run(pack, (corpus / "zip-doublebad.eml").read_bytes())
    assert [f.result for f in found(verdict, "banned-type")] == ["double-extension"]


def test_pack_list_errors(tmp_path):
    (tmp_path / "types.txt").write_text(".exe\nexe\n", encoding="utf-8")
    site = tmp_path / "site.yaml"
    site.write_text("rules:\n  banned-type:\n    lists: [types.txt]\n", encoding="utf-8")
    with pytest.raises(PackErrors) as e:
        load_pack([str(D.POLICY), str(site)])
    assert "'exe' is neither an extension nor a MIME type" in str(e.value)


def test_allow_extensions(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text("rules:\n  banned-type:\n    allow_extensions: [.iso]\n", encoding="utf-8")
    pack = load_pack([str(D.POLICY), str(site)])
    verdict, _ = run(pack, D.message(attachments=[("bando.iso", b"data", "application/octet-stream")]))
    assert not found(verdict, "banned-type")
    verdict, _ = run(load_pack([str(D.POLICY)]), D.message(attachments=[("bando.iso", b"data",
                                                                         "application/octet-stream")]))
    assert [f.result for f in found(verdict, "banned-type")] == ["name"]


def test_both_names_are_judged():
    """Clients differ on which of filename= and name= they show: a .exe in either is refused, and named."""
    import io

    from monre_milter.engine import Transaction
    from monre_milter.extract.message import analyse
    from monre_milter.facts import Connection
    from monre_milter.pack import load_pack

    from conftest import REPO

    pack = load_pack([str(REPO / "policies" / "monre.yaml")])
    raw = (b"From: a@example.org\r\nTo: b@monre.gov.vn\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n--B\r\n"
           b"Content-Type: application/pdf; name=\"invoice.exe\"\r\n"
           b"Content-Disposition: attachment; filename=\"invoice.pdf\"\r\n\r\n%PDF-1.4\r\n--B--\r\n")
    tx = Transaction(pack, Connection("198.51.100.7"))
    tx.mail_from("a@example.org")
    tx.rcpt("b@monre.gov.vn")
    v = tx.end_of_message(analyse(io.BytesIO(raw), pack, tx.direction, tx.message_unit()))
    assert v.action == "reject"
    assert str(v.reply) == ("550 5.7.1 Executable or script attachments are not accepted: invoice.exe "
                            "(regulation art. 11.5)")
