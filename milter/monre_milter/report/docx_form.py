"""The appendix-2 form as a DOCX (python-docx), laid out like an administrative document (A4, Times New Roman,
margins 2/2/3/2 cm): header block in two columns, sections 1-4, the section-3 table, the signature block."""
from __future__ import annotations

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt

from .figures import Figures
from .render import (BOX, COL_CAT, COL_STT, COL_YEAR, DOC_TYPES, DOTS, EFFECT, FOOTNOTE, MOTTO, NATION, RECIPIENT,
                     ROW_TOTAL, S1, S2, S3, S4, SIGN_NOTE, SIGNER, SUBJECT, USAGE, ReportInfo, category_note,
                     s3_intro, table_rows)

FONT = "Times New Roman"
CENTER, LEFT, RIGHT, JUSTIFY = (WD_ALIGN_PARAGRAPH.CENTER, WD_ALIGN_PARAGRAPH.LEFT, WD_ALIGN_PARAGRAPH.RIGHT,
                                WD_ALIGN_PARAGRAPH.JUSTIFY)


def _font(run, size=None, bold=None, italic=None, underline=None):
    run.font.name = FONT
    rpr = run._element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.insert(0, fonts)
    for attr in ("w:ascii", "w:hAnsi", "w:cs", "w:eastAsia"):
        fonts.set(qn(attr), FONT)
    if size:
        run.font.size = Pt(size)
    if bold is not None:
        run.bold = bold
    if italic is not None:
        run.italic = italic
    if underline is not None:
        run.underline = underline
    return run


def _para(container, text="", size=13, bold=False, italic=False, align=LEFT, before=0, after=3, indent=None,
          underline=False):
    p = container.add_paragraph()
    p.alignment = align
    pf = p.paragraph_format
    pf.space_before, pf.space_after = Pt(before), Pt(after)
    pf.line_spacing = 1.1
    if indent is not None:
        pf.first_line_indent = Cm(indent)
    if text:
        _font(p.add_run(text), size, bold, italic, underline)
    return p


def _no_borders(table):
    tbl_pr = table._tbl.tblPr
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        e = OxmlElement(f"w:{edge}")
        e.set(qn("w:val"), "nil")
        borders.append(e)
    tbl_pr.append(borders)


def _cell_text(cell, text, size=13, bold=False, italic=False, align=CENTER, underline=False):
    """Put `text` in the cell's first paragraph (a new one for the next calls)."""
    p = cell.paragraphs[0] if not cell.paragraphs[0].text and len(cell.paragraphs) == 1 and \
        not cell.paragraphs[0].runs else cell.add_paragraph()
    p.alignment = align
    p.paragraph_format.space_after = Pt(0)
    p.paragraph_format.space_before = Pt(0)
    _font(p.add_run(text), size, bold, italic, underline)
    return p


def _widths(table, widths_cm):
    table.autofit = False
    layout = OxmlElement("w:tblLayout")
    layout.set(qn("w:type"), "fixed")
    table._tbl.tblPr.append(layout)
    for col, w in zip(table.columns, widths_cm):
        col.width = Cm(w)
    for row in table.rows:
        for cell, w in zip(row.cells, widths_cm):
            cell.width = Cm(w)


def _short_rule(cell, width="4cm"):
    """The short horizontal line under the unit name and the motto."""
    p = cell.add_paragraph()
    p.alignment = CENTER
    p.paragraph_format.space_after = Pt(2)
    _font(p.add_run("——————"), 8)


def write_docx(info: ReportInfo, fig: Figures, path: str) -> None:
    doc = Document()
    sec = doc.sections[0]
    sec.orientation = WD_ORIENT.PORTRAIT
    sec.page_width, sec.page_height = Cm(21), Cm(29.7)
    sec.top_margin, sec.bottom_margin, sec.left_margin, sec.right_margin = Cm(2), Cm(2), Cm(3), Cm(2)
    normal = doc.styles["Normal"]
    normal.font.name, normal.font.size = FONT, Pt(13)
    normal.element.get_or_add_rPr()

    # Header block: ministry / unit / number / subject on the left, the national heading on the right.
    head = doc.add_table(rows=1, cols=2)
    _no_borders(head)
    _widths(head, [6.9, 9.3])
    left, right = head.rows[0].cells
    _cell_text(left, info.ministry.upper(), 11)
    _cell_text(left, (info.unit_name or "ĐƠN VỊ BÁO CÁO").upper(), 12, bold=True)
    _short_rule(left)
    _cell_text(left, f"Số: {DOTS}/BC-{DOTS}", 13)
    _cell_text(left, SUBJECT, 12)
    _cell_text(right, NATION, 12, bold=True)
    _cell_text(right, MOTTO, 13, bold=True)
    _short_rule(right)
    _cell_text(right, f"……, ngày …… tháng …… năm {fig.year}", 13, italic=True)

    _para(doc, "", after=6)
    p = _para(doc, align=CENTER, after=6)
    _font(p.add_run("Kính gửi: "), 13)
    _font(p.add_run(RECIPIENT), 13)

    # Section 1
    _para(doc, S1, bold=True, before=6)
    _para(doc, f"1.1. Tên đơn vị: {info.unit_name or DOTS * 2}        Địa chỉ email: {DOTS}", indent=0.5)
    _para(doc, f"1.2. Tổng số cán bộ, công chức, viên chức trực thuộc đơn vị: {DOTS}", indent=0.5)
    _para(doc, f"1.3. Tổng số tài khoản thư điện tử đã được cấp và sử dụng trong công việc: {DOTS}", indent=0.5)

    # Section 2
    _para(doc, S2, bold=True, before=6)
    _para(doc, "2.1. Ước tính tỷ lệ cán bộ công chức, viên chức của đơn vị có sử dụng thư điện tử trong công việc "
          "hàng ngày: ….%", indent=0.5, align=JUSTIFY)
    _para(doc, "2.2. Mức độ sử dụng:", indent=0.5)
    boxes = doc.add_table(rows=len(USAGE), cols=2)
    _no_borders(boxes)
    for i, u in enumerate(USAGE):
        _cell_text(boxes.rows[i].cells[0], f"{BOX} {u}", 13, align=LEFT)
        if i < len(EFFECT):
            _cell_text(boxes.rows[i].cells[1], f"{BOX} {EFFECT[i]}", 13, align=LEFT)
    _cell_text(boxes.rows[len(USAGE) - 1].cells[1], f"{BOX} Ý kiến khác: {DOTS}", 13, align=LEFT)
    _widths(boxes, [8, 8])
    _para(doc, "2.3. Các loại văn bản được trao đổi qua thư điện tử của cán bộ trong đơn vị:", indent=0.5,
          before=3)
    kinds = doc.add_table(rows=len(DOC_TYPES), cols=2)
    _no_borders(kinds)
    for i, (a, b) in enumerate(DOC_TYPES):
        _cell_text(kinds.rows[i].cells[0], f"{BOX} {a}", 13, align=LEFT)
        _cell_text(kinds.rows[i].cells[1], f"{BOX} {b}", 13, align=LEFT)
    _widths(kinds, [8, 8])
    _para(doc, "Ước tính tỷ lệ văn bản của đơn vị được trao đổi qua hệ thống thư điện tử: ….%", indent=0.5,
          before=3)

    # Section 3: the milter's figures
    _para(doc, S3, bold=True, before=6)
    _para(doc, s3_intro(info, fig), indent=0.5, align=JUSTIFY)
    rows = table_rows(fig)
    t = doc.add_table(rows=2 + len(rows), cols=15)
    t.style = doc.styles["Table Grid"]
    t.alignment = WD_TABLE_ALIGNMENT.CENTER
    hdr0, hdr1 = t.rows[0].cells, t.rows[1].cells
    months = hdr0[2].merge(hdr0[13])
    _cell_text(months, "Số lượt theo tháng", 9, bold=True)
    for idx, text in ((0, COL_STT), (1, COL_CAT), (14, COL_YEAR)):
        merged = hdr0[idx].merge(hdr1[idx])
        _cell_text(merged, text, 9, bold=True)
    for m in range(12):
        _cell_text(hdr1[2 + m], str(m + 1), 9, bold=True)
    for row in t.rows:  # a row never breaks across pages; the header rows repeat on the next page
        tr_pr = row._tr.get_or_add_trPr()
        tr_pr.append(OxmlElement("w:cantSplit"))
    for row in t.rows[:2]:
        row._tr.get_or_add_trPr().append(OxmlElement("w:tblHeader"))
    for r, values in enumerate(rows):
        cells = t.rows[2 + r].cells
        total = values[1] == ROW_TOTAL
        for c, v in enumerate(values):
            _cell_text(cells[c], v, 9, bold=total or c == 14, align=LEFT if c == 1 else CENTER)
    _widths(t, [1.0, 4.4] + [0.77] * 12 + [1.3])
    _para(doc, category_note(), size=11, italic=True, before=3, align=JUSTIFY)
    for n in fig.notes:
        _para(doc, n, size=11, italic=True, align=JUSTIFY)

    # Section 4
    _para(doc, S4, bold=True, before=6, align=JUSTIFY)
    for _ in range(3):
        _para(doc, DOTS * 6 + "…" * 4, after=2)

    # Signature block
    _para(doc, "", after=6)
    sig = doc.add_table(rows=1, cols=2)
    _no_borders(sig)
    _widths(sig, [7, 9])
    l, r = sig.rows[0].cells
    _cell_text(l, "Nơi nhận:", 12, bold=True, italic=True, align=LEFT)
    _cell_text(l, f"- {RECIPIENT};", 11, align=LEFT)
    _cell_text(l, "- Lưu: VT.", 11, align=LEFT)
    _cell_text(r, SIGNER.upper(), 13, bold=True)
    _cell_text(r, SIGN_NOTE, 13, italic=True)
    _para(doc, "", after=48)
    _para(doc, FOOTNOTE, size=10, italic=True, align=JUSTIFY)
    doc.core_properties.title = f"Báo cáo tình hình quản lý, sử dụng thư điện tử năm {fig.year}"
    doc.core_properties.author = "monre-milter"
    doc.save(path)
