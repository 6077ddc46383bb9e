"""What the long-running monitor keeps between polls, and does once instead of twice: runner
parses (``RunnerCache``), the links read once per poll for both the listing and the sampler
(the links reader itself: tests/test_links.py), QMP's vCPU and memory sizes asked now and
then, QMP queries sent in one write. Everything live must still be read every poll, and read
the same."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.qemu import QEMU, Qemu, read_greeting, start_qemu
from tests.fakes.qmp import FakeQMPServer, HungQMPListener
from tests.synthetic_host import make_host
from tui.host.inventory import list_vms, read_inventory
from tui.host.links import Link, LinkReader, LinkTable
from tui.host.model import VM, Interface, UnitState
from tui.host.sampling import Sampler
from tui.host.sampling import assemble as assemble_mod
from tui.host.sampling import sampler as sampler_mod
from tui.host.sampling.qmp import query_qemu
from tui.host.sampling.reading import RemoteInfo
from tui.host.settings import HostSettings
from tui.host.statedir import RunnerCache, read_vm

# --- the runner cache ------------------------------------------------------------------------


@pytest.fixture
def host(tmp_path: Path) -> Path:
    return make_host(tmp_path, 2)


def store_cache(host: Path, **kw: Any) -> RunnerCache:
    """A cache that treats the synthetic host's fake store as the (immutable) Nix store."""
    return RunnerCache(immutable_roots=(str(host.parent / "store") + "/",), **kw)


def settings_for(state: Path) -> HostSettings:
    return HostSettings(
        state_dir=state,
        systemd_scope="user",
        systemd_env={"XDG_RUNTIME_DIR": str(state.parent / "no-manager")},
    )


def new_runner(host: Path, name: str, smp: int) -> Path:
    """A second runner package for NAME: a copy of its current one with SMP vCPUs."""
    old = (host / name / "current").resolve()
    new = old.with_name(old.name.replace("-microvm-", f"-smp{smp}-microvm-"))
    shutil.copytree(old, new)
    script = new / "bin" / "microvm-run"
    script.write_text(script.read_text().replace("-smp 2", f"-smp {smp}"))
    return new


def test_same_store_path_same_parse_and_equal_to_an_uncached_read(host: Path) -> None:
    cache = store_cache(host)
    vm_dir = host / "vm0000"
    first = read_vm(vm_dir, cache)
    second = read_vm(vm_dir, cache)
    assert (cache.misses, cache.hits, len(cache)) == (1, 1, 1)
    key = (str((vm_dir / "current").resolve()), str(vm_dir))
    assert cache.get(key) is cache.get(key)  # one parse, kept
    assert first == second == read_vm(vm_dir)
    assert (first.vcpu, first.mem_mib, first.hypervisor) == (2, 512, "qemu")


def test_what_a_poll_fills_in_never_leaks_into_the_cached_parse(host: Path) -> None:
    cache = store_cache(host)
    vm_dir = host / "vm0000"
    vm = read_vm(vm_dir, cache)
    vm.interfaces[0].exists = True
    vm.interfaces[0].oper_state = "UP"
    vm.shares[0].source_exists = None
    vm.volumes[0].size_bytes = 123
    vm.problems.append("added by someone")
    vm.pci_devices.append("0000:00:01.0")
    again = read_vm(vm_dir, cache)
    assert again == read_vm(vm_dir)
    assert again.interfaces[0].exists is None and again.problems == []


def test_a_new_current_gets_a_new_parse_at_the_next_poll(host: Path) -> None:
    cache = store_cache(host)
    settings = settings_for(host)
    vm_dir = host / "vm0001"

    def poll() -> VM:
        inv, _ = read_inventory(settings, units=False, links=False, runners=cache)
        return next(v for v in inv.vms if v.name == "vm0001")

    assert poll().vcpu == 2
    new = new_runner(host, "vm0001", 4)
    (vm_dir / "current").unlink()
    os.symlink(new, vm_dir / "current")
    vm = poll()
    assert vm.vcpu == 4 and vm.runner == str(new)
    assert vm == read_vm(vm_dir)  # drift and all, as an uncached read says
    assert len(cache) == 3  # vm0000, vm0001's old and new runner
    # Back to the old runner: its parse is still there, and still right.
    (vm_dir / "current").unlink()
    os.symlink(vm_dir / "booted", vm_dir / "current")
    assert poll().vcpu == 2


def test_live_facts_are_read_every_poll(host: Path) -> None:
    cache = store_cache(host)
    vm_dir = host / "vm0000"
    before = read_vm(vm_dir, cache)
    assert before.volumes[0].size_bytes == 0
    (vm_dir / "vm0000-var.img").write_bytes(b"x" * 4096)
    (vm_dir / "flake").write_text("github:example/hosts")
    (vm_dir / "booted").unlink()
    after = read_vm(vm_dir, cache)
    assert cache.hits == 1
    assert after.volumes[0].size_bytes == 4096 and after.volumes[0].allocated_bytes
    assert after.flake == "github:example/hosts"
    assert after.booted is None and after.drift.value == "not-booted"
    (vm_dir / "vm0000-var.img").unlink()
    assert read_vm(vm_dir, cache).volumes[0].exists is False


def test_runners_outside_the_store_are_parsed_every_time(host: Path) -> None:
    cache = RunnerCache()  # only /nix/store is immutable: the fake store is not
    vm_dir = host / "vm0000"
    assert read_vm(vm_dir, cache).vcpu == 2
    script = vm_dir.joinpath("current").resolve() / "bin" / "microvm-run"
    script.write_text(script.read_text().replace("-smp 2", "-smp 3"))
    assert read_vm(vm_dir, cache).vcpu == 3
    assert len(cache) == 0


def test_least_recently_used_runner_is_dropped(host: Path) -> None:
    cache = store_cache(host, maxsize=1)
    read_vm(host / "vm0000", cache)
    read_vm(host / "vm0001", cache)
    assert len(cache) == 1
    read_vm(host / "vm0000", cache)
    assert cache.hits == 0 and cache.misses == 3


def test_list_without_a_cache_is_unchanged(host: Path) -> None:
    settings = settings_for(host)
    inv, table = read_inventory(settings, runners=store_cache(host), link_reader=LinkReader(None))
    plain = list_vms(settings)
    assert inv == plain
    assert table is not None and table.error is None  # the taps are absent here: no links


# --- links: the reader kept between polls is in tests/test_links.py ------------------------


# --- the sampler uses the listing's read ----------------------------------------------------


def running_vm(ifaces: list[str]) -> VM:
    return VM(
        name="net",
        path=Path("/nonexistent/net"),
        hypervisor="kvmtool",
        unit=UnitState(name="microvm@net.service", main_pid=os.getpid(), restarts=0),
        interfaces=[Interface(id=i, type="tap") for i in ifaces],
    )


def test_the_sampler_takes_the_listings_links(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_second_read(*_args: object) -> None:
        raise AssertionError("the links were read again")

    monkeypatch.setattr(sampler_mod, "read_links", no_second_read)
    vm = running_vm(["vm-a", "vm-gone"])
    with Sampler() as sampler:
        first = sampler.sample(
            [vm],
            HostSettings(),
            links=LinkTable({"vm-a": Link("vm-a", rx_bytes=1000, tx_bytes=0)}, t=100.0),
        )["net"]
        second = sampler.sample(
            [vm],
            HostSettings(),
            links=LinkTable({"vm-a": Link("vm-a", rx_bytes=3000, tx_bytes=500)}, t=102.0),
        )["net"]
        failed = sampler.sample(
            [vm], HostSettings(), links=LinkTable(error="network namespace 'x' does not exist")
        )["net"]
    assert first.reasons["net:vm-a"] == "needs a second sample"
    # Rates over the time between the two reads of the links.
    # A tap: its rx is what the guest sent.
    assert (second.net["vm-a"].guest_tx_bps, second.net["vm-a"].guest_rx_bps) == (1000.0, 250.0)
    assert second.reasons["net:vm-gone"] == "interface not found"
    assert failed.net == {}
    assert failed.reasons["net:vm-a"] == "network namespace 'x' does not exist"
    assert failed.reasons["net:vm-gone"] == "network namespace 'x' does not exist"


def test_listing_and_sampler_share_one_read_per_poll(
    host: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tui.feed import LiveSource

    source = LiveSource(settings_for(host))
    reads: list[list[str]] = []
    real_read = source.links.read

    def counting(names: list[str]) -> LinkTable:
        reads.append(names)
        return real_read(names)

    monkeypatch.setattr(source.links, "read", counting)
    seen: list[LinkTable | None] = []
    real_sample = source.sampler.sample

    def sample(*args: Any, **kw: Any) -> Any:
        seen.append(kw.get("links"))
        return real_sample(*args, **kw)

    monkeypatch.setattr(source.sampler, "sample", sample)
    try:
        for _ in range(2):
            source.poll()
    finally:
        source.close()
    assert reads == [["vm-0000", "vm-0001"]] * 2
    assert len(seen) == 2 and all(isinstance(t, LinkTable) for t in seen)
    assert len(source.runners) == 0  # the fake store is not /nix/store


# --- QMP: what rarely changes is asked now and then ---------------------------------------


class Counted(dict):  # type: ignore[type-arg]
    """The fake's replies, counting what was asked."""

    def __init__(self, replies: dict[str, Any]) -> None:
        super().__init__(replies)
        self.asked: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.asked.append(key)
        return super().__getitem__(key)


SIZES = {"query-cpus-fast", "query-memory-size-summary"}


@pytest.fixture
def fake_qmp(tmp_path: Path) -> Iterator[FakeQMPServer]:
    server = FakeQMPServer(str(tmp_path / "fake.sock"), thread_id=threading.get_native_id())
    server.replies = Counted(server.replies)
    yield server
    server.close()


def qemu_vm(server: FakeQMPServer, pid: int | None = None) -> VM:
    return VM(
        name="q",
        path=Path("/nonexistent/q"),
        hypervisor="qemu",
        socket=server.path,
        vcpu=3,
        mem_mib=48,
        unit=UnitState(name="microvm@q.service", main_pid=pid or os.getpid(), restarts=0),
    )


def asked_sizes(server: FakeQMPServer) -> list[str]:
    asked = [c for c in server.replies.asked if c in SIZES]  # type: ignore[attr-defined]
    server.replies.asked.clear()  # type: ignore[attr-defined]
    return asked


def test_vcpus_and_memory_size_are_asked_every_few_polls(fake_qmp: FakeQMPServer) -> None:
    vm = qemu_vm(fake_qmp)
    with Sampler() as sampler:
        first = sampler.sample([vm], HostSettings())["q"]
        assert sorted(asked_sizes(fake_qmp)) == sorted(SIZES)
        for _ in range(assemble_mod.SIZES_EVERY - 1):
            later = sampler.sample([vm], HostSettings())["q"]
            assert asked_sizes(fake_qmp) == []
            # QMP's figures, kept: not the runner's (3 vCPUs, 48 MiB).
            assert (later.vcpu_count, later.mem_configured_mib) == (1, 64)
            assert [v.thread_id for v in later.vcpus] == [threading.get_native_id()]
        assert (first.vcpu_count, first.mem_configured_mib) == (1, 64)
        fake_qmp.replies["query-memory-size-summary"] = {
            "base-memory": 64 << 20,
            "plugged-memory": 32 << 20,
        }
        refreshed = sampler.sample([vm], HostSettings())["q"]
        assert sorted(asked_sizes(fake_qmp)) == sorted(SIZES)
        assert refreshed.mem_configured_mib == 96


def test_live_answers_are_asked_every_poll(fake_qmp: FakeQMPServer) -> None:
    vm = qemu_vm(fake_qmp)
    with Sampler() as sampler:
        for _ in range(3):
            sampler.sample([vm], HostSettings())
        asked = fake_qmp.replies.asked  # type: ignore[attr-defined]
        for command in ("query-status", "query-balloon", "query-blockstats"):
            assert asked.count(command) == 3, command
        fake_qmp.replies["query-status"] = {"status": "paused", "running": False}
        assert sampler.sample([vm], HostSettings())["q"].qmp_status == "paused"


# --- QMP of a VM not on screen: every few polls ---------------------------------------------


def status_asks(server: FakeQMPServer) -> int:
    asked = server.replies.asked  # type: ignore[attr-defined]
    count = asked.count("query-status")
    asked.clear()
    return count


def set_read_bytes(server: FakeQMPServer, n: int) -> None:
    dict.__getitem__(server.replies, "query-blockstats")[0]["stats"]["rd_bytes"] = n


def test_a_vm_not_in_focus_is_asked_every_few_polls(fake_qmp: FakeQMPServer) -> None:
    vm = qemu_vm(fake_qmp)
    with Sampler(remote_every=3) as sampler:
        sampler.sample([vm], HostSettings())
        assert status_asks(fake_qmp) == 1  # first contact
        for _ in range(2):
            sampler.sample([vm], HostSettings())
        assert status_asks(fake_qmp) == 0
        sampler.sample([vm], HostSettings())
        assert status_asks(fake_qmp) == 1
        for _ in range(3):
            sampler.sample([vm], HostSettings(), focus=["q"])
        assert status_asks(fake_qmp) == 3  # on screen: every poll


def test_between_asks_the_last_answer_stands(fake_qmp: FakeQMPServer) -> None:
    """A paused VM shows as paused within REMOTE_EVERY polls; the polls in between carry the
    last answer and its block rates (not a rate of zero), and the local CPU is fresh."""
    vm = qemu_vm(fake_qmp)
    with Sampler(remote_every=3) as sampler:
        set_read_bytes(fake_qmp, 0)
        sampler.sample([vm], HostSettings(), focus=["q"])
        set_read_bytes(fake_qmp, 1 << 30)
        asked = sampler.sample([vm], HostSettings(), focus=["q"])["q"]
        (rate,) = asked.block.values()
        assert rate.read_bps > 0
        fake_qmp.replies["query-status"] = {"status": "paused", "running": False}
        status_asks(fake_qmp)
        seen = []
        for _ in range(3):
            sample = sampler.sample([vm], HostSettings())["q"]
            seen.append(sample.qmp_status)
            if sample.qmp_status == "running":
                assert sample.block == asked.block
                assert sample.cpu_pct_of_host is not None and sample.t > asked.t
        assert status_asks(fake_qmp) == 1
        assert seen == ["running", "running", "paused"]


def test_a_failed_answer_is_not_reused(fake_qmp: FakeQMPServer, tmp_path: Path) -> None:
    vm = qemu_vm(fake_qmp)
    real = vm.socket
    with Sampler(remote_every=3) as sampler:
        vm.socket = str(tmp_path / "gone.sock")
        assert sampler.sample([vm], HostSettings())["q"].qmp_status is None
        vm.socket = real
        status_asks(fake_qmp)
        assert sampler.sample([vm], HostSettings())["q"].qmp_status == "running"
        assert status_asks(fake_qmp) == 1  # asked at once, not two polls later
        vm.socket = str(tmp_path / "gone.sock")
        for _ in range(2):  # the socket went away between asks: seen at the next ask
            sampler.sample([vm], HostSettings())
        failed = sampler.sample([vm], HostSettings())["q"]
        assert failed.qmp_status is None and failed.reasons["qmp_status"] == "socket missing"


def test_a_gone_vcpu_thread_or_a_new_process_asks_again(fake_qmp: FakeQMPServer) -> None:
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    cpus = dict.__getitem__(fake_qmp.replies, "query-cpus-fast")  # not counted as asked
    cpus[0]["thread-id"] = worker.native_id
    vm = qemu_vm(fake_qmp)
    with Sampler() as sampler:
        sampler.sample([vm], HostSettings())
        sampler.sample([vm], HostSettings())
        asked_sizes(fake_qmp)
        stop.set()
        worker.join()
        cpus[0]["thread-id"] = threading.get_native_id()
        polls = 0
        while not asked_sizes(fake_qmp):
            polls += 1
            assert polls <= 2, "the vCPU thread is gone: asked again at the next poll"
            sample = sampler.sample([vm], HostSettings())["q"]
        sample = sampler.sample([vm], HostSettings())["q"]
        assert [v.thread_id for v in sample.vcpus] == [threading.get_native_id()]
        # Another process behind the unit: a new first contact.
        sleeper = subprocess.Popen(["sleep", "30"])
        try:
            sampler.sample([qemu_vm(fake_qmp, sleeper.pid)], HostSettings())
            assert sorted(asked_sizes(fake_qmp)) == sorted(SIZES)
        finally:
            sleeper.kill()
            sleeper.wait()


def test_a_failed_session_falls_back_to_the_runner_as_before(
    fake_qmp: FakeQMPServer, tmp_path: Path
) -> None:
    vm = qemu_vm(fake_qmp)
    with Sampler() as sampler:
        sampler.sample([vm], HostSettings())
        vm.socket = str(tmp_path / "gone.sock")
        failed = sampler.sample([vm], HostSettings())["q"]
    # Not the kept QMP answer: what a session that fails always gave.
    assert (failed.vcpu_count, failed.mem_configured_mib) == (3, 48)
    assert failed.qmp_status is None and failed.reasons["qmp_status"] == "socket missing"


def test_a_server_without_the_size_queries_keeps_its_reasons(fake_qmp: FakeQMPServer) -> None:
    for command in SIZES:
        del fake_qmp.replies[command]
    vm = qemu_vm(fake_qmp)
    with Sampler() as sampler:
        first = sampler.sample([vm], HostSettings())["q"]
        second = sampler.sample([vm], HostSettings())["q"]
    assert asked_sizes(fake_qmp) == []  # not found: never counted as asked by the fake
    for s in (first, second):
        assert (s.vcpu_count, s.mem_configured_mib) == (3, 48)  # the runner's
        assert s.reasons["vcpus"].startswith("query-cpus-fast: The command")  # type: ignore[union-attr]


# --- QMP: one write for all queries -----------------------------------------------------------


def same_answers(info: RemoteInfo) -> dict[str, Any]:
    """A RemoteInfo without its timings."""
    return {k: v for k, v in vars(info).items() if k not in ("elapsed_s", "read_at")}


@pytest.fixture(scope="module")
def qemus() -> Iterator[tuple[Qemu, Qemu]]:
    if QEMU is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mvc-", dir="/tmp") as tmp:
        with_balloon = start_qemu(os.path.join(tmp, "b.sock"))
        plain = start_qemu(os.path.join(tmp, "p.sock"), balloon=False)
        try:
            yield with_balloon, plain
        finally:
            with_balloon.stop()
            plain.stop()


@pytest.mark.parametrize("sizes", [True, False])
def test_pipelined_queries_answer_as_one_at_a_time_on_real_qemu(
    qemus: tuple[Qemu, Qemu], sizes: bool
) -> None:
    for vm in qemus:
        one_by_one = query_qemu(vm.socket_path, sizes=sizes)
        at_once = query_qemu(vm.socket_path, sizes=sizes, pipeline=True)
        assert one_by_one.error is None and at_once.error is None
        assert same_answers(at_once) == same_answers(one_by_one)
        assert read_greeting(vm.socket_path, timeout=1.0) is not None  # not held


def test_pipelined_first_contact_still_sets_up_the_balloon(qemus: tuple[Qemu, Qemu]) -> None:
    vm = qemus[0]
    info = query_qemu(vm.socket_path, guest_stats_interval=3, pipeline=True)
    assert info.error is None
    from tui.host.qmp import qmp_execute

    interval = qmp_execute(
        vm.socket_path,
        "qom-get",
        {"path": "/machine/peripheral/balloon0", "property": "guest-stats-polling-interval"},
    )
    assert interval  # set by this or an earlier first contact: never left at 0


def test_pipelined_error_replies_and_events_as_one_at_a_time(tmp_path: Path) -> None:
    server = FakeQMPServer(str(tmp_path / "old.sock"))  # an event before every reply
    del server.replies["query-memory-size-summary"]
    server.errors["query-balloon"] = {"class": "GenericError", "desc": "weird"}
    server.errors["query-blockstats"] = {"class": "CommandNotFound", "desc": "nope"}
    try:
        one_by_one = query_qemu(server.path)
        at_once = query_qemu(server.path, pipeline=True)
        server.errors.clear()
        server.errors["qom-get"] = {"class": "DeviceNotFound", "desc": "no such balloon"}
        one_by_one_2 = query_qemu(server.path)
        at_once_2 = query_qemu(server.path, pipeline=True)
        server.errors["qmp_capabilities"] = {"class": "GenericError", "desc": "go away"}
        failed_one = query_qemu(server.path)
        failed_all = query_qemu(server.path, pipeline=True)
    finally:
        server.close()
    assert same_answers(at_once) == same_answers(one_by_one)
    assert at_once.reasons["mem_guest_visible_bytes"] == "query-balloon: weird"
    assert at_once.reasons["block"] == "query-blockstats: nope"
    assert same_answers(at_once_2) == same_answers(one_by_one_2)
    assert at_once_2.reasons["mem_guest_used_bytes"].startswith("no balloon at ")
    assert failed_all.error == failed_one.error == "qmp_capabilities: GenericError: go away"
    assert same_answers(failed_all) == same_answers(failed_one)


def test_pipelined_hung_socket_has_the_same_reason(tmp_path: Path) -> None:
    hung = HungQMPListener(str(tmp_path / "hung.sock"))
    try:
        one_by_one = query_qemu(hung.path, timeout=0.3)
        at_once = query_qemu(hung.path, timeout=0.3, pipeline=True)
    finally:
        hung.close()
    assert at_once.error == one_by_one.error
    assert at_once.error is not None and "waiting for the greeting" in at_once.error


@pytest.mark.lab
def test_the_lab_is_watched_through_one_held_socket(lab: Any) -> None:
    from tui.feed import LiveSource

    source = LiveSource(lab.settings)
    try:
        source.poll()
        held = source.links._links
        snap = source.poll()
        # One socket in the lab's namespace, its links dumped once, then followed.
        assert held is not None and source.links._links is held and source.links.holds_socket
        assert held.counts.full_dumps == 1
        assert len(source.runners) >= len(snap.samples)  # store runners: parsed once
        web = next(vm for vm in snap.inventory.vms if vm.name == "web")
        assert web.interfaces and all(i.exists for i in web.interfaces)
        rates = snap.samples["web"].net
        assert set(rates) == {i.id for i in web.interfaces}, snap.samples["web"].reasons
    finally:
        source.close()


@pytest.mark.parametrize(
    ("kind", "declared", "link_rx_is"),
    [
        ("tun", "tap", "guest tx"),  # a tap's rx is what the guest wrote into it
        ("macvtap", "macvtap", "guest rx"),  # a macvtap's rx is what reaches the guest
        (None, "tap", "guest tx"),  # the kernel did not say: the runner's type decides
        (None, "macvtap", "guest rx"),
        ("tun", "macvtap", "guest tx"),  # the kernel's kind wins over the declaration
    ],
)
def test_guest_direction_follows_the_kind_of_link(
    kind: str | None, declared: str, link_rx_is: str
) -> None:
    vm = running_vm(["nic"])
    vm.interfaces[0].type = declared
    with Sampler() as sampler:
        for t, rx, tx in ((100.0, 0, 0), (101.0, 6_000_000, 70)):
            link = Link("nic", kind=kind, rx_bytes=rx, tx_bytes=tx)
            got = sampler.sample([vm], HostSettings(), links=LinkTable({"nic": link}, t=t))
    rate = got["net"].net["nic"]
    if link_rx_is == "guest rx":
        assert (rate.guest_rx_bps, rate.guest_tx_bps) == (6_000_000.0, 70.0)
    else:
        assert (rate.guest_rx_bps, rate.guest_tx_bps) == (70.0, 6_000_000.0)
