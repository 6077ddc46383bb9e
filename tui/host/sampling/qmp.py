"""A QMP client that never holds the socket: connect, negotiate, query, disconnect.

A qemu ``-qmp unix:...,server`` socket serves one client at a time, and microvm-shutdown and
microvm-balloon need it too; so every poll is one short session under a hard deadline
(default 1 s for the whole session, connect included).

Why not ``qemu.qmp`` (0.0.6)? Its ``QMPClient`` is asyncio-only: ``connect()`` has no timeout
of its own, so each call must run inside an event loop wrapped in ``asyncio.wait_for``, and
the sampler calls from plain worker threads (one per VM, so a hung VM cannot delay the
others), where each thread would need its own loop; its sync shim ``legacy.QEMUMonitorProtocol``
creates and installs a loop per thread and has no timeout on ``connect``. A cancelled
``wait_for`` also leaves its reader/writer tasks to be torn down by a loop that is about to be
closed. QMP on a unix socket is one JSON object per line, so a ~100-line synchronous client
with ``socket.settimeout(remaining)`` before every read and write gives a real deadline that
includes a server which accepts and then never sends its greeting, at no per-call loop cost.
Asynchronous ``{"event": ...}`` messages are skipped; replies are matched by ``id``.
"""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from tui.host.sampling.reading import BlockCounters, RemoteInfo, VcpuThread
from tui.host.unixsock import SocketError, close_quietly, connect_unix, remaining

DEFAULT_TIMEOUT = 1.0
MAX_MESSAGE = 8 << 20  # bytes; no QMP reply we ask for comes near this
BALLOON_PATH = "/machine/peripheral/balloon0"  # microvm.nix: -device virtio-balloon-...,id=balloon0
_INVALID_STAT = (1 << 64) - 1  # qemu's "no value" in guest-stats


def timeout_reason(timeout: float) -> str:
    return f"QMP timeout after {timeout:.1f} s"


class QMPError(Exception):
    """The session failed; ``str(exc)`` is the reason to show."""


class QMPCommandError(QMPError):
    """One command returned an error response; the session itself is fine."""

    def __init__(self, command: str, error_class: str, desc: str) -> None:
        super().__init__(f"{command}: {error_class}: {desc}")
        self.command = command
        self.error_class = error_class
        self.desc = desc


class QMPSession:
    """One short QMP conversation. Use as a context manager; the socket is closed on exit.

    >>> with QMPSession("/var/lib/microvms/web/web.sock", timeout=1.0) as qmp:
    ...     qmp.execute("query-status")
    """

    def __init__(
        self, path: str, timeout: float = DEFAULT_TIMEOUT, *, negotiate: bool = True
    ) -> None:
        self.path = path
        self.timeout = timeout
        self.negotiate = negotiate  # False: the caller sends qmp_capabilities (in a batch)
        self.deadline = time.monotonic() + timeout
        self.greeting: dict[str, Any] | None = None
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._ids = itertools.count(1)
        self._stage = "connecting"

    # -- plumbing ------------------------------------------------------------------------

    def _timeout(self) -> QMPError:
        hint = ""
        if self._stage == "greeting":
            hint = " waiting for the greeting (another client may hold the socket)"
        return QMPError(timeout_reason(self.timeout) + hint)

    def _read_message(self) -> dict[str, Any]:
        assert self._sock is not None
        while True:
            newline = self._buf.find(b"\n")
            if newline >= 0:
                line = bytes(self._buf[:newline])
                del self._buf[: newline + 1]
                if not line.strip():
                    continue
                try:
                    message = json.loads(line)
                except ValueError as exc:
                    raise QMPError("QMP sent something that is not JSON") from exc
                except RecursionError:  # "[[[[...": json nests by recursion
                    raise QMPError("QMP sent JSON nested too deeply") from None
                if not isinstance(message, dict):
                    raise QMPError("QMP sent something that is not a JSON object")
                return message
            if len(self._buf) > MAX_MESSAGE:
                raise QMPError("QMP message too large")
            left = remaining(self.deadline)
            if left <= 0:
                raise self._timeout()
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                raise self._timeout() from None
            except OSError as exc:
                raise QMPError(f"QMP connection failed: {exc.strerror or exc}") from exc
            if not chunk:
                raise QMPError("QMP connection closed by the hypervisor")
            self._buf += chunk

    def _send(self, message: dict[str, Any]) -> None:
        self._send_bytes(json.dumps(message).encode() + b"\n")

    def _send_bytes(self, data: bytes) -> None:
        assert self._sock is not None
        left = remaining(self.deadline)
        if left <= 0:
            raise self._timeout()
        self._sock.settimeout(left)
        try:
            self._sock.sendall(data)
        except TimeoutError:
            raise self._timeout() from None
        except OSError as exc:
            raise QMPError(f"QMP connection failed: {exc.strerror or exc}") from exc

    # -- API -----------------------------------------------------------------------------

    def open(self) -> QMPSession:
        try:
            self._sock = connect_unix(self.path, self.deadline)
        except TimeoutError:
            raise self._timeout() from None
        except SocketError as exc:
            raise QMPError(str(exc)) from exc
        try:
            self._stage = "greeting"
            greeting = self._read_message()
            if "QMP" not in greeting:
                raise QMPError("not a QMP socket (no greeting)")
            self.greeting = greeting["QMP"]
            self._stage = "negotiating"
            if self.negotiate:
                self.execute("qmp_capabilities")
                self._stage = "ready"
        except BaseException:
            self.close()
            raise
        return self

    def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """Run COMMAND and return its "return" value; raise QMPCommandError on an error reply."""
        msg_id = next(self._ids)
        message: dict[str, Any] = {"execute": command, "id": msg_id}
        if arguments:
            message["arguments"] = arguments
        self._send(message)
        while True:
            reply = self._read_message()
            if "event" in reply:
                continue  # asynchronous events are not ours to handle
            if reply.get("id") != msg_id:
                continue  # a reply to something abandoned; cannot happen in one session
            if "error" in reply:
                error = reply["error"] or {}
                raise QMPCommandError(
                    command, str(error.get("class", "GenericError")), str(error.get("desc", ""))
                )
            return reply.get("return")

    def batch(self, commands: Sequence[tuple[str, dict[str, Any] | None]]) -> list[Any]:
        """Send COMMANDS (name, arguments) in one write, then read their replies: in order,
        each command's "return" value or, for an error reply, its QMPCommandError (returned,
        not raised). One round trip instead of one per command; qemu runs them in order
        (keep a batch under its queue of 8 requests). Raises QMPError when the session fails.
        """
        pending: dict[int, str] = {}
        data = bytearray()
        for command, arguments in commands:
            msg_id = next(self._ids)
            pending[msg_id] = command
            message: dict[str, Any] = {"execute": command, "id": msg_id}
            if arguments:
                message["arguments"] = arguments
            data += json.dumps(message).encode() + b"\n"
        order = list(pending)
        self._send_bytes(bytes(data))
        results: dict[int, Any] = {}
        while len(results) < len(order):
            reply = self._read_message()
            if "event" in reply:
                continue
            msg_id = reply.get("id")
            if msg_id not in pending or msg_id in results:
                continue
            if "error" in reply:
                error = reply["error"] or {}
                results[msg_id] = QMPCommandError(
                    pending[msg_id],
                    str(error.get("class", "GenericError")),
                    str(error.get("desc", "")),
                )
            else:
                results[msg_id] = reply.get("return")
            if pending[msg_id] == "qmp_capabilities" and self._stage == "negotiating":
                self._stage = "ready"
        return [results[msg_id] for msg_id in order]

    def close(self) -> None:
        close_quietly(self._sock)
        self._sock = None

    def __enter__(self) -> QMPSession:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --- the queries the monitor needs --------------------------------------------------------


def _guest_used(stats: dict[str, Any]) -> tuple[int | None, str | None]:
    """(bytes used by the guest, None) or (None, why not) from qom guest-stats."""
    if not stats or not stats.get("last-update"):
        return None, "the guest has not reported balloon statistics yet"
    values = stats.get("stats") or {}
    total = values.get("stat-total-memory")
    avail = values.get("stat-available-memory")
    if avail in (None, _INVALID_STAT):
        avail = values.get("stat-free-memory")
    if total in (None, _INVALID_STAT) or avail in (None, _INVALID_STAT):
        return None, "the guest's balloon driver reports no memory totals"
    return max(0, int(total) - int(avail)), None


def _block_counters(entries: list[dict[str, Any]]) -> dict[str, BlockCounters]:
    block: dict[str, BlockCounters] = {}
    for entry in entries:
        name = entry.get("device") or entry.get("qdev") or entry.get("node-name")
        stats = entry.get("stats") or {}
        if not name or "rd_bytes" not in stats:
            continue
        block[str(name)] = BlockCounters(int(stats["rd_bytes"]), int(stats.get("wr_bytes", 0)))
    return block


Execute = Callable[[str, "dict[str, Any] | None"], Any]  # QMPSession.execute's shape


def query_qemu(
    path: str,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    guest_stats_interval: int | None = None,
    balloon_path: str = BALLOON_PATH,
    sizes: bool = True,
    pipeline: bool = False,
) -> RemoteInfo:
    """Everything the monitor wants from one qemu, in one session of at most TIMEOUT seconds.

    GUEST_STATS_INTERVAL: when set, make sure the balloon polls guest statistics (sets
    ``guest-stats-polling-interval`` if it is 0, never lowers a value someone else chose).
    Pass it on the first contact with a qemu process, not on every poll.
    SIZES: also ask what rarely changes (``query-cpus-fast``: vCPU count and thread ids;
    ``query-memory-size-summary``: configured memory); without it those fields stay unset and
    without a reason, for a caller that keeps them from an earlier session.
    PIPELINE: send the negotiation and every query in one write (qemu; not on the first
    contact, whose balloon set-up must come before the statistics are read); the answers, and
    the reasons made of them, are the same as one command at a time.
    """
    started = time.monotonic()
    info = RemoteInfo()
    pipelined = pipeline and not guest_stats_interval
    guest_stats = {"path": balloon_path, "property": "guest-stats"}
    ahead: list[tuple[str, dict[str, Any] | None]] = [("query-status", None)]
    if sizes:
        ahead += [("query-cpus-fast", None), ("query-memory-size-summary", None)]
    ahead += [("query-balloon", None), ("qom-get", guest_stats), ("query-blockstats", None)]

    def optional(execute: Execute, fields: tuple[str, ...], command: str) -> Any:
        """Run a query that some QMP servers (older qemu, stratovirt) lack: an error reply
        becomes the reason for FIELDS and the session goes on."""
        try:
            return execute(command, None)
        except QMPCommandError as exc:
            for name in fields:
                info.reasons.setdefault(name, f"{command}: {exc.desc or exc.error_class}")
            return None

    try:
        with QMPSession(path, timeout, negotiate=not pipelined) as qmp:
            execute: Execute = qmp.execute
            if pipelined:
                caps, *answers = qmp.batch([("qmp_capabilities", None), *ahead])
                if isinstance(caps, QMPCommandError):
                    raise caps  # as a failed negotiation in open() does
                execute = _answered(qmp, ahead, answers)
            status = optional(execute, ("status",), "query-status")
            if status is not None:
                info.status = str(status.get("status"))

            if sizes:
                cpus = optional(execute, ("vcpu_count", "vcpu_threads"), "query-cpus-fast")
                if cpus is not None:
                    info.vcpu_threads = [
                        VcpuThread(int(c.get("cpu-index", i)), int(c["thread-id"]))
                        for i, c in enumerate(cpus)
                        if "thread-id" in c
                    ]
                    info.vcpu_count = len(cpus)

                summary = optional(execute, ("mem_configured_bytes",), "query-memory-size-summary")
                if summary and "base-memory" in summary:
                    info.mem_configured_bytes = int(summary["base-memory"]) + int(
                        summary.get("plugged-memory", 0)
                    )

            balloon = True
            try:
                info.mem_guest_visible_bytes = int(execute("query-balloon", None)["actual"])
            except QMPCommandError as exc:
                balloon = False
                if exc.error_class == "DeviceNotActive":
                    why = "no balloon device"
                else:
                    why = f"query-balloon: {exc.desc or exc.error_class}"
                info.reasons["mem_guest_visible_bytes"] = why
                info.reasons["mem_guest_used_bytes"] = why

            if balloon:
                try:
                    if guest_stats_interval:
                        current = qmp.execute(
                            "qom-get",
                            {"path": balloon_path, "property": "guest-stats-polling-interval"},
                        )
                        if not current:
                            qmp.execute(
                                "qom-set",
                                {
                                    "path": balloon_path,
                                    "property": "guest-stats-polling-interval",
                                    "value": int(guest_stats_interval),
                                },
                            )
                    stats = execute("qom-get", guest_stats)
                    used, why = _guest_used(stats or {})
                    if used is not None:
                        info.mem_guest_used_bytes = used
                    else:
                        info.reasons["mem_guest_used_bytes"] = why or "no guest statistics"
                except QMPCommandError as exc:
                    if exc.error_class == "DeviceNotFound":
                        why = f"no balloon at {balloon_path}"
                    else:
                        why = f"balloon guest-stats: {exc.desc or exc.error_class}"
                    info.reasons["mem_guest_used_bytes"] = why

            blockstats = optional(execute, ("block",), "query-blockstats")
            if blockstats is not None:
                info.block = _block_counters(blockstats)
            info.read_at = time.monotonic()
    except QMPError as exc:
        info.error = str(exc)
        info.fail_missing(str(exc))
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        # OverflowError: int() of a number JSON spelled as 1e400 (Python reads infinity)
        info.error = f"unexpected QMP reply: {exc!r}"
        info.fail_missing(info.error)
    info.elapsed_s = time.monotonic() - started
    return info


def _answered(
    qmp: QMPSession, asked: list[tuple[str, dict[str, Any] | None]], answers: list[Any]
) -> Execute:
    """``execute`` for answers a batch already brought: returns (or raises) the answer to
    the same command and arguments; anything not asked ahead goes to the server."""
    ready = {
        (command, json.dumps(arguments, sort_keys=True)): answer
        for (command, arguments), answer in zip(asked, answers, strict=True)
    }

    def execute(command: str, arguments: dict[str, Any] | None = None) -> Any:
        key = (command, json.dumps(arguments, sort_keys=True))
        if key not in ready:
            return qmp.execute(command, arguments)
        answer = ready.pop(key)
        if isinstance(answer, QMPCommandError):
            raise answer
        return answer

    return execute


def qmp_execute(
    path: str, command: str, arguments: dict[str, Any] | None = None, timeout: float = 1.0
) -> Any:
    """Run one command in its own short session. Raises QMPError (or QMPCommandError)."""
    with QMPSession(path, timeout) as qmp:
        return qmp.execute(command, arguments)
