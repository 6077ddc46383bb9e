"""The lab host's own OpenSSH server on loopback: a second "host" the app reaches over real ssh.

``lab up`` starts ``/usr/sbin/sshd -D`` with a config of its own in ``LAB/ssh/``: a free port
on 127.0.0.1, its own host key, one authorized key made for the lab (root may log in with it,
nothing else: no passwords, no PAM), a pid file. Beside it an ``ssh_config`` with a Host alias
(``lab-<hash>``) that names the port, the key and a ``known_hosts`` holding the lab's host key,
so ``ssh -F LAB/ssh_config lab-<hash> true`` works with strict host-key checking.
``lab down`` ends the server by the pid it recorded (after checking the pid is still that
server), and its per-connection processes with it: a host that goes away takes its sessions.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = Path("/usr/bin/ssh-keygen")
SSH = Path("/usr/bin/ssh")
# sshd's privilege separation directory: it refuses to start without it.
PRIVSEP_DIR = Path("/run/sshd")


class SshdError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _keygen(path: Path, comment: str) -> None:
    if path.exists():
        return
    subprocess.run(
        [str(SSH_KEYGEN), "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [a.decode(errors="replace") for a in fh.read(65536).split(b"\0") if a]
    except OSError:
        return []


def _children(pid: int) -> list[int]:
    """Processes whose parent is PID (the server's per-connection processes)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read(4096)
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses; split after the last ')'
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            out.append(int(entry))
    return out


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in _children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie child of ours (the lab CLI started it in this process): reap it.
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        time.sleep(0.02)
    return False


class LabSshd:
    """The sshd of one lab, its files under DIR (LAB/ssh)."""

    def __init__(self, directory: Path, alias: str) -> None:
        self.dir = directory
        self.alias = alias  # the Host alias in ssh_config

    # --- files ----------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.dir / "sshd_config"

    @property
    def ssh_config(self) -> Path:
        """The client config: ``ssh -F THIS ALIAS``."""
        return self.dir / "ssh_config"

    @property
    def host_key(self) -> Path:
        return self.dir / "ssh_host_ed25519_key"

    @property
    def client_key(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def authorized_keys(self) -> Path:
        return self.dir / "authorized_keys"

    @property
    def pid_file(self) -> Path:
        return self.dir / "sshd.pid"

    @property
    def log_path(self) -> Path:
        return self.dir / "sshd.log"

    @property
    def port_file(self) -> Path:
        return self.dir / "port"

    def port(self) -> int | None:
        try:
            return int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def ssh_args(self) -> list[str]:
        """What goes between ``ssh`` and the remote command to reach the lab host."""
        return ["-F", str(self.ssh_config), self.alias]

    # --- life -----------------------------------------------------------------------------

    def pid(self) -> int | None:
        """The running server's pid, when the pid file names a live sshd with our config."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        # sshd sets its process title: "sshd: /usr/sbin/sshd -D -e -f CONFIG [listener] ...".
        argv = " ".join(_cmdline(pid))
        if argv.startswith(("sshd:", str(SSHD))) and f" -f {self.config_path}" in argv:
            return pid
        return None

    def start(self, timeout: float = 10.0) -> None:
        """Start the server unless it runs; wait until it accepts connections."""
        if self.pid() is not None and self._accepts(self.port()):
            return
        self.stop()
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        _keygen(self.host_key, "microvm-tui-lab-host")
        _keygen(self.client_key, "microvm-tui-lab-client")
        public = (self.client_key.with_name(self.client_key.name + ".pub")).read_text()
        self.authorized_keys.write_text(public)
        self.authorized_keys.chmod(0o600)
        # The same port as before when it is free: a host that comes back keeps its address.
        port = self.port()
        if port is None or not _port_free(port):
            port = _free_port()
        self.port_file.write_text(f"{port}\n")
        host_pub = self.host_key.with_name(self.host_key.name + ".pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
        self.config_path.write_text(self._sshd_config(port))
        self.ssh_config.write_text(self._client_config(port))
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                close_fds=True,
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + timeout
        while not self._accepts(port):
            if proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
                raise SshdError(f"sshd exited with {proc.returncode}: {' / '.join(tail)}")
            if time.monotonic() > deadline:
                self.stop()
                raise SshdError(f"sshd did not accept on 127.0.0.1:{port} in {timeout:.0f}s")
            time.sleep(0.02)

    def stop(self) -> None:
        """End the server (by its recorded pid) and its connections' processes."""
        pid = self.pid()
        if pid is None:
            return
        victims = [pid, *_descendants(pid)]
        for p in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGTERM)
        for p in victims:
            if not _gone(p, 3.0):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
                _gone(p, 3.0)
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()

    @staticmethod
    def _accepts(port: int | None) -> bool:
        if port is None:
            return False
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            try:
                s.connect(("127.0.0.1", port))
            except OSError:
                return False
        return True

    # --- config text ----------------------------------------------------------------------

    def _sshd_config(self, port: int) -> str:
        return "\n".join(
            [
                f"ListenAddress 127.0.0.1:{port}",
                f"HostKey {self.host_key}",
                f"PidFile {self.dir / 'sshd-own.pid'}",
                f"AuthorizedKeysFile {self.authorized_keys}",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                # The lab lives under /var/tmp (sticky, world-writable): sshd's strict mode
                # would refuse the key file's path.
                "StrictModes no",
                "AllowTcpForwarding no",
                "X11Forwarding no",
                "PermitTTY yes",
                "PrintMotd no",
                "LogLevel INFO",
                "",
            ]
        )

    def _client_config(self, port: int) -> str:
        return "\n".join(
            [
                f"Host {self.alias}",
                "  HostName 127.0.0.1",
                f"  Port {port}",
                "  User root",
                f"  IdentityFile {self.client_key}",
                "  IdentitiesOnly yes",
                f"  UserKnownHostsFile {self.known_hosts}",
                "  GlobalKnownHostsFile /dev/null",
                "  StrictHostKeyChecking yes",
                "  BatchMode yes",
                "",
            ]
        )
