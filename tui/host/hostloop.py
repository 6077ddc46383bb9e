"""The host layer's one asyncio event loop, in a background thread of its own.

QMP sessions (qemu.qmp), netlink reads (pyroute2), systemd over D-Bus and tool subprocesses are
asyncio work; they all run on this one loop, shared by the polls, the consoles and the remote
agent, so no caller needs a loop (or a thread pool) of its own. Callers in other threads hand it
a coroutine and wait for the answer under a deadline (``run``), or take a future (``submit``).
Nothing here imports Textual: the UI thread never runs host I/O itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class HostLoopError(RuntimeError):
    """A coroutine was handed to the loop from its own thread (it would wait on itself)."""


class HostLoop:
    """An event loop running forever in a daemon thread (``mvtui-host-io``).

    Daemon: quitting the app never waits on a hung socket or subprocess; ``close`` stops the
    loop and cancels what is still pending."""

    def __init__(self, name: str = "mvtui-host-io") -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._ready.set)
        try:
            self._loop.run_forever()
        finally:
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            if pending:
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> cf.Future[T]:
        """Schedule CORO on the loop; its result (or exception) arrives in the future.
        Cancelling the future cancels the coroutine."""
        if self.in_loop_thread():
            coro.close()
            raise HostLoopError("a coroutine was handed to the host loop from its own thread")
        if not self._thread.is_alive():
            coro.close()
            raise HostLoopError("the host loop has stopped")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run CORO on the loop and wait for it at most TIMEOUT seconds (then it is cancelled
        and ``TimeoutError`` raised). The coroutine should carry its own deadlines too
        (``asyncio.wait_for``): this bound only protects the waiting thread."""
        future = self.submit(coro)
        try:
            return future.result(timeout=max(0.0, timeout))
        except cf.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no answer within {timeout:.1f} s") from None

    def close(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            if not self.in_loop_thread():
                self._thread.join(timeout=2.0)


_shared: HostLoop | None = None
_shared_lock = threading.Lock()


def host_loop() -> HostLoop:
    """The process's host loop, started on first use (``list`` without live queries never
    starts it)."""
    global _shared
    with _shared_lock:
        if _shared is None or not _shared._thread.is_alive():
            _shared = HostLoop()
        return _shared


@dataclass(frozen=True)
class ToolResult:
    returncode: int
    stdout: bytes
    stderr: bytes


async def run_tool(
    argv: Sequence[str],
    *,
    env: dict[str, str],
    timeout: float,
    stdin: bytes | None = None,
    limit: int = 64 << 20,
) -> ToolResult:
    """Run an external tool (ARGV[0] an absolute path, ENV built by us: ``tui.host.tools``)
    as an asyncio subprocess. Past TIMEOUT the process is killed (by its pid: we started it)
    and reaped, and ``TimeoutError`` raised. Output beyond LIMIT bytes per stream is cut off
    (the tool is killed): a runaway tool never fills our memory."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,
    )

    async def drain(stream: asyncio.StreamReader | None) -> bytes:
        if stream is None:
            return b""
        chunks: list[bytes] = []
        size = 0
        while chunk := await stream.read(65536):
            size += len(chunk)
            if size > limit:
                proc.kill()
                raise OSError(f"{argv[0]} wrote more than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def talk() -> ToolResult:
        if stdin is not None and proc.stdin is not None:
            proc.stdin.write(stdin)
            await proc.stdin.drain()
            proc.stdin.close()
        out, err = await asyncio.gather(drain(proc.stdout), drain(proc.stderr))
        return ToolResult(await proc.wait(), out, err)

    try:
        return await asyncio.wait_for(talk(), timeout)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await asyncio.shield(proc.wait())
        raise
