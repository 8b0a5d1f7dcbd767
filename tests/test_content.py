"""The content extractor: what text it finds, and that every extraction stays bounded (zip bombs, deep archives,
huge part counts), plus the whole public corpus through analyse() and the engine without a crash or a hang."""
from __future__ import annotations

import io
import resource
import time
import unicodedata

import pytest

from monre_milter.extract.content import html_to_text, normalise, rtf_to_text
from monre_milter.extract.message import analyse
from monre_milter.pack.loader import load_pack
from samples import documents as D
from samples.documents import DOCX, PPTX, XLSX, ODT, found, run


@pytest.fixture(scope="module")
def pack():
    return load_pack([str(D.POLICY)])


def texts(facts, prefix=""):
    return [t.text for t in facts.texts if t.where.startswith(prefix)]


def test_docx_parts_and_runs(pack):
    raw = D.message(attachments=[("a.docx", D.docx(["Thân bài"], header="Đầu trang", footer="Chân trang",
                                                   textbox="Hộp chữ", split_runs=[["Tách ", "thà", "nh"]]), DOCX)])
    _, facts = run(pack, raw)
    lines = "\n".join(texts(facts, "attachment a.docx")).split("\n")
    for want in ("Thân bài", "Đầu trang", "Chân trang", "Hộp chữ", "Tách thành"):
        assert want in lines, (want, lines)


def test_other_formats(pack):
    atts = [("s.xlsx", D.xlsx(["Ô một", "Ô hai"]), XLSX), ("p.pptx", D.pptx(["Trang chiếu"]), PPTX),
            ("v.odt", D.odt(["Đoạn văn ODT"]), ODT), ("t.pdf", D.pdf(["Dòng PDF"]), "application/pdf")]
    _, facts = run(pack, D.message(attachments=atts))
    for name, want in (("s.xlsx", "Ô hai"), ("p.pptx", "Trang chiếu"), ("v.odt", "Đoạn văn ODT"),
                       ("t.pdf", "Dòng PDF")):
        assert any(want in t for t in texts(facts, f"attachment {name}")), name


def test_nfc_everywhere(pack):
    nfd = unicodedata.normalize("NFD", "Tiếng Việt")
    _, facts = run(pack, D.message(subject=nfd, body=nfd, attachments=[("a.docx", D.docx([nfd]), DOCX)]))
    for t in facts.texts:
        assert unicodedata.is_normalized("NFC", t.text)
    assert "Tiếng Việt" in texts(facts, "subject")


def test_helpers():
    assert html_to_text("<p>Một</p><script>x=1</script><div>Hai&amp;ba</div>").split() == ["Một", "Hai&ba"]
    assert rtf_to_text(rb"{\rtf1\ansi{\fonttbl{\f0 Arial;}}M\u7852?T\par B\'e1o}").split() == ["MẬT", "Báo"]
    assert normalise("M\u200bẬ\u00adT\r\n") == "MẬT\n"


def test_tnef_from_the_corpus(pack):
    _, facts = run(pack, (D.SHARED / "corpus" / "mime" / "tnef" / "rich-text.eml").read_bytes())
    files = facts.extra["content"].files
    assert "kitten-playing-with-a-christmas-tree.jpg" in [f.filename for f in files]
    assert all(f.container.startswith("tnef:winmail.dat") for f in files)
    assert {f.detected_type for f in files} >= {"image/jpeg"}
    assert any("HO-scale train table" in t for t in texts(facts, "attachment winmail.dat"))
    assert not facts.uninspectable


def test_zip_depth_limit(pack):
    data = D.docx(["MẬT"])
    name = "a.docx"
    for i in range(6):  # six archives around the document: past the depth limit of 4
        data, name = D.zip_of([(name, data)]), f"l{i}.zip"
    verdict, facts = run(pack, D.message(attachments=[(name, data, "application/zip")]))
    assert any("nested deeper than 4" in why for _, why in facts.uninspectable), facts.uninspectable
    assert verdict.action == "quarantine"


@pytest.mark.parametrize("size,why", [(200_000_000, "over the scan limit"), (20_000_000, "expands")])
def test_zip_bomb_is_bounded(pack, size, why):
    bomb = D.zip_bomb(levels=2, size=size)  # zeros deflate ~1000:1, inside another zip
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.monotonic()
    verdict, facts = run(pack, D.message(attachments=[("bomb.zip", bomb, "application/zip")]))
    elapsed = time.monotonic() - t
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert elapsed < 5, elapsed
    assert grown < 100, f"peak RSS grew {grown:.0f} MB"
    assert any(why in w for _, w in facts.uninspectable), facts.uninspectable
    assert verdict.action == "quarantine"


def test_many_members_and_parts(pack):
    members = [(f"f{i}.txt", b"x") for i in range(3000)]
    _, facts = run(pack, D.message(attachments=[("many.zip", D.zip_of(members), "application/zip")]))
    assert ("attachment many.zip", "archive with 3000 members, only 1000 read") in facts.uninspectable
    assert len(facts.extra["content"].files) == 1000
    # a 3,000-part message: the walker stops at max_parts, the message is uninspectable, quickly
    import email.message
    m = email.message.EmailMessage()
    m["Subject"] = "nhiều phần"
    m.set_content("x")
    for i in range(3000):
        m.add_attachment(b"x", maintype="application", subtype="octet-stream", filename=f"{i}.bin")
    t = time.monotonic()
    verdict, facts = run(pack, m.as_bytes())
    assert time.monotonic() - t < 20
    assert ("message", "more than 1000 parts") in facts.uninspectable
    assert verdict.action == "quarantine"


def test_time_budget(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text("rules:\n  classified:\n    scan: {seconds: 0.000001}\n", encoding="utf-8")
    pack = load_pack([str(D.POLICY), str(site)])
    _, facts = run(pack, D.message(attachments=[("a.docx", D.docx(["x"] * 100), DOCX)]))
    assert any("time budget" in why for _, why in facts.uninspectable), facts.uninspectable


def test_owner_password_pdf_is_read(pack):
    """A PDF with only an owner password (empty user password) opens for everyone: it is read, not held."""
    from fpdf import FPDF
    doc = FPDF()
    doc.add_page()
    doc.add_font("DejaVu", "", D.FONT)
    doc.set_font("DejaVu", size=10)
    doc.cell(text="TỐI MẬT")
    doc.set_encryption(owner_password="owner", user_password="")
    verdict, facts = run(pack, D.message(attachments=[("a.pdf", bytes(doc.output()), "application/pdf")]))
    assert not facts.uninspectable
    assert [f.result for f in found(verdict, "classified")] == ["marking"]


CORPUS = sorted(p for p in (D.SHARED / "corpus").rglob("*") if p.is_file() and p.name != "SOURCES.md")


def test_whole_corpus_no_crash_no_hang(pack):
    """Every public sample through analyse() and the engine (inbound and outbound): no exception, no tempfail,
    bounded time."""
    slow = []
    for path in CORPUS:
        raw = path.read_bytes()
        for inbound in (True, False):
            t = time.monotonic()
            verdict, facts = run(pack, raw, inbound=inbound)
            took = time.monotonic() - t
            assert verdict.action != "tempfail", (path, verdict.findings)
            if took > 5:
                slow.append((path.name, took))
    assert not slow, slow
    assert len(CORPUS) > 100


def test_analyse_without_pack():
    facts = analyse(io.BytesIO(D.message(subject="[MẬT] x")))
    assert texts(facts, "subject") == ["[MẬT] x"]


def test_docx_whose_main_part_is_not_word_document_xml(tmp_path):
    """Word follows _rels/.rels to the main part, whatever its name; so must we."""
    import email.message
    import zipfile as zf

    import docx

    from monre_milter.check import check_file
    from monre_milter.pack import load_pack

    from conftest import REPO

    d = docx.Document()
    d.add_paragraph("TỐI MẬT")
    d.add_paragraph("Kế hoạch công tác")
    src = io.BytesIO()
    d.save(src)
    out = io.BytesIO()
    with zf.ZipFile(src) as zin, zf.ZipFile(out, "w", zf.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            name = info.filename
            if name == "word/document.xml":
                name = "word/main.xml"
            elif name in ("_rels/.rels", "[Content_Types].xml"):
                data = data.replace(b"word/document.xml", b"word/main.xml")
            elif name == "word/_rels/document.xml.rels":
                name = "word/_rels/main.xml.rels"
            zout.writestr(name, data)
    m = email.message.EmailMessage()
    m["From"], m["To"], m["Subject"] = "a@example.org", "b@monre.gov.vn", "kế hoạch"
    m.set_content("xem tệp đính kèm")
    m.add_attachment(out.getvalue(), maintype="application",
                     subtype="vnd.openxmlformats-officedocument.wordprocessingml.document", filename="kehoach.docx")
    path = tmp_path / "m.eml"
    path.write_bytes(m.as_bytes())
    v = check_file(load_pack([str(REPO / "policies" / "monre.yaml")]), str(path), client_ip="198.51.100.7")
    assert v.action == "reject" and "kehoach.docx" in str(v.reply)


def test_a_large_text_body_is_scanned_whole_not_held_for_size(tmp_path):
    """9 million characters of CSV (over the text budget if kept whole): the stamp on the last line is found,
    and nothing is held for size."""
    from monre_milter.check import check_file
    from monre_milter.pack import load_pack

    from conftest import REPO

    rows = "".join(f"{i},Hà Nội,{i * 7},báo cáo\n" for i in range(360_000))
    assert len(rows) > 8_000_000
    raw = ("From: a@example.org\r\nTo: b@monre.gov.vn\r\nSubject: data\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + rows)
    pack = load_pack([str(REPO / "policies" / "monre.yaml")])
    path = tmp_path / "big.eml"
    path.write_text(raw, encoding="utf-8")
    v = check_file(pack, str(path), client_ip="198.51.100.7")
    assert v.action == "accept", v.as_json()
    path.write_text(raw + "\nTỐI MẬT\n", encoding="utf-8")
    v = check_file(pack, str(path), client_ip="198.51.100.7")
    assert v.action == "reject" and "art. 10.1" in str(v.reply)
