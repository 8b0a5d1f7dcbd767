"""Art. 9.2: sign outgoing mail with the unit's or person's digital signature and check the origin of mail received.

The S/MIME analyser (smime/analyser.py) verifies signatures over the original bytes and leaves `SmimeFacts` in
`facts.message.extra["smime"]`; this rule turns them into one finding with the action the pack gives that outcome,
and into an Authentication-Results header (RFC 8601, method smime of RFC 7281). It never changes the body: a signed
message only ever gets headers.

One action key per outcome (each may differ per direction and per unit):
  on_fail       the signature does not verify (content altered)               result fail
  on_untrusted  no path to a trust anchor, or a key usage that forbids signing result policy
  on_expired    a certificate of the chain is outside its validity            result policy
  on_mismatch   the signer's address is not the From address                  result policy
  on_weak       MD5/SHA-1 digest while allow_weak_digests is false            result policy
  on_invalid    malformed or unsupported signature (neutral, permerror)
  on_temperror  internal error while verifying                                result temperror
  on_unsigned   no signature while require_signature is true                  result none
  on_encrypted / on_encrypted_trusted   encrypted content (cannot be inspected), outside / between trusted domains
A verified signature gives a finding with action "monitor" (counted, result pass).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ...smime.store import AnchorError, TrustStore
from ..addresses import DomainSet, domain_of
from ..base import Compiled, CompileContext, PackError, Rule, register
from ..verdict import SEVERITY

ACTION = {"enum": ["reject", "tempfail", "quarantine", "discard", "tag", "monitor"]}
STRINGS = {"type": "array", "items": {"type": "string"}}
AR_HEADER = "Authentication-Results"
OUTCOME_KEYS = ("on_fail", "on_untrusted", "on_expired", "on_mismatch", "on_weak", "on_invalid", "on_temperror",
                "on_unsigned", "on_encrypted", "on_encrypted_trusted")
PROBLEM_KEY = {"untrusted": "on_untrusted", "usage": "on_untrusted", "expired": "on_expired",
               "mismatch": "on_mismatch", "weak": "on_weak"}
REPLY = {
    "fail": "The S/MIME signature of this message does not verify (content altered after signing)",
    "untrusted": "The S/MIME signer is not trusted",
    "usage": "The S/MIME signer's certificate may not sign mail",
    "expired": "The S/MIME signer's certificate has expired",
    "mismatch": "The S/MIME signer is not the From address",
    "weak": "The S/MIME signature uses a weak digest algorithm",
    "invalid": "The S/MIME signature cannot be processed",
    "temperror": "The S/MIME signature could not be checked, please retry later",
    "unsigned": "Mail from this unit must carry an S/MIME signature",
    "encrypted": "Encrypted mail cannot be inspected and is held for review",
}


@dataclass
class Cfg(Compiled):
    store: TrustStore | None = None
    require_signature: bool = False
    allow_weak_digests: bool = True
    max_size: int = 32 * 1024 * 1024
    add_header: bool = True
    remove_forged: bool = True
    trusted_domains: DomainSet = field(default_factory=DomainSet)
    on: dict = field(default_factory=dict)  # outcome key -> action


def _quote(value: str) -> str:
    """An RFC 8601 value: a token when possible, else a quoted string (no CR/LF, quotes escaped)."""
    value = re.sub(r"[\r\n]+", " ", value)[:200]
    if re.fullmatch(r"[A-Za-z0-9!#$%&'*+./=?^_`{|}~@-]+", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def authserv_of(value: str) -> str:
    """The authserv-id of an Authentication-Results value (comments and the version dropped)."""
    v = re.sub(r"\([^)]*\)", " ", value).strip()
    return v.split(";", 1)[0].split()[0].strip().lower() if v.split(";", 1)[0].split() else ""


@register
class Smime(Rule):
    id = "smime"
    article = "9.2"
    title = "S/MIME: verify signatures and their signers, require signatures where the pack says so"
    options_schema = {
        "trust_anchors": {**STRINGS, "description": "PEM/DER certificate files or folders of trusted roots "
                                                    "(relative to the pack file)"},
        "require_signature": {"type": "boolean", "description": "mail must carry an S/MIME signature"},
        "allow_weak_digests": {"type": "boolean", "description": "accept MD5/SHA-1 signature digests"},
        "max_size": {"type": "integer", "minimum": 1024,
                     "description": "bytes of opaque S/MIME content read at most"},
        "add_header": {"type": "boolean", "description": "add Authentication-Results (smime=...)"},
        "remove_forged": {"type": "boolean",
                          "description": "remove Authentication-Results headers that claim our authserv-id"},
        "encrypted_trusted_domains": {**STRINGS, "description": "encrypted mail whose sender and recipients are "
                                                               "all in these domains gets on_encrypted_trusted"},
        **{k: {**ACTION, "description": f"action for the outcome {k[3:]}"} for k in OUTCOME_KEYS},
    }
    defaults = {"action": "monitor", "trust_anchors": [], "require_signature": False, "allow_weak_digests": True,
                "max_size": 32 * 1024 * 1024, "add_header": True, "remove_forged": True,
                "encrypted_trusted_domains": ["gov.vn"],
                "on_fail": "reject", "on_untrusted": "tag", "on_expired": "tag", "on_mismatch": "tag",
                "on_weak": "tag", "on_invalid": "tag", "on_temperror": "tag", "on_unsigned": "monitor",
                "on_encrypted": "quarantine", "on_encrypted_trusted": "monitor"}

    def compile(self, options: dict, ctx: CompileContext) -> Cfg:
        try:
            store = TrustStore.load(list(options["trust_anchors"]))
        except AnchorError as exc:
            raise PackError(str(exc), ("trust_anchors",),
                            "list PEM or DER certificate files, or folders of them; paths are relative to the pack "
                            "file") from None
        return Cfg(action=options["action"], store=store, require_signature=options["require_signature"],
                   allow_weak_digests=options["allow_weak_digests"], max_size=options["max_size"],
                   add_header=options["add_header"], remove_forged=options["remove_forged"],
                   trusted_domains=DomainSet(options["encrypted_trusted_domains"]),
                   on={k: options[k] for k in OUTCOME_KEYS})

    # -- findings ------------------------------------------------------------------------------------------------------
    def _outcome(self, cfg: Cfg, facts):
        """(result, outcome word, action, reason) for the message, or None when there is nothing to say."""
        state = (facts.message.extra or {}).get("smime")
        top = state.top_signatures() if state else []
        if top:
            result = state.message_result()
            sig = next((s for s in top if s.result == result), top[0])
            who = f"signer {sig.signer or '?'} (part {sig.part or 'top'}, {sig.form})"
            if result == "pass":
                return result, "pass", "monitor", f"{who}: {sig.reason}"
            if result == "fail":
                return result, "fail", cfg.on["on_fail"], f"{who}: {sig.reason}"
            if result in ("neutral", "permerror"):
                return result, "invalid", cfg.on["on_invalid"], f"{who}: {sig.reason}"
            if result == "temperror":
                return result, "temperror", cfg.on["on_temperror"], f"{who}: {sig.reason}"
            # policy: the most severe action among the problems found
            worst = max(sig.problems or ["untrusted"], key=lambda p: SEVERITY[cfg.on[PROBLEM_KEY[p]]])
            return result, worst, cfg.on[PROBLEM_KEY[worst]], f"{who}: {sig.reason}"
        if state and state.encrypted:
            part, _depth, kind = state.encrypted[0]
            between = self._between_trusted(cfg, facts)
            action = cfg.on["on_encrypted_trusted"] if between else cfg.on["on_encrypted"]
            where = "between trusted domains" if between else "not between trusted domains"
            return "neutral", "encrypted", action, f"part {part or 'top'} is {kind}, not inspectable ({where})"
        if cfg.require_signature:
            return "none", "unsigned", cfg.on["on_unsigned"], "no S/MIME signature and one is required"
        return None

    def _between_trusted(self, cfg: Cfg, facts) -> bool:
        if not len(cfg.trusted_domains):
            return False
        senders = [facts.envelope.mail_from] + list(facts.message.header_from)
        addrs = [a for a in senders if a] + list(facts.envelope.rcpts)
        return bool(addrs) and all(domain_of(a) and cfg.trusted_domains.match_address(a) for a in addrs)

    def check_message(self, cfg: Cfg, facts):
        out = self._outcome(cfg, facts)
        if out is None:
            return []
        result, word, action, reason = out
        code, xcode = ("451", "4.7.5") if word == "temperror" else ("550", "5.7.5" if word == "fail" else "5.7.1")
        return [self.finding(cfg, result, f"{word}: {reason}", REPLY.get(word, reason), code=code, xcode=xcode,
                             action=action)]

    # -- headers -------------------------------------------------------------------------------------------------------
    def header_changes(self, cfg: Cfg, facts):
        state = (facts.message.extra or {}).get("smime") if facts.message else None
        authserv = (state.authserv_id if state else "") or ""
        remove: list[tuple[str, int]] = []
        if cfg.remove_forged and authserv and facts.message:
            n = 0
            for name, value in facts.message.headers:
                if name.lower() != AR_HEADER.lower():
                    continue
                n += 1
                if authserv_of(value) == authserv.lower():
                    remove.append((AR_HEADER, n))
        add: list[tuple[str, str]] = []
        if cfg.add_header and authserv and facts.message:
            add = self._ar_header(cfg, facts, authserv)
        return add, remove

    def _ar_header(self, cfg: Cfg, facts, authserv: str) -> list[tuple[str, str]]:
        state = facts.message.extra.get("smime")
        top = state.top_signatures()[:5] if state else []
        resinfos = []
        for s in top:
            r = f"smime={s.result}"
            if s.result != "pass":
                r += f" reason={_quote(s.reason)}"
            if s.signer:
                r += f" body.smime-identifier={_quote(s.signer)}"
            if s.part:
                r += f" body.smime-part={_quote(s.part)}"
            if s.serial and s.result in ("pass", "policy"):
                r += f" body.smime-serial={s.serial}"
            resinfos.append(r)
        if not resinfos:
            if state and state.encrypted:
                resinfos.append('smime=neutral reason="encrypted content, not verifiable"')
            elif cfg.require_signature:
                resinfos.append("smime=none")
            else:
                return []
        return [(AR_HEADER, f"{authserv}; " + "; ".join(resinfos))]
