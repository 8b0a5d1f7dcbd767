"""Spam services (art. 10.2, 11.5) that do I/O or keep state outside the pure engine.

- `spam.dnsbl`: the DNS blocklist lookup service (dnspython, worker threads, time budget, TTL- and size-bounded cache).
- `spam.rate`: the recipient-rate store behind the `rate-limit` rule (in memory now; `RateStore` is the interface a
  shared store for several mail servers would implement).
- `spam.hooks`: what the milter glue and `monre-milter check` call (start lookups at connect, collect them at end of
  message, the trusted-relay flag for `spam-header`).

This package file imports nothing on purpose: the engine imports `spam.rate` and must not pull in dnspython.
"""
