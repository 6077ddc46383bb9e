"""Links as the monitor reads them: sysfs in our own network namespace, pyroute2 on the host
loop in another (``rtnl.NamespaceLinks``: one socket made in the namespace, the links dumped
once and followed by the kernel's notifications, the counters asked each poll). Real
namespaces of the test's own (``ip netns add``), removed at the end."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui.host import links as links_mod
from tui.host import rtnl
from tui.host.hostloop import host_loop
from tui.host.links import Link, LinkReader, LinkTable
from tui.host.rtnl import NamespaceLinks

ROOT = Path(__file__).resolve().parent.parent
IP = shutil.which("ip") or "/usr/sbin/ip"


def _ip(*args: str) -> None:
    subprocess.run([IP, *args], check=True, capture_output=True)


def _ip_batch(netns: str, lines: list[str]) -> None:
    subprocess.run(
        [IP, "-n", netns, "-batch", "-"],
        input="\n".join(lines) + "\n",
        text=True,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0 or not os.path.exists(IP):
        pytest.skip("making a network namespace needs root and iproute2")
    name = f"mvtui-test-{uuid.uuid4().hex[:8]}"
    _ip("netns", "add", name)
    try:
        yield name
    finally:
        subprocess.run([IP, "netns", "del", name], capture_output=True)


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _children() -> list[int]:
    """Our child processes (zombies too)."""
    mine = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes()
            except OSError:
                continue
            if stat.rsplit(b")", 1)[1].split()[1].decode() == mine:
                found.append(int(entry))
    return found


def _without_counters(links: dict[str, Link]) -> dict[str, Link]:
    return {
        name: Link(**{**vars(link), "rx_bytes": None, "tx_bytes": None})
        for name, link in links.items()
    }


def test_own_namespace_reads_sysfs() -> None:
    table = LinkReader(None).read(["lo", "vm-absent"])
    assert table.error is None and set(table.links) == {"lo"}
    assert table.links["lo"].rx_bytes is not None


def test_a_namespace_is_dumped_once_then_followed(netns: str) -> None:
    _ip("-n", netns, "tuntap", "add", "vm-t0", "mode", "tap")
    _ip("-n", netns, "link", "add", "br-t", "type", "bridge")
    _ip("-n", netns, "link", "set", "vm-t0", "master", "br-t")
    reader = LinkReader(netns)
    try:
        first = reader.read([])
        assert first.error is None and set(first.links) == {"lo", "vm-t0", "br-t"}
        tap = first.links["vm-t0"]
        assert (tap.kind, tap.master, tap.oper_state, tap.carrier) == ("tun", "br-t", "DOWN", False)
        assert tap.mac and tap.rx_bytes == 0 and tap.tx_bytes == 0
        assert first.links["br-t"].kind == "bridge"
        # Changes the kernel notifies: a new link, a link leaving its bridge and going up, a
        # link renamed, a link removed. The next read sees them all without a second dump.
        _ip("-n", netns, "link", "add", "vm-d1", "type", "bridge")
        _ip("-n", netns, "tuntap", "add", "vm-t1", "mode", "tap")
        _ip("-n", netns, "link", "set", "vm-t1", "master", "br-t")  # and a bridge port's own
        _ip("-n", netns, "link", "set", "vm-t0", "nomaster")  # (partial) AF_BRIDGE ones
        _ip("-n", netns, "link", "set", "lo", "up")
        _ip("-n", netns, "link", "set", "br-t", "name", "br-u")
        _ip("-n", netns, "link", "del", "vm-d1")
        _ip("-n", netns, "link", "add", "vm-d2", "type", "bridge")
        after = reader.read([])
        assert after.error is None
        assert set(after.links) == {"lo", "vm-t0", "vm-t1", "br-u", "vm-d2"}
        assert after.links["vm-t0"].master is None
        assert (after.links["vm-t1"].kind, after.links["vm-t1"].master) == ("tun", "br-u")
        assert after.links["lo"].oper_state == "UNKNOWN"  # loopback has no carrier state
        assert after.links["vm-d2"].kind == "bridge"
        assert reader._links is not None and reader._links.counts.full_dumps == 1
        assert reader._links.counts.notifications >= 5
        # Counters move: loopback receives what is sent to it.
        send = (
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
            "[s.sendto(b'x' * 1000, ('127.0.0.1', 9)) for _ in range(5)]"
        )
        subprocess.run([IP, "netns", "exec", netns, sys.executable, "-c", send], check=True)
        moved = reader.read([])
        assert (moved.links["lo"].rx_bytes or 0) >= 5000
        # What a fresh full dump says, counters aside.
        assert _without_counters(moved.links) == _without_counters(
            links_mod.read_links_netns(netns)
        )
        assert reader._links.counts.full_dumps == 1
    finally:
        reader.close()


def _fresh_python(code: str) -> list[str]:
    """The lines CODE prints in a new Python process (nothing imported yet)."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_a_fresh_process_reads_at_once_while_pyroute2_is_still_importing(netns: str) -> None:
    """A reader's ``warm_up`` starts importing pyroute2 in a thread; a read at once meets that
    import half-way and must wait for it (pyroute2's modules import each other), not fail."""
    code = (
        "import sys\n"
        "import tui.host.rtnl\n"  # (not pyroute2 itself)
        "from tui.host.links import LinkReader, read_links_netns\n"
        f"reader = LinkReader({netns!r})\n"
        "reader.warm_up()\n"
        "while 'pyroute2' not in sys.modules:\n"  # the reader's thread has begun importing
        "    pass\n"
        "print(reader.read([]).error)\n"
        f"print(sorted(read_links_netns({netns!r})))\n"
        "reader.close()\n"
    )
    for _ in range(3):
        assert _fresh_python(code) == ["None", "['lo']"]


def test_a_reader_imports_pyroute2_only_once_warmed_up_or_read(netns: str) -> None:
    """Made with the app, a reader leaves pyroute2 alone: its import (0.15-0.6 s of CPU)
    would slow the app's own start; ``warm_up`` (the first table shown) starts it."""
    code = (
        "import sys, threading\n"
        "from tui.host.links import LinkReader\n"
        f"reader = LinkReader({netns!r})\n"
        "print(sorted(t.name for t in threading.enumerate()), 'pyroute2' in sys.modules)\n"
        "reader.warm_up()\n"
        "print('mvtui-import-pyroute2' in [t.name for t in threading.enumerate()]"
        " or 'pyroute2' in sys.modules)\n"
    )
    assert _fresh_python(code) == ["['MainThread'] False", "True"]


def test_one_socket_across_polls_and_threads(netns: str) -> None:
    _ip("-n", netns, "tuntap", "add", "vm-t0", "mode", "tap")
    reader = LinkReader(netns)
    try:
        assert reader.read([]).error is None
        results: list[LinkTable] = []
        thread = threading.Thread(target=lambda: results.append(reader.read([])))
        thread.start()
        thread.join(10)
        assert results and results[0].error is None and "vm-t0" in results[0].links
        assert reader.holds_socket and reader._links is not None
        assert reader._links.counts.full_dumps == 1  # the namespace was entered once
    finally:
        reader.close()
    assert not reader.holds_socket


def test_the_process_stays_home_and_leaves_no_child(netns: str) -> None:
    """pyroute2 enters the namespace in a forked child it reaps: every thread of ours keeps
    its namespace, and no child (not even a zombie) is left."""
    before = {
        tid: os.readlink(f"/proc/self/task/{tid}/ns/net") for tid in os.listdir("/proc/self/task")
    }
    home = os.readlink("/proc/self/ns/net")
    # Children an earlier test left running (a journalctl follower, an ssh) are not the reader's.
    others = set(_children())
    reader = LinkReader(netns)
    try:
        assert reader.read([]).error is None
        after = {
            t: os.readlink(f"/proc/self/task/{t}/ns/net") for t in os.listdir("/proc/self/task")
        }
        assert all(ns == home for ns in after.values()), (before, after)
        assert set(_children()) <= others
    finally:
        reader.close()


def test_no_fds_or_children_leak_over_many_polls(netns: str) -> None:
    _ip("-n", netns, "tuntap", "add", "vm-t0", "mode", "tap")
    host_loop()  # the loop's own fds (selector, wake-up pipe) are not the reader's
    others = set(_children())  # an earlier test's, not the reader's
    reader = LinkReader(netns)
    try:
        assert reader.read([]).error is None
        held = _fds()
        for _ in range(300):
            assert reader.read([]).error is None
        assert _fds() == held and set(_children()) <= others
        # Namespaces that go away and come back: each is entered afresh, nothing left behind.
        for _ in range(10):
            _ip("netns", "del", netns)
            assert reader.read([]).error == f"network namespace '{netns}' does not exist"
            _ip("netns", "add", netns)
            assert reader.read([]).error is None
        assert len(_fds()) == len(held) and set(_children()) <= others
    finally:
        reader.close()
    assert len(_fds()) == len(held) - 1  # the namespace's socket, and only it, is closed


def test_a_deleted_namespace_is_said_and_a_new_one_is_entered_again(netns: str) -> None:
    reader = LinkReader(netns)
    try:
        assert reader.read([]).error is None
        _ip("netns", "del", netns)
        gone = reader.read([])
        assert gone.error == f"network namespace '{netns}' does not exist"
        assert gone.links == {}
        assert not reader.holds_socket  # not held for a namespace that is gone
        _ip("netns", "add", netns)
        _ip("-n", netns, "tuntap", "add", "vm-new", "mode", "tap")
        back = reader.read([])
        assert back.error is None and "vm-new" in back.links
        assert reader.holds_socket
    finally:
        reader.close()


def test_a_missing_namespace_has_the_one_off_readers_reason() -> None:
    name = f"mvtui-absent-{uuid.uuid4().hex[:8]}"
    table = LinkReader(name).read([])
    assert table.error == f"network namespace '{name}' does not exist"
    with pytest.raises(links_mod.LinkReadError) as exc:
        links_mod.read_links_netns(name)
    assert str(exc.value) == table.error
    assert not os.path.exists(f"/run/netns/{name}")  # asking never creates it


def test_no_permission_to_enter_a_namespace_is_said(netns: str) -> None:
    """Without CAP_SYS_ADMIN (dropped from the bounding set) setns(2) is refused."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is needed to drop a capability")
    code = (
        "from tui.host.links import LinkReader, read_links_netns, LinkReadError\n"
        f"print(LinkReader({netns!r}).read([]).error)\n"
        "try:\n"
        f"    read_links_netns({netns!r})\n"
        "except LinkReadError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [setpriv, "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    reason = f"no permission to enter network namespace '{netns}'"
    assert result.stdout.splitlines() == [reason, reason], result.stderr
    assert "Traceback" not in result.stderr


def test_lost_notifications_are_said_then_the_links_read_afresh(netns: str) -> None:
    """More notifications than the socket holds (the loop busy meanwhile): the kernel drops
    some (ENOBUFS). The next read says so, the one after dumps the links again."""
    links = NamespaceLinks(netns, rcvbuf=16384)
    try:
        assert set(links.read()) == {"lo"}
        blocked, release = threading.Event(), threading.Event()

        async def busy() -> None:
            blocked.set()
            release.wait(30)  # holds the loop: nothing reads the socket

        done = host_loop().submit(busy())
        try:
            assert blocked.wait(10)
            _ip_batch(netns, [f"link add vm-x{i} type bridge" for i in range(200)])
        finally:
            release.set()
        done.result(10)
        with pytest.raises(links_mod.LinkReadError) as exc:
            links.read()
        assert str(exc.value) == (
            f"cannot read links in netns '{netns}': {os.strerror(105)}"  # ENOBUFS
        )
        assert not links.holds_socket
        again = links.read()
        assert len(again) == 201 and links.counts.full_dumps == 2
    finally:
        links.close()


def test_an_interrupted_dump_is_asked_again_or_said(
    netns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Links added and removed while the counters are dumped (a dump of 300 links spans
    several datagrams): the kernel flags the dump (NLM_F_DUMP_INTR) and it is asked again;
    when every attempt is flagged the read says so. Never a half-read table."""
    _ip_batch(netns, [f"link add vm-y{i} type bridge" for i in range(300)])
    everyone = {f"vm-y{i}" for i in range(300)}
    changing = f"cannot read links in netns '{netns}': the links kept changing"
    flapper = subprocess.Popen([IP, "-n", netns, "-batch", "-"], stdin=subprocess.PIPE, text=True)
    stop = threading.Event()

    def flap() -> None:
        assert flapper.stdin is not None
        while not stop.wait(0.002):
            flapper.stdin.write("link add vm-flap type bridge\nlink del vm-flap\n")
            flapper.stdin.flush()

    flapping = threading.Thread(target=flap, daemon=True)
    reader = LinkReader(netns)
    try:
        assert everyone <= set(reader.read([]).links)
        assert reader._links is not None
        counts = reader._links.counts
        flapping.start()
        for _ in range(100):  # asked again: each read whole, or (rarely) the reason
            table = reader.read([])
            assert table.error == changing if table.error else everyone <= set(table.links)
            if counts.interrupted:
                break
        assert counts.interrupted > 0, "the kernel never flagged a dump: nothing was tested"
        monkeypatch.setattr(rtnl, "MAX_DUMP_ATTEMPTS", 1)  # the first flag is the last
        errors = []
        for _ in range(100):
            table = reader.read([])
            if table.error:
                errors.append(table.error)
                break
            assert everyone <= set(table.links)
        assert errors == [changing]
        stop.set()
        flapping.join(10)
        assert flapper.stdin is not None
        flapper.stdin.close()
        assert flapper.wait(30) == 0
        table = reader.read([])  # the links stopped changing: read afresh, whole
        assert table.error is None and everyone <= set(table.links)
    finally:
        stop.set()
        flapping.join(10)
        assert flapper.stdin is not None
        if not flapper.stdin.closed:
            flapper.stdin.close()
        flapper.wait(30)
        reader.close()


# --- the host checks' one-off read and deletion (rtnl.read_all_links, rtnl.delete_link) -----


def test_one_off_read_gives_every_links_kind_state_and_carrier(netns: str) -> None:
    _ip_batch(netns, ["tuntap add dev vm-left mode tap", "link add br-other type bridge"])
    links = rtnl.read_all_links(netns)
    assert {"lo", "vm-left", "br-other"} <= set(links)
    tap = links["vm-left"]
    assert (tap.kind, tap.oper_state, tap.carrier) == ("tun", "DOWN", False)
    assert links["br-other"].kind == "bridge"
    # Our own namespace (netns None): every link, not only named ones as sysfs reads them.
    own = rtnl.read_all_links(None)
    assert "lo" in own and own["lo"].carrier is not None
    assert "vm-left" not in own


def test_entering_a_namespace_forks_nothing_and_moves_no_thread_of_ours(
    netns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The socket is made by a thread that enters the namespace and ends: no fork of this
    (threaded) process, whose child once did not answer under load, and the caller's thread
    stays in its own namespace."""

    def no_fork() -> int:
        raise AssertionError("forked to enter a namespace")

    monkeypatch.setattr(os, "fork", no_fork)
    ours = os.readlink("/proc/thread-self/ns/net")
    before = _fds()
    sock = rtnl.open_socket(netns, 5.0)
    try:
        # SIOCGSKNS: the namespace the socket belongs to, as an fd.
        sock_ns = fcntl.ioctl(sock.fileno(), 0x894C)
        try:
            assert os.fstat(sock_ns).st_ino == os.stat(f"/run/netns/{netns}").st_ino
        finally:
            os.close(sock_ns)
    finally:
        sock.close()
    assert os.readlink("/proc/thread-self/ns/net") == ours
    assert _fds() == before  # the namespace's fd closed
    assert {"lo"} <= set(rtnl.read_all_links(netns))


def test_a_namespace_path_that_is_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    """A path that is no namespace (a FIFO, whose open would wait for a writer) fails at once
    with the reason, never as a timeout of a thread left blocked."""
    fifo = tmp_path / "not-a-netns"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(links_mod.LinkReadError) as exc:
        rtnl.read_all_links(str(fifo), timeout=5.0)
    assert time.monotonic() - started < 2.0
    assert "no answer" not in str(exc.value), exc.value


def test_delete_link_deletes_only_what_the_check_allows(netns: str) -> None:
    _ip_batch(netns, ["tuntap add dev vm-left mode tap", "link add br-other type bridge"])
    from tui.host.checks.leftovers import deletable_link

    assert rtnl.delete_link(netns, "br-other", deletable_link) == "refused"
    assert rtnl.delete_link(netns, "vm-left", deletable_link) == "deleted"
    assert rtnl.delete_link(netns, "vm-left", deletable_link) == "gone"
    assert set(rtnl.read_all_links(netns)) == {"lo", "br-other"}


def test_delete_link_in_a_missing_namespace_says_so() -> None:
    name = f"mvtui-absent-{uuid.uuid4().hex[:8]}"
    with pytest.raises(links_mod.LinkReadError) as exc:
        rtnl.delete_link(name, "vm-left", lambda link: True)
    assert str(exc.value) == f"network namespace '{name}' does not exist"
    assert not os.path.exists(f"/run/netns/{name}")  # asking never creates it
