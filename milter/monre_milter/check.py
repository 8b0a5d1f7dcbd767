"""Offline check: drive the engine over a message file exactly as the milter does over SMTP."""
from __future__ import annotations

import email.parser
import email.policy
import os

from .engine import Transaction
from .engine.addresses import header_addresses
from .extract.message import analyse
from .extract.mime import Limits, read_header_block, unescape_8bit
from .facts import Connection
from .engine.verdict import Verdict


def _header_defaults(path: str) -> tuple[str, list[str]]:
    """Envelope defaults from From / To / Cc; reads the header block only, not the body."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        block, _, _ = read_header_block(fh, 0, size, Limits().max_header_bytes)
    headers = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(block, headersonly=True)

    def values(name):
        return [unescape_8bit(str(v)) for k, v in headers.raw_items() if k.lower() == name]

    froms = header_addresses(values("from"))
    rcpts = header_addresses(values("to") + values("cc"))
    return (froms[0] if froms else ""), rcpts


def check_file(pack, path: str, mail_from: str | None = None, rcpts: list[str] | None = None,
               client_ip: str | None = None, sasl_user: str | None = None) -> Verdict:
    if mail_from is None or not rcpts:
        hdr_from, hdr_rcpts = _header_defaults(path)
        mail_from = hdr_from if mail_from is None else mail_from
        rcpts = rcpts or hdr_rcpts
    # Without a client address the message is a local submission: loopback, as Postfix's pickup would show.
    conn = Connection(client_ip=client_ip or "127.0.0.1", sasl_user=sasl_user)
    tx = Transaction(pack, conn)
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        refusal = tx.mail_from(mail_from, None)
        if refusal is not None:
            return Verdict(action="reject" if refusal.code.startswith("5") else "tempfail", reply=refusal,
                           direction=tx.direction, unit=tx.sender_unit(), findings=[tx.mail_refusal])
        for r in rcpts:
            tx.rcpt(r)
        facts = analyse(fh, pack, tx.direction, tx.message_unit())
    facts.size = size
    from .spam.hooks import prepare_facts  # noqa: PLC0415  (DNSBL lookups, synchronously; trusted-relay flag)

    facts.extra.update(prepare_facts(pack, conn, tx.envelope, tx.direction))
    return tx.end_of_message(facts, None)


def explain(v: Verdict) -> str:
    lines = [f"verdict: {v.action.upper()}  ({v.direction}, unit {v.unit})"]
    if v.reply:
        lines.append(f"reply:   {v.reply}")
    for f in v.findings:
        rc = f" [{f.rcpt}]" if f.rcpt else ""
        lines.append(f"  - {f.rule} (art. {f.article}): {f.result}{rc}: {f.reason} -> {f.action}")
    for r, rep in v.rejected_rcpts:
        lines.append(f"  refused recipient {r}: {rep}")
    for n, val in v.add_headers:
        lines.append(f"  add header {n}: {val}")
    if not v.findings:
        lines.append("  no rule found anything")
    return "\n".join(lines)
