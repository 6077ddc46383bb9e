"""Small text helpers shared by the monitor's widgets: units, durations, sparklines, reasons."""

from __future__ import annotations

from collections.abc import Sequence

from tui.host.text import sanitise

BLOCKS = "▁▂▃▄▅▆▇█"
DASH = "—"


# Names and paths come from the disk: the one sanitiser, under the name the widgets use.
clean = sanitise


def size(n: float | None, unit: str = "B") -> str:
    """1536 -> '1.5 KiB' (binary units)."""
    if n is None:
        return DASH
    value = float(n)
    for prefix in ("", "Ki", "Mi", "Gi", "Ti"):
        if abs(value) < 1024 or prefix == "Ti":
            if prefix == "":
                return f"{value:.0f} {unit}"
            return (
                f"{value:.1f} {prefix}{unit}" if abs(value) < 100 else f"{value:.0f} {prefix}{unit}"
            )
        value /= 1024
    return f"{value:.0f} Ti{unit}"  # pragma: no cover


def rate(bps: float | None) -> str:
    """Bytes per second, short, with its unit: '0B/s', '512B/s', '1.2KiB/s', '34KiB/s',
    '1.1MiB/s' (binary prefixes, as ``size``)."""
    if bps is None:
        return DASH
    value = float(bps)
    if value < 0.5:
        return "0B/s"
    for prefix in ("", "Ki", "Mi", "Gi"):
        if value < 1000 or prefix == "Gi":
            if prefix == "":
                return f"{value:.0f}B/s"
            number = f"{value:.1f}" if value < 10 else f"{value:.0f}"
            return f"{number}{prefix}B/s"
        value /= 1024
    return f"{value:.0f}GiB/s"  # pragma: no cover


def duration(seconds: float | None) -> str:
    """Two units at most, the smaller one dropped past an hour so the text changes rarely."""
    if seconds is None:
        return DASH
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {s:02d}s"
    return f"{s}s"


def percent(value: float | None) -> str:
    if value is None:
        return DASH
    return f"{value:.1f}%" if value < 99.95 else f"{value:.0f}%"


def sparkline(values: Sequence[float | None], width: int, top: float = 100.0) -> str:
    """The last WIDTH values as block characters on a fixed 0..TOP scale; gaps are spaces,
    missing history (a young VM) is padded on the left with spaces."""
    values = list(values)[-width:]
    out = []
    for v in values:
        if v is None:
            out.append(" ")
            continue
        frac = max(0.0, min(1.0, v / top)) if top > 0 else 0.0
        out.append(BLOCKS[min(len(BLOCKS) - 1, int(frac * (len(BLOCKS) - 1) + 0.5))])
    return " " * (width - len(out)) + "".join(out)


def why(reasons: dict[str, str], *keys: str) -> str:
    """The first reason found under KEYS, or a plain 'unknown'."""
    for key in keys:
        if key in reasons:
            return clean(reasons[key])
    return "unknown"


def missing(reason: str) -> str:
    """What a cell says when a value is missing: a dash and why."""
    return f"{DASH} ({reason})"
