"""The base of the detail tabs: render blocks of rows, repaint only when they changed.

A tab builds a list of blocks from plain data (``KV``: label/value lines, ``Grid``: a table with
a header, ``Note``: a sentence) and calls ``show_blocks``; equal blocks to last time cost nothing.
Each tab says what is missing and why instead of leaving a blank.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Group, RenderableType
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from tui.host.checks.findings import Finding
from tui.host.logs.entry import LogLine
from tui.host.model import VM
from tui.host.sampling import Point, VMSample
from tui.widgets.format import DASH, clean
from tui.widgets.levels import level_classes, level_css, level_style
from tui.widgets.lines import LinesWidget
from tui.widgets.wrap import PathCell, wrap_at_breaks

PREFIX = "detail"
KV_LABEL_WIDTH = 17  # "Memory configured": label columns line up across blocks
Cell = str | Text | PathCell


@dataclass
class DetailData:
    """What the detail pane shows: one VM and what the last poll knew about it."""

    vm: VM | None = None
    sample: VMSample | None = None
    history: list[Point] = field(default_factory=list)
    crash_looping: bool = False
    last_error: LogLine | None = None  # a failed or crash-looping VM's last error line
    findings: tuple[Finding, ...] = ()  # the host checks' problems of this VM, with the fix
    interval: float = 1.0  # seconds between polls (for the history's time axis)


@dataclass(frozen=True)
class KV:
    rows: tuple[tuple[Cell, Cell], ...]
    title: str | None = None


@dataclass(frozen=True)
class Grid:
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    title: str | None = None
    empty: str = "none"


@dataclass(frozen=True)
class Note:
    text: Cell


Block = KV | Grid | Note


def _plain(cell: Text | PathCell) -> str:
    return cell.text.plain if isinstance(cell, PathCell) else cell.plain


class DetailView(LinesWidget):
    """One tab's content. Subclasses implement ``blocks(data)``."""

    DEFAULT_CSS = """
    DetailView {
        height: auto;
        padding: 0 1;
    }
    """ + level_css("DetailView", PREFIX)
    COMPONENT_CLASSES = level_classes(PREFIX)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._data = DetailData()
        self._last: list[Block] | None = None
        self._cache: list[tuple[Block, list[list[Segment]]]] = []
        self._cache_width = -1

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(
            self, lambda _theme: self.call_after_refresh(self._redraw)
        )
        self.show(self._data)

    # --- for subclasses --------------------------------------------------------------------

    def blocks(self, data: DetailData) -> list[Block]:  # pragma: no cover - abstract
        raise NotImplementedError

    def t(self, text: object, level: str | None = None) -> Text:
        """Cleaned TEXT in the style of LEVEL (ok/warn/error/muted/accent/bold)."""
        out = Text(clean(text))
        if level:  # as a span: Text equality (the repaint check) compares spans, not .style
            out.stylize(level_style(self, PREFIX, level))
        return out

    def missing(self, reason: str) -> Text:
        """A value that could not be read: a dash and why."""
        return self.t(f"{DASH} ({reason})", "muted")

    def yes_no(self, value: bool | None, yes: str, no: str, reason: str = "unknown") -> Text:
        if value is None:
            return self.missing(reason)
        return self.t(f"✔ {yes}", "ok") if value else self.t(f"✖ {no}", "error")

    # --- drawing ---------------------------------------------------------------------------

    def show(self, data: DetailData) -> None:
        self._data = data
        if not self.is_mounted:
            return
        if data.vm is None:
            blocks: list[Block] = [Note(self.t("No VM selected.", "muted"))]
        else:
            blocks = self.blocks(data)
        if blocks != self._last:
            self._last = blocks
            self.update_lines()  # repaints changed lines only

    def _redraw(self) -> None:
        self._last = None
        self._cache = []
        self.show(self._data)

    # Each block is rendered on its own and kept while it does not change: a poll usually
    # changes a few figures of one or two blocks, and the rest costs nothing.

    def _render(self, width: int) -> list[list[Segment]]:
        blocks = self._last or []
        cache = self._cache if self._cache_width == width else []
        lines: list[list[Segment]] = []
        new_cache: list[tuple[Block, list[list[Segment]]]] = []
        for i, block in enumerate(blocks):
            if i:
                lines.append([])
            if i < len(cache) and cache[i][0] == block:
                rendered = cache[i][1]
            else:
                rendered = self._render_block(block, width)
            new_cache.append((block, rendered))
            lines.extend(rendered)
        self._cache, self._cache_width = new_cache, width
        return lines

    def _render_block(self, block: Block, width: int) -> list[list[Segment]]:
        console = self.app.console
        options = console.options.update(width=max(width, 1), height=None, highlight=False)
        parts: list[RenderableType] = []
        title = getattr(block, "title", None)
        if title:
            parts.append(self.t(title, "bold"))
        if isinstance(block, Note):
            parts.append(block.text)
        elif isinstance(block, KV):
            parts.extend(self._kv_lines(block, width))
        elif not block.rows:
            parts.append(self.t(block.empty, "muted"))
        else:
            table = Table(
                box=None,
                padding=(0, 2, 0, 0),
                show_edge=False,
                show_header=any(block.header),
                header_style=level_style(self, PREFIX, "bold"),
            )
            for h in block.header:
                table.add_column(self.t(h), overflow="fold")
            for row in block.rows:
                # A str cell would be parsed as markup by rich: plain, sanitised Text instead.
                table.add_row(*(self.t(c) if isinstance(c, str) else c for c in row))
            parts.append(table)
        return console.render_lines(Group(*parts), options, pad=False)

    def _kv_lines(self, block: KV, width: int) -> list[Text]:
        """Label/value lines without a table's measuring: labels padded to one width, long
        values folded under the value column."""
        label_width = max(
            KV_LABEL_WIDTH,
            *(len(label if isinstance(label, str) else _plain(label)) for label, _ in block.rows),
        )
        muted = level_style(self, PREFIX, "muted")
        indent = label_width + 2
        out: list[Text] = []
        for label, value in block.rows:
            if isinstance(label, PathCell):
                label = label.text
            label_text = self.t(label) if isinstance(label, str) else label.copy()
            label_text.pad_right(indent - label_text.cell_len)
            label_text.stylize(muted)
            if isinstance(value, PathCell):
                value = value.text
            value_text = self.t(value) if isinstance(value, str) else value
            room = max(width - indent, 10)
            if value_text.cell_len <= room:
                out.append(Text.assemble(label_text, value_text))
                continue
            # Paths break after / @ - . or a space, not mid-word (wrap_at_breaks).
            for n, piece in enumerate(wrap_at_breaks(value_text, room)):
                head = label_text if n == 0 else Text(" " * indent)
                out.append(Text.assemble(head, piece))
        return out
