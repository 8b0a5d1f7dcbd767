"""Rule attachment-size (art. 4.4) and the decoded sizes the streaming MIME walker measures."""
from __future__ import annotations

import base64
import email.message
import io
import os
import zipfile

import pytest

from monre_milter.check import check_file
from monre_milter.engine.sizes import format_size, parse_size
from monre_milter.extract.message import analyse
from monre_milter.pack import load_pack

from conftest import REPO

PACK = load_pack([str(REPO / "policies" / "monre.yaml")])


def msg_with(*attachments, cte=None) -> bytes:
    m = email.message.EmailMessage()
    m["From"] = "nva@monre.gov.vn"
    m["To"] = "p@example.org"
    m["Subject"] = "t"
    m.set_content("body text\n")
    for name, data in attachments:
        kw = {"cte": cte} if cte else {}
        m.add_attachment(data, maintype="application", subtype="octet-stream", filename=name, **kw)
    return m.as_bytes()


def facts_of(raw: bytes):
    return analyse(io.BytesIO(raw), PACK)


@pytest.mark.parametrize("sizes", [[0], [1], [2], [3], [1000, 57, 58], [76 * 3 + 1]])
def test_base64_decoded_sizes_are_exact(sizes):
    raw = msg_with(*[(f"f{i}", os.urandom(n)) for i, n in enumerate(sizes)])
    f = facts_of(raw)
    assert [a.size for a in f.attachments] == sizes
    assert f.attachments_total == sum(sizes)


def test_quoted_printable_and_7bit_sizes():
    text = ("Nội dung có dấu = và dòng rất dài " * 20 + "\n") * 30
    m = email.message.EmailMessage()
    m.set_content("x")
    m.add_attachment(text, subtype="plain", filename="a.txt", cte="quoted-printable")
    m.add_attachment(b"plain ascii\r\nline two\r\n", maintype="application", subtype="x-thing",
                     filename="b.dat", cte="7bit")
    f = facts_of(m.as_bytes())
    assert [a.filename for a in f.attachments] == ["a.txt", "b.dat"]
    assert f.attachments[0].size == len(text.encode("utf-8"))
    assert f.attachments[1].size == len(b"plain ascii\r\nline two\r\n") or f.attachments[1].size == len(
        b"plain ascii\nline two\n")


def test_attachments_inside_attached_messages_count():
    inner = email.message.EmailMessage()
    inner["Subject"] = "forwarded"
    inner.set_content("inner body")
    inner.add_attachment(os.urandom(5000), maintype="application", subtype="pdf", filename="inner.pdf")
    outer = email.message.EmailMessage()
    outer.set_content("see attached")
    outer.add_attachment(inner)  # message/rfc822
    outer.add_attachment(os.urandom(700), maintype="image", subtype="png", filename="logo.png")
    f = facts_of(outer.as_bytes())
    assert sorted((a.filename, a.size, a.msg_depth) for a in f.attachments) == [
        ("inner.pdf", 5000, 1), ("logo.png", 700, 0)]
    assert f.attachments_total == 5700


def test_zip_counts_its_own_size_not_the_expansion():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.bin", b"\0" * 30_000_000)
    data = buf.getvalue()
    f = facts_of(msg_with(("zeros.zip", data)))
    assert f.attachments_total == len(data) < 100_000


def test_non_ascii_filenames_rfc2231_and_rfc2047():
    raw = (b"From: a@b.c\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n"
           b"Content-Type: text/plain\r\n\r\nhi\r\n--XX\r\n"
           b"Content-Type: application/pdf\r\nContent-Disposition: attachment;\r\n"
           b" filename*=utf-8''B%C3%A1o%20c%C3%A1o.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.encodebytes(b"%PDF-1.4 x") + b"--XX\r\n"
           b"Content-Type: application/pdf; name=\"=?UTF-8?B?VMOgaSBsaeG7h3UucGRm?=\"\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(b"%PDF-1.4 y") + b"--XX--\r\n")
    f = facts_of(raw)
    assert [a.filename for a in f.attachments] == ["Báo cáo.pdf", "Tài liệu.pdf"]
    assert [a.size for a in f.attachments] == [10, 10]


def test_text_body_is_not_an_attachment_but_a_named_text_file_is():
    f = facts_of(msg_with(("notes.txt", b"abc")))
    assert [a.filename for a in f.attachments] == ["notes.txt"]


def test_cap_boundary_and_exact_reply(tmp_path):
    limit = parse_size("15 MB")
    assert limit == 15_000_000
    at = tmp_path / "at.eml"
    at.write_bytes(msg_with(("a.bin", os.urandom(limit))))
    over = tmp_path / "over.eml"
    over.write_bytes(msg_with(("a.bin", os.urandom(limit - 100)), ("b.bin", os.urandom(101))))
    v = check_file(PACK, str(at), sasl_user="nva@monre.gov.vn")
    assert v.action == "accept", v.as_json()
    v = check_file(PACK, str(over), sasl_user="nva@monre.gov.vn")
    assert v.action == "reject"
    assert str(v.reply) == "552 5.3.4 Attachments total 15 MB, limit 15 MB (regulation art. 4.4)"
    assert v.as_json()["rules"][0]["id"] == "attachment-size"


@pytest.mark.parametrize("text, n", [("15 MB", 15_000_000), ("15 MiB", 15 * 2**20), ("1024 B", 1024),
                                     ("2.5 GB", 2_500_000_000), ("100 bytes", 100), ("1 KiB", 1024)])
def test_parse_size(text, n):
    assert parse_size(text) == n


def test_format_size_follows_the_unit_family():
    assert format_size(16_800_000, "15 MB") == "16.8 MB"
    assert format_size(16 * 2**20, "15 MiB") == "16 MiB"
