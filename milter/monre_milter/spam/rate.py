"""Recipient-rate counting for the `rate-limit` rule (art. 10.2: a compromised mailbox spreading spam).

Design choice: the engine stays a pure function of facts and compiled options, except for this one counter. The
rule's compiled options hold a reference to a process-wide `RateStore` (`get_store(...)`, obtained once at pack
load), and `check_rcpt` calls `store.add(account, 1, now)` for the recipient it is about to accept. The alternative
(the glue counts and passes the count in facts) would need an RCPT-time facts channel the engine does not have, and
would split one decision across two places. Counting inside the rule keeps `monre-milter check` and the milter
identical. The store is a plain in-memory object here (no I/O); a shared store for several mail servers later
implements the same `RateStore` interface (e.g. Redis INCRBY on time buckets with a short time budget, falling back
to the local store when unreachable) and is selected by the rule's `store` option.

Memory is bounded: per account at most BUCKETS time buckets (a sliding window at window/BUCKETS granularity), and at
most `max_keys` accounts (least recently used evicted first; an evicted account starts again from zero).
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from typing import Protocol

BUCKETS = 60


class RateStore(Protocol):
    window: int  # seconds

    def add(self, key: str, n: int, now: float) -> int:
        """Add n (may be 0 to read, or negative to take back) to `key` at time `now`; return the count in the window
        ending at `now`, this addition included."""
        ...

    def incident(self, key: str, now: float) -> bool:
        """Record that `key` went over its limit at `now`. True when this starts a new incident (none recorded for
        the key within the window), so one compromised account counts once, not once per refused recipient."""
        ...


class MemoryRateStore:
    """Sliding-window counter in memory, thread-safe, bounded."""

    def __init__(self, window: int, max_keys: int = 100_000, buckets: int = BUCKETS):
        self.window = int(window)
        self.max_keys = max_keys
        self.granularity = max(1.0, self.window / buckets)
        self.nbuckets = math.ceil(self.window / self.granularity)
        self.lock = threading.Lock()
        self.keys: OrderedDict[str, deque] = OrderedDict()  # key -> deque[[bucket index, count]]
        self.incidents: OrderedDict[str, float] = OrderedDict()  # key -> time of the last over-limit refusal

    def add(self, key: str, n: int, now: float) -> int:
        b = int(now // self.granularity)
        oldest = b - self.nbuckets + 1
        with self.lock:
            dq = self.keys.get(key)
            if dq is None:
                if n == 0:
                    return 0
                dq = self.keys[key] = deque()
                while len(self.keys) > self.max_keys:
                    self.keys.popitem(last=False)
            self.keys.move_to_end(key)
            while dq and dq[0][0] < oldest:
                dq.popleft()
            if n:
                if dq and dq[-1][0] == b:
                    dq[-1][1] += n
                else:
                    dq.append([b, n])
            total = sum(c for i, c in dq if i <= b)
            if not dq:
                del self.keys[key]
            return total

    def incident(self, key: str, now: float) -> bool:
        with self.lock:
            last = self.incidents.pop(key, None)
            self.incidents[key] = now
            while len(self.incidents) > self.max_keys:
                self.incidents.popitem(last=False)
            return last is None or now - last >= self.window

    def __len__(self) -> int:
        return len(self.keys)


_stores: dict[tuple, RateStore] = {}
_lock = threading.Lock()


def get_store(kind: str, window: int, max_keys: int) -> RateStore:
    """The process-wide store for these settings: kept across pack reloads so counts survive a SIGHUP."""
    key = (kind, int(window), int(max_keys))
    with _lock:
        store = _stores.get(key)
        if store is None:
            if kind != "memory":
                raise ValueError(f"unknown rate store {kind!r}")
            store = _stores[key] = MemoryRateStore(window, max_keys)
        return store
