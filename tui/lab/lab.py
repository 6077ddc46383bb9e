"""The Lab: a throwaway but real microvm.nix host in a folder."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tui.host.console.journal import parse_journal_line
from tui.host.settings import DeploySource, HostSettings, SystemdBus
from tui.lab import flake, guest, guest_journal, netns, nix, systemd
from tui.lab.buildserver import BuildServer
from tui.lab.config import write_config
from tui.lab.prereq import missing_prerequisites
from tui.lab.procs import remove_cgroups, wait_gone
from tui.lab.sshd import LabSshd
from tui.lab.units import unit_files, unit_path, write_units
from tui.lab.vms import UPLINK, VmSpec, default_vms, guest_journal_source

log = logging.getLogger("tui.lab")

GCROOTS_BASE = Path("/nix/var/nix/gcroots")
NIX_AUTO_ROOTS = Path("/nix/var/nix/gcroots/auto")
MARKER = "lab.json"
# `broken`'s `current`: a store path that does not exist (as after a GC of an unrooted runner).
DANGLING_RUNNER = "/nix/store/00000000000000000000000000000000-microvm-qemu-broken"
GARBAGE_FLAKE = b"\xff\xfe\x00garbage: not a flake reference {{\n"


class LabError(RuntimeError):
    pass


class Lab:
    def __init__(self, root: Path, extra_running: int = 0) -> None:
        self.root = Path(os.path.abspath(root))
        self.extra_running = extra_running
        self.specs: list[VmSpec] = default_vms(extra_running)
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:8]
        self.netns = netns.netns_name(self.root)
        self.gcroots_dir = GCROOTS_BASE / f"microvm-tui-lab-{digest}"
        # A slice name: journald skips slices when it finds a process's unit in its cgroup
        # path, so the lab's units get _SYSTEMD_UNIT (and `journalctl -u`) as on a host.
        self.cgroup_name = f"mvtui-{digest}.slice"
        self.state_dir = self.root / "microvms"
        self.journal_dir = self.root / "journal"
        self.run_dir = self.root / "run"
        self.shares_dir = self.root / "shares"
        self.tmp_dir = self.root / "tmp"
        self.buildserver = BuildServer(self.root)
        self.manager = systemd.UserManager(
            runtime_dir=self.run_dir,
            config_home=self.root / "config",
            home=self.root / "home",
            cgroup_name=self.cgroup_name,
            log_path=self.root / "manager.log",
            journal_dir=self.journal_dir,
        )
        # The lab host's OpenSSH server on loopback (``ssh -F LAB/ssh/ssh_config lab-HASH``).
        self.sshd = LabSshd(self.root / "ssh", alias=f"lab-{digest}")

    # --- public API -------------------------------------------------------------------------

    @property
    def flake_dir(self) -> Path:
        return self.root / "flake"

    def flake_ref(self) -> str:
        return f"path:{self.flake_dir}"

    @property
    def config_path(self) -> Path:
        return self.root / "microvm-tui.toml"

    @property
    def settings(self) -> HostSettings:
        return HostSettings(
            state_dir=self.state_dir,
            systemd_scope="user",
            systemd_env={"XDG_RUNTIME_DIR": str(self.run_dir)},
            systemd_bus=SystemdBus("path", self.manager.bus_path),
            netns=self.netns,
            journal_dir=self.journal_dir,
            gcroots_dir=self.gcroots_dir,
            nix_options=(*nix.NIX_OPTIONS, *self.buildserver.nix_options()),
            jobs_dir=self.run_dir / "microvm-tui-jobs",
        )

    @property
    def deploy_source(self) -> DeploySource:
        """The lab's CI: its signed cache and its Hydra-shaped build server."""
        return DeploySource(
            cache=self.buildserver.cache_url, hydra_url=self.buildserver.hydra_url()
        )

    def spec(self, name: str) -> VmSpec:
        for s in self.specs:
            if s.name == name:
                return s
        raise KeyError(name)

    def up(self, timeout: float | None = None) -> None:
        """Bring the lab up; on a healthy lab a no-op, on a half-up one a repair."""
        problems = missing_prerequisites()
        if problems:
            raise LabError("the lab cannot run here:\n  " + "\n  ".join(problems))
        try:
            unit_path(self.root)
        except ValueError as e:
            raise LabError(str(e)) from None
        if self.root.is_dir() and not (self.root / MARKER).exists() and any(self.root.iterdir()):
            raise LabError(f"{self.root} is not empty and not a lab: choose a new directory")
        if timeout is None:
            timeout = 110 + 12 * self.extra_running
        with _locked(self.root):
            self._up(timeout)

    def _up(self, timeout: float) -> None:
        t0 = time.monotonic()
        deadline = t0 + timeout

        def step(what: str) -> None:
            log.info("%5.1fs %s", time.monotonic() - t0, what)

        self._make_dirs()
        netns.create(self.netns)
        netns.ensure_uplink(self.netns, UPLINK)

        manager_pid = self.manager.pid()
        if manager_pid is None or not self.manager.responsive():
            # A dead or hung manager: end it and whatever it had started (by pid, from the lab's
            # own cgroup and network namespace) before starting afresh.
            self.manager.stop()
            self._kill_netns_processes()
            manager_pid = None
        active = self._active_units() if manager_pid else set()
        # Stale VMs are booted on generation 1, then their flake moves on to generation 2.
        dance = [s for s in self.specs if s.stale and s.name not in active]
        step("writing the flake (kernel, initramfs, vms.json)")
        flake.write_flake(self.flake_dir, self.root, self.specs, self._generations(dance))
        step("building the runners")

        ref = self.flake_ref()
        buildable = [s for s in self.specs if s.role != "broken"]
        installables = [nix.runner_attr(ref, s.name) for s in buildable]
        decl = [s for s in buildable if s.declarative]
        installables += [nix.toplevel_attr(ref, s.name) for s in decl]
        built = nix.build_many(installables)
        runners = {s.name: built[f"microvm-qemu-{s.name}"] for s in buildable}
        toplevels = {s.name: built[f"nixos-system-{s.name}-{flake.NIXOS_VERSION}"] for s in decl}

        step("making the state dirs (microvm -c)")
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [
                pool.submit(
                    self._ensure_state, s, runners.get(s.name), toplevels.get(s.name), s in dance
                )
                for s in self.specs
            ]
            for f in futures:
                f.result()

        changed = write_units(
            self.manager.unit_dir,
            unit_files(
                state_dir=self.state_dir,
                netns=self.netns,
                ip=flake.host_tools()["ip"],
                autostart=[s.name for s in self.specs if s.autostart],
            ),
        )
        for s in self.specs:
            if s.guest_journal:
                guest_journal.write_guest_journal(
                    guest_journal_source(self.root, s.name), self.root, s.name
                )
        step("starting the systemd user manager and the VMs")
        booting = [s for s in self.specs if s.role == "running" and s.name not in active]
        since = time.time()
        if manager_pid is None:
            self.manager.start()  # its default unit is microvms.target: the VMs boot now
        elif changed:
            self.manager.systemctl("daemon-reload")
        self.manager.ensure_bus()
        to_start = [f"microvm@{s.name}.service" for s in self.specs if s.autostart]
        self.manager.systemctl("start", "--no-block", *to_start)

        for s in self.specs:
            if s.stale:
                step(f"updating {s.name} to a new generation while it runs (microvm -u)")
                self._make_stale(s, deadline)
        step("waiting for the VMs")
        running = [s for s in self.specs if s.role == "running"]
        self._wait_running(running, deadline)
        step("waiting for the guests to boot")
        self._wait_booted([s.name for s in booting if not s.serial_socket], since, deadline)
        step("starting the build server (a signed cache and Hydra's JSON on 127.0.0.1)")
        self.buildserver.ensure_key()
        self.buildserver.start()
        write_config(self.config_path, self.settings, self.deploy_source)
        step("starting the lab host's sshd")
        self.sshd.start()
        step("up")

    def down(self) -> None:
        """Stop everything the lab started, remove what it made. Safe on a missing/half lab."""
        if (self.root / MARKER).exists():
            with _locked(self.root):
                self._down()
        else:
            self._down()

    def _down(self) -> None:
        t0 = time.monotonic()
        self.sshd.stop()
        self.buildserver.stop()
        self.manager.stop()
        log.info("%5.1fs manager and VMs stopped", time.monotonic() - t0)
        self._kill_netns_processes()
        netns.delete(self.netns)
        remove_cgroups(self.cgroup_name)
        if self.gcroots_dir.name.startswith("microvm-tui-lab-"):
            shutil.rmtree(self.gcroots_dir, ignore_errors=True)
        if (self.root / MARKER).exists():
            self._remove_auto_roots()
            shutil.rmtree(self.root, ignore_errors=True)
        elif self.root.exists() and not any(self.root.iterdir()):
            self.root.rmdir()

    def status(self) -> dict:
        pid = self.manager.pid()
        names = (
            sorted(p.name for p in self.state_dir.iterdir() if p.is_dir())
            if self.state_dir.is_dir()
            else []
        )
        units: dict[str, dict[str, str]] = {}
        if pid is not None and names:
            props = "Id,ActiveState,SubState,MainPID,NRestarts"
            out = self.manager.systemctl(
                "show", "-p", props, *[f"microvm@{n}.service" for n in names], check=False
            )
            for block in systemd.parse_show(out.stdout):
                units[block.get("Id", "")] = block
        vms = {}
        for name in names:
            state = self.state_dir / name
            u = units.get(f"microvm@{name}.service", {})
            current, booted = _readlink(state / "current"), _readlink(state / "booted")
            vms[name] = {
                "active_state": u.get("ActiveState"),
                "sub_state": u.get("SubState"),
                "main_pid": int(u.get("MainPID") or 0),
                "n_restarts": int(u.get("NRestarts") or 0),
                "current": current,
                "current_exists": (state / "current").exists(),
                "booted": booted,
                "stale": booted is not None and booted != current,
            }
        return {
            "root": str(self.root),
            "up": self.config_path.exists(),
            "netns": self.netns,
            "netns_exists": self.netns in netns.list_netns(),
            "manager_pid": pid,
            "sshd_pid": self.sshd.pid(),
            "ssh": ["ssh", *self.sshd.ssh_args()],
            "gcroots_dir": str(self.gcroots_dir),
            "vms": vms,
        }

    # --- steps --------------------------------------------------------------------------------

    def _kill_netns_processes(self) -> None:
        """Processes inside the lab's own namespace were started by the lab's units."""
        if self.netns not in netns.list_netns():
            return
        for pid in netns.pids(self.netns):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_gone(pid, 5)

    def _make_dirs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        marker = self.root / MARKER
        record = {
            "extra_running": self.extra_running,
            "netns": self.netns,
            "gcroots_dir": str(self.gcroots_dir),
            "cgroup": self.cgroup_name,
        }
        marker.write_text(json.dumps(record, indent=2) + "\n")
        for d in (
            self.state_dir,
            self.run_dir,
            self.journal_dir,
            self.shares_dir,
            self.tmp_dir,
            self.flake_dir,
        ):
            d.mkdir(parents=True, exist_ok=True)
        self.run_dir.chmod(0o700)

    def _generations(self, dance: list[VmSpec]) -> dict[str, int]:
        return {s.name: (1 if s in dance else 2) for s in self.specs if s.stale}

    def _active_units(self) -> set[str]:
        out = self.manager.systemctl(
            "list-units", "--plain", "--no-legend", "--state=active", "microvm@*", check=False
        )
        names = set()
        for line in out.stdout.splitlines():
            unit = line.split()[0] if line.split() else ""
            if unit.startswith("microvm@") and unit.endswith(".service"):
                names.add(unit[len("microvm@") : -len(".service")])
        return names

    def _ensure_state(
        self, spec: VmSpec, runner: str | None, toplevel: str | None, rebuild: bool
    ) -> None:
        state = self.state_dir / spec.name
        ref = self.flake_ref()
        if spec.share:
            (self.shares_dir / spec.name).mkdir(parents=True, exist_ok=True)
        if spec.role == "broken":
            state.mkdir(exist_ok=True)
            _force_symlink(DANGLING_RUNNER, state / "current")
            (state / "flake").write_bytes(GARBAGE_FLAKE)
        elif spec.declarative:
            # As install-microvm-NAME does: ln -sTf RUNNER current; ln -sTf TOPLEVEL toplevel
            assert runner and toplevel
            state.mkdir(exist_ok=True)
            _force_symlink(runner, state / "current")
            _force_symlink(toplevel, state / "toplevel")
        elif not state.exists():
            nix.create_state_dir(self.state_dir, self.tmp_dir, ref, spec.name)
        elif rebuild or not (state / "current").exists():
            if not (state / "flake").exists():
                (state / "flake").write_text(ref)
            nix.build_current(state, ref, spec.name)
        nix.add_gcroots(self.gcroots_dir, state, spec.name)

    def _make_stale(self, spec: VmSpec, deadline: float) -> None:
        """Once the VM runs what `current` was (qemu listening: microvm-run was exec'd), change
        its flake to generation 2 and rebuild `current` the way `microvm -u` does."""
        state = self.state_dir / spec.name
        while True:
            booted, current = _readlink(state / "booted"), _readlink(state / "current")
            if booted is not None and booted != current:
                return  # already stale
            if booted == current and _socket_listening(state / spec.socket):
                break
            if time.monotonic() > deadline:
                raise LabError(f"{spec.name} did not boot its first generation in time")
            time.sleep(0.1)
        flake.set_generations(self.flake_dir, self.root, self.specs, self._generations([]))
        nix.build_current(state, self.flake_ref(), spec.name)

    def _wait_running(self, specs: list[VmSpec], deadline: float) -> None:
        """Until each VM's unit is active with a hypervisor pid and its QMP socket is up."""
        waiting = {s.name for s in specs}
        while waiting:
            out = self.manager.systemctl(
                "show",
                "-p",
                "Id,ActiveState,MainPID",
                *[f"microvm@{n}.service" for n in sorted(waiting)],
                check=False,
            )
            for block in systemd.parse_show(out.stdout):
                name = block.get("Id", "")[len("microvm@") : -len(".service")]
                sock = self.state_dir / name / f"{name}.sock"
                if (
                    block.get("ActiveState") == "active"
                    and int(block.get("MainPID") or 0) > 0
                    and _socket_listening(sock)
                ):
                    waiting.discard(name)
            if not waiting:
                break
            if time.monotonic() > deadline:
                raise LabError(f"not running in time: {', '.join(sorted(waiting))}")
            time.sleep(0.2)

    def _wait_booted(self, names: list[str], since: float, deadline: float) -> None:
        """Until each guest's serial output in the journal shows, since SINCE, a boot that
        reached init."""
        waiting = set(names)
        while waiting:
            for name in list(waiting):
                if guest_booted(self.settings, name, since):
                    waiting.discard(name)
            if not waiting:
                break
            if time.monotonic() > deadline:
                raise LabError(f"guests did not boot in time: {', '.join(sorted(waiting))}")
            time.sleep(0.2)

    def _remove_auto_roots(self) -> None:
        """Indirect roots `nix build -o` registered for out-links inside the lab."""
        if not NIX_AUTO_ROOTS.is_dir():
            return
        prefix = str(self.root) + "/"
        for link in NIX_AUTO_ROOTS.iterdir():
            target = _readlink(link)
            if target and target.startswith(prefix):
                with contextlib.suppress(OSError):
                    link.unlink()


def serial_output(settings: HostSettings, name: str, since: float) -> bytes:
    """What microvm@NAME wrote (its serial console on stdio) since SINCE (epoch seconds), from
    the lab's journal, one line per entry."""
    argv = settings.journalctl_argv(
        f"--unit=microvm@{name}.service",
        f"--since=@{since:.6f}",
        "--output=json",
        "--output-fields=MESSAGE,_PID,SYSLOG_IDENTIFIER",
        "--all",
        "--no-pager",
        "--quiet",
    )
    env = settings.command_env()
    proc = subprocess.run(argv, capture_output=True, timeout=30, check=False, env=env)
    entries = (parse_journal_line(line) for line in proc.stdout.splitlines())
    return b"\n".join(
        e.message for e in entries if e is not None and e.message and not e.from_systemd
    )


def guest_booted(settings: HostSettings, name: str, since: float) -> bool:
    """The serial output since SINCE shows the guest's init after the kernel's last
    "Linux version" line."""
    text = serial_output(settings, name, since)
    last_boot = text.rfind(b"Linux version ")
    if last_boot < 0:
        return False
    return text.find(guest.BOOT_MARKER.format(name=name).encode(), last_boot) >= 0


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One `up`/`down` at a time per lab."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _readlink(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _force_symlink(target: str, link: Path) -> None:
    if _readlink(link) == target:
        return
    tmp = link.with_name(link.name + ".new")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(target)
    tmp.replace(link)


def _socket_listening(path: Path) -> bool:
    """True if a server accepts on the unix socket (connect, then hang up at once: QMP serves one
    client at a time, so never hold it)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True
