"""Cost of content extraction (art. 10.1, 11.5): a message with a ~5 MB DOCX, one with a ~5 MB PDF, and the peak
RSS while scanning a zip bomb. Run: .venv/bin/python bench/bench_content.py

Each case runs in a child process so its peak RSS (ru_maxrss) is its own."""
from __future__ import annotations

import io
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "milter"))

from samples import documents as D  # noqa: E402


def _big_docx(target: int) -> bytes:
    """Paragraphs of regulation text plus incompressible images until the file is about `target` bytes."""
    import docx
    reg = D.regulation_paragraphs()
    d = docx.Document()
    d.sections[0].header.paragraphs[0].text = "BỘ TÀI NGUYÊN VÀ MÔI TRƯỜNG"
    for _ in range(40):
        for p in reg:
            d.add_paragraph(p)
    out = io.BytesIO()
    d.save(out)
    pad = target - len(out.getvalue())
    if pad > 0:  # an embedded blob (word/embeddings) of random bytes: realistic size, little text
        import zipfile
        buf = io.BytesIO(out.getvalue())
        with zipfile.ZipFile(buf, "a") as z:
            z.writestr("word/media/image1.bin", os.urandom(pad))
        return buf.getvalue()
    return out.getvalue()


def _big_pdf(target: int) -> bytes:
    reg = D.regulation_paragraphs()
    lines: list[str] = []
    data = b""
    while len(data) < target:
        lines += reg * 20
        data = D.pdf(lines)
    return data


def _case(name: str, raw: bytes, q) -> None:
    from monre_milter.pack.loader import load_pack
    pack = load_pack([str(D.POLICY)])
    D.run(pack, D.message(body="warm-up"))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    verdict, facts = D.run(pack, raw)
    took = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    chars = sum(len(x.text) for x in facts.texts)
    q.put((name, len(raw), took, base / 1024, peak / 1024, verdict.action, chars, facts.uninspectable[:1]))


def main() -> None:
    cases = []
    docx_bytes = _big_docx(5_000_000)
    cases.append((f"DOCX {len(docx_bytes) / 1e6:.1f} MB",
                  D.message(attachments=[("quy-che.docx", docx_bytes, D.DOCX)])))
    pdf_bytes = _big_pdf(5_000_000)
    cases.append((f"PDF {len(pdf_bytes) / 1e6:.1f} MB",
                  D.message(attachments=[("quy-che.pdf", pdf_bytes, "application/pdf")])))
    bomb = D.zip_bomb(levels=2, size=1_000_000_000)
    cases.append((f"zip bomb (1 GB of zeros in {len(bomb) / 1e3:.0f} KB, 2 levels)",
                  D.message(attachments=[("bomb.zip", bomb, "application/zip")])))
    small = D.zip_bomb(levels=1, size=20_000_000)
    cases.append(("zip bomb (20 MB member, ratio ~1000)", D.message(attachments=[("b.zip", small,
                                                                                   "application/zip")])))
    print(f"{'case':48} {'message':>9} {'time':>8} {'RSS base':>9} {'RSS peak':>9}  verdict")
    ctx = mp.get_context("fork")
    for name, raw in cases:
        q = ctx.Queue()
        p = ctx.Process(target=_case, args=(name, raw, q))
        p.start()
        res = q.get(timeout=300)
        p.join()
        n, size, took, base, peak, action, chars, unread = res
        print(f"{n:48} {size / 1e6:7.2f}MB {took * 1000:6.0f}ms {base:7.0f}MB {peak:7.0f}MB  {action}"
              f" ({chars} chars of text{'; ' + unread[0][1] if unread else ''})")


if __name__ == "__main__":
    main()
