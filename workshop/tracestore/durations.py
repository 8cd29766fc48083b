"""Durations as Jaeger's API and UI write them (Go's time.ParseDuration): `300ms`, `1.2s`, `1h30m`, `250us`."""

from __future__ import annotations

import re
from decimal import Decimal

_UNITS_US = {
    "ns": Decimal("0.001"),
    "us": Decimal(1),
    "µs": Decimal(1),
    "μs": Decimal(1),
    "ms": Decimal(1_000),
    "s": Decimal(1_000_000),
    "m": Decimal(60_000_000),
    "h": Decimal(3_600_000_000),
}
_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
MAX_DURATION_US = (2**63 - 1) // 1_000  # Go's longest duration (int64 nanoseconds), about 292 years
_SHAPE = "write it like 300ms, 1.2s, 2m or 1h30m"


def parse_duration_us(text: str) -> int:
    """Microseconds in `text`; ValueError with a readable message if it is not a duration or is too long."""
    value = text.strip()
    sign = -1 if value.startswith("-") else 1
    value = value.lstrip("+-")
    if value == "0":
        return 0
    position, total = 0, Decimal(0)
    while position < len(value):
        match = _PART.match(value, position)
        if not match:
            raise ValueError(f"not a duration: {quoted(text)} ({_SHAPE})")
        total += Decimal(match.group(1)) * _UNITS_US[match.group(2)]
        if total > MAX_DURATION_US:
            raise ValueError(f"duration out of range: {quoted(text)} (at most {MAX_DURATION_US // 3_600_000_000}h)")
        position = match.end()
    if position == 0:
        raise ValueError(f"not a duration: {quoted(text)} ({_SHAPE})")
    return sign * round(total)


def quoted(text: str, limit: int = 40) -> str:
    """`text` quoted for a message, cut short if long."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def roughly_us(us: float) -> str:
    """A duration in words, rounded: 850 µs, 3 ms, 1.2 s (for a sentence, not a column)."""
    if us < 1_000:
        return f"{us:.0f} µs"
    if us < 1_000_000:
        return f"{us / 1_000:.0f} ms"
    return f"{us / 1_000_000:.2g} s"


def format_duration_us(us: float) -> str:
    """A short human form: 850µs, 12.3ms, 2.05s."""
    if us < 1_000:
        return f"{us:.0f}µs"
    if us < 1_000_000:
        return f"{us / 1_000:.3g}ms" if us < 100_000 else f"{us / 1_000:.0f}ms"
    return f"{us / 1_000_000:.3g}s"
