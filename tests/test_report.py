"""Appendix-2 report from a synthetic year of journal data: DOCX (read back with python-docx), Markdown, CSV."""
from __future__ import annotations

import csv
import random
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from docx import Document

from monre_milter.cli import main
from monre_milter.journal import Journal, Row
from monre_milter.report.figures import parse_duration

YEAR = 2025
VN = ZoneInfo("Asia/Ho_Chi_Minh")
# (rule, result) -> row of section 3 (1-based), written out here independently of the code's own table.
KINDS = {
    ("classified", "marking"): 1, ("freemail", "recipient"): 2, ("freemail", "sender"): 2,
    ("attachment-size", "over-limit"): 3, ("smime", "fail"): 4, ("smime", "policy"): 4,
    ("dnsbl", "listed"): 5, ("spam-header", "spam"): 5, ("banned-type", "executable"): 6,
    ("rate-limit", "over-limit"): 7, ("milter-error", "eom"): 8,
    # not incidents: a good signature, a DNS timeout
    ("smime", "pass"): None, ("dnsbl", "temperror"): None, ("rate-limit", "over-limit-repeat"): None,
    ("classified", "uninspectable"): None, ("classified", "label"): 1,
}
UNITS = ["vea", "gdla", "other"]


@pytest.fixture(scope="module")
def year_journal(tmp_path_factory):
    """A year of hits, plus rows just outside the year; returns (path, expected[unit][row][month])."""
    path = tmp_path_factory.mktemp("journal") / "journal.db"
    j = Journal(str(path), retention_days=0)
    rnd = random.Random(2025)
    expected = {u: [[0] * 12 for _ in range(9)] for u in UNITS + ["*"]}
    rows = []
    for month in range(1, 13):
        for _ in range(rnd.randint(20, 60)):
            (rule, result), cat = rnd.choice(list(KINDS.items()))
            unit = rnd.choice(UNITS)
            ts = datetime(YEAR, month, rnd.randint(1, 28), rnd.randint(0, 23), rnd.randint(0, 59), tzinfo=VN)
            rows.append(Row(ts.timestamp(), "error" if rule == "milter-error" else "finding", "Q", "inbound", unit,
                            rule, "x", "reject", result, "example.org", "monre.gov.vn"))
            if cat:
                for u in (unit, "*"):
                    expected[u][cat - 1][month - 1] += 1
    # Month edges are local (UTC+7): 31 Jan 23:30 in Hanoi is January, 1 Feb 00:30 is February (17:30 UTC on 31 Jan).
    for ts, month in ((datetime(YEAR, 1, 31, 23, 30, tzinfo=VN), 1), (datetime(YEAR, 2, 1, 0, 30, tzinfo=VN), 2)):
        rows.append(Row(ts.timestamp(), "finding", "E", "outbound", "vea", "freemail", "9.1", "reject", "recipient",
                        "monre.gov.vn", "gmail.com"))
        for u in ("vea", "*"):
            expected[u][1][month - 1] += 1
    for ts in (datetime(YEAR - 1, 12, 31, 23, 59, tzinfo=VN), datetime(YEAR + 1, 1, 1, 0, 0, tzinfo=VN)):
        rows.append(Row(ts.timestamp(), "finding", "X", "outbound", "vea", "freemail", "9.1", "reject", "recipient",
                        "monre.gov.vn", "gmail.com"))
    j.write(rows)
    j.close()
    for u in expected:
        expected[u][8] = [sum(expected[u][r][m] for r in range(8)) for m in range(12)]
    return path, expected


def section3_table(doc):
    for t in doc.tables:
        if t.rows[0].cells[0].text == "STT" and len(t.columns) == 15:
            return t
    raise AssertionError("no section-3 table")


@pytest.mark.parametrize("unit", ["vea", None])
def test_docx_section3_figures_equal_the_journal(year_journal, tmp_path, unit):
    path, expected = year_journal
    out = tmp_path / "r.docx"
    args = ["report", "--year", str(YEAR), "--journal", str(path), "--format", "docx", "-o", str(out)]
    assert main(args + (["--unit", unit] if unit else [])) == 0
    doc = Document(str(out))
    t = section3_table(doc)
    assert [c.text for c in t.rows[1].cells[2:14]] == [str(m) for m in range(1, 13)]
    assert t.rows[0].cells[14].text == "Cả năm"
    exp = expected[unit or "*"]
    body = t.rows[2:]
    assert len(body) == 9
    for r, row in enumerate(body):
        cells = [c.text for c in row.cells]
        assert [int(x) for x in cells[2:14]] == exp[r], (r, cells)
        assert int(cells[14]) == sum(exp[r])
    assert body[-1].cells[1].text == "Tổng cộng"
    assert body[1].cells[1].text.startswith("Sử dụng thư điện tử miễn phí")
    text = "\n".join(p.text for p in doc.paragraphs)
    header = "\n".join(c.text for c in doc.tables[0].rows[0].cells)
    for s in ("BỘ TÀI NGUYÊN VÀ MÔI TRƯỜNG", "Số:", "V/v Báo cáo tình hình quản lý và sử dụng thư điện tử",
              "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập – Tự do – Hạnh phúc"):
        assert s in header, s
    assert ("TỔNG CỤC MÔI TRƯỜNG" in header) == (unit == "vea")
    for s in ("1. Thông tin chung về tình hình sử dụng thư điện tử", "1.2. Tổng số cán bộ",
              "2. Tự đánh giá về tình hình sử dụng thư điện tử của đơn vị",
              "3. Tổng hợp các trường hợp sự cố liên quan đến hệ thống thư điện tử",
              "4. Những đề xuất, kiến nghị của đơn vị"):
        assert s in text, s
    signature = "\n".join(c.text for c in doc.tables[-1].rows[0].cells)
    assert "TỔ CHỨC, ĐƠN VỊ LẬP BÁO CÁO" in signature and "(Ký, ghi rõ họ tên, chức vụ và đóng dấu)" in signature
    sec = doc.sections[0]
    assert round(sec.page_width.cm, 1) == 21.0 and round(sec.page_height.cm, 1) == 29.7


def test_markdown_and_csv_carry_the_same_figures(year_journal, tmp_path):
    path, expected = year_journal
    md, cs = tmp_path / "r.md", tmp_path / "r.csv"
    assert main(["report", "--year", str(YEAR), "--unit", "gdla", "--journal", str(path), "--format", "md",
                 "-o", str(md)]) == 0
    assert main(["report", "--year", str(YEAR), "--unit", "gdla", "--journal", str(path), "--format", "csv",
                 "-o", str(cs)]) == 0
    text = md.read_text("utf-8")
    assert "TỔNG CỤC QUẢN LÝ ĐẤT ĐAI" in text and "Kính gửi" in text
    table = [line for line in text.splitlines() if line.startswith("| ") and line.split("|")[1].strip().isdigit()]
    exp = expected["gdla"]
    assert len(table) == 8
    for r, line in enumerate(table):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert [int(x) for x in cells[2:14]] == exp[r] and int(cells[14]) == sum(exp[r])
    with open(cs, encoding="utf-8-sig", newline="") as fh:
        got = list(csv.reader(fh))
    assert got[0][:3] == ["category", "label", "rules"] and got[0][-1] == "total"
    assert [g[0] for g in got[1:]] == ["classified", "freemail", "attachment-size", "signature", "spam",
                                       "dangerous-file", "compromised-account", "milter-error", "total"]
    for r, g in enumerate(got[1:]):
        assert [int(x) for x in g[3:15]] == exp[r] and int(g[15]) == sum(exp[r])


def test_errors_are_clear(year_journal, tmp_path, capsys):
    path, _ = year_journal
    assert main(["report", "--year", str(YEAR), "--unit", "nope", "--journal", str(path), "-o",
                 str(tmp_path / "x.md")]) == 2
    assert "unknown unit 'nope'" in capsys.readouterr().err
    assert main(["report", "--year", str(YEAR), "--journal", str(tmp_path / "missing.db"), "-o",
                 str(tmp_path / "x.md")]) == 2
    assert "no journal" in capsys.readouterr().err
    assert main(["report", "--year", str(YEAR), "--prometheus", "http://127.0.0.1:9", "-o",
                 str(tmp_path / "x.md")]) == 2
    assert "Prometheus" in capsys.readouterr().err


def test_prometheus_durations():
    assert parse_duration("15d") == 15 * 86400
    assert parse_duration("1y") == 365 * 86400
    assert parse_duration("2w3d12h") == (17 * 24 + 12) * 3600
    assert parse_duration("") is None
