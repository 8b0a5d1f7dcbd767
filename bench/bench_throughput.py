"""Benchmark for the core issue: throughput through a real Postfix, and one large message.

Prints figures; asserts nothing (targets are read by people, not by a timed test).

(a) Postfix without a milter, (b) a plain pass-through pymilter (bench/passthrough_milter.py), (c) our milter with
the default pack. smtp-source sends N messages of SIZE bytes over S sessions; the rate is messages accepted per
second of wall time. Rounds alternate a, b, c so drift affects all three alike; medians are reported.
Target: c/b >= 1.0.

Large message: one message of ~21 MB on the wire (a 15 MiB attachment, base64) through (b) and (c): the time from
the end of DATA to the reply, and the milter's peak RSS growth (VmHWM after - VmRSS before). Targets: added latency
<= 0.3 s, RSS growth <= 40 MB.

    .venv/bin/python bench/bench_throughput.py [--rounds 5] [--messages 2000] [--sessions 20] [--size 10240]
"""
from __future__ import annotations

import argparse
import base64
import os
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "milter"))

from monre_milter.lab import Lab  # noqa: E402


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def smtp_source(lab: Lab, n: int, sessions: int, size: int) -> float:
    cmd = ["smtp-source", "-c", "-s", str(sessions), "-m", str(n), "-l", str(size), "-f", "nva_vea@monre.gov.vn",
           "-t", "partner@example.org", f"127.0.0.1:{lab.smtp_port}"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return n / (time.perf_counter() - t0)


def big_message() -> bytes:
    att = base64.encodebytes(os.urandom(15 * 2**20))
    head = (b"From: nva_vea@monre.gov.vn\r\nTo: partner@example.org\r\nSubject: large\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=BIG\r\n\r\n--BIG\r\nContent-Type: text/plain\r\n\r\n"
            b"see attachment\r\n--BIG\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Disposition: attachment; filename=data.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n")
    return head + att.replace(b"\n", b"\r\n") + b"--BIG--\r\n"


def send_timed(lab: Lab, data: bytes) -> tuple[float, str]:
    s = smtplib.SMTP("127.0.0.1", lab.smtp_port, timeout=120)
    try:
        s.ehlo("bench")
        s.docmd("MAIL FROM:<nva_vea@monre.gov.vn>")
        s.docmd("RCPT TO:<partner@example.org>")
        s.docmd("DATA")
        s.send(data + b".\r\n")
        t0 = time.perf_counter()
        code, text = s.getreply()
        return time.perf_counter() - t0, f"{code} {text.decode()}"
    finally:
        s.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--size", type=int, default=10240)
    ap.add_argument("--skip-large", action="store_true")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="monre-bench-"))
    os.chmod(base, 0o755)
    passthrough = [sys.executable, str(REPO / "bench" / "passthrough_milter.py"), "inet:{port}@127.0.0.1"]
    labs = {
        "a": Lab(root=base / "a", with_milter=False),
        "b": Lab(root=base / "b", milter_command=passthrough),
        "c": Lab(root=base / "c"),
    }
    names = {"a": "Postfix, no milter", "b": "pass-through pymilter", "c": "monre-milter, default pack"}
    try:
        for lab in labs.values():
            lab.start()
        for lab in labs.values():  # warm up: imports, Postfix process pool
            smtp_source(lab, 100, args.sessions, args.size)
        rates = {k: [] for k in labs}
        for r in range(args.rounds):
            for k, lab in labs.items():
                rates[k].append(smtp_source(lab, args.messages, args.sessions, args.size))
                lab.flush_queue()
            print(f"round {r + 1}: " + ", ".join(f"{k}={rates[k][-1]:.0f}" for k in labs), flush=True)
        med = {k: statistics.median(v) for k, v in rates.items()}
        print(f"\nthroughput, {args.messages} messages of {args.size} B over {args.sessions} sessions, "
              f"median of {args.rounds} rounds (msg/s):")
        for k in labs:
            print(f"  ({k}) {names[k]:30s} {med[k]:7.1f}   (min {min(rates[k]):.1f}, max {max(rates[k]):.1f})")
        print(f"  c/b = {med['c'] / med['b']:.2f}   (target >= 1.0)    c/a = {med['c'] / med['a']:.2f}")

        if not args.skip_large:
            data = big_message()
            print(f"\nlarge message: {len(data) / 1e6:.1f} MB on the wire, 15 MiB attachment")
            lat = {}
            for k in ("b", "c"):
                labs[k].stop()  # a fresh milter, so its peak RSS is this message's alone
                lab = labs[k] = Lab(root=base / f"{k}-large", **({"milter_command": passthrough} if k == "b" else {}))
                lab.start()
                send_timed(lab, b"Subject: warm-up\r\n\r\nx\r\n")
                pid = lab.milter_proc.pid
                before = status_kb(pid, "VmRSS")
                times, reply = [], ""
                for _ in range(3):
                    t, reply = send_timed(lab, data)
                    times.append(t)
                peak = status_kb(pid, "VmHWM")
                lat[k] = statistics.median(times)
                print(f"  ({k}) {names[k]:30s} end-of-data to reply {lat[k]:.3f} s (median of 3); milter RSS "
                      f"{before / 1024:.1f} MB before, peak {peak / 1024:.1f} MB, growth {(peak - before) / 1024:.1f}"
                      f" MB; reply: {reply}")
            print(f"  added latency c - b = {lat['c'] - lat['b']:.3f} s (target <= 0.3 s)")
    finally:
        for lab in labs.values():
            lab.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
