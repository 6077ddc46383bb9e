"""The lab's own systemd user manager (its unit files: ``tui.lab.units``; its cgroups and
processes: ``tui.lab.procs``).

systemd is not PID 1 on these machines, but `systemd --user` runs when it believes the system was
booted with systemd: it gets a private mount namespace with a tmpfs on /run/systemd (holding an
empty /run/systemd/system). It runs in a cgroup of its own (`mvtui-<hash>.slice` in the name=systemd
and unified hierarchies), so two labs never share unit cgroups. A real systemd-journald runs in
the same mount namespace, its volatile storage (/run/log/journal) bind-mounted from the lab's
journal dir, so the units log to a journal as on a NixOS host and `journalctl --directory`
reads it from outside. One difference from a host: PID 1 passes a unit's name to journald with
its output stream, a user manager does not, so journald finds a line's unit only from the
writer's cgroup when it reads the line. A writer that was reaped before that (a short-lived
process on a loaded machine) leaves its line without `_SYSTEMD_UNIT`, and `--unit` never
matches it; tests that need such a line keep the writer alive or check the unit.

The manager has a D-Bus of its own, as PID 1 has the system bus on a host: the lab's dbus.socket
listens on $XDG_RUNTIME_DIR/bus and its dbus.service runs dbus-daemon there. Both are units of
the manager on purpose: systemd connects to its API bus (and owns org.freedesktop.systemd1 on it)
only while its own dbus.socket and dbus.service run (checked with systemd 252: a dbus-daemon
started beside the manager, with DBUS_SESSION_BUS_ADDRESS set for it and dbus.socket masked,
never got the manager on it). The daemon ends with the manager.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tui.lab.procs import cgroup_mounts, cgroup_pids, environ_of, pid_alive, wait_gone

SYSTEMD_BINARIES = (Path("/lib/systemd/systemd"), Path("/usr/lib/systemd/systemd"))

DBUS_DAEMON_BINARIES = (Path("/usr/bin/dbus-daemon"), Path("/bin/dbus-daemon"))

JOURNALD_BINARIES = (
    Path("/lib/systemd/systemd-journald"),
    Path("/usr/lib/systemd/systemd-journald"),
)

# Started in the new mount namespace; a constant (paths only ever reach it as variables).
# journald: volatile storage only (never the host's /var/log/journal), no kmsg, no forwarding,
# no rate limit (a serial flood must not be cut in tests and benches). /run/log gets a tmpfs of
# its own first, so nothing is made in the host's /run.
_MANAGER_SCRIPT = """set -e
for cg in "$@"; do echo $$ > "$cg/cgroup.procs"; done
mkdir -p /run/systemd
mount -t tmpfs -o mode=0755 tmpfs /run/systemd
mkdir /run/systemd/system /run/systemd/journald.conf.d
printf '%s\n' '[Journal]' Storage=volatile ReadKMsg=no ForwardToSyslog=no ForwardToWall=no \
  ForwardToConsole=no RateLimitBurst=0 RuntimeMaxUse=256M > /run/systemd/journald.conf.d/lab.conf
mkdir -p /run/log
mount -t tmpfs -o mode=0755 tmpfs /run/log
mkdir /run/log/journal
mount --bind "$JOURNAL_DIR" /run/log/journal
"$JOURNALD_BINARY" &
echo $! > "$JOURNALD_PID_FILE"
i=0
while [ ! -S /run/systemd/journal/stdout ]; do
  i=$((i + 1)); [ $i -lt 200 ] || { echo "journald did not start" >&2; exit 1; }
  sleep 0.05
done
exec "$SYSTEMD_BINARY" --user --unit=microvms.target
"""


class SystemdError(RuntimeError):
    pass


# --- the manager ----------------------------------------------------------------------------


@dataclass
class UserManager:
    runtime_dir: Path  # XDG_RUNTIME_DIR, also holds manager.pid
    config_home: Path  # XDG_CONFIG_HOME: units in config_home/systemd/user
    home: Path
    cgroup_name: str
    log_path: Path
    journal_dir: Path  # the journald's /run/log/journal

    @property
    def pid_file(self) -> Path:
        return self.runtime_dir / "manager.pid"

    @property
    def journald_pid_file(self) -> Path:
        return self.runtime_dir / "journald.pid"

    def journald_pid(self) -> int | None:
        """The lab journald's pid if it runs and is the one this lab started."""
        try:
            pid = int(self.journald_pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not pid_alive(pid):
            return None
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            return None
        if Path(exe).name != "systemd-journald":
            return None
        return pid if pid in cgroup_pids(self.cgroup_name) else None

    @property
    def unit_dir(self) -> Path:
        return self.config_home / "systemd" / "user"

    def client_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            XDG_RUNTIME_DIR=str(self.runtime_dir),
            SYSTEMD_PAGER="",
            SYSTEMD_COLORS="0",
            LC_ALL="C",
        )
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        return env

    def pid(self) -> int | None:
        """The manager's pid if it runs and is ours (its XDG_RUNTIME_DIR is the lab's)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not pid_alive(pid):
            return None
        if environ_of(pid).get("XDG_RUNTIME_DIR") != str(self.runtime_dir):
            return None
        return pid

    def systemctl(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        argv = ["systemctl", "--user", *args]
        proc = subprocess.run(
            argv,
            env=self.client_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise SystemdError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def responsive(self) -> bool:
        try:
            return self.systemctl("show", "-p", "Version", check=False, timeout=5).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def start(self, timeout: float = 30) -> int:
        systemd = next((p for p in SYSTEMD_BINARIES if p.exists()), None)
        if systemd is None:
            raise SystemdError("systemd is not installed (apt-get install systemd)")
        journald = next((p for p in JOURNALD_BINARIES if p.exists()), None)
        if journald is None:
            raise SystemdError("systemd-journald is not installed (apt-get install systemd)")
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        self.runtime_dir.chmod(0o700)
        # Leftovers of a manager that died without cleaning up.
        for stale in ("systemd/private", "systemd/notify"):
            with contextlib.suppress(OSError):
                (self.runtime_dir / stale).unlink()
        cgroups = []
        for mount in cgroup_mounts():
            cg = mount / self.cgroup_name
            cg.mkdir(exist_ok=True)
            cgroups.append(str(cg))
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.home),
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
            "XDG_CONFIG_HOME": str(self.config_home),
            "XDG_DATA_HOME": str(self.home / ".local" / "share"),
            "XDG_STATE_HOME": str(self.home / ".local" / "state"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "LANG": "C.UTF-8",
            "SYSTEMD_BINARY": str(systemd),
            "JOURNALD_BINARY": str(journald),
            "JOURNAL_DIR": str(self.journal_dir),
            "JOURNALD_PID_FILE": str(self.journald_pid_file),
        }
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "slave",
                    "sh",
                    "-c",
                    _MANAGER_SCRIPT,
                    "microvm-lab-manager",
                    *cgroups,
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                cwd="/",
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemdError(
                    f"the lab's systemd --user exited ({proc.returncode}); see {self.log_path}"
                )
            if self.responsive():
                return proc.pid
            time.sleep(0.1)
        raise SystemdError(f"the lab's systemd --user did not answer in {timeout}s")

    @property
    def bus_path(self) -> Path:
        return self.runtime_dir / "bus"

    def bus_ready(self) -> bool:
        """The manager owns org.freedesktop.systemd1 on the lab's bus."""
        try:
            proc = subprocess.run(
                [
                    "busctl",
                    "--user",
                    "call",
                    "org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus",
                    "GetNameOwner",
                    "s",
                    "org.freedesktop.systemd1",
                ],
                env=self.client_env(),
                capture_output=True,
                timeout=5,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return proc.returncode == 0

    def ensure_bus(self, timeout: float = 30) -> None:
        """Start the lab's bus (dbus.socket, dbus.service) and wait for the manager on it."""
        self.systemctl("start", "dbus.socket", "dbus.service")
        deadline = time.monotonic() + timeout
        while not self.bus_ready():
            if time.monotonic() > deadline:
                raise SystemdError(f"the lab's systemd did not join its bus in {timeout}s")
            time.sleep(0.1)

    def bus_daemon_pid(self) -> int | None:
        """The lab bus's dbus-daemon (dbus.service's MainPID), if it runs."""
        proc = self.systemctl("show", "-p", "MainPID", "--value", "dbus.service", check=False)
        try:
            pid = int(proc.stdout.strip())
        except ValueError:
            return None
        return pid or None

    def stop(self, timeout: float = 60) -> None:
        """Stop the VMs (clean shutdown), then the manager (by its pid), then stragglers."""
        pid = self.pid()
        if pid is not None and self.responsive():
            with contextlib.suppress(SystemdError, subprocess.TimeoutExpired):
                self.systemctl("stop", "microvm@*.service", timeout=timeout)
            with contextlib.suppress(SystemdError, subprocess.TimeoutExpired):
                self.systemctl("stop", "microvm*.service", "microvms.target", timeout=timeout)
        journald = self.journald_pid()
        for owned in (pid, journald):  # the manager first: journald keeps its last words
            if owned is None:
                continue
            # A user manager starts exit.target on SIGTERM; journald flushes and exits.
            with contextlib.suppress(ProcessLookupError):
                os.kill(owned, signal.SIGTERM)
            if not wait_gone(owned, 20):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(owned, signal.SIGKILL)
                wait_gone(owned, 5)
        # Anything left in the lab's cgroup was started by the lab's manager.
        for _ in range(3):
            left = cgroup_pids(self.cgroup_name)
            if not left:
                break
            for p in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
            for p in left:
                wait_gone(p, 5)
        for owned_file in (self.pid_file, self.journald_pid_file):
            with contextlib.suppress(OSError):
                owned_file.unlink()


def parse_show(text: str) -> list[dict[str, str]]:
    """`systemctl show` output for several units: blocks separated by empty lines."""
    blocks: list[dict[str, str]] = [{}]
    for line in text.splitlines():
        if not line.strip():
            if blocks[-1]:
                blocks.append({})
            continue
        k, _, v = line.partition("=")
        blocks[-1][k] = v
    return [b for b in blocks if b]
