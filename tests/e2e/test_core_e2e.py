"""Articles 4.4 and 9.1 end to end: a real Postfix on loopback, the milter in smtpd_milters, mail over SMTP."""
from __future__ import annotations

import os
import signal
import time

import pytest

from harness import make_message, send, sink_headers, wait_sink

pytestmark = pytest.mark.e2e

OUTSIDE = "198.51.100.20"  # an Internet client (inbound)
TO_FREEMAIL = "550 5.7.1 Official mail may not go to free-mail addresses (regulation art. 9.1)"
FROM_FREEMAIL = "550 5.7.1 Official mail may not come from free-mail addresses (regulation art. 9.1)"


def reply(r):
    return f"{r[0]} {r[1]}"


def test_outbound_freemail_recipient_refused_at_rcpt_others_delivered(lab):
    msg = make_message("nva_vea@monre.gov.vn", ["friend@gmail.com", "ttb@monre.gov.vn"])
    r = send(lab, msg, "nva_vea@monre.gov.vn", ["friend@gmail.com", "ttb@monre.gov.vn"],
             client_ip="10.20.30.40", login="nva_vea@monre.gov.vn")
    assert reply(r.rcpt["friend@gmail.com"]) == TO_FREEMAIL
    assert r.rcpt["ttb@monre.gov.vn"][0] == 250
    assert r.data[0] == 250, r.data
    dump = wait_sink(lab, r.queue_id)
    assert dump is not None, lab.postfix_log()
    assert b"X-Rcpt-Args: <ttb@monre.gov.vn>" in dump
    assert b"friend@gmail.com>" not in dump.split(b"\r\n\r\n")[0].split(b"Received:")[0]


def test_outbound_all_recipients_freemail_nothing_queued(lab):
    msg = make_message("nva@monre.gov.vn", ["x@yahoo.com.vn"])
    r = send(lab, msg, "nva@monre.gov.vn", ["x@Yahoo.COM.vn.", "y@hn.vnn.vn"], login="nva@monre.gov.vn")
    assert reply(r.rcpt["x@Yahoo.COM.vn."]) == TO_FREEMAIL
    assert reply(r.rcpt["y@hn.vnn.vn"]) == TO_FREEMAIL  # a listed domain covers its sub-domains
    assert r.data is None


def test_inbound_freemail_sender_refused_except_support_address(lab):
    msg = make_message("citizen@gmail.com", ["support@monre.gov.vn", "nva@monre.gov.vn"], "Báo lỗi")
    r = send(lab, msg, "citizen@gmail.com", ["nva@monre.gov.vn", "support@monre.gov.vn"], client_ip=OUTSIDE)
    assert reply(r.rcpt["nva@monre.gov.vn"]) == FROM_FREEMAIL
    assert r.rcpt["support@monre.gov.vn"][0] == 250
    assert r.data[0] == 250
    dump = wait_sink(lab, r.queue_id)
    assert dump is not None and b"X-Rcpt-Args: <support@monre.gov.vn>" in dump


def test_inbound_header_from_freemail_refused_at_end_of_data(lab):
    msg = make_message('"Ministry" <boss@gmail.com>', ["nva@monre.gov.vn"])
    r = send(lab, msg, "bounces@list.example.org", ["nva@monre.gov.vn"], client_ip=OUTSIDE)
    assert r.rcpt["nva@monre.gov.vn"][0] == 250
    assert reply(r.data) == FROM_FREEMAIL


def test_display_name_is_not_an_address(lab):
    msg = make_message('"someone@gmail.com" <partner@example.org>', ["nva@monre.gov.vn"])
    r = send(lab, msg, "partner@example.org", ["nva@monre.gov.vn"], client_ip=OUTSIDE)
    assert r.data[0] == 250, r.data


def test_announced_size_over_wire_limit_refused_at_mail_from(lab):
    r = send(lab, b"", "nva@monre.gov.vn", ["x@example.org"], login="nva@monre.gov.vn", size=26_000_000)
    assert r.mail[0] == 552, r.mail
    assert r.mail[1] == "5.3.4 Message size 26 MB exceeds the limit 25 MB (regulation art. 4.4)"


def test_attachments_over_15_mb_refused_at_end_of_data(lab):
    big = os.urandom(8_400_000)
    msg = make_message("nva@monre.gov.vn", ["partner@example.org"], "Báo cáo",
                       attachments=[("a.bin", big, "application/octet-stream"),
                                    ("b.bin", big, "application/octet-stream")])
    r = send(lab, msg, "nva@monre.gov.vn", ["partner@example.org"], login="nva@monre.gov.vn")
    assert r.rcpt["partner@example.org"][0] == 250
    assert reply(r.data) == "552 5.3.4 Attachments total 16.8 MB, limit 15 MB (regulation art. 4.4)"


def test_attachments_under_the_cap_delivered(lab):
    msg = make_message("nva@monre.gov.vn", ["partner@example.org"], "Báo cáo",
                       attachments=[("a.pdf", os.urandom(14_000_000), "application/pdf")])
    r = send(lab, msg, "nva@monre.gov.vn", ["partner@example.org"], login="nva@monre.gov.vn")
    assert r.data[0] == 250, r.data
    assert wait_sink(lab, r.queue_id) is not None


SITE_TAG = """
rules:
  freemail:
    outbound: {action: tag}
"""
SITE_HOLD = """
rules:
  freemail:
    inbound: {action: quarantine}
"""


@pytest.fixture(scope="module")
def site_lab(lab_factory, tmp_path_factory):
    d = tmp_path_factory.mktemp("site")
    site = d / "site.yaml"
    site.write_text(SITE_TAG)
    from monre_milter.lab import REPO

    lab = lab_factory("site", policy=[str(REPO / "policies" / "monre.yaml"), str(site)])
    lab.site_file = site
    return lab


def test_layered_site_pack_tag_action_adds_header(site_lab):
    msg = make_message("nva@monre.gov.vn", ["x@gmail.com"])
    r = send(site_lab, msg, "nva@monre.gov.vn", ["x@gmail.com"], login="nva@monre.gov.vn")
    assert r.rcpt["x@gmail.com"][0] == 250 and r.data[0] == 250
    dump = wait_sink(site_lab, r.queue_id)
    assert dump is not None
    assert sink_headers(dump)["X-MONRE-Policy"] == "freemail (art. 9.1): recipient"


def _hup_and_wait(lab, marker: str, timeout: float = 10.0) -> None:
    log = lab.log / "milter.log"
    before = log.read_text().count(marker)
    lab.milter_proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.read_text().count(marker) > before:
            return
        time.sleep(0.1)
    raise AssertionError(f"no {marker!r} in the milter log after SIGHUP")


def test_sighup_reload_refuses_a_bad_pack_and_applies_a_good_one(site_lab):
    site_lab.site_file.write_text("rules:\n  freemail:\n    acton: quarantine\n")  # typo: must be refused
    _hup_and_wait(site_lab, "policy reload refused")
    assert "acton: unknown key" in (site_lab.log / "milter.log").read_text()
    msg = make_message("nva@monre.gov.vn", ["x@gmail.com"])
    r = send(site_lab, msg, "nva@monre.gov.vn", ["x@gmail.com"], login="nva@monre.gov.vn")
    assert r.rcpt["x@gmail.com"][0] == 250  # the running pack (tag) stays

    site_lab.site_file.write_text(SITE_HOLD)
    _hup_and_wait(site_lab, "policy loaded")
    msg = make_message("c@gmail.com", ["nva@monre.gov.vn"])
    held_before = set(site_lab.queue_ids("hold"))
    r = send(site_lab, msg, "c@gmail.com", ["nva@monre.gov.vn"], client_ip=OUTSIDE)
    assert r.data[0] == 250, r.data
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and set(site_lab.queue_ids("hold")) == held_before:
        time.sleep(0.1)
    assert r.queue_id in set(site_lab.queue_ids("hold")) - held_before


def test_percent_hack_and_bang_path_recipients_refused(lab):
    msg = make_message("nva@monre.gov.vn", ["x@example.org"])
    r = send(lab, msg, "nva@monre.gov.vn", ["friend%gmail.com@monre.gov.vn", "gmail.com!friend@monre.gov.vn"],
             login="nva@monre.gov.vn")
    assert reply(r.rcpt["friend%gmail.com@monre.gov.vn"]) == TO_FREEMAIL
    assert reply(r.rcpt["gmail.com!friend@monre.gov.vn"]) == TO_FREEMAIL
