"""Durations as Jaeger's API and UI write them (Go's time.ParseDuration): `300ms`, `1.2s`, `1h30m`, `250us`."""

from __future__ import annotations

import re

_UNITS_US = {"ns": 0.001, "us": 1, "µs": 1, "μs": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration_us(text: str) -> int:
    """Microseconds in `text`; ValueError with a readable message if it is not a duration."""
    value = text.strip()
    sign = -1 if value.startswith("-") else 1
    value = value.lstrip("+-")
    if value == "0":
        return 0
    position, total = 0, 0.0
    while position < len(value):
        match = _PART.match(value, position)
        if not match:
            raise ValueError(f"not a duration: {text!r} (write it like 300ms, 1.2s, 2m or 1h30m)")
        total += float(match.group(1)) * _UNITS_US[match.group(2)]
        position = match.end()
    if position == 0:
        raise ValueError(f"not a duration: {text!r} (write it like 300ms, 1.2s, 2m or 1h30m)")
    return sign * round(total)


def format_duration_us(us: float) -> str:
    """A short human form: 850µs, 12.3ms, 2.05s."""
    if us < 1_000:
        return f"{us:.0f}µs"
    if us < 1_000_000:
        return f"{us / 1_000:.3g}ms" if us < 100_000 else f"{us / 1_000:.0f}ms"
    return f"{us / 1_000_000:.3g}s"
