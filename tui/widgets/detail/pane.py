"""The detail pane below the table: the selected VM's name and six tabs.

Only the tab on screen is redrawn each poll; the others take the data and draw when shown.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import TabbedContent, TabPane, Tabs

from tui.widgets.detail.base import DetailData, DetailView
from tui.widgets.detail.history import HistoryView
from tui.widgets.detail.network import NetworkView
from tui.widgets.detail.overview import OverviewView
from tui.widgets.detail.shares import SharesView
from tui.widgets.detail.storage import StorageView
from tui.widgets.detail.units import UnitsView
from tui.widgets.format import clean
from tui.widgets.kept_styles import KeptStyles
from tui.widgets.levels import level_classes, level_css, level_style
from tui.widgets.text_line import TextLine
from tui.widgets.vm_state import vm_state

PREFIX = "detail-pane"

TABS = (
    ("overview", "Overview", OverviewView),
    ("network", "Network", NetworkView),
    ("storage", "Storage", StorageView),
    ("shares", "Shares", SharesView),
    ("units", "Units", UnitsView),
    ("history", "History", HistoryView),
)
TAB_IDS = tuple(t[0] for t in TABS)


class DetailPane(KeptStyles, Vertical):
    DEFAULT_CSS = """
    DetailPane {
        height: 1fr;
        border-top: solid $primary;
    }
    DetailPane > #detail-title {
        height: 1;
        padding: 0 1;
        background: $boost;
    }
    DetailPane TabbedContent {
        height: 1fr;
    }
    DetailPane TabPane {
        padding: 0;
        overflow-y: auto;
        height: 1fr;
    }
    """ + level_css("DetailPane", PREFIX)
    COMPONENT_CLASSES = level_classes(PREFIX)
    BINDINGS = [
        # Enter on a row focuses the detail; Enter again opens the VM's console (as in k9s).
        Binding("enter", "app.console", "Console", id="detail_console", show=False),
        Binding("escape", "back", "Back to the table", id="detail_back", show=False),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.data = DetailData()

    def focus_tabs(self) -> None:
        self.query_one(Tabs).focus()

    def action_back(self) -> None:
        self.screen.query_one("#vms").focus()

    def compose(self) -> ComposeResult:
        yield TextLine(id="detail-title")
        with TabbedContent(id="detail-tabs"):
            for tab_id, title, view in TABS:
                with TabPane(title, id=f"tab-{tab_id}"):
                    yield view(id=f"view-{tab_id}")

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(
            self, lambda _theme: self.call_after_refresh(self.show, self.data)
        )
        self.show(self.data)

    @property
    def active_tab(self) -> str:
        active = self.query_one(TabbedContent).active or "tab-overview"
        return active.removeprefix("tab-")

    def show_tab(self, tab_id: str) -> None:
        self.query_one(TabbedContent).active = f"tab-{tab_id}"

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._draw_active()

    def show(self, data: DetailData) -> None:
        self.data = data
        if not self.is_mounted:
            return
        if data.vm is None:
            text = Text.assemble(("No VM selected", level_style(self, PREFIX, "muted")))
        else:
            badge = vm_state(data.vm, data.sample, data.crash_looping)
            text = Text(end="")
            text.append(clean(data.vm.name), level_style(self, PREFIX, "bold"))
            text.append("  ")
            text.append(badge.text, level_style(self, PREFIX, badge.level))
            if data.vm.problems:
                n = len(data.vm.problems)
                text.append(f"  ⚠ {n} problem{'s' * (n != 1)}", level_style(self, PREFIX, "error"))
        self.query_one("#detail-title", TextLine).set_text(text)
        self._draw_active()

    def _draw_active(self) -> None:
        view = self.query_one(f"#view-{self.active_tab}")
        if isinstance(view, DetailView | HistoryView):
            view.show(self.data)
