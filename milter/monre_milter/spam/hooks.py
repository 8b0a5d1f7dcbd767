"""What the milter glue and `monre-milter check` call for the spam rules (facts in, nothing decided here).

Milter glue, per connection:
    connect:      m.dnsbl = start_lookups(pack, conn)            # returns at once; None when dnsbl is off
    MAIL FROM:    add_sender(m.dnsbl, mail_from)                  # RHSBL lookups of the sender domain, if configured
    end of msg:   facts.extra.update(prepare_facts(pack, conn, envelope, direction, m.dnsbl))
                  # waits for the lookups with what is left of the budget (never past start + timeout)
    RCPT:         nothing: the `rate-limit` rule counts through its store (see spam.rate).
`install(state)` registers exactly these as glue hooks (glue.state.Hooks); the eom hook leaves the dict in
`m.spam_extra` for the glue to merge into the facts after `analyse()`.

`monre-milter check` calls `prepare_facts(pack, conn, envelope, direction)` with no handle: the same service looks up
synchronously. Nothing here raises into the caller: a failure becomes a lookup status, logged, never a refusal.
"""
from __future__ import annotations

import logging

from ..engine.addresses import domain_of
from .dnsbl import Handle, service_for

log = logging.getLogger("monre_milter")


def _dnsbl_cfg(pack, direction: str):
    cfg = pack.rule_config("dnsbl", "other", direction)
    return cfg if cfg is not None and cfg.zones else None


def _skip_reason(pack, cfg, ip: str | None) -> str | None:
    if not ip:
        return "no client address"
    if pack.in_networks(ip, cfg.skip_networks):
        return "client in skip_networks"
    if pack.in_networks(ip, pack.trusted_hosts):
        return "client is a trusted relay"
    if pack.in_networks(ip, pack.internal_networks):
        return "client in internal_networks"
    return None


def start_lookups(pack, conn, direction: str | None = None) -> Handle | None:
    """At connect: start the client-address lookups. None when the pack does not look anything up."""
    try:
        direction = direction or pack.direction(conn.client_ip, conn.sasl_user)
        cfg = _dnsbl_cfg(pack, direction)
        if cfg is None:
            return None
        svc = service_for(cfg)
        h = Handle(ip=conn.client_ip, zones=cfg.zones)
        h.skipped = _skip_reason(pack, cfg, conn.client_ip)
        if h.skipped is None:
            svc.add(h, conn.client_ip, "ip", cfg.zones)
        h.service = svc
        return h
    except Exception:  # never let a lookup problem stop the connection; the rule then sees no dnsbl facts
        log.exception("dnsbl: could not start lookups for %s", conn.client_ip)
        return None


def add_sender(handle: Handle | None, mail_from: str | None, pack=None) -> None:
    """At MAIL FROM: (re)set the sender-domain lookups (RHSBL). Internal and null senders are not looked up."""
    if handle is None or handle.skipped or not any(z.kind == "domain" for z in handle.zones):
        return
    try:
        d = domain_of(mail_from) if mail_from else ""
        if d and pack is not None and pack.is_internal_domain(d):
            d = ""
        handle.service.add_domain(handle, d or None)
    except Exception:
        log.exception("dnsbl: could not start the sender-domain lookups")


def prepare_facts(pack, conn, envelope, direction: str | None = None, handle: Handle | None = None,
                  timeout: float | None = None) -> dict:
    """At end of message: the spam facts to merge into `MessageFacts.extra` (keys "dnsbl", "spam-header")."""
    direction = direction or pack.direction(conn.client_ip, conn.sasl_user)
    extra: dict = {"spam-header": {"trusted_relay": pack.in_networks(conn.client_ip, pack.trusted_hosts)}}
    if _dnsbl_cfg(pack, direction) is None:
        return extra  # e.g. an authenticated (outbound) client: the lookups started at connect are not needed
    if handle is None:
        handle = start_lookups(pack, conn, direction)
        if handle is None:
            return extra
        add_sender(handle, envelope.mail_from if envelope else None, pack)
    elif envelope is not None and handle.domain is None:
        add_sender(handle, envelope.mail_from, pack)
    try:
        if handle.skipped:
            extra["dnsbl"] = {"ip": handle.ip, "domain": None, "skipped": handle.skipped, "lookups": [],
                              "elapsed_ms": 0}
        else:
            extra["dnsbl"] = handle.service.result(handle, timeout)
    except Exception:
        log.exception("dnsbl: could not collect the lookups")
    return extra


def install(state) -> None:
    """Register the glue hooks (connect, MAIL FROM, end of message) on a running milter's state."""

    def on_connect(m):
        m.dnsbl = start_lookups(m.pack, m.conn)

    def on_mail_from(m):
        add_sender(getattr(m, "dnsbl", None), m.tx.envelope.mail_from, m.pack)

    def before_eom(m):
        m.spam_extra = prepare_facts(m.pack, m.conn, m.tx.envelope, m.tx.direction, getattr(m, "dnsbl", None))

    state.hooks.connect.append(on_connect)
    state.hooks.mail_from.append(on_mail_from)
    state.hooks.eom.append(before_eom)
