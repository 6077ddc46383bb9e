"""History tab: graphs of CPU % (of the VM's vCPUs) and host memory over the last minutes."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical

from tui.widgets.detail.base import DetailData
from tui.widgets.format import clean, duration, percent, size
from tui.widgets.history_graph import HistoryGraph
from tui.widgets.kept_styles import KeptStyles
from tui.widgets.levels import level_classes, level_css, level_style
from tui.widgets.text_line import TextLine

PREFIX = "detail-history"


def _mib_label(v: float) -> str:
    return f"{v / 2**20:.0f}M"


class HistoryView(KeptStyles, Vertical):
    DEFAULT_CSS = """
    HistoryView {
        height: auto;
        padding: 0 1;
    }
    HistoryView > TextLine {
        height: 1;
    }
    HistoryView > #mem-title {
        margin-top: 1;
    }
    """ + level_css("HistoryView", PREFIX)
    COMPONENT_CLASSES = level_classes(PREFIX)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._data = DetailData()

    def compose(self) -> ComposeResult:
        yield TextLine(id="cpu-title")
        yield HistoryGraph(id="cpu-graph", label_fn=lambda v: f"{v:.0f}%")
        yield TextLine(id="mem-title")
        yield HistoryGraph(id="mem-graph", label_fn=_mib_label)

    def on_mount(self) -> None:
        self.show(self._data)

    def _s(self, level: str) -> object:
        return level_style(self, PREFIX, level)

    def show(self, data: DetailData) -> None:
        self._data = data
        if not self.is_mounted:
            return
        cpu_title = self.query_one("#cpu-title", TextLine)
        mem_title = self.query_one("#mem-title", TextLine)
        cpu_graph = self.query_one("#cpu-graph", HistoryGraph)
        mem_graph = self.query_one("#mem-graph", HistoryGraph)
        points = data.history
        span = duration(points[-1].t - points[0].t) if len(points) > 1 else "0s"
        if data.vm is None:
            cpu_title.set_text(Text.assemble(("No VM selected.", self._s("muted"))))
            mem_title.set_text("")
            cpu_graph.set_data([], 100)
            mem_graph.set_data([], 1)
            return
        if not points:
            reason = "not running" if data.sample is None else "no samples yet"
            cpu_title.set_text(
                Text.assemble(
                    (f"No history for {clean(data.vm.name)}: {reason}.", self._s("muted"))
                )
            )
        cpu = [p.cpu_pct for p in points]
        known_cpu = [v for v in cpu if v is not None]
        title = Text(end="")
        title.append("CPU % of vCPUs", self._s("bold"))
        if points:
            title.append(f"  last {span}, one bar per poll", self._s("muted"))
        if known_cpu:
            title.append(
                f"  now {percent(cpu[-1])}  max {percent(max(known_cpu))}"
                f"  avg {percent(sum(known_cpu) / len(known_cpu))}"
            )
        gaps = len(cpu) - len(known_cpu)
        if gaps:
            title.append(f"  · {gaps} unread", self._s("muted"))
        if points:
            cpu_title.set_text(title)
        cpu_graph.set_data(cpu, 100.0)

        mem = [p.mem_bytes for p in points]
        known_mem = [v for v in mem if v is not None]
        cfg = (data.sample.mem_configured_mib if data.sample else None) or data.vm.mem_mib
        top = max([*known_mem, (cfg or 0) * 2**20, 1])
        mtitle = Text(end="")
        mtitle.append("Memory on the host", self._s("bold"))
        if known_mem:
            mtitle.append(f"  now {size(mem[-1])}  max {size(max(known_mem))}")
        if cfg:
            mtitle.append(f"  · configured {cfg} MiB", self._s("muted"))
        mem_title.set_text(mtitle)
        mem_graph.set_data([float(v) if v is not None else None for v in mem], float(top))
