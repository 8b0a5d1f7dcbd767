"""Builders of real documents and messages for the content tests, made at test time with the real libraries
(python-docx, fpdf2 with the DejaVu font, openpyxl, python-pptx, odfpy, zipfile). Nothing binary is committed."""
from __future__ import annotations

import email.message
import email.policy
import io
import os
import zipfile
from pathlib import Path

SHARED = Path(os.environ.get("MONRE_SHARED", Path(__file__).resolve().parents[2].parent / "shared")).resolve()
REGULATION = SHARED / "regulation" / "quy-che-thu-dien-tu-btnmt.txt"
FONT = next((p for p in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                         "/usr/share/fonts/dejavu/DejaVuSans.ttf") if os.path.exists(p)), None)


def regulation_paragraphs() -> list[str]:
    text = REGULATION.read_text(encoding="utf-8")
    return [p.strip() for p in text.split("\n") if p.strip()]


# -- DOCX -------------------------------------------------------------------------------------------------------------
def docx(paragraphs: list[str] = (), header: str | None = None, footer: str | None = None,
         textbox: str | None = None, split_runs: list[list[str]] = ()) -> bytes:
    """A Word document: body paragraphs, an optional page header/footer, a text box (VML, as Word writes in its
    fallback), and paragraphs whose text is split over several runs (as Word does after edits)."""
    import docx as _docx
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    d = _docx.Document()
    if header is not None:
        d.sections[0].header.paragraphs[0].text = header
    if footer is not None:
        d.sections[0].footer.paragraphs[0].text = footer
    if textbox is not None:
        p = d.add_paragraph("Nội dung chính")
        xml = (f'<w:r {nsdecls("w")} xmlns:v="urn:schemas-microsoft-com:vml"><w:pict><v:shape style="width:100pt;height:30pt"><v:textbox>'
               f'<w:txbxContent><w:p><w:r><w:t xml:space="preserve">{_x(textbox)}</w:t></w:r></w:p>'
               f'</w:txbxContent></v:textbox></v:shape></w:pict></w:r>')
        p._p.append(parse_xml(xml))
    for runs in split_runs:
        p = d.add_paragraph()
        for r in runs:
            p.add_run(r)
    for text in paragraphs:
        d.add_paragraph(text)
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def _x(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -- PDF --------------------------------------------------------------------------------------------------------------
def pdf(lines: list[str], password: str | None = None) -> bytes:
    from fpdf import FPDF

    doc = FPDF()
    doc.set_auto_page_break(True, margin=15)
    doc.add_page()
    doc.add_font("DejaVu", "", FONT)
    doc.set_font("DejaVu", size=10)
    for line in lines:
        doc.multi_cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
    if password:
        doc.set_encryption(owner_password=password + "-owner", user_password=password)
    return bytes(doc.output())


# -- other office formats ---------------------------------------------------------------------------------------------
def xlsx(cells: list[str]) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    for i, c in enumerate(cells, 1):
        ws.cell(row=i, column=1, value=c)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def pptx(texts: list[str]) -> bytes:
    import pptx as _pptx
    from pptx.util import Inches

    prs = _pptx.Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[6])
    for i, t in enumerate(texts):
        box = slide.shapes.add_textbox(Inches(1), Inches(1 + i), Inches(6), Inches(1))
        box.text_frame.text = t
    out = io.BytesIO()
    prs.save(out)
    return out.getvalue()


def odt(paragraphs: list[str]) -> bytes:
    from odf.opendocument import OpenDocumentText
    from odf.text import P

    doc = OpenDocumentText()
    for t in paragraphs:
        doc.text.addElement(P(text=t))
    out = io.BytesIO()
    doc.write(out)
    return out.getvalue()


def zip_of(members: list[tuple[str, bytes]], compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for name, data in members:
            z.writestr(name, data)
    return out.getvalue()


def encrypted_zip(name: str, data: bytes) -> bytes:
    """A ZIP whose member has the 'encrypted' flag and traditional PKWARE encryption, made with the zip CLI-free
    way: the stdlib cannot write encrypted members, so we set the flag on a stored member (readers treat it as
    password-protected, which is all the scanner needs to see)."""
    raw = bytearray(zip_of([(name, data)], zipfile.ZIP_STORED))
    # general purpose flag bit 0 in the local header (offset 6) and in the central directory header (offset 8)
    raw[6] |= 1
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 8] |= 1
    return bytes(raw)


def zip_bomb(levels: int = 1, size: int = 200_000_000) -> bytes:
    """Deflate-compressed zeros: `size` bytes become ~size/1000 bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open("zeros.txt", "w", force_zip64=True) as w:
            chunk = b"\0" * (1 << 20)
            left = size
            while left > 0:
                w.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
    data = out.getvalue()
    for i in range(levels - 1):
        data = zip_of([(f"layer{i}.zip", data)])
    return data


# -- messages ---------------------------------------------------------------------------------------------------------
def message(subject: str = "Báo cáo", body: str = "Kính gửi anh chị.\n", html: str | None = None,
            attachments: list[tuple[str, bytes, str]] = (), headers: dict | None = None,
            sender: str = "a@example.org", to: str = "nva@monre.gov.vn") -> bytes:
    m = email.message.EmailMessage(policy=email.policy.SMTP)
    m["From"] = sender
    m["To"] = to
    m["Subject"] = subject
    for k, v in (headers or {}).items():
        m[k] = v
    m.set_content(body)
    if html is not None:
        m.add_alternative(html, subtype="html")
    for name, data, ctype in attachments:
        maintype, subtype = ctype.split("/", 1)
        m.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return m.as_bytes()


DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODT = "application/vnd.oasis.opendocument.text"


# -- running the engine ------------------------------------------------------------------------------------------------
POLICY = Path(__file__).resolve().parents[2] / "policies" / "monre.yaml"


def run(pack, raw: bytes, inbound: bool = True, mail_from: str = "a@example.org",
        rcpts: tuple[str, ...] = ("nva@monre.gov.vn",)):
    """(verdict, facts) of a message through analyse() and the engine, as the milter does it."""
    from monre_milter.engine import Transaction
    from monre_milter.extract.message import analyse
    from monre_milter.facts import Connection

    conn = Connection(client_ip="198.51.100.20") if inbound else Connection(client_ip="10.1.2.3",
                                                                              sasl_user="nva@monre.gov.vn")
    if not inbound:
        mail_from = "nva@monre.gov.vn"
        rcpts = tuple(r if r != "nva@monre.gov.vn" else "partner@example.org" for r in rcpts)
    tx = Transaction(pack, conn)
    tx.mail_from(mail_from, None)
    for r in rcpts:
        tx.rcpt(r)
    facts = analyse(io.BytesIO(raw), pack, tx.direction, tx.message_unit())
    return tx.end_of_message(facts), facts


def found(verdict, rule_id: str) -> list:
    return [f for f in verdict.findings if f.rule == rule_id]
