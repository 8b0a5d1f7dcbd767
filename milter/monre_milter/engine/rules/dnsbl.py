"""Art. 10.2 (no spam), filter mandated by art. 11.5: refuse mail from clients listed in DNS blocklists.

The rule is pure: it never queries DNS. The lookups run in `monre_milter.spam.dnsbl` (started at connect by the
glue, synchronously by `monre-milter check`) and land in `facts.message.extra["dnsbl"]`:

    {"ip": "203.0.113.7", "domain": "example.org" | None, "elapsed_ms": 12, "skipped": None | "why",
     "lookups": [{"zone": "zen.spamhaus.org", "kind": "ip", "query": "7.113.0.203.zen.spamhaus.org",
                  "status": "answer" | "nxdomain" | "timeout" | "error" | "skipped",
                  "codes": ["127.0.0.2"], "verdict": "listed", "meanings": ["SBL"], "cached": false}]}

This module owns what the answers mean (`classify`), so the service, the facts and the rule agree:
- a code listed under the zone's `errors` (Spamhaus 127.255.255.252/254/255: typo in the zone, query through a public
  resolver, too many queries; DBL 127.0.1.255: IP query) is NEVER a listing: result "permerror", action monitor, so
  metrics count the broken configuration;
- a code under `codes` is a listing, named by its meaning (127.0.0.2 -> SBL);
- any other answer inside 127.0.0.0/8 is a listing only when the zone defines no `codes`; otherwise "unknown"
  (monitor);
- an answer outside 127.0.0.0/8 (an ISP resolver rewriting NXDOMAIN to an advert host) is a permerror too.
A DNS timeout or failure never refuses mail: result "temperror", action monitor (when report_failures is on).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..base import Compiled, CompileContext, PackError, Rule, register
from ..verdict import RULE_ACTIONS

STRINGS = {"type": "array", "items": {"type": "string"}}
CODE_MAP = {"type": "object", "additionalProperties": {"type": "string"},
            "description": "answer address (or network for errors) -> meaning, e.g. 127.0.0.2: SBL"}
ZONE = {
    "type": "object", "additionalProperties": False, "required": ["zone"],
    "properties": {
        "zone": {"type": "string", "description": "the DNS zone to query, e.g. zen.spamhaus.org"},
        "type": {"enum": ["ip", "domain"], "description": "ip: the client address (IPv4, IPv6 nibbles); "
                 "domain: the envelope sender's domain (RHSBL)"},
        "codes": CODE_MAP,
        "errors": CODE_MAP,
        "action": {"enum": list(RULE_ACTIONS), "description": "action for a listing in this zone (default: the "
                   "rule's action)"},
    },
}
LOOPBACK8 = ipaddress.ip_network("127.0.0.0/8")
DEFAULT_SKIP = ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
                "::1/128", "fc00::/7", "fe80::/10"]


@dataclass(frozen=True)
class Zone:
    name: str  # lower case, no trailing dot
    kind: str  # "ip" | "domain"
    codes: tuple = ()  # ((IPv4Address, meaning), ...)
    errors: tuple = ()  # ((IPv4Network, meaning), ...)
    action: str | None = None


@dataclass
class Cfg(Compiled):
    zones: tuple = ()
    nameservers: tuple = ()  # empty: the system resolver (/etc/resolv.conf)
    port: int = 53
    timeout: float = 2.0
    cache_size: int = 10000
    cache_max_ttl: int = 3600
    negative_ttl: int = 900
    failure_ttl: int = 30
    max_pending: int = 256
    skip_networks: tuple = ()
    report_failures: bool = True
    service_key: tuple = field(default=())  # what identifies the process-wide lookup service for these settings


def classify(zone: Zone, codes: list[str]) -> tuple[str, list[str]]:
    """(verdict, meanings) for the A records a zone answered: "listed", "permerror", "unknown" or "clean"."""
    if not codes:
        return "clean", []
    listed, errors, unknown = [], [], []
    for c in codes:
        try:
            a = ipaddress.ip_address(c)
        except ValueError:
            errors.append(f"{c}: not an address")
            continue
        err = next((m for net, m in zone.errors if a in net), None)
        if err is not None:
            errors.append(f"{c}: {err}")
        elif a.version != 4 or a not in LOOPBACK8:
            errors.append(f"{c}: answer outside 127.0.0.0/8 (resolver rewriting answers?)")
        else:
            meaning = next((m for code, m in zone.codes if code == a), None)
            if meaning is not None:
                listed.append(meaning)
            elif not zone.codes:
                listed.append(f"listed ({c})")
            else:
                unknown.append(f"{c}: undocumented code")
    if errors:
        return "permerror", errors
    if listed:
        return "listed", sorted(set(listed), key=listed.index)
    return "unknown", unknown


@register
class Dnsbl(Rule):
    id = "dnsbl"
    article = "10.2"
    title = "clients (and sender domains) listed in DNS blocklists are refused"
    options_schema = {
        "zones": {"type": "array", "items": ZONE, "description": "blocklist zones and what their answers mean"},
        "nameservers": {**STRINGS, "description": "resolver addresses; empty: /etc/resolv.conf (use a local "
                        "resolver: public ones get 127.255.255.254 from Spamhaus)"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 20,
                    "description": "seconds for all lookups of a connection together (keep well under Postfix's "
                                   "milter_command_timeout of 30 s)"},
        "cache_size": {"type": "integer", "minimum": 0, "description": "answers kept in memory (0: no cache)"},
        "cache_max_ttl": {"type": "integer", "minimum": 0, "description": "seconds an answer is kept at most"},
        "negative_ttl": {"type": "integer", "minimum": 0, "description": "seconds a 'not listed' answer is kept"},
        "failure_ttl": {"type": "integer", "minimum": 0, "description": "seconds a timeout / failure is remembered "
                        "(so a dead resolver does not slow every connection)"},
        "max_pending": {"type": "integer", "minimum": 1, "description": "lookups in flight at most; beyond, skip"},
        "skip_networks": {**STRINGS, "description": "client networks never looked up (private, loopback)"},
        "report_failures": {"type": "boolean", "description": "report DNS timeouts / failures as monitor findings"},
    }
    defaults = {"action": "reject", "zones": [], "nameservers": [], "port": 53, "timeout": 2.0, "cache_size": 10000,
                "cache_max_ttl": 3600, "negative_ttl": 900, "failure_ttl": 30, "max_pending": 256,
                "skip_networks": DEFAULT_SKIP, "report_failures": True}

    def compile(self, options: dict, ctx: CompileContext) -> Cfg:
        zones = []
        for i, z in enumerate(options["zones"]):
            name = z["zone"].strip().lower().rstrip(".")
            if not name or " " in name:
                raise PackError(f"not a zone name: {z['zone']!r}", ("zones", i, "zone"))
            codes = []
            for code, meaning in (z.get("codes") or {}).items():
                try:
                    codes.append((ipaddress.IPv4Address(str(code).strip()), meaning))
                except ValueError:
                    raise PackError(f"not an IPv4 answer code: {code!r}", ("zones", i, "codes"),
                                    "blocklists answer with addresses such as 127.0.0.2") from None
            errors = []
            for code, meaning in (z.get("errors") or {}).items():
                try:
                    errors.append((ipaddress.IPv4Network(str(code).strip()), meaning))
                except ValueError:
                    raise PackError(f"not an IPv4 address or network: {code!r}", ("zones", i, "errors"),
                                    "e.g. 127.255.255.254 or 127.255.255.0/24") from None
            zones.append(Zone(name, z.get("type", "ip"), tuple(codes), tuple(errors), z.get("action")))
        skip = []
        for i, n in enumerate(options["skip_networks"]):
            try:
                skip.append(ipaddress.ip_network(n, strict=False))
            except ValueError:
                raise PackError(f"not a network: {n!r}", ("skip_networks", i)) from None
        for i, ns in enumerate(options["nameservers"]):
            try:
                ipaddress.ip_address(ns)
            except ValueError:
                raise PackError(f"not an IP address: {ns!r}", ("nameservers", i),
                                "name servers are given by address") from None
        cfg = Cfg(action=options["action"], zones=tuple(zones), nameservers=tuple(options["nameservers"]),
                  port=options["port"], timeout=float(options["timeout"]), cache_size=options["cache_size"],
                  cache_max_ttl=options["cache_max_ttl"], negative_ttl=options["negative_ttl"],
                  failure_ttl=options["failure_ttl"], max_pending=options["max_pending"], skip_networks=tuple(skip),
                  report_failures=options["report_failures"])
        cfg.service_key = (cfg.nameservers, cfg.port, cfg.timeout, cfg.cache_size, cfg.cache_max_ttl,
                           cfg.negative_ttl, cfg.failure_ttl, cfg.max_pending)
        return cfg

    def check_message(self, cfg: Cfg, facts):
        data = (facts.message.extra or {}).get("dnsbl") if facts.message else None
        if not data:
            return []
        out = []
        zones = {z.name: z for z in cfg.zones}
        subject = {"ip": data.get("ip"), "domain": data.get("domain")}
        for lk in data.get("lookups", []):
            zone = zones.get(lk.get("zone"))
            if zone is None:
                continue  # a zone this unit / direction does not use
            what = subject.get(zone.kind) or "?"
            status = lk.get("status")
            if status == "answer":
                verdict, meanings = classify(zone, lk.get("codes", []))
                if verdict == "listed":
                    label = "Client host" if zone.kind == "ip" else "Sender domain"
                    out.append(self.finding(
                        cfg, "listed", f"{what} listed by {zone.name}: {', '.join(meanings)} "
                        f"({', '.join(lk.get('codes', []))})",
                        f"{label} {what} is listed by {zone.name} ({', '.join(meanings)})", code="554",
                        xcode="5.7.1", action=zone.action or cfg.action))
                elif verdict == "permerror":
                    out.append(self.finding(
                        cfg, "permerror", f"{zone.name} refused the query for {what}, not a listing: "
                        f"{'; '.join(meanings)} (check the resolver / zone configuration)", action="monitor"))
                elif verdict == "unknown":
                    out.append(self.finding(cfg, "unknown-code", f"{zone.name} answered for {what}: "
                                            f"{'; '.join(meanings)}", action="monitor"))
            elif status in ("timeout", "error") and cfg.report_failures:
                out.append(self.finding(cfg, "temperror", f"{zone.name} lookup for {what}: {status} "
                                        f"({lk.get('detail', '')}); mail not refused", action="monitor"))
        return out
