"""monre-milter: run | check | check-policy | report."""
from __future__ import annotations

import argparse
import json
import os
import sys

from . import __version__

DEFAULT_POLICY = "policies/monre.yaml"


def _default_policy() -> str:
    """policies/monre.yaml in the working directory, else the one next to the source tree."""
    if os.path.exists(DEFAULT_POLICY):
        return DEFAULT_POLICY
    here = os.path.dirname(os.path.abspath(__file__))
    candidate = os.path.normpath(os.path.join(here, "..", "..", DEFAULT_POLICY))
    return candidate if os.path.exists(candidate) else DEFAULT_POLICY


def _load_pack_or_exit(paths: list[str]):
    from .pack import PackErrors, load_pack

    try:
        return load_pack(paths)
    except PackErrors as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        sys.exit(2)


def cmd_check_policy(args) -> int:
    from .pack import PackErrors, load_pack

    try:
        pack = load_pack(args.files)
    except PackErrors as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        print(f"{len(exc.errors)} error(s); pack refused", file=sys.stderr)
        return 1
    n = sum(len(v) for v in pack._rules.values())
    print(f"ok: {', '.join(pack.files)} (version {pack.version}, sha256 {pack.sha256[:12]}, "
          f"{len(pack.units)} units, {n} compiled rule configurations)")
    return 0


def cmd_check(args) -> int:
    from .check import check_file, explain

    pack = _load_pack_or_exit(args.policy or [_default_policy()])
    try:
        verdict = check_file(pack, args.message, mail_from=args.mail_from, rcpts=args.rcpt,
                             client_ip=args.client_ip, sasl_user=args.sasl_user)
    except OSError as exc:
        print(f"cannot read {args.message}: {exc.strerror}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(verdict.as_json(), sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(explain(verdict))
    return 0


def cmd_run(args) -> int:
    from .glue.run import run

    return run(policy=args.policy or [_default_policy()], socket=args.socket, metrics=args.metrics,
               journal=args.journal)


def cmd_report(args) -> int:
    try:
        from .report import main as report_main
    except ImportError:
        print("report: not available in this build", file=sys.stderr)
        return 2
    return report_main(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="monre-milter", description="Mail policy milter for the MONRE email regulation")
    p.add_argument("--version", action="version", version=f"monre-milter {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("check", help="give the verdict the milter would give for a message file")
    c.add_argument("--policy", action="append", metavar="FILE", help=f"policy pack (repeat to layer; default "
                   f"{DEFAULT_POLICY})")
    c.add_argument("--mail-from", metavar="ADDR", help="envelope sender (default: the From header)")
    c.add_argument("--rcpt", action="append", metavar="ADDR", help="envelope recipient (repeat; default: To and Cc)")
    c.add_argument("--client-ip", metavar="IP", help="client address (outside the internal networks: inbound)")
    c.add_argument("--sasl-user", metavar="NAME", help="authenticated user (makes the message outbound)")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.add_argument("message", metavar="MESSAGE.eml")
    c.set_defaults(func=cmd_check)

    cp = sub.add_parser("check-policy", help="validate policy packs (layered in order)")
    cp.add_argument("files", nargs="+", metavar="FILE")
    cp.set_defaults(func=cmd_check_policy)

    r = sub.add_parser("run", help="run the milter")
    r.add_argument("--policy", action="append", metavar="FILE")
    r.add_argument("--socket", default="inet:8890@127.0.0.1", help="inet:PORT@HOST or unix:PATH")
    r.add_argument("--metrics", metavar="HOST:PORT", help="serve Prometheus metrics here")
    r.add_argument("--journal", metavar="PATH", help="incident journal (SQLite)")
    r.set_defaults(func=cmd_run)

    rep = sub.add_parser("report", help="the appendix-2 yearly report")
    rep.add_argument("--year", type=int, required=True)
    rep.add_argument("--unit", metavar="CODE")
    src = rep.add_mutually_exclusive_group()
    src.add_argument("--journal", metavar="PATH")
    src.add_argument("--prometheus", metavar="URL")
    rep.add_argument("--policy", action="append", metavar="FILE")
    rep.add_argument("--format", choices=["docx", "md", "csv"], default="md")
    rep.add_argument("-o", "--output", metavar="FILE", required=True)
    rep.set_defaults(func=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # `check ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
