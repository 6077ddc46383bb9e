"""The command palette: every bound action, plus sorting by each column and each detail tab.

Built from the bindings themselves (``tui.bindings.collect``; the app's come from the action
registry), so a new binding shows up here without being listed twice. An action on a VM names
it ("Restart web"); one that is off (read-only) says why when chosen instead of doing nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode

from tui.actions.registry import ActionId, spec_of
from tui.bindings import collect
from tui.widgets.detail.pane import TABS
from tui.widgets.format import clean
from tui.widgets.outside import outside_markup
from tui.widgets.vm_rows import COLUMNS


@dataclass(frozen=True)
class Command:
    title: str
    help: str
    action: str
    node: DOMNode | None


class MonitorCommands(Provider):
    def commands(self) -> list[Command]:
        app = self.app
        out: list[Command] = []
        titles: set[str] = set()
        for b in collect(app):
            if b.id == ActionId.COMMAND_PALETTE or b.node is None:
                continue
            title = self._title(b.id, b.description)
            if title in titles:
                title = f"{b.description} ({b.section})"
            titles.add(title)
            out.append(Command(title, f"{b.section} · key {', '.join(b.keys)}", b.action, b.node))
        main = app.screen_stack[0] if app.screen_stack else app.screen
        for col in COLUMNS:
            out.append(
                Command(f"Sort by {col.label}", "order the VM table", f"sort_by('{col.key}')", main)
            )
        hosts = getattr(app, "fleet_hosts", list)()
        for host in ["", *hosts] if hosts else []:  # the fleet view's host switcher
            title = f"Host: {clean(host)}" if host else "Host: all hosts"
            action = f"show_host({host!r})"
            out.append(Command(title, "the fleet view: one host's VMs", action, app))
        for tab_id, title, _view in TABS:
            out.append(
                Command(f"Show the {title} tab", "detail pane", f"show_tab('{tab_id}')", main)
            )
        return out

    def _title(self, binding_id: str | None, description: str) -> str:
        """ "Restart web" for an action on the selected VM, else the binding's description."""
        spec = spec_of(binding_id or "")
        if spec is None or not spec.needs_vm:
            return description
        vm = getattr(self.app, "selected_vm", lambda: None)()
        label = spec.label
        return f"{label} {clean(vm.name)}" if vm is not None else f"{label} (no VM selected)"

    def _runner(self, command: Command) -> Callable[[], object]:
        return partial(self._run, command)

    async def _run(self, command: Command) -> None:
        from textual.actions import parse

        node = command.node
        assert node is not None
        _target, name, params = parse(command.action)
        if not node.check_action(name, params):
            explain = getattr(node, "explain_disabled", None)
            if explain is not None:
                explain(name, params)
            return
        await self.app.run_action(command.action, node)

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
