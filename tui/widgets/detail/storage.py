"""Storage tab: volumes (apparent vs allocated size, open by the hypervisor) and block I/O."""

from __future__ import annotations

from rich.text import Text

from tui.widgets.detail.base import Block, DetailData, DetailView, Grid, Note
from tui.widgets.format import DASH, rate, size
from tui.widgets.wrap import PathCell


class StorageView(DetailView):
    def blocks(self, data: DetailData) -> list[Block]:
        vm, s = data.vm, data.sample
        assert vm is not None
        blocks: list[Block] = []
        if not vm.volumes:
            blocks.append(Note(self.t("No volumes: the runner declares none.", "muted")))
        else:
            rows = []
            for v in vm.volumes:
                exists = self.yes_no(v.exists, "exists", "missing")
                gone = "no file" if v.exists is False else "unknown"
                apparent = (
                    self.t(size(v.size_bytes)) if v.size_bytes is not None else self.missing(gone)
                )
                if v.allocated_bytes is None:
                    allocated = self.missing(gone)
                else:
                    sparse = v.size_bytes and v.allocated_bytes < v.size_bytes
                    allocated = self.t(size(v.allocated_bytes) + (" (sparse)" if sparse else ""))
                if s is None:
                    is_open = self.missing("VM not running")
                elif s.volume_open is None:
                    is_open = self.missing(s.reasons.get("volume_open", "not checked"))
                elif v.image in s.volume_open:
                    is_open = self.yes_no(s.volume_open[v.image], "open", "not open")
                else:
                    is_open = self.missing("not checked")
                ro = self.t("ro" if v.read_only else "rw" if v.read_only is False else DASH)
                rows.append(
                    (PathCell(self.t(v.image, "bold")), exists, apparent, allocated, ro, is_open)
                )
            blocks.append(
                Grid(
                    ("image", "on disk", "apparent", "allocated", "mode", "held by the hypervisor"),
                    tuple(rows),
                    "Volumes",
                )
            )
        if s is not None:
            if s.block:
                io_rows = tuple(
                    (
                        self.t(dev, "bold"),
                        self.t(rate(r.read_bps)),
                        self.t(rate(r.write_bps)),
                    )
                    for dev, r in sorted(s.block.items())
                )
                blocks.append(
                    Grid(("device", "read", "write"), io_rows, "Block I/O (from the hypervisor)")
                )
            else:
                reason = s.reasons.get("block") or next(
                    (v for k, v in s.reasons.items() if k.startswith("block:")), "no block devices"
                )
                title = self.t("Block I/O  ", "bold")
                blocks.append(Note(Text.assemble(title, self.missing(reason))))
        return blocks
