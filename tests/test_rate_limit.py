"""rate-limit (art. 10.2): recipients per authenticated account per window, tempfailed at RCPT time."""
from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest

from monre_milter.check import check_file
from monre_milter.engine import Transaction
from monre_milter.facts import Connection
from monre_milter.pack import load_pack
from monre_milter.spam.rate import MemoryRateStore

REPO = Path(__file__).resolve().parents[1]
BASE = str(REPO / "policies" / "monre.yaml")
OVER = "451 4.7.1 Too many recipients for this account (limit 3 per minute), try again later (regulation art. 10.2)"


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    site = tmp_path_factory.mktemp("rate") / "site.yaml"
    site.write_text("rules:\n  rate-limit:\n    limit: 3\n    window: 60\n    max_accounts: 977\n"
                    "    exempt: [robot@monre.gov.vn]\n")
    return load_pack([BASE, str(site)])


def account() -> str:
    """A fresh account per test: the store is process-wide (it survives pack reloads), so tests must not share."""
    return f"u{uuid.uuid4().hex[:8]}@monre.gov.vn"


def send(pack, user, rcpts, now, ip="10.1.1.1"):
    tx = Transaction(pack, Connection(client_ip=ip, sasl_user=user), now=now)
    assert tx.mail_from(user or "x@example.org") is None
    return [tx.rcpt(r) for r in rcpts], tx


def test_fourth_recipient_and_later_ones_are_tempfailed(pack):
    user = account()
    replies, tx = send(pack, user, [f"r{i}@example.org" for i in range(5)], now=1000.0)
    assert replies[:3] == [None, None, None]
    assert [str(r) for r in replies[3:]] == [OVER, OVER]
    f = tx.refused[0][2]
    assert (f.rule, f.article, f.result, f.action, f.rcpt) == ("rate-limit", "10.2", "over-limit", "tempfail",
                                                                 "r3@example.org")
    assert f.reason == (f"account {user} reached 3 recipients within 60 s (limit 3); possible compromised mailbox")
    assert tx.refused[1][2].result == "over-limit-repeat"  # one incident per burst, not one per recipient
    replies, tx = send(pack, user, ["late@example.org"], now=1030.0)
    assert [f.result for _, _, f in tx.refused] == ["over-limit-repeat"]
    replies, tx = send(pack, user, [f"n{i}@example.org" for i in range(4)], now=1100.0)  # a new window, a new burst
    assert [f.result for _, _, f in tx.refused] == ["over-limit"]


def test_count_spans_messages_and_the_window_slides(pack):
    user = account()
    assert send(pack, user, ["a@example.org", "b@example.org"], now=5000.0)[0] == [None, None]
    assert [str(r) if r else None for r in send(pack, user, ["c@example.org", "d@example.org"], now=5030.0)[0]] \
        == [None, OVER]
    # refused recipients were not counted: once the first two fall out of the window, two more get through
    assert send(pack, user, ["e@example.org", "f@example.org", "g@example.org"], now=5065.0)[0][:2] == [None, None]


def test_unauthenticated_exempt_and_other_accounts_are_not_limited(pack):
    many = [f"r{i}@monre.gov.vn" for i in range(6)]
    assert send(pack, None, many, now=1.0, ip="203.0.113.9")[0] == [None] * 6  # inbound, no SASL login
    assert send(pack, "Robot@monre.gov.vn", many, now=1.0)[0] == [None] * 6
    a, b = account(), account()
    send(pack, a, many[:3], now=1.0)
    assert send(pack, b, many[:3], now=1.0)[0] == [None] * 3


def test_check_command_reports_refused_recipients(pack, tmp_path):
    msg = tmp_path / "m.eml"
    msg.write_bytes(b"From: x@monre.gov.vn\r\nTo: a@example.org\r\nSubject: s\r\n\r\nhi\r\n")
    user = account()
    v = check_file(pack, str(msg), mail_from=user, rcpts=[f"r{i}@example.org" for i in range(4)], sasl_user=user)
    j = v.as_json()
    assert j["action"] == "accept"  # the three accepted recipients still get the message
    assert j["rejected_rcpts"] == [{"rcpt": "r3@example.org", "reply": OVER}]
    assert [r["result"] for r in j["rules"] if r["id"] == "rate-limit"] == ["over-limit"]


def test_concurrent_connections_never_exceed_the_limit(pack):
    user = account()
    accepted = []

    def worker(n):
        replies, _ = send(pack, user, [f"t{n}-{i}@example.org" for i in range(5)], now=9000.0)
        accepted.extend(r for r in replies if r is None)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(accepted) == 3


def test_memory_store_is_a_bounded_sliding_window():
    s = MemoryRateStore(window=60, max_keys=2)
    assert s.add("a", 0, 100.0) == 0 and len(s) == 0  # reading does not create keys
    assert s.add("a", 2, 100.0) == 2
    assert s.add("a", 1, 159.0) == 3
    assert s.add("a", 0, 161.0) == 1  # the two at t=100 left the window
    assert s.add("a", -1, 161.0) == 0
    for t in range(200, 2000, 7):  # many buckets over time: old ones are dropped
        s.add("a", 1, float(t))
    assert len(s.keys["a"]) <= s.nbuckets
    s.add("b", 1, 2000.0)
    s.add("c", 1, 2000.0)  # a third account evicts the least recently used one
    assert len(s) == 2 and "a" not in s.keys
