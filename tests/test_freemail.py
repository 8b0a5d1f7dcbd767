"""Rule freemail (art. 9.1): table-driven cases through the engine, as `check` and the milter drive it."""
from __future__ import annotations

import pytest

from monre_milter.engine import Transaction
from monre_milter.engine.addresses import DomainSet, normalise_domain
from monre_milter.facts import Connection, MessageFacts
from monre_milter.pack import load_pack

from conftest import REPO

PACK = load_pack([str(REPO / "policies" / "monre.yaml")])
OUT = Connection(client_ip="10.9.8.7", sasl_user="nva@monre.gov.vn")
IN = Connection(client_ip="198.51.100.20")


def rcpt_reply(conn, mail_from, rcpt):
    tx = Transaction(PACK, conn)
    assert tx.mail_from(mail_from) is None
    r = tx.rcpt(rcpt)
    return str(r) if r else None


TO_FREE = "550 5.7.1 Official mail may not go to free-mail addresses (regulation art. 9.1)"
FROM_FREE = "550 5.7.1 Official mail may not come from free-mail addresses (regulation art. 9.1)"


@pytest.mark.parametrize("rcpt, expected", [
    ("x@gmail.com", TO_FREE),
    ("X@GMAIL.COM", TO_FREE),                 # case-insensitive
    ("x@gmail.com.", TO_FREE),                # trailing root dot
    ("x@yahoo.com.vn", TO_FREE),              # local addition
    ("x@hcm.vnn.vn", TO_FREE),                # sub-domain of a listed domain
    ("x@mail.gmail.com", TO_FREE),
    ("x@notgmail.com", None),                 # a suffix that is not a label boundary
    ("x@gmail.com.example.org", None),
    ("x@monre.gov.vn", None),
    ("x@partner.gov.vn", None),
])
def test_outbound_recipients(rcpt, expected):
    assert rcpt_reply(OUT, "nva@monre.gov.vn", rcpt) == expected


@pytest.mark.parametrize("sender, rcpt, expected", [
    ("c@gmail.com", "nva@monre.gov.vn", FROM_FREE),
    ("c@GMail.com", "support@monre.gov.vn", None),   # the incident address of art. 10.6 is exempt
    ("c@gmail.com", "SUPPORT@monre.gov.vn", None),
    ("c@example.org", "nva@monre.gov.vn", None),
    ("", "nva@monre.gov.vn", None),                  # bounces (null sender)
    ("c@example.org", "x@yahoo.com", None),          # inbound: recipients are not checked
])
def test_inbound_senders(sender, rcpt, expected):
    assert rcpt_reply(IN, sender, rcpt) == expected


def eom(conn, mail_from, rcpts, **headers):
    tx = Transaction(PACK, conn)
    tx.mail_from(mail_from)
    for r in rcpts:
        tx.rcpt(r)
    return tx.end_of_message(MessageFacts(**headers))


def test_outbound_header_from_reply_to_sender():
    v = eom(OUT, "nva@monre.gov.vn", ["p@example.org"], reply_to=["nva.private@gmail.com"])
    assert v.action == "reject"
    assert str(v.reply) == ("550 5.7.1 Official mail may not use a free-mail address in Reply-To "
                            "(regulation art. 9.1)")
    v = eom(OUT, "nva@monre.gov.vn", ["p@example.org"], sender=["x@outlook.com"])
    assert v.action == "reject" and "in Sender" in str(v.reply)
    v = eom(OUT, "nva@monre.gov.vn", ["p@example.org"], header_from=["nva@monre.gov.vn"])
    assert v.action == "accept" and [f for f in v.findings if f.rule == "freemail"] == []


def test_inbound_header_from_mixed_recipients_refuses_only_non_exempt():
    v = eom(IN, "list@example.org", ["nva@monre.gov.vn", "support@monre.gov.vn"], header_from=["a@gmail.com"])
    assert v.action == "accept"
    assert [(r, str(rep)) for r, rep in v.rejected_rcpts] == [("nva@monre.gov.vn", FROM_FREE)]
    v = eom(IN, "list@example.org", ["nva@monre.gov.vn"], header_from=["a@gmail.com"])
    assert v.action == "reject" and str(v.reply) == FROM_FREE


def test_all_recipients_refused_makes_the_verdict_reject():
    v = eom(OUT, "nva@monre.gov.vn", ["a@gmail.com", "b@yahoo.com"])
    assert v.action == "reject" and str(v.reply) == TO_FREE
    assert [r for r, _ in v.rejected_rcpts] == ["a@gmail.com", "b@yahoo.com"]


def test_idn_compared_as_a_labels():
    s = DomainSet(["bücher.example", "xn--mail-xyz.vn"])
    assert s.match("BÜCHER.example.") == "xn--bcher-kva.example"
    assert s.match("xn--bcher-kva.example") == "xn--bcher-kva.example"
    assert normalise_domain("Ví-Dụ.VN") == normalise_domain("xn--v-d-wla0d.vn") or normalise_domain("Ví-Dụ.VN").startswith("xn--")


def test_lookup_cost_does_not_grow_with_the_list():
    small = DomainSet(["gmail.com"])
    big = DomainSet([f"d{i}.example" for i in range(100_000)] + ["gmail.com"])
    # one probe per label of the queried domain, whatever the list size: count them
    probes = {"n": 0}

    class Counting(set):
        def __contains__(self, item):
            probes["n"] += 1
            return super().__contains__(item)

    for s in (small, big):
        s._set = Counting(s._set)
        probes["n"] = 0
        assert s.match("a.b.c.gmail.com") == "gmail.com"
        assert probes["n"] == 4


def test_default_list_is_large_and_excludes_our_domain():
    cfg = PACK.rule_config("freemail", "other", "outbound")
    assert len(cfg.domains) > 4000
    assert cfg.domains.match("monre.gov.vn") is None


@pytest.mark.parametrize("rcpt", ["friend%gmail.com@monre.gov.vn", "gmail.com!friend@monre.gov.vn",
                                  '"friend@gmail.com"@monre.gov.vn', "a%b%yahoo.com@relay.example.org"])
def test_routing_forms_hiding_a_free_mail_destination(rcpt):
    assert rcpt_reply(OUT, "nva@monre.gov.vn", rcpt) == TO_FREE


def test_folded_and_padded_from_headers():
    from monre_milter.engine.addresses import header_addresses

    assert header_addresses(["Friend <friend@gmail\r\n .com>"]) == ["friend@gmail.com"]
    assert header_addresses(["(" + "x" * 70_000 + ") friend@gmail.com"]) == ["friend@gmail.com"]
    padded = ", ".join(f"u{i}@example.org" for i in range(4000)) + ", <friend@gmail.com>"
    assert header_addresses([padded])[-1] == "friend@gmail.com"
