"""Art. 10.2 spam rules end to end: a real Postfix, the milter, and a real DNS server on loopback for the blocklist."""
from __future__ import annotations

import time

import pytest

from dnsserver import DnsServer
from harness import make_message, send, wait_sink

pytestmark = pytest.mark.e2e

LISTED = "198.51.100.7"
CLEAN = "198.51.100.8"
RELAY = "192.0.2.25"  # trusted upstream filter
STRANGER = "203.0.113.50"
USER = "nva_vea@monre.gov.vn"


def reply(r):
    return f"{r[0]} {r[1]}"


@pytest.fixture(scope="module")
def dns():
    with DnsServer({"7.100.51.198.zen.test": ["127.0.0.2"]}, zones=["zen.test"]) as server:
        yield server


@pytest.fixture(scope="module")
def spam_lab(lab_factory, dns, tmp_path_factory):
    from conftest import REPO

    site = tmp_path_factory.mktemp("spam") / "site.yaml"
    site.write_text(f"""
organisation:
  trusted_hosts: [{RELAY}/32]
rules:
  dnsbl:
    nameservers: [127.0.0.1]
    port: {dns.port}
    timeout: 1.5
    skip_networks: [10.0.0.0/8]
    zones:
      - zone: zen.test
        codes: {{127.0.0.2: SBL}}
        errors: {{127.255.255.0/24: query refused}}
  rate-limit:
    limit: 2
    window: 600
""", encoding="utf-8")
    return lab_factory("spam", policy=[str(REPO / "policies" / "monre.yaml"), str(site)])


def test_listed_client_refused_at_end_of_data(spam_lab, dns):
    msg = make_message("partner@example.org", ["nva@monre.gov.vn"], "hello")
    r = send(spam_lab, msg, "partner@example.org", ["nva@monre.gov.vn"], client_ip=LISTED)
    assert r.rcpt["nva@monre.gov.vn"][0] == 250
    assert reply(r.data) == "554 5.7.1 Client host 198.51.100.7 is listed by zen.test (SBL) (regulation art. 10.2)"
    assert "7.100.51.198.zen.test" in dns.queries


def test_unlisted_client_delivered(spam_lab, dns):
    msg = make_message("partner@example.org", ["nva@monre.gov.vn"], "hello")
    r = send(spam_lab, msg, "partner@example.org", ["nva@monre.gov.vn"], client_ip=CLEAN)
    assert r.data[0] == 250, r.data
    assert wait_sink(spam_lab, r.queue_id) is not None
    assert "8.100.51.198.zen.test" in dns.queries


def _spam_message(sender):
    msg = make_message(sender, ["nva@monre.gov.vn"], "Cheap offer")
    msg["X-Spam-Flag"] = "YES"
    msg["X-Spam-Status"] = "Yes, score=9.1 required=5.0 tests=BAYES_99"
    return msg


def test_spam_header_from_trusted_relay_held(spam_lab):
    held = set(spam_lab.queue_ids("hold"))
    r = send(spam_lab, _spam_message("promo@example.net"), "promo@example.net", ["nva@monre.gov.vn"],
             client_ip=RELAY)
    assert r.data[0] == 250 and r.queue_id, r.data
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and r.queue_id not in spam_lab.queue_ids("hold"):
        time.sleep(0.1)
    assert r.queue_id in set(spam_lab.queue_ids("hold")) - held, spam_lab.postfix_log()


def test_spam_header_from_untrusted_client_ignored(spam_lab):
    r = send(spam_lab, _spam_message("promo@example.net"), "promo@example.net", ["nva@monre.gov.vn"],
             client_ip=STRANGER)
    assert r.data[0] == 250, r.data
    assert wait_sink(spam_lab, r.queue_id) is not None
    assert r.queue_id not in spam_lab.queue_ids("hold")


def test_rate_limit_tempfails_recipients_over_the_limit(spam_lab):
    rcpts = ["a@example.org", "b@example.org", "c@example.org"]
    r = send(spam_lab, make_message(USER, rcpts, "news"), USER, rcpts, client_ip="10.20.30.40", login=USER)
    assert [r.rcpt[x][0] for x in rcpts[:2]] == [250, 250]
    assert reply(r.rcpt["c@example.org"]) == ("451 4.7.1 Too many recipients for this account (limit 2 per 10 "
                                              "minutes), try again later (regulation art. 10.2)")
    assert r.data[0] == 250
    dump = wait_sink(spam_lab, r.queue_id)
    assert dump is not None and b"X-Rcpt-Args: <c@example.org>" not in dump
    # the next message of the same account is tempfailed from its first recipient
    r2 = send(spam_lab, make_message(USER, ["d@example.org"]), USER, ["d@example.org"], client_ip="10.20.30.40",
              login=USER)
    assert r2.rcpt["d@example.org"][0] == 451 and r2.data is None
