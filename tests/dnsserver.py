"""A small authoritative DNS server on loopback, built on dnspython, for blocklist tests (unit and end to end).

    with DnsServer({"2.0.0.127.bl.test": ["127.0.0.2"]}, zones=["bl.test"]) as ns:
        ... resolver at 127.0.0.1:ns.port ...
        ns.queries  -> ["2.0.0.127.bl.test", ...]   (every question received, in order)

Answers A queries for the names in `records` (authoritative, with `ttl`); any other name under one of `zones` gets
NXDOMAIN with an SOA in the authority section (negative caching works as with a real server); names outside the zones
get REFUSED. `silent=True` makes a server that reads queries and never answers (a dead blocklist).
"""
from __future__ import annotations

import select
import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class DnsServer:
    def __init__(self, records: dict[str, list[str]], zones: list[str] | None = None, ttl: int = 300,
                 silent: bool = False):
        self.records = {k.lower().rstrip("."): list(v) for k, v in records.items()}
        self.zones = [z.lower().rstrip(".") for z in (zones or [])]
        self.ttl = ttl
        self.silent = silent
        self.queries: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"dns-{self.port}", daemon=True)

    def start(self) -> "DnsServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def __enter__(self) -> "DnsServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _zone_of(self, name: str) -> str | None:
        return next((z for z in self.zones if name == z or name.endswith("." + z)), None)

    def answer(self, wire: bytes) -> bytes | None:
        q = dns.message.from_wire(wire)
        if not q.question:
            return None
        question = q.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        self.queries.append(name)
        if self.silent:
            return None
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        if name in self.records:
            if question.rdtype == dns.rdatatype.A:
                r.answer.append(dns.rrset.from_text_list(question.name, self.ttl, dns.rdataclass.IN,
                                                         dns.rdatatype.A, self.records[name]))
            else:
                self._soa(r, self._zone_of(name) or name)
        elif self._zone_of(name):
            r.set_rcode(dns.rcode.NXDOMAIN)
            self._soa(r, self._zone_of(name))
        else:
            r.set_rcode(dns.rcode.REFUSED)
            r.flags &= ~dns.flags.AA
        return r.to_wire()

    def _soa(self, r: dns.message.Message, zone: str) -> None:
        r.authority.append(dns.rrset.from_text(zone + ".", self.ttl, "IN", "SOA",
                                               f"ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 {self.ttl}"))

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.1)
            if not ready:
                continue
            try:
                wire, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            try:
                out = self.answer(wire)
            except Exception as exc:  # a malformed query: answer nothing, but say so on the test's stderr
                print(f"dnsserver: cannot parse a query from {peer}: {exc}")
                continue
            if out is not None:
                self.sock.sendto(out, peer)
