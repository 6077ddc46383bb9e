"""Overview tab: the process, uptime, control socket, QMP state, CPU, memory, vCPU threads."""

from __future__ import annotations

from rich.text import Text

from tui.host.model import PENDING, VM
from tui.host.sampling import VMSample
from tui.widgets.detail.base import KV, Block, DetailData, DetailView, Grid, Note
from tui.widgets.format import DASH, clean, duration, percent, rate, size, why
from tui.widgets.vm_state import drift_badge, vm_state

OVER_100 = "over 100%: the unit's CPU counts QEMU's own threads (I/O, devices) beside the vCPUs"


class OverviewView(DetailView):
    def blocks(self, data: DetailData) -> list[Block]:
        vm, s = data.vm, data.sample
        assert vm is not None
        state = vm_state(vm, s, data.crash_looping)
        drift = drift_badge(vm)
        r = s.reasons if s else {}
        not_running = self._not_running(vm)

        rows: list[tuple[str | Text, str | Text]] = []
        head = Text.assemble(
            self.t(state.text, state.level),
            "  ",
            self.t(drift.text, drift.level),
            "  ",
            self.t(vm.hypervisor or "unknown hypervisor", None if vm.hypervisor else "warn"),
        )
        if vm.declarative:
            head.append_text(self.t("  declarative", "muted"))
        rows.append(("State", head))
        if s is None:
            rows.append(("Process", self.missing(not_running)))
        else:
            name = s.process_name or DASH
            proc = self.t(f"{name} (pid {s.pid})") if s.process_name else self.t(f"pid {s.pid}")
            if s.process_name is None:
                proc.append_text(self.t(f"  name: {why(r, 'process_name')}", "muted"))
            rows.append(("Process", proc))
            rows.append(
                (
                    "Uptime",
                    self.t(duration(s.uptime_s))
                    if s.uptime_s is not None
                    else self.missing(why(r, "uptime_s")),
                )
            )
        rows.append(("Unit", self._unit_text(vm)))
        if data.last_error is not None:
            # Why a failed or crash-looping VM stops: its last error line from the journal.
            last = self.t(data.last_error.text, "error")
            last.append_text(self.t("  (l: logs)", "muted"))
            rows.append(("Last error", last))
        socket = self.t(vm.socket) if vm.socket else self.missing("the runner declares none")
        if s is not None and s.remote_ms is not None and s.qmp_status is not None:
            socket.append_text(self.t(f"  answered in {s.remote_ms:.0f} ms", "muted"))
            if s.remote_age:  # on screen since the last ask: asked again at this poll
                plural = "s" if s.remote_age > 1 else ""
                socket.append_text(self.t(f", {s.remote_age} poll{plural} ago", "muted"))
        rows.append(("Control socket", socket))
        if s is None:
            rows.append(("QMP state", self.missing(not_running)))
        elif s.qmp_status is not None:
            level = "ok" if s.qmp_status == "running" else "warn"
            rows.append(("QMP state", self.t(s.qmp_status, level)))
        else:
            rows.append(("QMP state", self.t(f"? ({why(r, 'qmp_status')})", "warn")))

        # CPU.
        if s is None:
            cpu: Text = self.missing(not_running)
        elif s.cpu_pct_of_vcpus is None and s.cpu_pct_of_host is None:
            cpu = self.missing(why(r, "cpu_pct_of_vcpus", "cpu_pct_of_host"))
        else:
            n = s.vcpu_count
            cpu = Text(end="")
            if s.cpu_pct_of_vcpus is not None:
                cpu.append_text(
                    self.t(f"{percent(s.cpu_pct_of_vcpus)} of {n} vCPU{'s' * (n != 1)}", "accent")
                )
            else:
                cpu.append_text(self.missing(why(r, "cpu_pct_of_vcpus")))
            host_pct = percent(s.cpu_pct_of_host) if s.cpu_pct_of_host is not None else DASH
            cpu.append_text(self.t(f"  ·  {host_pct} of the host"))
        rows.append(("CPU", cpu))
        if s is not None and (s.cpu_pct_of_vcpus or 0) > 100:
            # The table shows at most 100%; the whole unit's CPU is what was measured.
            rows.append(("", self.t(OVER_100, "muted")))
        if s is not None and s.cpu_source:
            rows.append(("", self._source_hint(s.cpu_source, r.get("cpu_cgroup"))))

        # Memory.
        rows.extend(self._memory(vm, s, not_running))

        # Block I/O.
        if s is not None:
            if s.block:
                io = "  ".join(
                    f"{clean(dev)} r {rate(v.read_bps)} w {rate(v.write_bps)}"
                    for dev, v in sorted(s.block.items())
                )
                rows.append(("Block I/O", self.t(io)))
            else:
                reason = r.get("block") or next(
                    (v for k, v in r.items() if k.startswith("block:")), "no block devices"
                )
                rows.append(("Block I/O", self.missing(clean(reason))))
        rows.append(("Runner", self.t(vm.runner) if vm.runner else self.missing("no current link")))
        if vm.booted and vm.booted != vm.runner:
            rows.append(("Booted", self.t(vm.booted, "warn")))
        facts = self._facts(vm)
        if facts is not None:
            rows.append(("Facts", facts))
        if vm.flake:
            rows.append(("Flake", self.t(vm.flake)))

        blocks: list[Block] = [KV(tuple(rows))]
        if s is not None:
            blocks.append(self._vcpus(s))
        if vm.problems:
            blocks.append(
                Grid(("",), tuple((self.t(f"⚠ {p}", "error"),) for p in vm.problems), "Problems")
            )
        if data.findings:
            rows = []
            for f in data.findings:
                rows.append((self.t(f"⚠ {f.message}", "warn"),))
                rows.append((self.t(f"  fix: {f.fix}", "muted"),))
            blocks.append(Grid(("",), tuple(rows), "Host checks (!)"))
        return blocks

    def _facts(self, vm: VM) -> Text | None:
        """Where vCPUs, memory, disks... come from: the running process or the script."""
        if vm.facts_from is None:
            return None
        if vm.facts_from == "process":
            text = self.t(f"from the running process (pid {vm.hypervisor_pid})")
            from_script = sorted(k for k, v in vm.fact_sources.items() if v == "script")
            if from_script:
                text.append_text(self.t(f"; from the script: {', '.join(from_script)}", "muted"))
        else:
            text = self.t("from the runner script")
            if vm.process_note:
                text.append_text(self.t(f" (process not read: {vm.process_note})", "warn"))
        if vm.not_known_statically:
            unknown = ", ".join(vm.not_known_statically)
            text.append_text(self.t(f"; not known statically: {unknown}", "muted"))
        if vm.current_differs:
            differs = ", ".join(f"{k} {v}" for k, v in vm.current_differs.items())
            text.append_text(self.t(f"; current runner says {differs}", "warn"))
        return text

    def _not_running(self, vm: VM) -> str:
        unit = vm.unit
        if unit is None or unit.active in (None, "unknown", PENDING):
            reason = (unit.error if unit else None) or "unit state unknown"
            return f"not sampled: {reason}"
        if not unit.main_pid:
            return f"not running: the unit is {unit.active}"
        return "not sampled yet"

    def _unit_text(self, vm: VM) -> Text:
        unit = vm.unit
        if unit is None:
            return self.missing("no unit")
        if unit.active in (None, "unknown", PENDING):
            return Text.assemble(self.t(unit.name), "  ", self.missing(unit.error or "unknown"))
        text = self.t(unit.name)
        text.append_text(self.t(f"  {unit.active}/{unit.sub or DASH}"))
        if unit.restarts:
            text.append_text(self.t(f"  {unit.restarts} restarts", "warn"))
        return text

    def _memory(
        self, vm: VM, s: VMSample | None, not_running: str
    ) -> list[tuple[str | Text, str | Text]]:
        r = s.reasons if s else {}

        def mib(value: int | None, key: str) -> Text:
            if value is None:
                return self.missing(why(r, key)) if s else self.missing(not_running)
            return self.t(f"{value} MiB")

        configured = (s.mem_configured_mib if s else None) or vm.mem_mib
        rows: list[tuple[str | Text, str | Text]] = [
            (
                "Memory configured",
                self.t(f"{configured} MiB")
                if configured is not None
                else self.missing(why(r, "mem_configured_mib") if s else "the runner does not say"),
            ),
            (
                "  guest-visible",
                mib(s.mem_guest_visible_mib if s else None, "mem_guest_visible_mib"),
            ),
            ("  guest-used", mib(s.mem_guest_used_mib if s else None, "mem_guest_used_mib")),
        ]
        if s is None:
            rows.append(("  host footprint", self.missing(not_running)))
        elif s.mem_host_bytes is None:
            rows.append(("  host footprint", self.missing(why(r, "mem_host_bytes"))))
        else:
            rows.append(("  host footprint", self.t(size(s.mem_host_bytes), "accent")))
            if s.mem_host_source:
                hint = self._source_hint(s.mem_host_source, r.get("mem_host_cgroup"))
                rows.append(("", hint))
        return rows

    def _source_hint(self, source: str, not_cgroup: str | None) -> Text:
        """Where a figure came from, and why not from the unit's cgroup: quiet, on its own line."""
        hint = f"from {source}"
        if not_cgroup:
            hint += f"; not the unit's cgroup: {not_cgroup}"
        return self.t(hint, "muted")

    def _vcpus(self, s: VMSample) -> Block:
        if not s.vcpus:
            return Note(
                Text.assemble(
                    self.t("vCPU threads  ", "bold"), self.missing(why(s.reasons, "vcpus"))
                )
            )
        rows = []
        for v in s.vcpus:
            busy = self.t(percent(v.busy_pct)) if v.busy_pct is not None else self.t("…", "muted")
            steal_level = "warn" if (v.steal_pct or 0) >= 10 else None
            steal = (
                self.t(percent(v.steal_pct), steal_level)
                if v.steal_pct is not None
                else self.t("…", "muted")
            )
            rows.append((self.t(str(v.index)), self.t(str(v.thread_id)), busy, steal))
        blocks = Grid(("vCPU", "thread", "busy", "steal (waiting)"), tuple(rows), "vCPU threads")
        if "vcpus" in s.reasons:
            return Grid(
                blocks.header,
                (
                    *blocks.rows,
                    (self.t("…", "muted"), self.t(why(s.reasons, "vcpus"), "muted"), "", ""),
                ),
                blocks.title,
            )
        return blocks
