"""`monre-milter run`: load the pack, start the metrics endpoint, serve libmilter, reload on SIGHUP.

libmilter runs in a worker thread; the main thread keeps Python's signal handlers: SIGHUP reloads the pack (a pack
that fails validation is refused and the running one stays), SIGTERM / SIGINT stop cleanly.
"""
from __future__ import annotations

import atexit
import logging
import logging.handlers
import os
import queue
import signal
import socket
import sys
import threading

import Milter

from ..pack import PackErrors, load_pack
from ..spam.hooks import install as spam_hooks
from .milter import PolicyMilter
from .state import STATE

log = logging.getLogger("monre_milter")


# Services that register glue hooks (DNS blocklist lookups at connect, spam facts at end of message); each takes STATE.
SERVICE_SETUP = [spam_hooks]


def setup_logging() -> None:
    """Log lines go through a queue to one writer thread: a milter thread never waits for the log's lock or its
    write (under load that wait was a third of the milter's busy time)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s monre-milter[%(process)d]: %(levelname)s %(message)s"))
    q: queue.SimpleQueue = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(q, handler)
    listener.start()
    atexit.register(listener.stop)
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(q)]
    root.setLevel(logging.INFO)


def reload_pack() -> bool:
    try:
        pack = load_pack(STATE.policy_files)
    except PackErrors as exc:
        for line in exc.errors:
            log.error("policy: %s", line)
        STATE.observers.on_reload(False, STATE.pack)
        return False
    except Exception:
        log.exception("policy reload failed")
        STATE.observers.on_reload(False, STATE.pack)
        return False
    STATE.pack = pack
    STATE.observers.on_reload(True, pack)
    return True


def _socket_spec(spec: str) -> str:
    if spec.startswith(("inet:", "inet6:", "unix:", "local:")):
        return spec
    raise SystemExit(f"--socket: expected inet:PORT@HOST or unix:PATH, got {spec!r}")


def setup_observers(metrics: str | None, journal: str | None) -> None:
    """Attach the metrics endpoint and the incident journal when asked for (and available in this build)."""
    if metrics:
        from ..metrics import start_metrics  # noqa: PLC0415  (optional part, imported on demand)

        STATE.observers.add(start_metrics(metrics))
    if journal:
        from ..journal import JournalObserver  # noqa: PLC0415

        STATE.observers.add(JournalObserver(journal))


def run(policy: list[str], socket: str, metrics: str | None = None, journal: str | None = None) -> int:
    setup_logging()
    STATE.policy_files = list(policy)
    try:
        STATE.pack = load_pack(STATE.policy_files)
    except PackErrors as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        print("monre-milter: refusing to start with an invalid pack", file=sys.stderr)
        return 2
    setup_observers(metrics, journal)
    STATE.observers.on_reload(True, STATE.pack)
    for setup in SERVICE_SETUP:
        setup(STATE)

    Milter.factory = PolicyMilter
    _nodelay_after_open()
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.DELRCPT | Milter.QUARANTINE | Milter.SETSYMLIST)
    spec = _socket_spec(socket)
    done = threading.Event()
    errors: list[BaseException] = []

    def serve():
        try:
            Milter.runmilter("monre-milter", spec, timeout=240)
        except BaseException as exc:  # reported by the main thread below
            errors.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=serve, name="libmilter", daemon=True)
    # One reload thread; signals only set a flag, so a burst of SIGHUPs gives one or two reloads, not a thread each.
    wanted = threading.Event()

    def reloader():
        while True:
            wanted.wait()
            wanted.clear()
            reload_pack()

    threading.Thread(target=reloader, name="reload", daemon=True).start()
    signal.signal(signal.SIGHUP, lambda *_: wanted.set())

    def stop(*_):
        log.info("stopping")
        Milter.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.start()
    log.info("listening on %s (pack %s, sha256 %s)", spec, STATE.pack.version, STATE.pack.sha256[:12])
    while not done.wait(0.5):
        pass
    if errors:
        log.error("libmilter stopped: %s", errors[0])
        return 1
    return 0


def _nodelay_after_open() -> None:
    """Set TCP_NODELAY on libmilter's listening socket (Linux passes it on to every accepted connection).

    At end of message a milter that changes headers sends several small replies (ADDHEADER ..., ACCEPT). With
    Nagle's algorithm the last one waits for the ACK of the first, which Postfix delays (it has nothing to answer):
    about 40 ms per message, which with 20 sessions cut throughput by 40 % in bench/bench_throughput.py.
    libmilter offers no option for it, so the socket is found among our file descriptors after it is opened."""
    original = Milter.milter.opensocket

    def opensocket(*args):
        result = original(*args)
        for fd in map(int, os.listdir("/proc/self/fd")):
            try:
                s = socket.socket(fileno=os.dup(fd))
            except OSError:
                continue  # not a socket
            with s:
                try:
                    if s.family in (socket.AF_INET, socket.AF_INET6) and s.type == socket.SOCK_STREAM and \
                            s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    log.warning("could not set TCP_NODELAY on fd %d", fd)
        return result

    Milter.milter.opensocket = opensocket


