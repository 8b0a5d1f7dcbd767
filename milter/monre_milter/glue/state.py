"""Process-wide state of a running milter: the active pack, observers, and hooks for services.

The pack is swapped atomically on reload (one attribute assignment); each connection keeps the snapshot it started
with, so a reload never changes the rules in the middle of a message.
"""
from __future__ import annotations

from ..observe import LogObserver, Observers


class Hooks:
    """Services that need the milter's stages (DNS lookups started at connect, rate counts, ...). Each method gets
    the PolicyMilter instance; exceptions propagate to the callback, which turns them into a tempfail."""

    def __init__(self):
        self.connect, self.mail_from, self.eom, self.close = [], [], [], []

    def on_connect(self, m) -> None:
        for f in self.connect:
            f(m)

    def on_mail_from(self, m) -> None:
        for f in self.mail_from:
            f(m)

    def before_eom(self, m) -> None:
        for f in self.eom:
            f(m)

    def on_close(self, m) -> None:
        for f in self.close:
            f(m)


class State:
    def __init__(self):
        self.pack = None
        self.policy_files: list[str] = []
        self.observers = Observers(LogObserver())
        self.hooks = Hooks()


STATE = State()
