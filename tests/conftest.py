"""Shared fixtures and helpers for the test suite."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import tests.hypothesis_profiles  # noqa: F401  (registers the profiles before Hypothesis loads one)

T = TypeVar("T")


_CACHE_KEY = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    # Cancel tests send SIGINT to children: it must not be inherited as ignored (CI may start
    # us as a background job of a non-interactive shell).
    from tui.host.signals import let_sigint_reach_children

    let_sigint_reach_children()
    # `list` keeps runner parses in $XDG_CACHE_HOME: the suite's, not the user's.
    cache = tempfile.mkdtemp(prefix="mvtui-test-cache-")
    config.stash[_CACHE_KEY] = cache
    os.environ["XDG_CACHE_HOME"] = cache
    # Config: never the machine's own files (/etc/microvm-tui.toml, ~/.config/microvm-tui).
    os.environ["MICROVM_TUI_SYSTEM_CONFIG"] = os.path.join(cache, "no-system-config.toml")
    os.environ["XDG_CONFIG_HOME"] = os.path.join(cache, "no-config-home")
    os.environ.pop("MICROVM_TUI_CONFIG", None)


def pytest_unconfigure(config: pytest.Config) -> None:
    cache = config.stash.get(_CACHE_KEY, None)
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)


# --- polling real state with a deadline (never fixed sleeps as synchronisation) ---------------


def wait_for(
    predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.1, what: str = ""
) -> T:
    """Call predicate until it returns something truthy, and return that; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or predicate}")
        time.sleep(interval)


async def until_in_app(
    pilot: Any,
    predicate: Callable[[], T],
    timeout: float,
    *,
    what: str = "",
    step: float = 0.05,
    detail: Callable[[], str] | None = None,
) -> T:
    """``wait_for`` inside a running Textual app: the app runs (``pilot.pause``) between
    looks, so its workers and messages move on. DETAIL: more to say on a timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            more = detail() if detail is not None else ""
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what or predicate}{more}"
            )
        await pilot.pause(step)


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., object]:
    return wait_for


# --- the lab: a real microvm.nix host in a folder (tui/lab) ----------------------------------


def lab_root(prefix: str = "mvtui-lab-") -> Path:
    """A fresh directory for a lab (under /var/tmp: short, safe path, same filesystem as tmp)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))


def require_lab_host() -> None:
    """Skip only when not root; missing tools FAIL, so CI cannot pass by skipping."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    from tui.lab.prereq import missing_prerequisites

    problems = missing_prerequisites()
    if problems:
        pytest.fail("the lab cannot run on this machine:\n  " + "\n  ".join(problems), False)


@pytest.fixture(scope="session")
def lab() -> Iterator[object]:
    """One lab for the whole session: up once, down at the end (even after failures)."""
    require_lab_host()
    from tui.lab import Lab

    the_lab = Lab(lab_root())
    try:
        the_lab.up()
    except BaseException:
        the_lab.down()
        raise
    try:
        yield the_lab
    finally:
        the_lab.down()


@pytest.fixture(scope="module")
def the_lab(request: pytest.FixtureRequest) -> Any:
    """The session's lab, or a lab already up at $MVTUI_TEST_LAB (a quicker loop while writing
    the action tests)."""
    root = os.environ.get("MVTUI_TEST_LAB")
    if root:
        from tui.lab import Lab

        return Lab(Path(root))
    return request.getfixturevalue("lab")


@contextlib.contextmanager
def lab_sshd(name: str) -> Iterator[Any]:
    """A lab sshd of its own on loopback (tui/lab/sshd.py) for one test module, and its files
    removed after. Only root can run it (/run/sshd, root login)."""
    if os.geteuid() != 0:
        pytest.skip("the lab's sshd needs root (/run/sshd, root login)")
    from tui.lab.sshd import LabSshd

    root = lab_root(f"mvtui-{name}-")
    server = LabSshd(root / "ssh", alias=f"{name}-test")
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def vm_running(lab: Any, name: str, timeout: float = 120) -> Iterator[None]:
    """VM NAME of LAB running for a test that restarts it, and stopped again after: the lab's
    `idle` is installed but stopped, and later tests count on it staying so."""
    unit = f"microvm@{name}.service"
    lab.manager.systemctl("start", unit, timeout=timeout)
    try:
        yield
    finally:
        lab.manager.systemctl("stop", unit, timeout=timeout)


# --- snapshots: SVGs live in the top-level snapshots/ folder, never deleted by a partial run ----

from tests.snapshot_support import snapshots_in_top_level_folder  # noqa: E402, F401
