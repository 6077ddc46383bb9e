"""How the app reaches a host: the system ``ssh`` binary, with connection sharing, and ssh's
own reason in one line when it cannot.

The admin's ssh does the work (their ``~/.ssh/config``, agent, ProxyJump, FIDO keys,
known_hosts). We add only: no terminal (``-T``), no questions (``BatchMode``: the app owns the
terminal), a connect timeout and keep-alives (a dead host is noticed), and connection sharing
(``ControlMaster=auto`` + ``ControlPersist``, the sockets in a private directory of ours).
Host-key checking is never turned off: a host's ssh arguments that would do so are refused.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path

from tui.host.text import sanitise

SSH = "/usr/bin/ssh"
MAX_REASON = 300  # characters of ssh's reason shown

# Patterns as strings, compiled at first use (re's cache): the config imports this module.
# ssh options (as -o NAME=VALUE or in a config) that would turn host-key checking off.
_NO_HOSTKEY_CHECK = (
    r"(?i)^\s*(stricthostkeychecking\s*[=\s]\s*(no|off)"
    r"|userknownhostsfile\s*[=\s]\s*/dev/null"
    r"|userknownhostsfile\s*[=\s]\s*none)"
)
# Lines of ssh's stderr that are not the reason: the changed-host-key banner's advice, notices.
_NOISE = (
    r"^(@"
    r"|IT IS POSSIBLE|Someone could be|It is also possible|Please contact|Add correct"
    r"|The fingerprint for|SHA256:|Offending |  remove with|ssh-keygen -f"
    r"|Warning: Permanently added"
    r"|Pseudo-terminal will not be allocated)"
)
_HOSTKEY_DETAIL = r"^(Host key for .* has changed|No \S+ host key is known for)"


def hostkey_check_disabled(args: Sequence[str]) -> str | None:
    """The argument among ARGS (a host's ssh arguments) that turns host-key checking off."""
    for arg in args:
        text = arg[2:] if arg.startswith("-o") else arg
        if re.search(_NO_HOSTKEY_CHECK, text):
            return arg
    return None


def ssh_reason(stderr: bytes | str, returncode: int | None = None) -> str:
    """ssh's own message, in one line: its last meaningful line of stderr (for a changed or
    unknown host key, the line saying which host, then "Host key verification failed.")."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [ln.rstrip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln.strip() and not re.match(_NOISE, ln)]
    if not lines:
        if returncode is None:
            return "ssh ended without a message"
        return f"ssh ended with status {returncode} without a message"
    reason = lines[-1].strip()
    if reason.startswith("Host key verification failed") and len(lines) > 1:
        detail = next((ln for ln in reversed(lines[:-1]) if re.match(_HOSTKEY_DETAIL, ln)), None)
        if detail:
            reason = f"{detail.strip()} {reason}"
    return sanitise(reason, MAX_REASON)


class ControlDirError(OSError):
    pass


def control_dir() -> Path:
    """Our private directory for ssh's ControlPath sockets: ``$XDG_RUNTIME_DIR/microvm-tui-ssh``
    when that is ours, else ``/tmp/microvm-tui-ssh-UID``. Made 0700 without following a link;
    an existing one must be a real directory owned by us that nobody else can enter."""
    import tempfile  # here: the config imports this module, and `list` start-up counts

    uid = os.geteuid()
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base: Path | None = None
    if runtime and os.path.isabs(runtime):
        try:
            st = os.stat(runtime)
            if stat.S_ISDIR(st.st_mode) and st.st_uid == uid and not st.st_mode & 0o077:
                base = Path(runtime)
        except OSError:
            base = None
    path = (
        base / "microvm-tui-ssh" if base else Path(tempfile.gettempdir()) / f"microvm-tui-ssh-{uid}"
    )
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ControlDirError(f"cannot make {path}: {exc.strerror}") from None
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise ControlDirError(f"cannot use {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ControlDirError(f"{path} is not a directory (a link?): not using it for ssh sockets")
    if st.st_uid != uid:
        raise ControlDirError(f"{path} belongs to uid {st.st_uid}, not us: not using it")
    if st.st_mode & 0o077:
        raise ControlDirError(f"{path} is open to others (mode {st.st_mode & 0o777:o})")
    return path


def ssh_argv(
    host_args: Sequence[str],
    remote_command: Sequence[str],
    *,
    control: Path | None,
    connect_timeout: float = 10.0,
    persist: str = "60",
) -> list[str]:
    """``ssh -T [our options] HOST_ARGS REMOTE_COMMAND``. Our ``-o`` options come first, and
    ssh takes the first value it sees of an option: the host's arguments cannot undo them."""
    argv = [
        SSH,
        "-T",
        "-o", "BatchMode=yes",
        "-o", f"ConnectTimeout={max(1, round(connect_timeout))}",
        "-o", "ServerAliveInterval=5",
        "-o", "ServerAliveCountMax=2",
        # Snapshots are JSON with the same keys every poll: zlib takes most of the bytes off.
        "-o", "Compression=yes",
    ]  # fmt: skip
    if control is not None:
        argv += [
            "-o", "ControlMaster=auto",
            "-o", f"ControlPath={control}/%C",
            "-o", f"ControlPersist={persist}",
        ]  # fmt: skip
    return [*argv, *host_args, *remote_command]
