"""Render the appendix-2 form (Quy chế thư điện tử BTNMT, Phụ lục 2) as DOCX, Markdown or CSV.

Sections 1, 2 and 4 are what the office knows and fills in (left with dotted blanks and check boxes as in the form);
section 3 ("Tổng hợp các trường hợp sự cố") is filled from the milter's figures: incidents per category per month.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass

from .categories import CATEGORIES
from .figures import Figures

MINISTRY = "Bộ Tài nguyên và Môi trường"
SUBJECT = "V/v Báo cáo tình hình quản lý và sử dụng thư điện tử"
NATION = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập – Tự do – Hạnh phúc"
RECIPIENT = "Cục Công nghệ thông tin"  # art. 15: reports go to the IT department before 10 December
DOTS = "……………"
BOX = "☐"

S1 = "1. Thông tin chung về tình hình sử dụng thư điện tử"
S2 = "2. Tự đánh giá về tình hình sử dụng thư điện tử của đơn vị"
S3 = "3. Tổng hợp các trường hợp sự cố liên quan đến hệ thống thư điện tử"
S4 = ("4. Những đề xuất, kiến nghị của đơn vị để đảm bảo hoạt động của hệ thống thư điện tử và tăng cường sử dụng "
      "thư điện tử tại đơn vị, tại Bộ")
USAGE = ["Thường xuyên sử dụng", "Ít sử dụng", "Hiếm khi sử dụng", "Không sử dụng"]
EFFECT = ["Hiệu quả cao", "Có hiệu quả", "Không có hiệu quả"]
DOC_TYPES = [("Lịch làm việc", "Thư mời"), ("Tài liệu phục vụ cuộc họp", "Công văn"),
             ("Văn bản gửi để biết, để báo cáo", "Báo cáo"), ("Văn bản khác", "Thông tin chỉ đạo điều hành")]
SIGNER = "Tổ chức, đơn vị lập báo cáo"
SIGN_NOTE = "(Ký, ghi rõ họ tên, chức vụ và đóng dấu)"
FOOTNOTE = ("* Mục tiêu để tổng hợp báo cáo đánh giá về hiện trạng sử dụng và xác định nhu cầu sử dụng hệ thống thư "
            "điện tử của các đơn vị trực thuộc Bộ.")
COL_STT, COL_CAT, COL_YEAR, ROW_TOTAL = "STT", "Loại sự cố", "Cả năm", "Tổng cộng"


@dataclass
class ReportInfo:
    ministry: str
    unit_code: str | None
    unit_name: str | None  # None: the whole ministry

    @classmethod
    def from_pack(cls, policy: list[str] | None, unit: str | None) -> "ReportInfo":
        from ..cli import _default_policy  # noqa: PLC0415
        from ..pack import PackErrors, load_pack  # noqa: PLC0415

        try:
            pack = load_pack(policy or [_default_policy()])
        except PackErrors as exc:
            raise ValueError("invalid pack: " + "; ".join(exc.errors)) from None
        ministry = ((pack.data.get("organisation") or {}).get("name")) or MINISTRY
        if unit is None:
            return cls(ministry, None, None)
        if unit not in pack.units:
            raise LookupError(f"unknown unit {unit!r}; the pack's units: {', '.join(sorted(pack.units))}")
        return cls(ministry, unit, pack.units[unit] or unit)

    @property
    def scope(self) -> str:
        if self.unit_name:
            return f"{self.unit_name} (mã đơn vị trong bộ lọc: {self.unit_code})"
        return "toàn bộ hệ thống thư điện tử của Bộ (tất cả các đơn vị)"


def s3_intro(info: ReportInfo, fig: Figures) -> str:
    return (f"Số lượt sự cố do bộ lọc thư của hệ thống ghi nhận trong năm {fig.year} (từ ngày 01/01/{fig.year} đến "
            f"ngày 31/12/{fig.year}), phạm vi: {info.scope}. Nguồn số liệu: {fig.source}.")


def category_note() -> str:
    parts = [f"({i}) {', '.join(c.rules)}" for i, c in enumerate(CATEGORIES, 1)]
    return ("Ghi chú: mỗi lượt là một lần bộ lọc phát hiện vi phạm hoặc sự cố (thư bị từ chối, tạm hoãn, cách ly, "
            "gắn nhãn hoặc ghi nhận). Quy tắc của bộ lọc tương ứng: " + "; ".join(parts) + ".")


def table_rows(fig: Figures) -> list[list[str]]:
    """Body rows of the section-3 table: STT, category, 12 months, year; then the total row."""
    rows = []
    for i, c in enumerate(CATEGORIES, 1):
        v = fig.counts[c.code]
        rows.append([str(i), c.label] + [str(n) for n in v] + [str(sum(v))])
    rows.append(["", ROW_TOTAL] + [str(fig.month_total(m)) for m in range(12)] + [str(fig.grand_total())])
    return rows


def write(fmt: str, info: ReportInfo, fig: Figures, path: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    if fmt == "md":
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(markdown(info, fig))
    elif fmt == "csv":
        write_csv(fig, path)
    elif fmt == "docx":
        from .docx_form import write_docx  # noqa: PLC0415

        write_docx(info, fig, path)
    else:
        raise ValueError(f"unknown format {fmt!r}")


# -- CSV ---------------------------------------------------------------------------------------------------------------
def write_csv(fig: Figures, path: str) -> None:
    """One row per category (code, Vietnamese label, rules, months 1..12, year), then the total. UTF-8 with BOM so
    spreadsheet programs read the Vietnamese right."""
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["category", "label", "rules"] + [f"{m:02d}" for m in range(1, 13)] + ["total"])
        for c in CATEGORIES:
            v = fig.counts[c.code]
            w.writerow([c.code, c.label, " ".join(c.rules)] + v + [sum(v)])
        w.writerow(["total", ROW_TOTAL, ""] + [fig.month_total(m) for m in range(12)] + [fig.grand_total()])


# -- Markdown ------------------------------------------------------------------------------------------------------------
def markdown(info: ReportInfo, fig: Figures) -> str:
    unit_line = (info.unit_name or "ĐƠN VỊ BÁO CÁO").upper()
    L = [
        "| | |", "|:---:|:---:|",
        f"| {info.ministry.upper()} | **{NATION}** |",
        f"| **{unit_line}** | **{MOTTO}** |",
        f"| Số: {DOTS}/BC-{DOTS} | *{DOTS}, ngày {DOTS} tháng {DOTS} năm {fig.year}* |",
        f"| {SUBJECT} | |", "",
        f"**Kính gửi:** {RECIPIENT}", "",
        f"## {S1}", "",
        f"1.1. Tên đơn vị: {info.unit_name or DOTS}      Địa chỉ email: {DOTS}", "",
        f"1.2. Tổng số cán bộ, công chức, viên chức trực thuộc đơn vị: {DOTS}", "",
        f"1.3. Tổng số tài khoản thư điện tử đã được cấp và sử dụng trong công việc: {DOTS}", "",
        f"## {S2}", "",
        "2.1. Ước tính tỷ lệ cán bộ công chức, viên chức của đơn vị có sử dụng thư điện tử trong công việc hàng "
        "ngày: ….%", "",
        "2.2. Mức độ sử dụng:", "",
        *[f"- {BOX} {x}" for x in USAGE], "",
        *[f"- {BOX} {x}" for x in EFFECT], f"- {BOX} Ý kiến khác: {DOTS}", "",
        "2.3. Các loại văn bản được trao đổi qua thư điện tử của cán bộ trong đơn vị:", "",
        "| | |", "|---|---|", *[f"| {BOX} {a} | {BOX} {b} |" for a, b in DOC_TYPES], "",
        "Ước tính tỷ lệ văn bản của đơn vị được trao đổi qua hệ thống thư điện tử: ….%", "",
        f"## {S3}", "", s3_intro(info, fig), "",
        "| " + " | ".join([COL_STT, COL_CAT] + [f"T{m}" for m in range(1, 13)] + [COL_YEAR]) + " |",
        "|" + "|".join(["---:", "---"] + ["---:"] * 13) + "|",
    ]
    for r in table_rows(fig):
        if r[1] == ROW_TOTAL:
            r = [r[0], f"**{r[1]}**"] + [f"**{x}**" for x in r[2:]]
        L.append("| " + " | ".join(r) + " |")
    L += ["", f"*{category_note()}*", ""]
    L += [f"*{n}*\n" for n in fig.notes]
    L += [f"## {S4}", "", DOTS * 6, "", DOTS * 6, "",
          "| | |", "|:---|:---:|",
          f"| **Nơi nhận:** | **{SIGNER}** |", f"| - {RECIPIENT}; | *{SIGN_NOTE}* |", "| - Lưu: VT. | |", "",
          f"<sub>{FOOTNOTE}</sub>", ""]
    return "\n".join(L)
