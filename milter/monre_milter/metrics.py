"""Prometheus metrics of the milter: an Observer feeding a dedicated registry, served over HTTP (`run --metrics`).

Names and labels are a contract (dashboards, alert rules and tools outside the project use them); see
docs/observability.md. Every label value comes from a bounded set: the pack's units (else "other"), the registered
rule ids, the engine's actions, the known glue stages, the DNSBL zones named in the pack. Nothing here ever takes an
address, a subject or a queue id as a label, so the number of series does not grow with traffic.
"""
from __future__ import annotations

import logging
import re
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, start_http_server

from .engine.base import REGISTRY
from .engine.verdict import ACTIONS, RULE_ACTIONS
from .observe import Observer
from .report.categories import CATEGORIES, category_of

log = logging.getLogger("monre_milter")

DIRECTIONS = ("inbound", "outbound")
OTHER = "other"
# Glue stages that can fail (glue/milter.py), plus the observers' own failures.
STAGES = ("connect", "helo", "envfrom", "envrcpt", "header", "eoh", "body", "eom", "journal", OTHER)
# S/MIME results (RFC 8551 / 8601 words the smime rule reports).
SMIME_RESULTS = ("pass", "fail", "policy", "neutral", "temperror", "permerror", "none")
DNSBL_RESULTS = ("listed", "permerror", "unknown-code", "temperror")
# End of data to verdict. Postfix waits milter_command_timeout (30 s by default) for the end-of-message reply, then
# applies milter_default_action; buckets resolve the range up to and beyond it.
PROCESSING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 25, 30, 60, 120, 300)
SIZE_BUCKETS = (1_000, 5_000, 10_000, 50_000, 100_000, 500_000, 1_000_000, 2_000_000, 5_000_000, 10_000_000,
                15_000_000, 20_000_000, 25_000_000, 50_000_000)


class Metrics(Observer):
    """All metric families in their own CollectorRegistry (never the process-global one)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = r = registry or CollectorRegistry(auto_describe=True)
        self.messages = Counter("monre_milter_messages", "Finished SMTP transactions by verdict",
                                ["direction", "action"], registry=r)
        self.rule_hits = Counter("monre_milter_rule_hits", "Findings reported by the rules",
                                 ["rule", "article", "action", "direction", "unit"], registry=r)
        self.processing = Histogram("monre_milter_processing_seconds",
                                    "Time from end of data to verdict (Postfix gives up after milter_command_timeout)",
                                    buckets=PROCESSING_BUCKETS, registry=r)
        self.size = Histogram("monre_milter_message_size_bytes", "Size of messages that reached end of data",
                              buckets=SIZE_BUCKETS, registry=r)
        self.errors = Counter("monre_milter_errors", "Internal errors (answered with a tempfail) by stage",
                              ["stage"], registry=r)
        self.reloads = Counter("monre_milter_policy_reloads", "Policy pack loads by result", ["result"], registry=r)
        self.policy_info = Gauge("monre_milter_policy_info", "The active policy pack (value 1)",
                                 ["version", "sha256"], registry=r)
        self.incidents = Counter("monre_milter_incidents", "Appendix-2 section-3 incidents by category",
                                 ["category", "direction", "unit"], registry=r)
        self.smime = Counter("monre_milter_smime_results", "S/MIME verification results (smime rule findings)",
                             ["result"], registry=r)
        self.dnsbl = Counter("monre_milter_dnsbl_lookups", "DNS blocklist lookups that produced a finding "
                             "(listed, refused query, undocumented code, timeout); clean answers are not counted",
                             ["zone", "result"], registry=r)
        self._lock = threading.Lock()
        self._units: frozenset[str] = frozenset()
        self._zones: tuple[str, ...] = ()
        self._info: tuple[str, str] | None = None
        for d in DIRECTIONS:
            for a in ACTIONS:
                self.messages.labels(d, a)
        for s in STAGES:
            self.errors.labels(s)
        for res in ("ok", "failed"):
            self.reloads.labels(res)
        for res in SMIME_RESULTS:
            self.smime.labels(res)

    # -- bounded label values ---------------------------------------------------------------------------------------
    def unit(self, unit: str | None) -> str:
        return unit if unit in self._units else OTHER

    @staticmethod
    def direction(d: str | None) -> str:
        return d if d in DIRECTIONS else OTHER

    @staticmethod
    def rule(rule: str) -> str:
        return rule if rule in REGISTRY else OTHER

    def zone_of(self, reason: str) -> str:
        """The pack's DNSBL zone named in a dnsbl finding's reason (longest match), else "other"."""
        best = OTHER
        for z in self._zones:
            if len(z) > len(best) and re.search(rf"(?<![\w.-]){re.escape(z)}(?![\w-])", reason):
                best = z
        return best

    # -- Observer ---------------------------------------------------------------------------------------------------
    def on_findings(self, findings, ctx):
        direction, unit = self.direction(ctx.direction), self.unit(ctx.unit)
        for f in findings:
            rule = self.rule(f.rule)
            action = f.action if f.action in RULE_ACTIONS else OTHER
            article = REGISTRY[rule].article if rule in REGISTRY else OTHER
            self.rule_hits.labels(rule, article, action, direction, unit).inc()
            cat = category_of(f.rule, f.result)
            if cat:
                self.incidents.labels(cat, direction, unit).inc()
            if f.rule == "smime":
                self.smime.labels(f.result if f.result in SMIME_RESULTS else OTHER).inc()
            elif f.rule == "dnsbl":
                self.dnsbl.labels(self.zone_of(f.reason), f.result if f.result in DNSBL_RESULTS else OTHER).inc()

    def on_message(self, verdict, ctx, size, seconds):
        action = verdict.action if verdict.action in ACTIONS else OTHER
        self.messages.labels(self.direction(ctx.direction), action).inc()
        if size or seconds:  # a transaction refused before DATA has neither
            self.processing.observe(seconds)
            self.size.observe(size)

    def on_error(self, stage, ctx):
        self.count_error(stage)
        self.incidents.labels("milter-error", self.direction(ctx.direction if ctx else None),
                              self.unit(ctx.unit if ctx else None)).inc()

    def count_error(self, stage: str) -> None:
        self.errors.labels(stage if stage in STAGES else OTHER).inc()

    def on_reload(self, ok, pack):
        self.reloads.labels("ok" if ok else "failed").inc()
        if not ok or pack is None:
            return
        with self._lock:
            self._units = frozenset(pack.units)
            self._zones = tuple(sorted(_pack_zones(pack)))
            new = (str(pack.version), pack.sha256)
            if self._info and self._info != new:
                self.policy_info.remove(*self._info)
            self.policy_info.labels(*new).set(1)
            self._info = new
            self._preinit(pack)

    def _preinit(self, pack) -> None:
        """Zero series for what the pack can report, so dashboards show 0 rather than "no data"."""
        units = sorted(self._units) + [OTHER]
        for d in DIRECTIONS:
            for u in units:
                for c in CATEGORIES:
                    self.incidents.labels(c.code, d, u)
                try:
                    rules = pack.rules(u, d)
                except KeyError:
                    continue
                for rule, cfg in rules:
                    action = getattr(cfg, "action", None)
                    if rule.id in REGISTRY and action in RULE_ACTIONS:
                        self.rule_hits.labels(rule.id, rule.article, action, d, u)
        for z in self._zones:
            for res in DNSBL_RESULTS:
                self.dnsbl.labels(z, res)


def _pack_zones(pack) -> set[str]:
    zones: set[str] = set()
    for u in list(pack.units) + [OTHER]:
        for d in DIRECTIONS:
            try:
                cfg = pack.rule_config("dnsbl", u, d)
            except KeyError:
                continue
            for z in getattr(cfg, "zones", ()) or ():
                zones.add(z.name)
    return zones


_ACTIVE: Metrics | None = None


def count_error(stage: str) -> None:
    """Count an internal error from code that has no Observer at hand (e.g. the journal writer). No-op without
    a metrics endpoint."""
    if _ACTIVE is not None:
        _ACTIVE.count_error(stage)


def parse_addr(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit(f"--metrics: expected HOST:PORT (e.g. 127.0.0.1:9851), got {addr!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def start_metrics(addr: str) -> Metrics:
    """Create the metrics, serve them at http://HOST:PORT/metrics (a daemon thread) and return the Observer."""
    global _ACTIVE
    host, port = parse_addr(addr)
    disable_created_metrics()  # the *_created series would double the series count for nothing a dashboard uses
    m = Metrics()
    start_http_server(port, addr=host, registry=m.registry)
    log.info("metrics on http://%s:%d/metrics", host, port)
    _ACTIVE = m
    return m
