"""Section 3 of the appendix-2 report: which findings count as which incident category.

Shared by the incident journal's report and by the metrics (`monre_milter_incidents_total{category,...}`), so the
report reads the same figures from either source. A category is a set of rule ids, optionally narrowed to some of
the rule's `result` words (a DNS blocklist timeout is not a spam incident; an S/MIME "pass" is not a failure).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    code: str  # label value in metrics, column in CSV
    label: str  # Vietnamese row heading of the report
    rules: tuple[str, ...]  # rule ids (or "milter-error")
    results: dict | None = None  # rule id -> the result words that count; a rule not listed: every result


MILTER_ERROR = "milter-error"  # the journal's rule id for internal errors (answered with a tempfail)

# S/MIME finding results that are signature failures: "fail" (bad signature) and "policy" (valid signature the
# policy does not accept: untrusted, expired, wrong signer, weak digest), "permerror" (unverifiable structure).
SIGNATURE_FAILURES = frozenset({"fail", "policy", "permerror", "untrusted", "expired", "mismatch", "invalid", "weak"})

CATEGORIES: tuple[Category, ...] = (
    Category("classified", "Gửi, nhận thư có đánh dấu mật (thông tin thuộc bí mật nhà nước)", ("classified",),
             {"classified": frozenset({"marking", "label"})}),  # not "uninspectable" (encrypted, unreadable)
    Category("freemail", "Sử dụng thư điện tử miễn phí (ngoài hệ thống của Bộ) trong công việc", ("freemail",)),
    Category("attachment-size", "Thư, tệp đính kèm vượt quá dung lượng cho phép", ("attachment-size",)),
    Category("signature", "Chữ ký số trên thư không hợp lệ hoặc không được tin cậy", ("smime",), {"smime": SIGNATURE_FAILURES}),
    Category("spam", "Thư rác, máy chủ gửi nằm trong danh sách chặn", ("dnsbl", "spam-header"),
             {"dnsbl": frozenset({"listed"})}),  # DNS timeouts / resolver errors are not spam
    Category("dangerous-file", "Tệp đính kèm nguy hiểm (tệp thực thi, mã độc)", ("banned-type",)),
    Category("compromised-account", "Tài khoản nghi bị chiếm quyền (gửi thư bất thường)", ("rate-limit",),
             {"rate-limit": frozenset({"over-limit"})}),  # one incident per burst, not each later refusal
    Category("milter-error", "Lỗi của bộ lọc thư (thư bị tạm hoãn do lỗi nội bộ)", (MILTER_ERROR,)),
)
BY_CODE = {c.code: c for c in CATEGORIES}
_BY_RULE: dict[str, list[Category]] = {}
for _c in CATEGORIES:
    for _r in _c.rules:
        _BY_RULE.setdefault(_r, []).append(_c)


def category_of(rule: str, result: str | None) -> str | None:
    """The category code a finding counts in, or None when it is not a section-3 incident."""
    for c in _BY_RULE.get(rule, ()):
        if c.results is None or rule not in c.results or (result or "") in c.results[rule]:
            return c.code
    return None
