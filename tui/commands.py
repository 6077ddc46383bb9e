"""The command palette: every bound action, plus sorting by each column and each detail tab.

Built from the bindings themselves (``tui.bindings.collect``), so a new binding shows up here
without being listed twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode

from tui.bindings import collect
from tui.widgets.detail_pane import TABS
from tui.widgets.outside import outside_markup
from tui.widgets.vm_table import COLUMNS


@dataclass(frozen=True)
class Command:
    title: str
    help: str
    action: str
    node: DOMNode


class MonitorCommands(Provider):
    def commands(self) -> list[Command]:
        app = self.app
        out: list[Command] = []
        titles: set[str] = set()
        for b in collect(app):
            if b.action in ("command_palette",):
                continue
            title = b.description
            if title in titles:
                title = f"{b.description} ({b.section})"
            titles.add(title)
            out.append(Command(title, f"{b.section} · key {', '.join(b.keys)}", b.action, b.node))
        main = app.screen_stack[0] if app.screen_stack else app.screen
        for col in COLUMNS:
            out.append(
                Command(f"Sort by {col.label}", "order the VM table", f"sort_by('{col.key}')", main)
            )
        for tab_id, title, _view in TABS:
            out.append(
                Command(f"Show the {title} tab", "detail pane", f"show_tab('{tab_id}')", main)
            )
        return out

    def _runner(self, command: Command) -> Callable[[], object]:
        return partial(self.app.run_action, command.action, command.node)

    async def discover(self) -> Hits:
        for c in self.commands():
            yield DiscoveryHit(c.title, self._runner(c), help=outside_markup(c.help))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for c in self.commands():
            score = matcher.match(c.title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(c.title),
                    self._runner(c),
                    text=c.title,
                    help=outside_markup(c.help),
                )
