"""What a rule is: an id, the article it enforces, an option schema with defaults, and checks at three stages.

A rule module defines one subclass of `Rule` and registers it with `@register`. The pack loader validates each rule's
options against `options_schema` (unknown keys are errors), merges defaults, layers direction and unit overrides, and
calls `compile()` once per (unit, direction) at load time; the checks receive that compiled object.

Checks are pure: they read facts and the compiled options and return findings. Anything that needs I/O (DNS,
crypto over the spool, text extraction) runs before, in `extract/` or the glue, and leaves its result in the facts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..facts import Facts
from .verdict import RULE_ACTIONS, Finding


class PackError(Exception):
    """A problem with the policy pack. `path` is the key path in the merged pack, for file:line:col."""

    def __init__(self, message: str, path: tuple = (), hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = tuple(path)
        self.hint = hint


@dataclass
class CompileContext:
    """What compile() may use: where the pack lives (to resolve list files) and the organisation settings."""

    base_dir: str  # directory of the pack file that set the option being compiled
    internal_domains: tuple[str, ...]
    read_text: Any  # callable(path, key_path) -> str, resolving relative paths and raising PackError
    path: tuple = ()  # key path of this rule's options in the pack, for error messages


@dataclass
class Compiled:
    """Base for a rule's compiled options. `action` is always present."""

    action: str = "reject"


class Rule:
    id: ClassVar[str]
    article: ClassVar[str]
    title: ClassVar[str]  # short English description for docs and `check`
    # JSON schema (properties only) of this rule's own options; "enabled", "action", "inbound", "outbound" are common.
    options_schema: ClassVar[dict] = {}
    defaults: ClassVar[dict] = {}

    def compile(self, options: dict, ctx: CompileContext) -> Compiled:
        return Compiled(action=options["action"])

    # Each stage returns findings; the default is to find nothing.
    def check_mail_from(self, cfg: Any, facts: Facts) -> list[Finding]:
        return []

    def check_rcpt(self, cfg: Any, facts: Facts, rcpt: str) -> list[Finding]:
        return []

    def check_message(self, cfg: Any, facts: Facts) -> list[Finding]:
        return []

    def header_changes(self, cfg: Any, facts: Facts) -> tuple[list[tuple[str, str]], list[tuple[str, int]]]:
        """Headers to add and (name, index) headers to remove at end of message, whatever the findings
        (e.g. Authentication-Results)."""
        return [], []

    # helper for subclasses
    def finding(self, cfg: Any, result: str, reason: str, reply_text: str = "", code: str = "550",
                xcode: str = "5.7.1", rcpt: str | None = None, action: str | None = None) -> Finding:
        return Finding(rule=self.id, article=self.article, result=result, reason=reason,
                       action=action or cfg.action, reply_text=reply_text, code=code, xcode=xcode, rcpt=rcpt)


REGISTRY: dict[str, Rule] = {}


def register(cls: type[Rule]) -> type[Rule]:
    assert cls.id not in REGISTRY, cls.id
    REGISTRY[cls.id] = cls()
    return cls


COMMON_OPTIONS = {
    "enabled": {"type": "boolean"},
    "action": {"enum": list(RULE_ACTIONS)},
}
