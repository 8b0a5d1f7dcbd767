"""`monre-milter report`: the appendix-2 yearly report (art. 15) on email use, section 3 filled from the milter.

    monre-milter report --year 2026 [--unit vea] (--journal PATH | --prometheus URL) --format docx|md|csv -o FILE

Kept light at import (the metrics import `categories`); python-docx is imported only when a DOCX is written.
"""
from __future__ import annotations

import sys


def main(args) -> int:
    from .figures import PrometheusError, from_journal, from_prometheus  # noqa: PLC0415
    from .render import ReportInfo, write  # noqa: PLC0415

    if not args.journal and not args.prometheus:
        print("report: give --journal PATH or --prometheus URL", file=sys.stderr)
        return 2
    try:
        info = ReportInfo.from_pack(args.policy, args.unit)
    except (LookupError, ValueError) as exc:
        print(f"report: {exc.args[0]}", file=sys.stderr)
        return 2
    try:
        if args.journal:
            figures = from_journal(args.journal, args.year, args.unit)
        else:
            figures = from_prometheus(args.prometheus, args.year, args.unit)
    except FileNotFoundError as exc:
        print(f"report: no journal at {exc.args[0]}", file=sys.stderr)
        return 2
    except PrometheusError as exc:
        print(f"report: Prometheus: {exc}", file=sys.stderr)
        return 2
    write(args.format, info, figures, args.output)
    print(f"report: {args.output} ({args.format}, year {args.year}, "
          f"{'unit ' + args.unit if args.unit else 'whole ministry'}, {figures.grand_total()} incidents)")
    return 0
