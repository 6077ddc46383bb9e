"""One line at the top: host, state dir, VM counts, read-only reason, last error."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.host.model import Inventory


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        padding: 0 1;
        background: $panel;
    }
    """

    def show(self, inv: Inventory | None, read_only_reason: str | None) -> None:
        text = Text()
        if inv is None:
            text.append("reading…", style="dim")
        elif inv.error:
            text.append(f"✖ {inv.error}", style="bold red")
        else:
            counts: dict[str, int] = {}
            for vm in inv.vms:
                state = vm.unit.active if vm.unit and vm.unit.active else "unknown"
                counts[state] = counts.get(state, 0) + 1
            text.append(f"{len(inv.vms)} VMs", style="bold")
            for state in ("active", "activating", "failed", "inactive", "unknown"):
                if counts.get(state):
                    text.append(f"  {state} {counts[state]}")
            text.append(f"  ·  {inv.state_dir}", style="dim")
            if inv.systemd_error:
                text.append(f"  ·  ✖ {inv.systemd_error}", style="red")
        if read_only_reason:
            text.append(f"  ·  read-only: {read_only_reason}", style="yellow")
        self.update(text)
