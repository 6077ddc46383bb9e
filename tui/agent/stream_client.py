"""The app's side of one extra agent session (a VM's console or logs: ``tui.agent.streams``):
``ssh -T [options] HOST <agent> SESSION VM`` through the host's shared connection, on the host
layer's event loop.

Everything the agent sends is untrusted: lines are bounded (the stream reader's limit),
messages decoded strictly, text sanitised by the callers' decoders. When the session ends
without a message of the agent's, the reason is ssh's own, in one line. ``end`` ends ssh by
its pid (our child) and reaps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

from tui.agent import protocol, streams
from tui.agent.hosts import RemoteHost
from tui.agent.ssh import ControlDirError, control_dir, ssh_argv, ssh_reason
from tui.host.tools import child_env

CONNECT_TIMEOUT_S = 10.0
HELLO_GRACE_S = 20.0  # after connecting: the remote login and the agent's start
STDERR_KEEP = 64 << 10


class SessionEnd(Exception):
    """The session ended; the message is one line (ssh's reason, the agent's error, ...)."""


class AgentSession:
    """One ssh session to HOST's agent for SESSION (console, logs) of VM."""

    def __init__(
        self,
        host: RemoteHost,
        session: str,
        vm: str,
        types: frozenset[str],
        *,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        persist: str = "60",
    ) -> None:
        self.host = host
        self.session = session
        self.vm = vm
        self.types = types
        self.connect_timeout = connect_timeout
        self.persist = persist
        self.proc: asyncio.subprocess.Process | None = None
        self.read_only: str | None = None  # the agent's reason, sanitised
        self.bytes_in = 0
        self._stderr = bytearray()
        self._drain: asyncio.Task[None] | None = None

    def argv(self) -> list[str]:
        try:
            control: Path | None = control_dir()
        except ControlDirError:
            control = None  # no sharing rather than a socket in a place others can reach
        command = streams.remote_command(self.host.agent, self.session, self.vm)
        return ssh_argv(
            self.host.ssh,
            command,
            control=control,
            connect_timeout=self.connect_timeout,
            persist=self.persist,
        )

    async def start(self) -> None:
        """Start ssh and check the agent's hello (``SessionEnd`` with the reason if not)."""
        try:
            argv = self.argv()
        except ValueError as exc:
            raise SessionEnd(str(exc)) from None
        env = child_env()
        if os.environ.get("SSH_AUTH_SOCK"):  # the admin's agent holds their keys
            env["SSH_AUTH_SOCK"] = os.environ["SSH_AUTH_SOCK"]
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,
                limit=streams.MAX_STREAM_LINE + 1,
            )
        except OSError as exc:
            raise SessionEnd(f"cannot run ssh: {exc.strerror or exc}") from None
        self._drain = asyncio.create_task(self._keep_stderr())
        hello = await self.read(self.connect_timeout + HELLO_GRACE_S)
        problem = protocol.hello_problem(hello)
        if problem is not None:
            raise SessionEnd(problem)
        reason = hello.get("read_only")
        self.read_only = protocol.message_text(hello, "read_only") if reason is not None else None

    async def _keep_stderr(self) -> None:
        proc = self.proc
        if proc is None or proc.stderr is None:
            return
        while chunk := await proc.stderr.read(65536):
            self._stderr += chunk
            del self._stderr[:-STDERR_KEEP]

    async def read(self, timeout: float | None = None) -> dict[str, Any]:
        """The agent's next message. ``SessionEnd`` at the end of the stream (ssh's reason) or
        after TIMEOUT; ``ProtocolError`` for a line that is not one of ours."""
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        except TimeoutError:
            raise SessionEnd(f"no message from the agent in {timeout:.0f} s") from None
        except (ValueError, asyncio.LimitOverrunError):
            raise protocol.ProtocolError(f"a line over {streams.MAX_STREAM_LINE} bytes") from None
        if not line.endswith(b"\n"):
            raise SessionEnd(await self.ended_reason())
        self.bytes_in += len(line)
        message = protocol.decode(line, self.types, streams.MAX_STREAM_LINE)
        if message["type"] == "error":
            raise SessionEnd(protocol.message_text(message))
        return message

    async def ended_reason(self) -> str:
        """Why the stream ended: ssh's (or the remote shell's) own line."""
        proc = self.proc
        if proc is None:
            return "ssh did not start"
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 5)
        if self._drain is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._drain), 2)
        said = ssh_reason(bytes(self._stderr), proc.returncode)
        if proc.returncode == 127:
            said = f"no agent on the host: {said}"
        return said

    async def send(self, message: dict[str, Any]) -> None:
        proc = self.proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            return
        data = protocol.encode(message, streams.MAX_STREAM_LINE)
        with contextlib.suppress(OSError, TimeoutError, ConnectionError):
            proc.stdin.write(data)
            await asyncio.wait_for(proc.stdin.drain(), 5)

    async def end(self) -> None:
        """End ssh (our child, by its pid) and reap it. Safe to call twice."""
        proc = self.proc
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 5)
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._drain
