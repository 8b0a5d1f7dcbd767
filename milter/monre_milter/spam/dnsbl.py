"""DNS blocklist lookups: started early, bounded in time, cached, never a reason to refuse mail on failure.

One `DnsblService` per set of resolver settings per process (`service_for(cfg)`), so a pack reload with the same
settings keeps the cache. `start(ip, sender_domain, zones)` submits one query per zone to a small thread pool and
returns at once; `result(handle, timeout)` waits at most `timeout` seconds and never past the handle's deadline
(start + the pack's `timeout`). What has not answered by then is reported as "timeout"; the query keeps running in its
worker (bounded by the resolver lifetime) and its answer fills the cache for the next connection.

Cache: query name -> future. Answers are kept for their TTL (clamped to `cache_max_ttl`), NXDOMAIN for `negative_ttl`,
failures for `failure_ttl` (a dead resolver must not cost every connection its full budget); at most `cache_size`
entries, oldest evicted first. Concurrent connections from one address share a single query in flight.

Queries go through dnspython's stub resolver (UDP, TCP on truncation) to the configured `nameservers`/`port`, or to
/etc/resolv.conf when none is configured. Nothing here refuses mail: the engine rule `dnsbl` reads the outcome.
"""
from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import dns.exception
import dns.rdatatype
import dns.resolver

from ..engine.addresses import parse_ip
from ..engine.rules.dnsbl import Cfg, Zone, classify

log = logging.getLogger("monre_milter")

MAX_WORKERS = 16
MAX_SERVICES = 4  # distinct resolver settings kept alive (pack reloads that change them)


def reversed_ip(ip: str) -> str | None:
    """The blocklist query label of an address: 4 reversed octets, or 32 reversed nibbles for IPv6.
    IPv4-mapped IPv6 addresses are looked up as IPv4. None for something that is not an address."""
    a = parse_ip(ip)
    if a is None:
        return None
    rp = a.reverse_pointer
    return rp.rsplit(".in-addr.arpa", 1)[0] if a.version == 4 else rp.rsplit(".ip6.arpa", 1)[0]


@dataclass
class _Lookup:
    zone: Zone
    query: str
    future: Future | None  # None: skipped before submitting
    deadline: float
    cached: bool
    detail: str = ""


@dataclass
class Handle:
    ip: str | None = None
    domain: str | None = None
    started: float = field(default_factory=time.monotonic)
    lookups: list[_Lookup] = field(default_factory=list)
    skipped: str | None = None  # why nothing was looked up (private client, trusted relay, ...)
    zones: tuple = ()
    service: object = None  # the DnsblService that runs these lookups


@dataclass
class _Entry:
    future: Future
    expires: float = float("inf")  # set when the query finishes


class DnsblService:
    def __init__(self, cfg: Cfg):
        self.timeout = cfg.timeout
        self.cache_size = cfg.cache_size
        self.max_ttl, self.negative_ttl, self.failure_ttl = cfg.cache_max_ttl, cfg.negative_ttl, cfg.failure_ttl
        self.max_pending = cfg.max_pending
        self.resolver_error: str | None = None
        try:
            if cfg.nameservers:
                r = dns.resolver.Resolver(configure=False)
                r.nameservers = list(cfg.nameservers)
                r.port = cfg.port
            else:
                r = dns.resolver.Resolver(configure=True)
        except Exception as exc:  # no /etc/resolv.conf: every lookup reports "error", mail still flows
            r = None
            self.resolver_error = f"no resolver: {exc}"
            log.error("dnsbl: %s", self.resolver_error)
        if r is not None:
            r.cache = None  # our own cache below (shared futures, failure memory)
            r.timeout = cfg.timeout
            r.lifetime = cfg.timeout
            r.retry_servfail = False
        self.resolver = r
        self.pool = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="dnsbl")
        self.lock = threading.Lock()
        self.cache: OrderedDict[str, _Entry] = OrderedDict()
        self.pending = 0
        self.stats = {"queries": 0, "cache_hits": 0, "timeouts": 0, "errors": 0, "skipped": 0}

    # -- the query, in a worker thread -------------------------------------------------------------------------------
    def _query(self, qname: str) -> tuple[str, list[str], int, str]:
        """(status, codes, ttl, detail)."""
        if self.resolver is None:
            return "error", [], self.failure_ttl, self.resolver_error or "no resolver"
        try:
            ans = self.resolver.resolve(qname + ".", "A", raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            return "nxdomain", [], self.negative_ttl, ""
        except dns.resolver.LifetimeTimeout:
            return "timeout", [], self.failure_ttl, f"no answer within {self.timeout:g} s"
        except dns.exception.Timeout:
            return "timeout", [], self.failure_ttl, f"no answer within {self.timeout:g} s"
        except dns.resolver.NoNameservers as exc:  # SERVFAIL / REFUSED from every server
            return "error", [], self.failure_ttl, str(exc)[:200]
        except dns.exception.DNSException as exc:
            return "error", [], self.failure_ttl, f"{type(exc).__name__}: {str(exc)[:160]}"
        except OSError as exc:  # network unreachable, ...
            return "error", [], self.failure_ttl, f"{type(exc).__name__}: {exc.strerror or exc}"
        if ans.rrset is None:
            return "nxdomain", [], self.negative_ttl, "no A record"
        codes = sorted((r.address for r in ans.rrset if r.rdtype == dns.rdatatype.A), key=ipaddress.IPv4Address)
        return "answer", codes, min(ans.rrset.ttl, self.max_ttl), ""

    def _done(self, qname: str, fut: Future) -> None:
        with self.lock:
            self.pending -= 1
            entry = self.cache.get(qname)
            if entry is None or entry.future is not fut:
                return
            try:
                status, _codes, ttl, _d = fut.result()
            except Exception:  # _query catches DNS errors; anything else is a bug: do not cache it
                log.exception("dnsbl: lookup of %s failed", qname)
                del self.cache[qname]
                return
            if status == "timeout":
                self.stats["timeouts"] += 1
            elif status == "error":
                self.stats["errors"] += 1
            if ttl <= 0:
                del self.cache[qname]
            else:
                entry.expires = time.monotonic() + ttl

    def _submit(self, qname: str) -> tuple[Future | None, bool]:
        """(future, from_cache). None when too many lookups are in flight."""
        now = time.monotonic()
        with self.lock:
            entry = self.cache.get(qname)
            if entry is not None and entry.expires > now:
                self.cache.move_to_end(qname)
                self.stats["cache_hits"] += 1
                return entry.future, True
            if self.pending >= self.max_pending:
                self.stats["skipped"] += 1
                return None, False
            fut = self.pool.submit(self._query, qname)
            self.pending += 1
            self.stats["queries"] += 1
            if self.cache_size > 0:
                self.cache[qname] = _Entry(fut)
                self.cache.move_to_end(qname)
                while len(self.cache) > self.cache_size:
                    self.cache.popitem(last=False)
        fut.add_done_callback(lambda f, q=qname: self._done(q, f))
        return fut, False

    # -- API -----------------------------------------------------------------------------------------------------------
    def start(self, ip: str | None, sender_domain: str | None, zones) -> Handle:
        """Start the lookups of `ip` in the ip zones and of `sender_domain` in the domain zones. Returns at once."""
        h = Handle(ip=ip, zones=tuple(zones))
        if ip:
            self.add(h, ip, "ip", zones)
        if sender_domain:
            self.add_domain(h, sender_domain)
        return h

    def add_domain(self, h: Handle, domain: str | None) -> None:
        """Set the sender-domain (RHSBL) lookups of a handle started at connect (called at each MAIL FROM)."""
        d = (domain or "").strip().lower().rstrip(".") or None
        if d != h.domain:
            h.domain = d
            h.lookups = [lk for lk in h.lookups if lk.zone.kind != "domain"]
            if d:
                self.add(h, d, "domain", h.zones)

    def add(self, h: Handle, subject: str, kind: str, zones) -> None:
        label = reversed_ip(subject) if kind == "ip" else subject
        deadline = time.monotonic() + self.timeout
        for z in zones:
            if z.kind != kind:
                continue
            if not label:
                h.lookups.append(_Lookup(z, "", None, deadline, False, f"not an address: {subject!r}"))
                continue
            qname = f"{label}.{z.name}"
            fut, cached = self._submit(qname)
            h.lookups.append(_Lookup(z, qname, fut, deadline, cached,
                                     "" if fut is not None else "too many lookups in flight"))

    def result(self, h: Handle, timeout: float | None = None) -> dict:
        """Wait at most `timeout` seconds (never past each lookup's deadline) and report every lookup."""
        limit = time.monotonic() + (timeout if timeout is not None else self.timeout)
        out = []
        for lk in h.lookups:
            item = {"zone": lk.zone.name, "kind": lk.zone.kind, "query": lk.query, "codes": [], "cached": lk.cached}
            if lk.future is None:
                item.update(status="skipped", detail=lk.detail)
            else:
                wait = min(limit, lk.deadline) - time.monotonic()
                try:
                    status, codes, _ttl, detail = lk.future.result(timeout=max(0.0, wait))
                    item.update(status=status, codes=codes, detail=detail)
                except TimeoutError:
                    item.update(status="timeout", detail=f"no answer within the {self.timeout:g} s budget")
                except Exception as exc:  # a bug in _query: reported, never a listing
                    item.update(status="error", detail=f"{type(exc).__name__}: {exc}")
            if item["status"] == "answer":
                item["verdict"], item["meanings"] = classify(lk.zone, item["codes"])
            else:
                item["verdict"], item["meanings"] = ("clean" if item["status"] == "nxdomain" else item["status"]), []
            out.append(item)
        return {"ip": h.ip, "domain": h.domain, "skipped": h.skipped, "lookups": out,
                "elapsed_ms": int((time.monotonic() - h.started) * 1000)}

    def lookup(self, ip: str | None, sender_domain: str | None, zones) -> dict:
        """Synchronous start + result (for `monre-milter check`)."""
        return self.result(self.start(ip, sender_domain, zones))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


_services: OrderedDict[tuple, DnsblService] = OrderedDict()
_services_lock = threading.Lock()


def service_for(cfg: Cfg) -> DnsblService:
    """The process-wide service for these resolver settings (created on first use, kept across pack reloads)."""
    with _services_lock:
        svc = _services.get(cfg.service_key)
        if svc is None:
            svc = _services[cfg.service_key] = DnsblService(cfg)
            while len(_services) > MAX_SERVICES:
                _, old = _services.popitem(last=False)
                old.close()
        return svc
