"""The host layer's one event loop: answers, deadlines, subprocess bounds."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tui.host.hostloop import HostLoop, HostLoopError, host_loop, run_tool
from tui.host.tools import child_env as tool_env


def test_runs_coroutines_on_one_thread_of_its_own() -> None:
    loop = HostLoop()
    try:

        async def where() -> str:
            return threading.current_thread().name

        assert loop.run(where(), 2.0) == "mvtui-host-io"
        assert loop.run(where(), 2.0) == "mvtui-host-io"
    finally:
        loop.close()


def test_a_late_coroutine_is_cancelled_and_the_caller_told() -> None:
    loop = HostLoop()
    cancelled = threading.Event()

    async def hangs() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    try:
        with pytest.raises(TimeoutError):
            loop.run(hangs(), 0.1)
        assert cancelled.wait(2.0)
    finally:
        loop.close()


def test_refuses_work_from_its_own_thread() -> None:
    loop = HostLoop()

    async def nested() -> str:
        try:
            loop.submit(asyncio.sleep(0))
        except HostLoopError as exc:
            return str(exc)
        return "accepted"

    try:
        assert "own thread" in loop.run(nested(), 2.0)
    finally:
        loop.close()


def test_the_shared_loop_is_one() -> None:
    assert host_loop() is host_loop()


def test_run_tool_returns_output_and_status() -> None:
    result = host_loop().run(
        run_tool(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], env=tool_env(), timeout=5),
        6,
    )
    assert (result.returncode, result.stdout, result.stderr) == (3, b"out\n", b"err\n")


def test_run_tool_kills_a_tool_past_its_deadline() -> None:
    with pytest.raises(TimeoutError):
        host_loop().run(run_tool(["/bin/sleep", "30"], env=tool_env(), timeout=0.2), 5)


def test_run_tool_bounds_output() -> None:
    with pytest.raises(OSError, match="more than"):
        host_loop().run(
            run_tool(["/bin/cat", "/dev/zero"], env=tool_env(), timeout=5, limit=1 << 20), 6
        )
