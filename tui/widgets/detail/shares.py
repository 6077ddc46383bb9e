"""Shares tab: 9p/virtiofs shares, their sources (exists, free space), virtiofs sockets and
whether a virtiofsd serves them."""

from __future__ import annotations

from tui.widgets.detail.base import Block, DetailData, DetailView, Grid, Note
from tui.widgets.format import DASH, size


class SharesView(DetailView):
    def blocks(self, data: DetailData) -> list[Block]:
        vm, s = data.vm, data.sample
        assert vm is not None
        if not vm.shares:
            return [Note(self.t("No shares: the runner declares none.", "muted"))]
        rows = []
        for sh in vm.shares:
            source = self.t(sh.source or DASH, None if sh.source else "muted")
            exists = self.yes_no(sh.source_exists, "exists", "missing", "not checked")
            key = f"share_free_bytes:{sh.tag}"
            if s is None:
                free = self.missing("VM not running")
            elif sh.tag in s.share_free_bytes:
                total = s.share_total_bytes.get(sh.tag)
                free = self.t(f"{size(s.share_free_bytes[sh.tag])} of {size(total)}")
            else:
                free = self.missing(s.reasons.get(key, "not checked"))
            if sh.proto != "virtiofs":
                sock = self.t("n/a (9p: served by the hypervisor)", "muted")
                daemon = self.t("n/a", "muted")
            else:
                sock = (
                    self.yes_no(sh.socket_exists, "socket", "socket missing", "not checked")
                    if sh.socket
                    else self.missing("no socket path")
                )
                alive_key = f"virtiofsd_alive:{sh.tag}"
                if s is None:
                    daemon = self.missing("VM not running")
                elif sh.tag in s.virtiofsd_alive:
                    daemon = self.yes_no(
                        s.virtiofsd_alive[sh.tag], "virtiofsd serving", "no virtiofsd on the socket"
                    )
                else:
                    daemon = self.missing(s.reasons.get(alive_key, "unknown"))
            ro = "ro" if sh.read_only else "rw" if sh.read_only is False else DASH
            rows.append(
                (
                    self.t(sh.tag, "bold"),
                    self.t(sh.proto),
                    self.t(ro),
                    source,
                    exists,
                    free,
                    sock,
                    daemon,
                )
            )
        return [
            Grid(
                ("tag", "proto", "mode", "source", "on disk", "free", "virtiofs socket", "daemon"),
                tuple(rows),
            )
        ]
