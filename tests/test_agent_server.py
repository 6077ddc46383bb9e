"""`microvm-tui agent` (tui/agent/server.py), run as a real process on pipes: hello, start,
a whole snapshot then patches, the end of stdin ends it; version mismatch and garbage from the
app end the session with one line; a non-root agent says it is read-only."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui.agent import codec, protocol
from tui.agent.server import Agent
from tui.config import Settings
from tui.host.settings import HostSettings

REPO = Path(__file__).resolve().parent.parent


def start_agent(state_dir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tui", "--state-dir", str(state_dir), "agent"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def read_message(proc: subprocess.Popen[bytes], timeout: float = 20) -> dict:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the agent said nothing in time"
    line = proc.stdout.readline()
    assert line, f"the agent ended: {proc.stderr.read() if proc.stderr else b''!r}"
    return protocol.decode(line, protocol.AGENT_TYPES)


def send(proc: subprocess.Popen[bytes], message: dict) -> None:
    assert proc.stdin is not None
    proc.stdin.write(protocol.encode(message))
    proc.stdin.flush()


def test_a_session_hello_start_full_then_patches(tmp_path: Path) -> None:
    (tmp_path / "alpha").mkdir()
    proc = start_agent(tmp_path)
    try:
        hello = read_message(proc)
        assert hello["type"] == "hello"
        assert hello["protocol"] == protocol.PROTOCOL
        assert hello["app"] == protocol.app_version()
        assert hello["host"]["hostname"] == os.uname().nodename
        assert hello["host"]["state_dir"] == str(tmp_path)
        assert hello["read_only"] is None  # root
        send(proc, {"type": "start", "protocol": protocol.PROTOCOL, "app": "t", "interval": 0.2})
        first = read_message(proc)
        assert first["type"] == "snapshot" and first["seq"] == 1 and "full" in first
        state = first["full"]
        assert [vm.name for vm in codec.snapshot_from_wire(state).inventory.vms] == ["alpha"]
        (tmp_path / "beta").mkdir()
        deadline = time.monotonic() + 20
        seq = 1
        while True:
            message = read_message(proc)
            assert message["type"] == "snapshot" and "patch" in message
            assert message["seq"] == seq + 1
            seq = message["seq"]
            codec.apply_patch(state, message["patch"])
            names = [vm.name for vm in codec.snapshot_from_wire(state).inventory.vms]
            if "beta" in names:
                assert "beta" in json.dumps(message["patch"])
                assert "alpha" not in json.dumps(message["patch"]["sub"]["inventory"])
                break
            assert time.monotonic() < deadline, "beta never arrived"
        send(proc, {"type": "focus", "vm": "beta"})
        send(proc, {"type": "poll"})
        assert read_message(proc)["seq"] == seq + 1
        assert proc.stdin is not None
        proc.stdin.close()  # the app (or the connection) went: the agent ends
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_version_mismatch_is_one_line_naming_both(tmp_path: Path) -> None:
    proc = start_agent(tmp_path)
    try:
        read_message(proc)
        send(proc, {"type": "start", "protocol": 99, "app": "9.9.9"})
        error = read_message(proc)
        assert error == {
            "type": "error",
            "message": f"version mismatch: the agent (microvm-tui {protocol.app_version()}) "
            f"speaks protocol {protocol.PROTOCOL}, the app (microvm-tui 9.9.9) protocol 99",
        }
        assert proc.wait(timeout=20) == 2
        assert proc.stderr is not None
        assert proc.stderr.read().decode().strip() == f"microvm-tui agent: {error['message']}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_garbage_from_the_app_ends_the_session_with_one_line(tmp_path: Path) -> None:
    proc = start_agent(tmp_path)
    try:
        read_message(proc)
        assert proc.stdin is not None
        proc.stdin.write(b"\x1b[2J{{{ not json\n")
        proc.stdin.flush()
        error = read_message(proc)
        assert error["type"] == "error" and error["message"].startswith("the app sent not JSON")
        assert proc.wait(timeout=20) == 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_non_root_agent_is_read_only_and_says_why(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to become another user")
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become nobody, then be an agent on the pipes
        try:
            os.close(to_child_w)
            os.close(from_child_r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            settings = Settings(host=HostSettings(state_dir=tmp_path, cache_dir=None))
            agent = Agent(settings, os.fdopen(to_child_r, "rb"), os.fdopen(from_child_w, "wb"))
            os._exit(agent.run())
        except BaseException:
            os._exit(99)
    os.close(to_child_r)
    os.close(from_child_w)
    with os.fdopen(from_child_r, "rb") as out:
        hello = protocol.decode(out.readline(), protocol.AGENT_TYPES)
        os.close(to_child_w)  # no start: the agent ends
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert hello["read_only"] == "the agent runs as nobody (uid 65534), not root"
    assert hello["host"]["uid"] == 65534
