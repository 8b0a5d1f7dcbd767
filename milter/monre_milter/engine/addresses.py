"""Addresses and domains: normalisation and constant-time domain-list lookups."""
from __future__ import annotations

import email.utils
import ipaddress
import re


def normalise_domain(domain: str) -> str:
    """Lower case, no trailing root dot, IDN as A-labels (xn--...). Invalid IDN stays as lower-cased text."""
    d = domain.strip().strip("[]").rstrip(".").lower()
    if not d.isascii():
        try:
            d = d.encode("idna").decode("ascii")
        except UnicodeError:
            # Python's idna codec is IDNA 2003; some valid IDNA 2008 names fail there. Encode label by label with
            # punycode so the comparison with the list stays on A-labels.
            d = ".".join(lbl if lbl.isascii() else "xn--" + lbl.encode("punycode").decode("ascii")
                         for lbl in d.split("."))
    return d


def strip_angles(addr: str) -> str:
    """'<a@b>' or 'a@b' from a milter envelope argument; ESMTP parameters are handled by the caller."""
    a = addr.strip()
    if a.startswith("<") and ">" in a:
        a = a[1: a.index(">")]
    if a.count(":") and a.startswith("@"):  # source route <@relay:user@host>
        a = a.split(":", 1)[1]
    return a.strip()


def routing_domains(addr: str) -> list[str]:
    """Every domain an address may be routed to: the domain, plus those hidden in the local part by the old
    routing forms MTAs still honour: "user%host@relay" (percent hack), "host!user@relay" (UUCP bang path) and
    '"user@host"@relay' (a quoted @). Postfix rewrites such addresses for its own domains, so an address at
    monre.gov.vn can leave for gmail.com; a policy on free-mail must see through them."""
    out = []
    d = domain_of(addr)
    if d:
        out.append(d)
    local = addr.rsplit("@", 1)[0] if "@" in addr else addr
    local = local.strip('"')
    for part in re.split(r"[%@]", local)[1:]:  # user%host, user%host%host2, "user@host"
        if part:
            out.append(normalise_domain(part))
    if "!" in local:
        out.extend(normalise_domain(h) for h in local.split("!")[:-1] if h)
    return out


def domain_of(addr: str) -> str:
    if "@" not in addr:
        return ""
    return normalise_domain(addr.rsplit("@", 1)[1])


_SEPARATORS = re.compile(r"[\s<>,;:\"()\[\]]+")


def header_addresses(values: list[str]) -> list[str]:
    """addr-specs from address headers (From, Reply-To, Sender, To); display names are ignored.

    The standard parser recurses per token and overflows the stack on hostile headers (thousands of encoded
    words); then, and for very long values, a plain scan for addr-specs outside quoted display names is used.
    """
    # Unfold first (RFC 5322 folding may fall anywhere, even inside an address: "<friend@gmail\r\n .com>").
    texts = [re.sub(r"\r?\n[ \t]*", "", str(v)) for v in values]
    if sum(len(t) for t in texts) <= 8192:
        try:
            return [addr for _name, addr in email.utils.getaddresses(texts) if addr and "@" in addr]
        except (RecursionError, ValueError, IndexError):  # hostile or broken header: the plain scan below
            return _scan_addresses(texts)
    return _scan_addresses(texts)


def _scan_addresses(texts: list[str]) -> list[str]:
    out = []
    for t in texts:
        t = re.sub(r'"(?:[^"\\]|\\.)*"', " ", t)  # drop quoted display names
        # Split, then keep the tokens that look like addr-specs: linear, where a search for "x+@x+" would try
        # every start position of a long run without "@" (minutes on 64 KB headers).
        out.extend(tok for tok in _SEPARATORS.split(t) if "@" in tok.strip("@"))
    return out


class DomainSet:
    """A set of domains where a listed domain also matches its sub-domains.

    A lookup costs one hash probe per label of the queried domain, whatever the size of the list.
    """

    def __init__(self, domains=()):
        self._set: set[str] = set()
        for d in domains:
            self.add(d)

    def add(self, domain: str) -> None:
        d = normalise_domain(domain)
        if d:
            self._set.add(d)

    def __len__(self) -> int:
        return len(self._set)

    def match(self, domain: str) -> str | None:
        """The listed domain that `domain` equals or is a sub-domain of, or None."""
        d = normalise_domain(domain)
        while d:
            if d in self._set:
                return d
            if "." not in d:
                return None
            d = d.split(".", 1)[1]
        return None

    def match_address(self, addr: str, routed: bool = False) -> str | None:
        """The listed domain of this address; with routed=True also a domain hidden in the local part (for
        recipients: where the mail may really go)."""
        for d in (routing_domains(addr) if routed else [domain_of(addr)]):
            hit = self.match(d) if d else None
            if hit:
                return hit
        return None


def parse_ip(text: str | None):
    """An address as Postfix or a header gives it ("[1.2.3.4]", "IPv6:2001:db8::1"); IPv4-mapped IPv6 as IPv4.
    None when it is not an address."""
    if not text:
        return None
    try:
        a = ipaddress.ip_address(text.strip("[]").removeprefix("IPv6:"))
    except ValueError:
        return None
    return a.ipv4_mapped if a.version == 6 and a.ipv4_mapped else a


def parse_list(text: str) -> list[str]:
    """Entries of a list file: one per line, '#' starts a comment, blank lines ignored."""
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out
