"""Two lines at the top: host totals, VM counts by state, the state dir, read-only and errors."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text

from tui.host.model import Inventory
from tui.host.sampling import HostSample, VMSample
from tui.widgets.format import DASH, clean, size
from tui.widgets.levels import level_classes, level_css, level_style
from tui.widgets.lines import LinesWidget
from tui.widgets.vm_state import counts_by_state

PREFIX = "host-header"
SLOW_POLL_MS = 500  # say so when a poll takes longer than this


@dataclass
class HeaderData:
    inventory: Inventory | None = None  # None: the first poll is not in yet
    host: HostSample | None = None
    samples: dict[str, VMSample] = field(default_factory=dict)
    crash_looping: list[str] = field(default_factory=list)
    hostname: str | None = None
    read_only_reason: str | None = None
    poll_ms: float | None = None
    error: str | None = None  # the last poll failed as a whole
    shown: int | None = None  # VMs the filter lets through (None: no filter)
    jobs_running: int = 0
    marked: int = 0  # VMs marked for a bulk action


class HostHeader(LinesWidget):
    DEFAULT_CSS = """
    HostHeader {
        height: 2;
        padding: 0 1;
        background: $panel;
        color: $foreground;
    }
    """ + level_css("HostHeader", PREFIX)
    COMPONENT_CLASSES = level_classes(PREFIX)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._data = HeaderData()
        self.text = Text()

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(
            self, lambda _theme: self.call_after_refresh(self._redraw)
        )
        self.show(self._data)

    def _redraw(self) -> None:
        self.text = Text()
        self.show(self._data)

    def _s(self, level: str | None) -> object:
        return level_style(self, PREFIX, level)

    def render_text(self, data: HeaderData) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        add = text.append
        add("microvm-tui", self._s("bold"))
        if data.hostname:
            add(f" @ {clean(data.hostname)}", self._s("bold"))
        host = data.host
        add("  CPU ")
        if host is None:
            add(DASH, self._s("muted"))
        else:
            # Whole percents: the line is repainted whenever its text changes.
            cpu = f"{host.cpu_pct:.0f}%" if host.cpu_pct is not None else "…"
            add(cpu, self._s("accent"))
            add(f" of {host.ncpu} CPU{'s' if host.ncpu != 1 else ''}")
            if host.load1 is not None:
                add(f"  load {host.load1:.2f}")
            add("  Mem ")
            used_pct = (
                100 * host.mem_used_bytes / host.mem_total_bytes if host.mem_total_bytes else 0
            )
            add(f"{size(host.mem_used_bytes)} / {size(host.mem_total_bytes)}", self._s("accent"))
            add(f" ({used_pct:.0f}% used)")
        if data.poll_ms is not None and data.poll_ms > SLOW_POLL_MS:
            add(f"  slow poll: {data.poll_ms / 1000:.1f} s", self._s("warn"))
        add("\n")

        inv = data.inventory
        if data.read_only_reason:
            # First on its line, so no terminal width cuts it off.
            add(f"read-only: {data.read_only_reason}", self._s("warn"))
            add("  ")
        if data.error:
            add(f"✖ {clean(data.error)}  ", self._s("error"))
        if inv is None:
            add("reading the host…", self._s("muted"))
        elif inv.error:
            add(f"✖ {clean(inv.error)}", self._s("error"))
        else:
            n = len(inv.vms) + inv.unread
            of = f"{data.shown} of " if data.shown is not None else ""
            add(f"{of}{n} VM{'s' if n != 1 else ''}", self._s("bold"))
            if inv.unread:  # a big host's first look: a screenful read, the counts are of it
                add(f" (reading {inv.unread} more state dirs…)", self._s("muted"))
            if data.marked:
                add(f"  ✓ {data.marked} marked", self._s("accent"))
            if data.jobs_running:
                add(f"  ⚙ {data.jobs_running} busy", self._s("accent"))
            for badge, count in counts_by_state(inv.vms, data.samples, data.crash_looping):
                add("  ")
                add(f"{badge.marker} {count} {badge.label}", self._s(badge.level))
            add(f"  · {clean(inv.state_dir)}", self._s("muted"))
            if inv.systemd_error:
                add(f"  · ✖ systemd: {clean(inv.systemd_error)}", self._s("error"))
            elif inv.systemd_note:
                add(f"  · {clean(inv.systemd_note)}", self._s("muted"))
        return text

    def show(self, data: HeaderData) -> None:
        self._data = data
        if not self.is_mounted:
            return
        text = self.render_text(data)
        if text != self.text:  # unchanged: no repaint, no bytes out
            self.text = text
            self.set_renderable(text)  # repaints the changed line only
