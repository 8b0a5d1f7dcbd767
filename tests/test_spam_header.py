"""spam-header (art. 10.2): an upstream filter's verdict, believed only from organisation.trusted_hosts."""
from __future__ import annotations

from pathlib import Path

import pytest

from monre_milter.check import check_file
from monre_milter.engine.rules.spam_header import Cfg, upstream_verdict
from monre_milter.pack import load_pack

REPO = Path(__file__).resolve().parents[1]
BASE = str(REPO / "policies" / "monre.yaml")
RELAY = "192.0.2.25"  # the trusted upstream filter
STRANGER = "203.0.113.50"
SA_SPAM = ("X-Spam-Flag: YES\r\nX-Spam-Status: Yes, score=7.3 required=5.0 tests=BAYES_99,URIBL_BLACK\r\n"
           "\tautolearn=no version=3.4.6\r\n")
RSPAMD_SPAM = ("X-Spamd-Result: default: True [16.20 / 15.00];\r\n\tBAYES_SPAM(5.10)[99.99%];\r\n"
               "\tR_SPF_FAIL(1.00)[-all]\r\nX-Spam: Yes\r\n")
QUARANTINED = ("spam-header", "10.2", "spam", "quarantine")


@pytest.fixture
def pack(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text(f"organisation:\n  trusted_hosts: [{RELAY}/32]\nrules:\n  dnsbl:\n    enabled: false\n")
    return load_pack([BASE, str(site)])


def message(tmp_path, headers: str) -> str:
    p = tmp_path / "m.eml"
    p.write_bytes((headers + "From: partner@example.org\r\nTo: nva@monre.gov.vn\r\nSubject: offer\r\n\r\n"
                   "Buy now.\r\n").encode())
    return str(p)


def found(v):
    return [(r["id"], r["article"], r["result"], r["action"]) for r in v.as_json()["rules"] if r["id"] == "spam-header"]


def test_spamassassin_verdict_from_trusted_relay_is_quarantined(pack, tmp_path):
    v = check_file(pack, message(tmp_path, SA_SPAM), client_ip=RELAY)
    assert v.action == "quarantine"
    assert found(v) == [QUARANTINED]
    assert v.quarantine_reason == "spam-header art. 10.2: spam"
    reason = v.as_json()["rules"][0]["reason"]
    assert reason == ("trusted upstream spamassassin (192.0.2.25) says spam: X-Spam-Flag: YES; "
                      "X-Spam-Status: Yes, score=7.3 required=5.0")


def test_rspamd_verdict_from_trusted_relay_is_quarantined(pack, tmp_path):
    v = check_file(pack, message(tmp_path, RSPAMD_SPAM), client_ip=RELAY)
    assert v.action == "quarantine" and found(v) == [QUARANTINED]
    assert "X-Spamd-Result: True [16.20 / 15.00]; X-Spam: Yes" in v.as_json()["rules"][0]["reason"]


@pytest.mark.parametrize("headers", [SA_SPAM, RSPAMD_SPAM])
def test_same_headers_from_an_untrusted_client_are_ignored(pack, tmp_path, headers):
    v = check_file(pack, message(tmp_path, headers), client_ip=STRANGER)
    assert v.action == "accept" and found(v) == []


def test_ham_verdicts_pass(pack, tmp_path):
    ham = "X-Spam-Flag: NO\r\nX-Spam-Status: No, score=-0.1 required=5.0\r\nX-Spamd-Result: default: False " \
          "[1.20 / 15.00]\r\n"
    v = check_file(pack, message(tmp_path, ham), client_ip=RELAY)
    assert v.action == "accept" and found(v) == []


def test_reject_action_gives_the_reply(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text(f"organisation:\n  trusted_hosts: [{RELAY}]\nrules:\n  spam-header:\n    action: reject\n")
    pack = load_pack([BASE, str(site)])
    v = check_file(pack, message(tmp_path, SA_SPAM), client_ip=RELAY)
    assert str(v.reply) == "550 5.7.1 Message classified as spam by the upstream filter (regulation art. 10.2)"


H = lambda *kv: list(kv)  # noqa: E731


@pytest.mark.parametrize("cfg,headers,expected", [
    (Cfg(), H(("X-Spam-Flag", "yes")), ("spamassassin", "X-Spam-Flag: YES")),
    (Cfg(), H(("X-Spam-Flag", "NO")), None),
    (Cfg(), H(("X-Spam-Status", "No, score=4.9 required=5.0")), None),
    (Cfg(score_threshold=4.5), H(("X-Spam-Status", "No, score=4.9 required=5.0")),
     ("spamassassin", "X-Spam-Status: No, score=4.9 required=5.0")),
    (Cfg(spamassassin=False), H(("X-Spam-Flag", "YES")), None),
    (Cfg(), H(("X-Spamd-Result", "default: False [7.00 / 15.00]; X")), None),
    (Cfg(score_threshold=6), H(("X-Spamd-Result", "default: False [7.00 / 15.00]; X")),
     ("rspamd", "X-Spamd-Result: False [7.00 / 15.00]")),
    (Cfg(rspamd=False), H(("X-Spam", "Yes")), None),
    # only the topmost header counts: the one the nearest (trusted) filter added; a forged older one below is not
    (Cfg(), H(("X-Spam-Flag", "NO"), ("X-Spam-Flag", "YES")), None),
    (Cfg(), H(("X-Spam-Status", "garbage")), None),
])
def test_upstream_verdict_table(cfg, headers, expected):
    assert upstream_verdict(cfg, headers) == expected
