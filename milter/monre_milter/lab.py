"""A private Postfix on loopback with the milter in smtpd_milters, and a sink that keeps what is delivered.

Used by `scripts/run-local.sh` (the README's first command) and by the end-to-end tests. Nothing here touches the
system Postfix: configuration, queue and logs live under one project-owned directory.

    lab = Lab(root="run/lab", policy=["policies/monre.yaml"]); lab.start()
    ... send to 127.0.0.1:lab.smtp_port ...
    lab.stop()
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@dataclass
class Lab:
    root: Path
    policy: list[str] = field(default_factory=lambda: [str(REPO / "policies" / "monre.yaml")])
    smtp_port: int = 0
    milter_port: int = 0
    sink_port: int = 0
    metrics: str | None = None  # HOST:PORT for the milter's metrics endpoint
    journal: str | None = None
    with_milter: bool = True
    milter_args: list[str] = field(default_factory=list)
    milter_command: list[str] | None = None  # another milter instead of ours (benchmarks); {port} is substituted
    main_cf: dict[str, str] = field(default_factory=dict)  # extra main.cf settings
    python: str = sys.executable
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        self.root = Path(self.root).resolve()
        self.conf = self.root / "postfix"
        self.queue = self.root / "queue"
        self.data = self.root / "data"
        self.sink_dir = self.root / "sink"
        self.log = self.root / "log"
        self.milter_proc: subprocess.Popen | None = None
        self.sink_proc: subprocess.Popen | None = None
        self.smtp_port = self.smtp_port or free_port()
        self.milter_port = self.milter_port or free_port()
        self.sink_port = self.sink_port or free_port()

    # -- set-up ----------------------------------------------------------------------------------------------------
    def configure(self) -> None:
        for d in (self.root, self.conf, self.queue, self.data, self.sink_dir, self.log):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o755)
        postfix = pwd.getpwnam("postfix")
        os.chown(self.data, postfix.pw_uid, postfix.pw_gid)
        nobody = pwd.getpwnam("nobody")
        os.chown(self.sink_dir, nobody.pw_uid, nobody.pw_gid)
        shutil.copy("/etc/postfix/master.cf", self.conf / "master.cf")
        (self.conf / "main.cf").write_text("")
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue),
            "data_directory": str(self.data),
            "myhostname": "mx.lab.monre.gov.vn",
            "mydomain": "lab.monre.gov.vn",
            "myorigin": "$mydomain",
            "mydestination": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "relayhost": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "0.0.0.0/0",  # loopback-only lab: Postfix relays all, the milter decides
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "smtpd_recipient_restrictions": "permit_mynetworks, reject",
            "smtpd_authorized_xclient_hosts": "127.0.0.0/8",
            "default_transport": f"smtp:[127.0.0.1]:{self.sink_port}",
            "relay_transport": f"smtp:[127.0.0.1]:{self.sink_port}",
            "smtp_dns_support_level": "disabled",
            "maillog_file": str(self.log / "postfix.log"),
            "maillog_file_prefixes": f"/var, /dev/stdout, {self.log}",
            "message_size_limit": "52428800",  # above the wire limit: the milter refuses with the article
            "smtpd_error_sleep_time": "0",
            "smtpd_soft_error_limit": "1000",
            "smtpd_hard_error_limit": "1000",
            "smtpd_client_connection_rate_limit": "0",
            "default_process_limit": "100",
            "smtp_connection_cache_on_demand": "yes",
            "queue_run_delay": "5s",
            "minimal_backoff_time": "5s",
            "maximum_backoff_time": "10s",
        }
        if self.with_milter:
            settings.update({
                "smtpd_milters": f"inet:127.0.0.1:{self.milter_port}",
                "non_smtpd_milters": f"inet:127.0.0.1:{self.milter_port}",
                "milter_default_action": "tempfail",
                "milter_protocol": "6",
                "milter_connect_timeout": "10s",
                "milter_command_timeout": "30s",
                "milter_content_timeout": "300s",
                # the queue id {i} is sent at end of message by default; SASL login at MAIL FROM
            })
        settings.update(self.main_cf)
        self.postconf(*[f"{k}={v}" for k, v in settings.items()])
        # No chroot (Debian's master.cf chroots most services; we have no copies of /etc files in the queue dir).
        self._run(["postconf", "-c", str(self.conf), "-F", "*/*/chroot = n"])
        # Listen on our port instead of 25.
        self._run(["postconf", "-c", str(self.conf), "-M#", "smtp/inet"])
        self._run(["postconf", "-c", str(self.conf), "-M",
                   f"{self.smtp_port}/inet = {self.smtp_port} inet n - n - - smtpd"])

    def postconf(self, *settings: str) -> None:
        self._run(["postconf", "-c", str(self.conf), "-e", *settings])

    def _run(self, cmd: list[str]) -> str:
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()} {self.postfix_log()}")
        return p.stdout

    def postfix_log(self, tail: int = 20) -> str:
        try:
            lines = (self.log / "postfix.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-tail:])

    # -- processes ---------------------------------------------------------------------------------------------
    def start_milter(self) -> None:
        cmd = [self.python, "-m", "monre_milter.cli", "run", "--socket", f"inet:{self.milter_port}@127.0.0.1"]
        for p in self.policy:
            cmd += ["--policy", str(p)]
        if self.metrics:
            cmd += ["--metrics", self.metrics]
        if self.journal:
            cmd += ["--journal", self.journal]
        cmd += self.milter_args
        if self.milter_command:
            cmd = [c.replace("{port}", str(self.milter_port)) for c in self.milter_command]
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO / "milter") + os.pathsep + env.get("PYTHONPATH", "")
        env.update(self.env)
        self.milter_log = open(self.log / "milter.log", "ab")
        self.milter_proc = subprocess.Popen(cmd, stdout=self.milter_log, stderr=subprocess.STDOUT, env=env,
                                            cwd=str(REPO))
        self._remember(self.milter_proc)
        try:
            wait_port(self.milter_port, 30, self.milter_proc)
        except RuntimeError as exc:
            tail = (self.log / "milter.log").read_text(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"the milter did not start: {exc}\n  " + "\n  ".join(tail)) from None

    # A previous run killed without clean-up (terminal closed, kill -9) leaves processes holding our ports.
    def _remember(self, proc: subprocess.Popen) -> None:
        with open(self.root / "pids", "a") as fh:
            fh.write(f"{proc.pid}\n")

    def _stop_leftovers(self) -> None:
        pids = self.root / "pids"
        if not pids.exists():
            return
        for line in pids.read_text().split():
            try:
                cmdline = Path(f"/proc/{int(line)}/cmdline").read_bytes()
            except (OSError, ValueError):
                continue  # gone already
            if b"monre_milter" in cmdline or b"smtp-sink" in cmdline or b"passthrough" in cmdline:
                os.kill(int(line), signal.SIGTERM)
                for _ in range(50):
                    if not Path(f"/proc/{int(line)}").exists():
                        break
                    time.sleep(0.1)
        pids.unlink()

    def stop_milter(self) -> None:
        if self.milter_proc and self.milter_proc.poll() is None:
            self.milter_proc.send_signal(signal.SIGTERM)
            try:
                self.milter_proc.wait(10)
            except subprocess.TimeoutExpired:
                self.milter_proc.kill()
                self.milter_proc.wait(5)
        self.milter_proc = None

    def start(self) -> "Lab":
        self.configure()
        subprocess.run(["postfix", "-c", str(self.conf), "stop"], capture_output=True)
        self._stop_leftovers()
        self.sink_proc = subprocess.Popen(
            ["smtp-sink", "-u", "nobody", "-d", str(self.sink_dir) + "/%Y%m%d%H%M%S.", f"127.0.0.1:{self.sink_port}",
             "256"], stdout=subprocess.DEVNULL, stderr=open(self.log / "sink.log", "ab"))
        self._remember(self.sink_proc)
        wait_port(self.sink_port, 10, self.sink_proc)
        if self.with_milter:
            self.start_milter()
        self._run(["postfix", "-c", str(self.conf), "check"])
        self._run(["postfix", "-c", str(self.conf), "start"])
        wait_port(self.smtp_port, 20)
        return self

    def stop(self) -> None:
        subprocess.run(["postfix", "-c", str(self.conf), "stop"], capture_output=True)
        self.stop_milter()
        if self.sink_proc and self.sink_proc.poll() is None:
            self.sink_proc.terminate()
            self.sink_proc.wait(5)

    # -- looking at results ----------------------------------------------------------------------------------------
    def sink_files(self) -> list[Path]:
        return sorted(self.sink_dir.iterdir(), key=lambda p: p.stat().st_mtime)

    def flush_queue(self) -> None:
        subprocess.run(["postsuper", "-c", str(self.conf), "-d", "ALL"], capture_output=True)

    def queue_ids(self, queue: str = "hold") -> list[str]:
        d = self.queue / queue
        return [p.name for p in d.rglob("*") if p.is_file()] if d.exists() else []


def main(argv: list[str] | None = None) -> int:
    """`python -m monre_milter.lab`: the README's main job. Runs until Ctrl-C, then stops everything."""
    import argparse

    p = argparse.ArgumentParser(description="private Postfix on loopback with the monre milter and a sink")
    p.add_argument("--root", default=str(REPO / "run" / "lab"), help="directory for config, queue, logs, sink")
    p.add_argument("--port", type=int, default=2525, help="SMTP port on 127.0.0.1")
    p.add_argument("--policy", action="append", help="policy pack(s); default policies/monre.yaml")
    p.add_argument("--metrics", default="127.0.0.1:9464", help="milter metrics endpoint (empty: off)")
    args = p.parse_args(argv)
    lab = Lab(root=Path(args.root), smtp_port=args.port, metrics=args.metrics or None,
              journal=str(Path(args.root) / "journal.sqlite"),
              **({"policy": args.policy} if args.policy else {}))
    stopping = []
    for sig in (signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal went away (closed window, lost SSH)
        signal.signal(sig, lambda *_: stopping.append(1))
    lab.start()
    say(f"""
Postfix (private instance, {lab.conf}) listens on 127.0.0.1:{lab.smtp_port} with the milter in smtpd_milters.
  milter:  {lab.python} -m monre_milter.cli run --policy {' --policy '.join(lab.policy)}  (log: {lab.log}/milter.log)
  metrics: http://{args.metrics}/metrics      incident journal: {lab.journal}
  Postfix log: {lab.log}/postfix.log     accepted mail: {lab.sink_dir}/ (one file per message)
  held (quarantined) mail: postqueue -c {lab.conf} -p    release: postsuper -c {lab.conf} -H QUEUEID

Try it (swaks is installed by the set-up):
  # an authenticated user writing to a free-mail address: refused at RCPT (art. 9.1)
  swaks --server 127.0.0.1:{lab.smtp_port} --xclient "ADDR=10.1.2.3 LOGIN=nva_vea@monre.gov.vn" \\
        --from nva_vea@monre.gov.vn --to friend@gmail.com
  # an outside sender to a ministry address: delivered to the sink
  swaks --server 127.0.0.1:{lab.smtp_port} --xclient "ADDR=198.51.100.20" --from partner@example.org --to nva@monre.gov.vn
  # the same verdict offline:
  .venv/bin/monre-milter check --client-ip 198.51.100.20 --json some-message.eml

Ctrl-C stops Postfix, the milter and the sink.""")
    try:
        while not stopping:
            if lab.milter_proc is not None and lab.milter_proc.poll() is not None:
                say(f"the milter exited ({lab.milter_proc.returncode}); see {lab.log}/milter.log")
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        stopping.append(1)  # Ctrl-C: the normal way to stop
    finally:
        # Stop first, talk after: stdout may be a pipe that is gone (Ctrl-C in `... | tee`).
        lab.stop()
        say("\nstopped: Postfix, the milter and the sink.")
    return 0


def say(text: str) -> None:
    """Print without ever failing: output is a courtesy, stopping the services is not."""
    try:
        print(text, flush=True)
    except (BrokenPipeError, OSError):
        return  # nobody is reading any more (the pipe or terminal is gone)


if __name__ == "__main__":
    sys.exit(main())
