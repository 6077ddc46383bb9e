"""crosvm: its control socket is SOCK_SEQPACKET with a private protocol; ask its CLI.

``crosvm balloon_stats SOCKET`` prints ``{"BalloonStats": {"stats": {...}, "balloon_actual":
BYTES}}`` where balloon_actual is what the balloon holds (microvm.nix's microvm-balloon reads
the same). Run with an argv list and a timeout, only when ``tools`` found a ``crosvm`` binary.
"""

from __future__ import annotations

import json
import subprocess
import time

from tui.host import tools
from tui.host.sampling.reading import RemoteInfo

DEFAULT_TIMEOUT = 1.0


def crosvm_binary() -> str | None:
    return tools.find("crosvm")


def query_crosvm(
    socket_path: str,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    mem_configured_bytes: int | None = None,
    binary: str | None = None,
) -> RemoteInfo:
    started = time.monotonic()
    info = RemoteInfo(mem_configured_bytes=mem_configured_bytes)
    info.reasons["status"] = "crosvm has no state query"
    info.reasons["vcpu_threads"] = "crosvm's CLI does not name vCPU threads"
    info.reasons["block"] = "crosvm's CLI reports no block counters"
    binary = binary or crosvm_binary()
    if binary is None:
        info.error = "crosvm CLI not installed"
        info.fail_missing(info.error)
        return info
    try:
        proc = subprocess.run(
            [binary, "balloon_stats", socket_path],
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            env=tools.child_env(),
        )
    except subprocess.TimeoutExpired:
        info.error = f"crosvm balloon_stats timeout after {timeout:.1f} s"
        info.fail_missing(info.error)
        return info
    except OSError as exc:
        info.error = f"cannot run crosvm: {exc.strerror or exc}"
        info.fail_missing(info.error)
        return info
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        info.error = f"crosvm balloon_stats failed: {err[-1] if err else proc.returncode}"
        info.fail_missing(info.error)
        return info
    try:
        data = json.loads(proc.stdout)
        stats = data.get("BalloonStats") or {}
        actual = stats.get("balloon_actual")
        if actual is not None and mem_configured_bytes is not None:
            info.mem_guest_visible_bytes = max(0, mem_configured_bytes - int(actual))
        guest = stats.get("stats") or {}
        total, avail = guest.get("total_memory"), guest.get("available_memory")
        if avail is None:
            avail = guest.get("free_memory")
        if total is not None and avail is not None:
            info.mem_guest_used_bytes = max(0, int(total) - int(avail))
        info.read_at = time.monotonic()
    except (ValueError, AttributeError, TypeError) as exc:
        info.error = f"unexpected crosvm output: {exc!r}"
    info.fail_missing(info.error or "not in crosvm balloon_stats")
    info.elapsed_s = time.monotonic() - started
    return info
