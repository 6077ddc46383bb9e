"""The app's side of the agent: ``RemoteSource``, a ``Source`` whose snapshots come from
``microvm-tui agent`` on another host, over the admin's own ssh.

Each host is one asyncio task on the host layer's event loop (``tui.host.hostloop``): it starts
``ssh -T [options] HOST AGENT``, checks the agent's hello, keeps the latest snapshot (the first
whole, then patches), and when the session ends for any reason (unreachable host, refused key,
changed host key, no agent, a timeout, a protocol violation) keeps ssh's own reason in one line
(``error``) and tries again with backoff. A host's reads never wait on another host's.

Everything the agent sends is untrusted: lines are bounded (``protocol.MAX_LINE``, the stream
reader's limit), messages decoded strictly (``codec``), text sanitised; nothing it names is
opened here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tui.agent import codec, protocol
from tui.agent.hosts import RemoteHost
from tui.agent.remote_jobs import RemoteJobs
from tui.agent.ssh import ControlDirError, control_dir, ssh_argv, ssh_reason
from tui.feed import Snapshot
from tui.host.hostloop import HostLoop, host_loop
from tui.host.sampling.timeline import Timeline
from tui.host.text import sanitise
from tui.host.tools import child_env

CONNECT_TIMEOUT_S = 10.0  # ssh's ConnectTimeout
HELLO_GRACE_S = 20.0  # after connecting: the remote login and the agent's start
FIRST_SNAPSHOT_S = 45.0  # poll waits this long for a host's first snapshot
BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 30.0
STDERR_KEEP = 64 << 10  # bytes of ssh's stderr kept (its reason is the last lines)
HISTORY_LEN = 300


class RemoteHostError(RuntimeError):
    """A host's poll without a snapshot: the message is one line, "NAME: why"."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host}: {reason}")
        self.host = host
        self.reason = reason


class _SessionEnd(Exception):
    pass


class RemoteSource:
    """Snapshots of HOST. ``poll`` waits for the next one (bounded), or raises
    ``RemoteHostError`` with the host's current reason."""

    def __init__(
        self,
        host: RemoteHost,
        *,
        interval: float = 1.0,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        backoff_max: float = BACKOFF_MAX_S,
        persist: str = "60",
        silence: float | None = None,
        loop: HostLoop | None = None,
    ) -> None:
        self.host = host
        self.interval = interval
        self.connect_timeout = connect_timeout
        self.backoff_max = backoff_max
        self.persist = persist
        # Without a message for this long the session is taken for dead (the agent sends
        # one every interval).
        self.silence = silence if silence is not None else max(3 * interval, 15.0)
        self.hello: dict[str, Any] | None = None
        # Why nothing may change on this host: our own config's, else the agent's (sanitised).
        self.read_only: str | None = self._config_read_only()
        self.error: str | None = None  # why the host has no session now (one line)
        self.agent_error: str | None = None  # the agent's last "poll failed"
        self.sessions = 0  # sessions started (tests and the fleet view)
        self.rtt_s: float | None = None  # from starting ssh to the agent's hello
        self.bytes_in = 0  # protocol bytes received from the agent (all sessions)
        self.decoder: codec.SnapshotDecoder | None = None  # the current session's
        self._cond = threading.Condition()
        self._snapshot: Snapshot | None = None
        self._seq = 0  # snapshots received (all sessions)
        self._returned = 0  # the last one poll returned
        self._errors = 0  # errors recorded (all sessions)
        self._errors_seen = 0
        self._focus: str | None = None
        self._timeline = Timeline(HISTORY_LEN)
        self._proc: asyncio.subprocess.Process | None = None
        self._closed = False
        self._loop = loop or host_loop()
        self.jobs = RemoteJobs(host.name, self._send_now)  # jobs on the host (agent_jobs)
        self._task = self._loop.submit(self._run())

    def _config_read_only(self) -> str | None:
        if self.host.read_only:
            return f"read_only = true in [hosts.{self.host.name}]"
        return None

    # --- the Source protocol (called from the app's poll thread) --------------------------

    def set_focus(self, focus: str | None) -> None:
        """Tell the agent the VM in focus now (it polls at once with it), if it changed."""
        if focus != self._focus:
            self._focus = focus
            self._send({"type": "focus", "vm": focus})

    def poll(self, focus: str | None = None) -> Snapshot:
        self.set_focus(focus)
        first = self._returned == 0
        wait = FIRST_SNAPSHOT_S if first else max(2 * self.interval, 3.0)
        deadline = time.monotonic() + wait
        with self._cond:
            while self._seq == self._returned and self._errors == self._errors_seen:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    break
                self._cond.wait(left)
            self._errors_seen = self._errors
            if self._seq == self._returned or self._snapshot is None:
                why = self.error or self.agent_error or "no snapshot from the agent in time"
                raise RemoteHostError(self.host.name, why)
            self._returned = self._seq
            snapshot = self._snapshot
        return self._with_history(snapshot)

    def poll_complete(self, timeout: float = FIRST_SNAPSHOT_S) -> Snapshot:
        """The next snapshot that is not ``partial`` (the state dirs only, sent first),
        for one look at the host (`list`)."""
        deadline = time.monotonic() + timeout
        while True:
            snap = self.poll()
            if not snap.partial or time.monotonic() > deadline:
                return snap

    def close(self) -> None:
        self._closed = True
        self._task.cancel()
        with self._cond:
            self._cond.notify_all()

    @property
    def connected(self) -> bool:
        return self.error is None and self._snapshot is not None

    # --- the history: the app keeps its own, from the samples (the agent sends none) -------

    def _with_history(self, snap: Snapshot) -> Snapshot:
        names = {vm.name for vm in snap.inventory.vms}
        history = self._timeline.history
        fresh = {  # a patch without new figures repeats the last sample: not a new point
            name: s
            for name, s in snap.samples.items()
            if not history.get(name) or history[name][-1].t != s.t
        }
        self._timeline.record(names, fresh)
        snap.history = self._timeline.points()
        return snap

    # --- the host loop's side ---------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        data = protocol.encode(message, protocol.MAX_APP_LINE)
        with contextlib.suppress(Exception):
            self._loop.submit(self._write(data))

    def _send_now(self, message: dict[str, Any]) -> bool:
        """Send MESSAGE on the current session; False when there is none (jobs)."""
        if self._proc is None or self.hello is None or self.error is not None:
            return False
        self._send(message)
        return True

    async def _write(self, data: bytes) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            return
        with contextlib.suppress(OSError, TimeoutError, ConnectionError):
            proc.stdin.write(data)
            await asyncio.wait_for(proc.stdin.drain(), 5)

    def _set_error(self, reason: str) -> None:
        with self._cond:
            self.error = sanitise(reason, 400)
            self._errors += 1
            self._cond.notify_all()

    async def _run(self) -> None:
        backoff = BACKOFF_START_S
        while not self._closed:
            had_snapshot = await self._session()
            if self._closed:
                break
            if had_snapshot:
                backoff = BACKOFF_START_S
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.backoff_max)

    def argv(self) -> list[str]:
        try:
            control: Path | None = control_dir()
        except ControlDirError:
            control = None  # no sharing rather than a socket in a place others can reach
        return ssh_argv(
            self.host.ssh,
            [self.host.agent],
            control=control,
            connect_timeout=self.connect_timeout,
            persist=self.persist,
        )

    async def _session(self) -> bool:
        """One ssh session; True if it delivered a snapshot. Its end is recorded in ``error``."""
        self.sessions += 1
        env = child_env()
        if os.environ.get("SSH_AUTH_SOCK"):  # the admin's agent holds their keys
            env["SSH_AUTH_SOCK"] = os.environ["SSH_AUTH_SOCK"]
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,
                limit=protocol.MAX_LINE + 1,
            )
        except OSError as exc:
            self._set_error(f"cannot run ssh: {exc.strerror or exc}")
            return False
        self._proc = proc
        stderr = bytearray()
        drain = asyncio.create_task(self._drain(proc.stderr, stderr))
        got = False
        reason: str | None = None
        try:
            got = await self._talk(proc, started)
        except _SessionEnd as end:
            reason = str(end)
        except (protocol.ProtocolError, codec.CodecError) as exc:
            reason = f"the agent sent {exc}"
        except Exception as exc:  # never lose the host's task: say it, retry
            reason = f"internal error: {type(exc).__name__}: {exc}"
        finally:
            # At the end of its output ssh is ending by itself: wait for it first (killing
            # would reap it behind asyncio's back: Popen.send_signal polls first).
            if proc.returncode is None and reason is None and not self._closed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 5)
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 5)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(drain, 2)
            self._proc = None
        if self._closed:
            return got
        if reason is None:  # the stream ended: ssh's (or the remote shell's) own reason
            code = proc.returncode
            said = ssh_reason(bytes(stderr), code)
            if code == 127:
                said = f"no agent on the host: {said}"
            reason = said
        self._set_error(reason)
        return got

    @staticmethod
    async def _drain(stream: asyncio.StreamReader | None, keep: bytearray) -> None:
        if stream is None:
            return
        while chunk := await stream.read(65536):
            keep += chunk
            del keep[:-STDERR_KEEP]

    async def _read(self, proc: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        except TimeoutError:
            raise _SessionEnd(f"no message from the agent in {timeout:.0f} s") from None
        except (ValueError, asyncio.LimitOverrunError):
            raise protocol.ProtocolError(f"a line over {protocol.MAX_LINE} bytes") from None
        if not line:
            raise EOFError
        self.bytes_in += len(line)
        return protocol.decode(line, protocol.AGENT_TYPES)

    async def _talk(self, proc: asyncio.subprocess.Process, started: float) -> bool:
        got = False
        try:
            hello = await self._read(proc, self.connect_timeout + HELLO_GRACE_S)
        except EOFError:
            return False
        problem = protocol.hello_problem(hello)
        if problem is not None:
            raise _SessionEnd(problem)
        self.rtt_s = time.monotonic() - started
        reason = hello.get("read_only")
        agents = sanitise(reason, 200) if isinstance(reason, str) else None
        self.read_only = self._config_read_only() or agents
        self.hello = hello
        await self._write(
            protocol.encode(
                {
                    "type": "start",
                    "protocol": protocol.PROTOCOL,
                    "app": protocol.app_version(),
                    "interval": self.interval,
                    "focus": self._focus,
                }
            )
        )
        silence = self.silence
        decoder = codec.SnapshotDecoder()  # this session's: a new session starts whole
        self.decoder = decoder
        while True:
            try:
                message = await self._read(proc, silence)
            except EOFError:
                return got
            kind = message["type"]
            if kind in ("job", "refused", "plan"):
                self.jobs.handle(message)
                continue
            if kind == "error":
                # Said when no snapshot follows in time; the session goes on.
                self.agent_error = protocol.message_text(message)
                continue
            if kind != "snapshot":
                raise protocol.ProtocolError(f"a second {kind} message")
            if "full" in message:
                snapshot = decoder.full(message["full"])
            elif decoder.wire is None:
                raise protocol.ProtocolError("a patch before the first whole snapshot")
            else:
                snapshot = decoder.patch(message.get("patch"))
            got = True
            with self._cond:
                self._snapshot = snapshot
                self._seq += 1
                self.error = None
                self.agent_error = None
                self._cond.notify_all()


def remote_sources(hosts: Sequence[RemoteHost], **options: Any) -> list[RemoteSource]:
    """One source per host, all connecting at once (none waits for another)."""
    return [RemoteSource(h, **options) for h in hosts]
