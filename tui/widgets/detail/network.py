"""Network tab: each tap/macvtap the runner declares, as the host sees it, with rates."""

from __future__ import annotations

from rich.text import Text

from tui.widgets.detail.base import Block, DetailData, DetailView, Grid, Note
from tui.widgets.format import DASH, rate


class NetworkView(DetailView):
    def blocks(self, data: DetailData) -> list[Block]:
        vm, s = data.vm, data.sample
        assert vm is not None
        if not vm.interfaces:
            return [Note(self.t("No network interfaces: the runner declares none.", "muted"))]
        rows = []
        for iface in vm.interfaces:
            if iface.error:
                exists = self.missing(iface.error)
            elif iface.exists is False:
                exists = self.t("✖ missing (declared)", "error")
            else:
                exists = self.yes_no(iface.exists, "exists", "missing")
            if iface.oper_state is None:
                oper = self.t(DASH, "muted")
            else:
                oper = self.t(iface.oper_state, "ok" if iface.oper_state == "UP" else "warn")
            if s is None:
                rates: Text = self.t("— (VM not running)", "muted")
            elif iface.id in s.net:
                n = s.net[iface.id]
                rates = self.t(f"↓{rate(n.guest_rx_bps)} ↑{rate(n.guest_tx_bps)}")
            else:
                rates = self.missing(s.reasons.get(f"net:{iface.id}", "unknown"))
            rows.append(
                (
                    self.t(iface.id, "bold"),
                    self.t(iface.type),
                    exists,
                    oper,
                    self.t(iface.mac or DASH, None if iface.mac else "muted"),
                    self.t(iface.link or DASH, None if iface.link else "muted"),
                    rates,
                )
            )
        return [
            Grid(
                ("interface", "type", "on the host", "oper", "MAC", "link", "guest ↓rx ↑tx"),
                tuple(rows),
            )
        ]
