"""Issue 9.6 and 9.9: special files and links planted in a state dir or runner never hang a
read, fill memory, or get echoed; quitting never waits on a stuck poll.

Every test here ran into a hang, a flood or a leak on the code before the fix; each read that
could hang or flood runs in a child process with a deadline and a memory cap, so a regression
fails the test instead of hanging the suite or exhausting the machine's memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.synthetic_host import make_host
from tui.host.console.marker import TakeoverMarker, read_marker, write_marker
from tui.host.statedir import read_vm

ROOT = Path(__file__).resolve().parent.parent


def _list_json(state: Path, timeout: float = 20.0) -> dict:
    """`microvm-tui list --json` in a child process with a memory cap: a hang or a flood
    fails the test instead of the suite."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(state.parent)}
    proc = subprocess.run(
        [
            "prlimit",
            "--as=1500000000",
            sys.executable,
            "-m",
            "tui",
            "list",
            "--json",
            "--state-dir",
            str(state),
        ],
        env=env,
        capture_output=True,
        timeout=timeout,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def host(tmp_path: Path) -> Path:
    return make_host(tmp_path, 2)


def test_a_fifo_as_flake_does_not_hang_list(host: Path) -> None:
    flake = host / "vm0000" / "flake"
    flake.unlink()
    os.mkfifo(flake)
    data = _list_json(host)
    vm = next(v for v in data["vms"] if v["name"] == "vm0000")
    assert vm["flake"] is None
    assert "the flake file is a FIFO, not a regular file" in vm["problems"]
    other = next(v for v in data["vms"] if v["name"] == "vm0001")
    assert other["flake"] == "git+file:///etc/nixos"  # the other VM is listed as before


def test_a_flake_link_to_a_secret_is_not_echoed(host: Path, tmp_path: Path) -> None:
    secret = tmp_path / "root-only"
    secret.write_text("hunter2-is-the-password")
    secret.chmod(0o600)
    flake = host / "vm0000" / "flake"
    flake.unlink()
    os.symlink(secret, flake)
    data = _list_json(host)
    assert "hunter2" not in json.dumps(data)
    vm = next(v for v in data["vms"] if v["name"] == "vm0000")
    assert "the flake file is a symlink; not followed" in vm["problems"]


def _marker_in_child(vm_dir: Path) -> str:
    """``read_marker`` of VM_DIR in a child with a memory cap and a deadline (a regression
    reads /dev/zero until memory runs out, or blocks on a FIFO): what it returned."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from pathlib import Path\n"
        "from tui.host.console.marker import read_marker\n"
        "from tui.host.statedir import read_vm\n"
        f"print(read_marker(read_vm(Path({str(vm_dir)!r}))))\n"
    )
    proc = subprocess.run(
        ["prlimit", "--as=1500000000", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-500:]
    return proc.stdout.strip()


@pytest.mark.parametrize("name", ["flake", "microvm-tui.console.json"])
def test_a_link_to_dev_zero_is_never_read(host: Path, name: str) -> None:
    path = host / "vm0000" / name
    path.unlink(missing_ok=True)
    os.symlink("/dev/zero", path)
    _list_json(host)
    assert _marker_in_child(host / "vm0000") == "None"


def test_the_marker_is_never_read_from_a_fifo_or_a_huge_file(tmp_path: Path) -> None:
    vm_dir = make_host(tmp_path, 1) / "vm0000"
    marker = vm_dir / "microvm-tui.console.json"
    os.mkfifo(marker)
    assert _marker_in_child(vm_dir) == "None"  # at once: O_NONBLOCK, not a regular file
    os.unlink(marker)
    with open(marker, "wb") as fh:
        fh.truncate(10 << 30)  # 10 GiB, sparse: the size says no before a byte is read
    assert _marker_in_child(vm_dir) == "None"
    os.unlink(marker)
    write_marker(read_vm(vm_dir), TakeoverMarker("s.sock", "t.log", 7))
    assert read_marker(read_vm(vm_dir)) is not None


def test_runner_files_that_are_fifos_or_devices(host: Path, tmp_path: Path) -> None:
    runner = Path(os.path.realpath(host / "vm0000" / "current"))
    copy = tmp_path / "runner-copy"
    shutil.copytree(runner, copy, symlinks=True)
    script = copy / "bin" / "microvm-run"
    script.unlink()
    os.mkfifo(script)
    hyp = copy / "share" / "microvm" / "hypervisor"
    hyp.unlink()
    os.symlink("/dev/zero", hyp)
    (host / "vm0000" / "current").unlink()
    os.symlink(copy, host / "vm0000" / "current")
    data = _list_json(host)
    vm = next(v for v in data["vms"] if v["name"] == "vm0000")
    assert "bin/microvm-run is a FIFO, not a regular file" in vm["problems"]
    assert "share/microvm/hypervisor is not a regular file" in vm["problems"]


def test_a_permission_error_says_what_could_not_be_read() -> None:
    # Run as nobody in a child (root reads everything): the runner's share dir and the flake
    # are root-only. The host lives in a dir nobody can reach (pytest's tmp dirs are 0700).
    top = Path(tempfile.mkdtemp(prefix="mvtui-perm-"))
    try:
        top.chmod(0o755)
        host = make_host(top, 1)
        runner = Path(os.path.realpath(host / "vm0000" / "current"))
        share = runner / "share" / "microvm"
        share.chmod(0o700)
        (host / "vm0000" / "flake").chmod(0o600)
        code = AS_NOBODY.format(root=str(ROOT), state=str(host))
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
    finally:
        shutil.rmtree(top)
    assert proc.returncode == 0, proc.stderr
    problems = json.loads(proc.stdout)
    assert not any("internal error" in p or "PermissionError" in p for p in problems), problems
    assert f"{share} could not be read: Permission denied" in problems
    assert "cannot read the flake file: Permission denied" in problems


AS_NOBODY = """
import json, os, sys
sys.path.insert(0, {root!r})
from pathlib import Path
import tui.host.inventory, tui.host.runners.dispatch, tui.host.statedir
from tui.host.settings import HostSettings
os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)
inv = tui.host.inventory.read_inventory(HostSettings(state_dir=Path({state!r})), units=False,
                                        links=False)[0]
print(json.dumps(next(v for v in inv.vms if v.name == "vm0000").problems))
"""


# --- quitting never waits on a stuck poll ------------------------------------------------


def test_q_quits_at_once_while_a_poll_is_stuck_in_a_read(tmp_path: Path) -> None:
    """A poll (and a pool thread it waits on, as the sampler's) blocked on a real FIFO that
    nobody writes: q must still end the process within a few seconds."""
    if shutil.which("tmux") is None:
        pytest.fail("tmux is needed for this test")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    pidfile = tmp_path / "pid"
    stuck = tmp_path / "stuck"
    script = tmp_path / "run.py"
    script.write_text(
        STUCK_APP.format(root=str(ROOT), fifo=str(fifo), pidfile=str(pidfile), stuck=str(stuck))
    )
    session = f"mvtui-stuck-{os.getpid()}"
    command = f"{sys.executable} {script}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command], check=True
    )
    try:
        pid = int(_wait(lambda: pidfile.exists() and pidfile.read_text().strip(), 30))
        _wait(stuck.exists, 30)  # the second poll is inside its read
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        t0 = time.monotonic()
        _wait(lambda: not _alive(pid), 10)
        assert time.monotonic() - t0 < 10
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
        # Let nothing stay blocked on the FIFO (a regression leaves the process hanging).
        with open(os.open(fifo, os.O_RDWR | os.O_NONBLOCK), "wb", closefd=True):
            pass


STUCK_APP = """
import concurrent.futures as cf, os, sys
sys.path.insert(0, {root!r})
from tui.app import run_app
from tui.config import Settings
from tui.feed.recording import load_frames
frames = load_frames({root!r} + "/tests/fixtures/monitor/lab.json")
pool = cf.ThreadPoolExecutor(1, thread_name_prefix="sampler")

class StuckSource:
    calls = 0
    def poll(self, focus=None):
        StuckSource.calls += 1
        if StuckSource.calls == 1:
            return frames[0]
        open({stuck!r}, "w").close()
        return pool.submit(lambda: open({fifo!r}, "rb").read()).result()
    def close(self):
        pass

open({pidfile!r}, "w").write(str(os.getpid()))
sys.exit(run_app(Settings(interval=0.5), StuckSource()))
"""


def _wait(predicate, timeout: float):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_shutting_down_waits_for_stuck_jobs_only_as_long_as_asked(tmp_path: Path) -> None:
    """Two jobs whose actions are stuck in a read of a real FIFO nobody writes: the runner's
    shutdown (what quitting calls) returns after its timeout in all, not per job."""
    from tui.host.actions.jobs import JobRunner
    from tui.host.actions.operations import Outcome
    from tui.host.settings import HostSettings

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    started = threading.Barrier(3)

    def stuck(settings, name, reporter, cancel):  # type: ignore[no-untyped-def]
        started.wait()
        with open(fifo, "rb") as fh:  # blocks: nobody opens the FIFO for writing
            fh.read()
        return Outcome("read")

    runner = JobRunner(HostSettings(state_dir=tmp_path), actions={"stuck": stuck})
    jobs = [runner.submit("stuck", "a"), runner.submit("stuck", "b")]
    started.wait(10)
    t0 = time.monotonic()
    try:
        runner.shutdown(1.0)
        assert time.monotonic() - t0 < 1.8
    finally:
        # Let the readers go: a writer's open and close ends their reads (non-blocking: once
        # they are gone, there is no reader to wait for).
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        for job in jobs:
            runner.wait(job.id, 10)
