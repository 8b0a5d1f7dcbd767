"""dnsbl (art. 10.2): lookups against a real DNS server on loopback (tests/dnsserver.py), no mocked resolver."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dnsserver import DnsServer
from monre_milter.check import check_file
from monre_milter.engine.rules.dnsbl import Zone, classify
from monre_milter.facts import Connection, Envelope
from monre_milter.pack import PackErrors, load_pack
from monre_milter.spam.dnsbl import reversed_ip
from monre_milter.spam.hooks import prepare_facts, start_lookups

REPO = Path(__file__).resolve().parents[1]
BASE = str(REPO / "policies" / "monre.yaml")
LISTED = "198.51.100.7"
LISTED6 = "2001:db8::5"
CLEAN = "198.51.100.8"
REFUSED = "198.51.100.9"  # the zone answers 127.255.255.254: "query through a public resolver"
DOUBLE = "198.51.100.10"  # two codes at once
ZEN = ("zen.test", {"127.0.0.2": "SBL", "127.0.0.4": "XBL", "127.0.0.10": "PBL"},
       {"127.255.255.252": "typo in the zone name", "127.255.255.254": "query via a public resolver",
        "127.255.255.255": "excessive queries"})
RECORDS = {
    "7.100.51.198.zen.test": ["127.0.0.2"],
    "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.test": ["127.0.0.4"],
    "9.100.51.198.zen.test": ["127.255.255.254"],
    "10.100.51.198.zen.test": ["127.0.0.4", "127.0.0.10"],
    "spam.example.dbl.test": ["127.0.1.2"],
}


def write_pack(tmp: Path, port: int, timeout: float = 1.0, extra: str = "") -> str:
    codes = "\n".join(f"          {k}: {v}" for k, v in ZEN[1].items())
    errors = "\n".join(f"          {k}: {v}" for k, v in ZEN[2].items())
    p = tmp / "site.yaml"
    p.write_text(f"""
rules:
  dnsbl:
    nameservers: [127.0.0.1]
    port: {port}
    timeout: {timeout}
    skip_networks: [10.0.0.0/8]
    zones:
      - zone: zen.test
        codes:
{codes}
        errors:
{errors}
      - zone: dbl.test
        type: domain
        codes: {{127.0.1.2: spam domain}}
        errors: {{127.0.1.255: IP queries prohibited}}
{extra}""", encoding="utf-8")
    return str(p)


@pytest.fixture
def msg(tmp_path) -> str:
    p = tmp_path / "m.eml"
    p.write_bytes(b"From: partner@example.org\r\nTo: nva@monre.gov.vn\r\nSubject: hello\r\n\r\nHello.\r\n")
    return str(p)


@pytest.fixture
def ns():
    with DnsServer(RECORDS, zones=["zen.test", "dbl.test"]) as server:
        yield server


@pytest.fixture
def pack(tmp_path, ns):
    return load_pack([BASE, write_pack(tmp_path, ns.port)])


def rules(v, rid="dnsbl"):
    return [r for r in v.as_json()["rules"] if r["id"] == rid]


# -- pure parts ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ip,label", [
    ("192.0.2.1", "1.2.0.192"),
    ("::ffff:192.0.2.1", "1.2.0.192"),  # IPv4-mapped: looked up as IPv4
    ("2001:db8::5", "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"),
    ("[2001:DB8::5]", "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"),
    ("not-an-ip", None),
])
def test_reversed_ip(ip, label):
    assert reversed_ip(ip) == label


def test_classify_table():
    import ipaddress as ia

    zone = Zone("zen.test", "ip", tuple((ia.IPv4Address(k), v) for k, v in ZEN[1].items()),
                ((ia.IPv4Network("127.255.255.0/24"), "refused"),))
    assert classify(zone, []) == ("clean", [])
    assert classify(zone, ["127.0.0.2"]) == ("listed", ["SBL"])
    assert classify(zone, ["127.0.0.4", "127.0.0.10"]) == ("listed", ["XBL", "PBL"])
    assert classify(zone, ["127.255.255.254"]) == ("permerror", ["127.255.255.254: refused"])
    assert classify(zone, ["127.255.255.252"])[0] == "permerror"
    assert classify(zone, ["127.0.0.99"]) == ("unknown", ["127.0.0.99: undocumented code"])
    assert classify(zone, ["93.184.216.34"])[0] == "permerror"  # a resolver rewriting NXDOMAIN is not a listing
    bare = Zone("bl.test", "ip")
    assert classify(bare, ["127.0.0.5"]) == ("listed", ["listed (127.0.0.5)"])


def test_bad_zone_options_are_pack_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  dnsbl:\n    zones:\n      - zone: zen.test\n        codes: {127.0.0: SBL}\n"
                   "      - zone: x.test\n        kind: ip\n")
    with pytest.raises(PackErrors) as ei:
        load_pack([BASE, str(bad)])
    text = "\n".join(ei.value.errors)
    assert ("bad.yaml:7:9: rules.dnsbl.zones.1.kind: unknown key (hint: known keys: zone, type, codes, errors, "
            "action)") in text
    bad.write_text("rules:\n  dnsbl:\n    zones:\n      - zone: zen.test\n        codes: {127.0.0: SBL}\n")
    with pytest.raises(PackErrors) as ei:
        load_pack([BASE, str(bad)])
    assert "rules.dnsbl.zones.0.codes: not an IPv4 answer code: '127.0.0'" in ei.value.errors[0]


# -- against the loopback server -----------------------------------------------------------------------------------
def test_listed_ipv4_is_rejected(pack, ns, msg):
    v = check_file(pack, msg, client_ip=LISTED)
    assert v.action == "reject"
    assert str(v.reply) == "554 5.7.1 Client host 198.51.100.7 is listed by zen.test (SBL) (regulation art. 10.2)"
    assert "7.100.51.198.zen.test" in ns.queries


def test_listed_ipv6_nibbles_are_rejected(pack, ns, msg):
    v = check_file(pack, msg, client_ip=LISTED6)
    assert str(v.reply) == "554 5.7.1 Client host 2001:db8::5 is listed by zen.test (XBL) (regulation art. 10.2)"
    assert any(q.endswith("8.b.d.0.1.0.0.2.zen.test") for q in ns.queries)


def test_several_codes_name_every_list(pack, msg):
    v = check_file(pack, msg, client_ip=DOUBLE)
    assert str(v.reply) == ("554 5.7.1 Client host 198.51.100.10 is listed by zen.test (XBL, PBL) "
                            "(regulation art. 10.2)")


def test_not_listed_nxdomain_accepts(pack, ns, msg):
    v = check_file(pack, msg, client_ip=CLEAN)
    assert v.action == "accept" and rules(v) == []
    assert "8.100.51.198.zen.test" in ns.queries
    extra = prepare_facts(pack, Connection(client_ip=CLEAN), Envelope(mail_from="a@example.org"))
    lk = extra["dnsbl"]["lookups"]
    assert [(x["zone"], x["status"], x["verdict"]) for x in lk] == [("zen.test", "nxdomain", "clean"),
                                                                    ("dbl.test", "nxdomain", "clean")]


def test_refusal_code_is_never_a_listing(pack, msg):
    v = check_file(pack, msg, client_ip=REFUSED)
    assert v.action == "accept" and v.reply is None
    (r,) = rules(v)
    assert (r["result"], r["action"]) == ("permerror", "monitor")
    assert "127.255.255.254: query via a public resolver" in r["reason"]


def test_rhsbl_sender_domain_listed(pack, msg):
    v = check_file(pack, msg, client_ip=CLEAN, mail_from="promo@spam.example")
    assert str(v.reply) == ("554 5.7.1 Sender domain spam.example is listed by dbl.test (spam domain) "
                            "(regulation art. 10.2)")


def test_internal_and_skipped_clients_are_not_looked_up(pack, ns, msg):
    n = len(ns.queries)
    assert check_file(pack, msg, client_ip="10.1.2.3").action == "accept"  # skip_networks
    assert check_file(pack, msg).action == "accept"  # local submission (127.0.0.1): outbound, rule not asked
    assert check_file(pack, msg, client_ip=LISTED, sasl_user="nva@monre.gov.vn").action == "accept"  # outbound
    assert len(ns.queries) == n


def test_cache_hit_sends_one_query(pack, ns):
    conn = Connection(client_ip=LISTED)
    first = prepare_facts(pack, conn, Envelope())["dnsbl"]["lookups"][0]
    second = prepare_facts(pack, conn, Envelope())["dnsbl"]["lookups"][0]
    assert ns.queries.count("7.100.51.198.zen.test") == 1
    assert (first["cached"], second["cached"]) == (False, True)
    assert first["codes"] == second["codes"] == ["127.0.0.2"]


def test_timeout_never_rejects_and_stays_in_budget(tmp_path, msg):
    with DnsServer({}, zones=["zen.test"], silent=True) as dead:
        pack = load_pack([BASE, write_pack(tmp_path, dead.port, timeout=0.5)])
        t = time.monotonic()
        v = check_file(pack, msg, client_ip=LISTED)
        elapsed = time.monotonic() - t
        assert dead.queries, "the query reached the server"
    assert v.action == "accept" and v.reply is None
    assert elapsed < 1.5, elapsed
    found = rules(v)  # the client address in zen.test and the sender domain in dbl.test, both unanswered
    assert [(r["result"], r["action"]) for r in found] == [("temperror", "monitor")] * 2
    assert "zen.test lookup for 198.51.100.7: timeout" in found[0]["reason"]


def test_started_at_connect_collected_later_within_budget(pack, ns):
    conn = Connection(client_ip=LISTED)
    h = start_lookups(pack, conn)
    assert h is not None and not h.skipped
    time.sleep(0.2)  # the SMTP dialogue goes on while the lookup runs
    t = time.monotonic()
    extra = prepare_facts(pack, conn, Envelope(mail_from="x@example.org"), handle=h)
    assert time.monotonic() - t < 0.5
    ip, dom = extra["dnsbl"]["lookups"]
    assert (ip["status"], ip["verdict"], ip["meanings"]) == ("answer", "listed", ["SBL"])
    assert dom["query"] == "example.org.dbl.test"


def test_cli_check_json(tmp_path, ns, msg):
    site = write_pack(tmp_path, ns.port)
    out = subprocess.run([sys.executable, "-m", "monre_milter.cli", "check", "--policy", BASE, "--policy", site,
                          "--client-ip", LISTED, "--json", msg], capture_output=True, text=True, timeout=60,
                         cwd=REPO)
    assert out.returncode == 0, out.stderr
    j = json.loads(out.stdout)
    assert j["action"] == "reject"
    assert j["smtp_reply"] == "554 5.7.1 Client host 198.51.100.7 is listed by zen.test (SBL) (regulation art. 10.2)"
    assert {"id": "dnsbl", "article": "10.2", "result": "listed", "action": "reject",
            "reason": "198.51.100.7 listed by zen.test: SBL (127.0.0.2)"} in j["rules"]
