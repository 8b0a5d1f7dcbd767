"""Sizes with explicit units, as packs write them."""
from __future__ import annotations

import re

from .base import PackError

SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|bytes?|kB|KB|KiB|MB|MiB|GB|GiB)\s*$")
SIZE_UNITS = {"b": 1, "byte": 1, "bytes": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2,
              "gb": 1000**3, "gib": 1024**3}


def parse_size(value, path: tuple = ()) -> int:
    """'15 MB' -> 15_000_000; '15 MiB' -> 15_728_640; '1024 B' -> 1024. A bare number is refused: say the unit."""
    m = SIZE_RE.match(str(value)) if isinstance(value, str) else None
    if not m:
        raise PackError(f'expected a size like "15 MB", got {value!r}', path,
                        'write the unit: B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024)')
    return int(float(m.group(1)) * SIZE_UNITS[m.group(2).lower()])


def format_size(n: int, like: str = "MB") -> str:
    """Format n bytes in the unit family the pack used for the limit (MB or MiB)."""
    unit = "MiB" if "i" in like else "MB"
    scale = SIZE_UNITS[unit.lower()]
    v = n / scale
    return f"{v:.1f} {unit}".replace(".0 ", " ")
