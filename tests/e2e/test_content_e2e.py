"""Art. 10.1 (classified) and 11.5 (banned-type) end to end: real Postfix on loopback, the milter, mail over SMTP."""
from __future__ import annotations

import time

import pytest

from harness import send, wait_sink
from samples import documents as D
from samples.documents import DOCX

pytestmark = pytest.mark.e2e

OUTSIDE = "198.51.100.20"
CLASSIFIED_SUBJECT = ("550 5.7.1 Classified documents may not be sent by email: a secrecy marking was found in the "
                      "subject (regulation art. 10.1)")
CLASSIFIED_DOCX = ("550 5.7.1 Classified documents may not be sent by email: a secrecy marking was found in the "
                   "attachment baocao.docx (regulation art. 10.1)")
BANNED_EXE = "550 5.7.1 Executable or script attachments are not accepted: run.exe (regulation art. 11.5)"


def reply(r):
    return f"{r[0]} {r[1]}"


def test_outbound_classified_subject_refused(lab):
    msg = D.message(subject="[MẬT] Báo cáo tình hình", sender="nva@monre.gov.vn", to="partner@example.org")
    r = send(lab, msg, "nva@monre.gov.vn", ["partner@example.org"], login="nva@monre.gov.vn")
    assert r.rcpt["partner@example.org"][0] == 250
    assert reply(r.data) == CLASSIFIED_SUBJECT


def test_inbound_classified_docx_header_refused(lab):
    msg = D.message(attachments=[("baocao.docx", D.docx(["Nội dung"], header="TỐI MẬT"), DOCX)])
    r = send(lab, msg, "a@example.org", ["nva@monre.gov.vn"], client_ip=OUTSIDE)
    assert reply(r.data) == CLASSIFIED_DOCX


def test_regulation_docx_and_pdf_delivered(lab):
    reg = D.regulation_paragraphs()
    msg = D.message(subject="Quy chế thư điện tử (bản gửi các đơn vị)", sender="nva@monre.gov.vn",
                    to="ttb@monre.gov.vn", attachments=[("quy-che.docx", D.docx(reg), DOCX),
                                                        ("quy-che.pdf", D.pdf(reg), "application/pdf")])
    r = send(lab, msg, "nva@monre.gov.vn", ["ttb@monre.gov.vn"], login="nva@monre.gov.vn")
    assert r.data[0] == 250, r.data
    assert wait_sink(lab, r.queue_id) is not None, lab.postfix_log()


def test_inbound_exe_in_zip_refused(lab):
    msg = D.message(attachments=[("hoso.zip", D.zip_of([("baocao.txt", b"x"), ("run.exe", b"MZ")]),
                                  "application/zip")])
    r = send(lab, msg, "a@example.org", ["nva@monre.gov.vn"], client_ip=OUTSIDE)
    assert reply(r.data) == BANNED_EXE


def test_password_protected_zip_is_held_not_accepted(lab):
    msg = D.message(attachments=[("hoso.zip", D.encrypted_zip("baocao.docx", D.docx(["x"])), "application/zip")])
    held = set(lab.queue_ids("hold"))
    r = send(lab, msg, "a@example.org", ["nva@monre.gov.vn"], client_ip=OUTSIDE)
    assert r.data[0] == 250, r.data
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and r.queue_id not in lab.queue_ids("hold"):
        time.sleep(0.1)
    assert r.queue_id in set(lab.queue_ids("hold")) - held, lab.postfix_log()
