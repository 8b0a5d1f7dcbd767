"""Section-3 figures of the appendix-2 report: incidents per category per month of a year, from the incident journal
or from a Prometheus server.

Months are calendar months in the ministry's time zone (Asia/Ho_Chi_Minh by default). A journal row counts once per
finding (a message refused for two recipients counts twice: two attempts).
"""
from __future__ import annotations

import json
import math
import re
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from .categories import CATEGORIES, category_of

TZ = "Asia/Ho_Chi_Minh"


@dataclass
class Figures:
    year: int
    unit: str | None  # None: the whole ministry
    counts: dict[str, list[int]]  # category code -> 12 monthly counts
    source: str  # one line, Vietnamese, for the report
    notes: list[str] = field(default_factory=list)  # caveats (retention, months not over yet)

    def total(self, code: str) -> int:
        return sum(self.counts[code])

    def month_total(self, m: int) -> int:
        return sum(v[m] for v in self.counts.values())

    def grand_total(self) -> int:
        return sum(sum(v) for v in self.counts.values())


def month_bounds(year: int, tz: str = TZ) -> list[tuple[float, float]]:
    z = ZoneInfo(tz)
    edges = [datetime(year, m, 1, tzinfo=z).timestamp() for m in range(1, 13)]
    edges.append(datetime(year + 1, 1, 1, tzinfo=z).timestamp())
    return list(zip(edges[:-1], edges[1:]))


def empty_counts() -> dict[str, list[int]]:
    return {c.code: [0] * 12 for c in CATEGORIES}


def _partial_year_note(year: int, tz: str, now: float) -> list[str]:
    bounds = month_bounds(year, tz)
    if bounds[0][0] <= now < bounds[-1][1]:
        d = datetime.fromtimestamp(now, ZoneInfo(tz))
        return [f"Số liệu tính đến ngày {d:%d/%m/%Y}; các tháng sau đó chưa có số liệu."]
    return []


# -- journal -----------------------------------------------------------------------------------------------------------
def from_journal(path: str, year: int, unit: str | None = None, tz: str = TZ, now: float | None = None) -> Figures:
    from ..journal import connect  # noqa: PLC0415

    now = time.time() if now is None else now
    counts = empty_counts()
    bounds = month_bounds(year, tz)
    db = connect(path, readonly=True)
    try:
        sql = ("SELECT rule, result, count(*) FROM incidents WHERE ts >= ? AND ts < ?"
               + (" AND unit = ?" if unit else "") + " GROUP BY rule, result")
        for m, (start, end) in enumerate(bounds):
            args = (start, end, unit) if unit else (start, end)
            for rule, result, n in db.execute(sql, args):
                cat = category_of(rule, result)
                if cat:
                    counts[cat][m] += n
        oldest = db.execute("SELECT min(ts) FROM incidents").fetchone()[0]
    finally:
        db.close()
    notes = _partial_year_note(year, tz, now)
    if oldest is not None and bounds[0][0] + 86400 < oldest < bounds[-1][1]:
        d = datetime.fromtimestamp(oldest, ZoneInfo(tz))
        notes.append(f"Nhật ký sự cố bắt đầu từ ngày {d:%d/%m/%Y}; không có số liệu trước ngày này "
                     "(bộ lọc chưa chạy hoặc dữ liệu đã hết thời hạn lưu giữ).")
    return Figures(year, unit, counts, "nhật ký sự cố của bộ lọc thư (monre-milter)", notes)


# -- Prometheus ---------------------------------------------------------------------------------------------------------
class PrometheusError(RuntimeError):
    pass


def _api(base: str, path: str, params: dict | None = None, timeout: float = 30) -> dict:
    url = base.rstrip("/") + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = json.load(resp)
    except OSError as exc:
        raise PrometheusError(f"{url}: {exc}") from None
    if body.get("status") != "success":
        raise PrometheusError(f"{url}: {body.get('error', body)}")
    return body["data"]


def parse_duration(text: str) -> float | None:
    """Prometheus duration ("15d", "1y", "2w3d", "720h") in seconds; None for an empty or unknown one."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text or "")
    if not parts:
        return None
    return float(sum(int(n) * units[u] for n, u in parts))


def retention_of(base: str) -> tuple[float | None, str]:
    """(time retention in seconds or None, the server's text) from /api/v1/status/runtimeinfo."""
    info = _api(base, "/api/v1/status/runtimeinfo")
    text = str(info.get("storageRetention", ""))
    time_part = text.split(" or ")[0] if text else ""
    return parse_duration(time_part), text


def oldest_sample(base: str, start: float, end: float, selector: str) -> float | None:
    """Time of the first day of [start, end) with a sample of `selector` (a range query with a one-day step)."""
    end = min(end, time.time())
    if end <= start:
        return None
    data = _api(base, "/api/v1/query_range", {"query": f"count(last_over_time({selector}[1d]))",
                                               "start": f"{start + 86400:.0f}", "end": f"{end:.0f}",
                                               "step": "86400"})
    firsts = [float(s["values"][0][0]) - 86400 for s in data.get("result", []) if s.get("values")]
    return min(firsts) if firsts else None


def from_prometheus(base: str, year: int, unit: str | None = None, tz: str = TZ, now: float | None = None) -> Figures:
    now = time.time() if now is None else now
    counts = empty_counts()
    bounds = month_bounds(year, tz)
    sel = f'monre_milter_incidents_total{{unit="{unit}"}}' if unit else "monre_milter_incidents_total"
    # The current month ends at the newest sample, not at "now" between two scrapes: increase() would extrapolate
    # the last scrape interval and overcount a month that has just begun.
    latest = _api(base, "/api/v1/query", {"query": f"max(timestamp({sel}))", "time": f"{now:.3f}"})["result"]
    last_sample = float(latest[0]["value"][1]) if latest else now
    for m, (start, end) in enumerate(bounds):
        if start >= now:
            break
        at = min(end, now, last_sample) if end > now else end
        if at <= start:
            continue
        window = max(1, int(round(at - start)))
        data = _api(base, "/api/v1/query", {"query": f"sum by (category) (increase({sel}[{window}s]))",
                                            "time": f"{at:.3f}"})
        for s in data.get("result", []):
            code = s["metric"].get("category")
            value = float(s["value"][1])
            if code in counts and not math.isnan(value):
                counts[code][m] = int(round(value))
    notes = _partial_year_note(year, tz, now)
    retention, text = retention_of(base)
    year_start = bounds[0][0]
    covered_from = now - retention if retention else None
    oldest = oldest_sample(base, year_start, bounds[-1][1], "monre_milter_incidents_total")
    problems = []
    if covered_from is not None and covered_from > year_start:
        d = datetime.fromtimestamp(covered_from, ZoneInfo(tz))
        problems.append(f"thời hạn lưu giữ dữ liệu của máy chủ Prometheus là {text}, chỉ bao gồm số liệu từ ngày "
                        f"{d:%d/%m/%Y}")
    if oldest is None:
        problems.append("máy chủ Prometheus không có mẫu số liệu nào của bộ lọc trong năm")
    elif oldest > year_start + 86400:
        d = datetime.fromtimestamp(oldest, ZoneInfo(tz))
        problems.append(f"mẫu số liệu cũ nhất của bộ lọc trên máy chủ Prometheus là ngày {d:%d/%m/%Y}")
    if problems:
        notes.append("Lưu ý: số liệu không bao quát cả năm " + str(year) + ": " + "; ".join(problems)
                     + ". Nên lập báo cáo từ nhật ký sự cố (--journal).")
    notes.append("Số liệu từ Prometheus được tính bằng increase() và làm tròn; có thể chênh lệch nhỏ so với "
                 "nhật ký sự cố.")
    return Figures(year, unit, counts, f"máy chủ Prometheus {base}", notes)
