"""End-to-end helpers: send mail over SMTP to a lab Postfix (with XCLIENT to play any client) and read results.

    r = send(lab, msg, "a@example.org", ["b@monre.gov.vn"], client_ip="198.51.100.20")   # an outside client
    r = send(lab, msg, "nva@monre.gov.vn", ["x@gmail.com"], login="nva@monre.gov.vn")     # an authenticated user
    r.rcpt["x@gmail.com"]  -> (550, "5.7.1 Official mail ...")
    r.data                 -> (250, "2.0.0 Ok: queued as ABC123") or the refusal
    dump = wait_sink(lab, r.queue_id)   # the message as the sink received it (bytes), or None after the timeout
"""
from __future__ import annotations

import email.message
import re
import smtplib
import time
from dataclasses import dataclass, field

from monre_milter.lab import Lab


@dataclass
class SmtpResult:
    mail: tuple[int, str] = (0, "")
    rcpt: dict[str, tuple[int, str]] = field(default_factory=dict)
    data: tuple[int, str] | None = None  # None when no recipient was accepted (DATA not sent)

    @property
    def queue_id(self) -> str | None:
        if self.data and self.data[0] == 250:
            m = re.search(r"queued as ([0-9A-Za-z]+)", self.data[1])
            return m.group(1) if m else None
        return None


def as_bytes(msg) -> bytes:
    if isinstance(msg, bytes):
        return msg
    if isinstance(msg, email.message.Message):
        return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    return msg.encode("utf-8")


def make_message(sender: str, to: list[str], subject: str = "test", body: str = "Hello.\n",
                 attachments: list[tuple[str, bytes, str]] = ()) -> email.message.EmailMessage:
    m = email.message.EmailMessage()
    m["From"] = sender
    m["To"] = ", ".join(to)
    m["Subject"] = subject
    m.set_content(body)
    for name, data, ctype in attachments:
        maintype, subtype = ctype.split("/", 1)
        m.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return m


def send(lab: Lab, msg, mail_from: str, rcpts: list[str], client_ip: str | None = None, login: str | None = None,
         size: int | None = None, helo: str = "client.example", timeout: float = 60) -> SmtpResult:
    """One SMTP transaction. Replies are recorded, not raised."""
    res = SmtpResult()
    s = smtplib.SMTP("127.0.0.1", lab.smtp_port, timeout=timeout)
    try:
        s.ehlo(helo)
        if client_ip or login:
            args = [f"ADDR={client_ip or '127.0.0.1'}", f"NAME={'[UNAVAILABLE]'}"]
            if login:
                args.append(f"LOGIN={login}")
            code, text = s.docmd("XCLIENT", " ".join(args))
            assert code == 220, (code, text)
            s.ehlo(helo)
        params = f" SIZE={size}" if size is not None else ""
        code, text = s.docmd(f"MAIL FROM:<{mail_from}>{params}")
        res.mail = (code, text.decode())
        if code != 250:
            return res
        for r in rcpts:
            code, text = s.docmd(f"RCPT TO:<{r}>")
            res.rcpt[r] = (code, text.decode())
        if not any(c == 250 for c, _ in res.rcpt.values()):
            return res
        code, text = s.docmd("DATA")
        if code != 354:
            res.data = (code, text.decode())
            return res
        data = as_bytes(msg)
        data = re.sub(rb"(?m)^\.", b"..", data)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        s.send(data + b".\r\n")
        code, text = s.getreply()
        res.data = (code, text.decode())
        return res
    finally:
        try:
            s.quit()
        except smtplib.SMTPException:
            s.close()


def wait_sink(lab: Lab, queue_id: str, timeout: float = 15.0) -> bytes | None:
    """The message the sink received for Postfix queue id `queue_id` (as dumped by smtp-sink)."""
    needle = f"id {queue_id}".encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in lab.sink_dir.iterdir():
            try:
                data = p.read_bytes()
            except OSError:
                continue
            if needle in data:
                return data
        time.sleep(0.1)
    return None


def sink_headers(dump: bytes) -> email.message.Message:
    import email.parser
    import email.policy

    return email.parser.BytesParser(policy=email.policy.default).parsebytes(dump, headersonly=True)
