"""Issue 9.1: links (and FIFOs) planted in a directory that someone else can write never
steer a write of ours: the takeover marker, the lock file, the parse cache, the link switches
and moves of the actions. Each planted link points at a "victim" file that must stay as it
was; each failure is one sentence."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
import threading
from pathlib import Path

import pytest

from tests.synthetic_host import make_host
from tests.test_actions_support import make_settings, new_gcroots_dir, write_flake
from tui.host import inventory, parsecache, safefs
from tui.host.actions import lock as lock_mod
from tui.host.actions import operations as ops
from tui.host.actions.errors import ActionError, Busy, Refused
from tui.host.actions.lock import lock_path, vm_lock
from tui.host.actions.symlinks import swap_links
from tui.host.console.marker import TakeoverMarker, read_marker, write_marker
from tui.host.settings import HostSettings
from tui.host.statedir import RunnerCache, read_vm


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim"
    path.write_text("precious\n")
    return path


def _unchanged(victim: Path) -> bool:
    return victim.read_text() == "precious\n" and not victim.is_symlink()


# --- the console takeover marker -----------------------------------------------------------


def test_marker_write_never_follows_a_link_at_the_old_temp_name(
    tmp_path: Path, victim: Path
) -> None:
    """The reproduction: `ln -s /target STATE/web/.microvm-tui.console.json.<pid>.tmp`."""
    vm = read_vm(make_host(tmp_path / "host", 1) / "vm0000")
    planted = vm.path / f".microvm-tui.console.json.{os.getpid()}.tmp"
    os.symlink(victim, planted)
    write_marker(vm, TakeoverMarker("s.sock", "t.log", 42))
    assert _unchanged(victim)
    assert read_marker(vm) is not None and read_marker(vm).main_pid == 42  # type: ignore[union-attr]
    assert os.readlink(planted) == str(victim)  # someone else's name: left alone


def test_marker_write_replaces_a_link_at_the_marker_name(tmp_path: Path, victim: Path) -> None:
    vm = read_vm(make_host(tmp_path / "host", 1) / "vm0000")
    os.symlink(victim, vm.path / "microvm-tui.console.json")
    assert read_marker(vm) is None  # a link is not read either
    write_marker(vm, TakeoverMarker("s.sock", "t.log", 42))
    assert _unchanged(victim)
    assert not (vm.path / "microvm-tui.console.json").is_symlink()
    assert {p for p in os.listdir(vm.path) if p.startswith(".")} == set()  # no temp left


def test_marker_write_into_a_vm_dir_swapped_for_a_link(tmp_path: Path) -> None:
    host = make_host(tmp_path / "host", 1)
    vm = read_vm(host / "vm0000")
    elsewhere = tmp_path / "elsewhere"
    (host / "vm0000").rename(elsewhere)
    os.symlink(elsewhere, host / "vm0000")
    with pytest.raises(OSError, match="symlink"):
        write_marker(vm, TakeoverMarker("s.sock", "t.log", 42))
    assert not (elsewhere / "microvm-tui.console.json").exists()


# --- the lock file -------------------------------------------------------------------------


def test_lock_never_follows_a_planted_link(tmp_path: Path, victim: Path) -> None:
    os.symlink(victim, lock_path(tmp_path, "web"))
    with (
        pytest.raises(ActionError, match="is a symlink; not followed") as info,
        vm_lock(tmp_path, "web"),
    ):
        pass
    assert "\n" not in str(info.value)
    assert _unchanged(victim)


def test_lock_refuses_a_fifo(tmp_path: Path) -> None:
    os.mkfifo(lock_path(tmp_path, "web"))
    with pytest.raises(ActionError, match="FIFO"), vm_lock(tmp_path, "web"):
        pass


def test_lock_taken_after_the_holder_removed_its_file_is_the_new_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the lock's replaced-file check closes: we open the file, the previous
    holder removes it and lets go, we lock the removed file. Without the check we would
    hold a lock nobody else can see (a second job would get the path's new file)."""
    path = lock_path(tmp_path, "web")
    real_flock = fcntl.flock
    raced = []

    def flock_after_removal(fd: int, op: int) -> None:
        if not raced:  # the previous holder's release, between our open and our flock
            raced.append(True)
            os.unlink(path)
        real_flock(fd, op)

    monkeypatch.setattr(lock_mod.fcntl, "flock", flock_after_removal)
    with vm_lock(tmp_path, "web"):
        monkeypatch.setattr(lock_mod.fcntl, "flock", real_flock)
        assert raced
        assert path.read_text() == f"{os.getpid()}\n"  # the path names the file we hold
        other: list[BaseException] = []

        def second_job() -> None:
            try:
                with vm_lock(tmp_path, "web"):
                    pass
            except BaseException as exc:
                other.append(exc)

        thread = threading.Thread(target=second_job)
        thread.start()
        thread.join(10)
        assert other and isinstance(other[0], Busy)  # one job at a time
    assert not path.exists()


def test_lock_in_a_state_dir_reached_through_a_link(tmp_path: Path) -> None:
    """The state dir is the admin's setting and may be a link; that is followed."""
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "state")
    with vm_lock(tmp_path / "state", "web"):
        assert (real / ".web.lock").exists()


# --- the parse cache -----------------------------------------------------------------------


def _settings(state: Path, cache: Path) -> HostSettings:
    return HostSettings(
        state_dir=state,
        systemd_scope="user",
        systemd_env={"XDG_RUNTIME_DIR": str(state.parent / "no-manager")},
        cache_dir=cache,
    )


def test_cache_dir_planted_as_a_link_is_neither_written_nor_read(tmp_path: Path) -> None:
    """`os.stat` followed the link and found a dir of ours: the cache went where the link
    pointed. Now the dir itself is opened with O_NOFOLLOW and checked by its fd."""
    host = make_host(tmp_path / "host", 2, nix_store=True)
    target = tmp_path / "somewhere-of-ours"
    target.mkdir(mode=0o700)
    cache = tmp_path / "cache"
    os.symlink(target, cache)
    inventory.list_vms(_settings(host, cache), links=False)
    assert os.listdir(target) == []
    # A cache file planted there is not read through the link either.
    ok_cache = tmp_path / "ok-cache"
    inventory.list_vms(_settings(host, ok_cache), links=False)
    os.rename(ok_cache / parsecache.CACHE_FILE, target / parsecache.CACHE_FILE)
    assert not parsecache.load(RunnerCache(), cache)
    assert parsecache.load(RunnerCache(), target)


def test_cache_file_planted_as_a_link_is_replaced_not_followed(
    tmp_path: Path, victim: Path
) -> None:
    host = make_host(tmp_path / "host", 2, nix_store=True)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    os.symlink(victim, cache / parsecache.CACHE_FILE)
    assert not parsecache.load(RunnerCache(), cache)
    inventory.list_vms(_settings(host, cache), links=False)
    assert _unchanged(victim)
    assert stat.S_ISREG(os.lstat(cache / parsecache.CACHE_FILE).st_mode)


def test_cache_dir_made_without_following_a_planted_parent_link(tmp_path: Path) -> None:
    host = make_host(tmp_path / "host", 1, nix_store=True)
    base = tmp_path / "home" / ".cache"
    base.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, base / "microvm-tui")  # planted where our dir will be made
    inventory.list_vms(_settings(host, base / "microvm-tui" / "sub"), links=False)
    assert os.listdir(elsewhere) == []


# --- link switches and moves of the actions ----------------------------------------------


def test_switch_in_a_vm_dir_swapped_for_a_link(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink("/nix/store/a", elsewhere / "current")
    os.symlink(elsewhere, tmp_path / "web")
    with pytest.raises(OSError, match="symlink"):
        swap_links(tmp_path / "web", [("current", "/nix/store/b")])
    assert os.readlink(elsewhere / "current") == "/nix/store/a"


def test_switch_never_replaces_a_file_or_dir_where_a_link_belongs(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "data").write_text("x")
    os.symlink("/nix/store/a", tmp_path / "current")
    with pytest.raises(OSError, match="not a symlink"):
        swap_links(tmp_path, [("old", "/nix/store/a"), ("current", "/nix/store/b")])
    assert os.readlink(tmp_path / "current") == "/nix/store/a"
    assert (tmp_path / "old" / "data").read_text() == "x"
    assert sorted(os.listdir(tmp_path)) == ["current", "old"]


def test_gc_root_planted_as_a_link_elsewhere_is_replaced(tmp_path: Path, victim: Path) -> None:
    roots = tmp_path / "gcroots"
    roots.mkdir()
    os.symlink(victim, roots / "web")
    with safefs.opened_dir(roots) as fd:
        safefs.replace_symlink_at(fd, "web", "/var/lib/microvms/web/current")
    assert _unchanged(victim)
    assert os.readlink(roots / "web") == "/var/lib/microvms/web/current"


def test_temp_files_are_never_opened_through_a_planted_name(tmp_path: Path) -> None:
    """Every temporary name is made with O_EXCL (or mkdir / symlink, which never follow):
    a name taken by a planted link is skipped, never written through."""
    with safefs.opened_dir(tmp_path) as fd:
        fd_, name = safefs.create_temp_file(fd, "x")
        os.close(fd_)
        os.unlink(name, dir_fd=fd)
        os.symlink(tmp_path / "victim-file", name, dir_fd=fd)
        with pytest.raises(OSError) as info:
            os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, dir_fd=fd)
        assert info.value.errno == errno.EEXIST
    assert not (tmp_path / "victim-file").exists()


@pytest.mark.skipif(shutil.which("nix") is None, reason="needs nix")
def test_create_never_moves_over_a_vm_dir_made_meanwhile(tmp_path: Path) -> None:
    """A (hostile or careless) empty STATE/NAME made after create's last check, just before
    its move: a plain rename would silently replace it; the move must refuse instead."""
    roots = new_gcroots_dir()
    try:
        settings = make_settings(tmp_path / "state", roots)
        flake = write_flake(tmp_path / "flake", {"web": "ok"})
        vm_dir = settings.state_dir / "web"

        def on_line(line: str) -> None:
            if line.startswith("GC root") and not vm_dir.exists():  # after the last check
                vm_dir.mkdir()
                (vm_dir.parent / "marker").write_text("made meanwhile")

        with pytest.raises(Refused, match="appeared while building"):
            ops.create(settings, "web", ops.Reporter(log=on_line), flake=flake.ref)
        assert vm_dir.is_dir() and os.listdir(vm_dir) == []  # left alone, still empty
        assert sorted(os.listdir(settings.state_dir)) == ["marker", "web"]  # no temp dir
    finally:
        shutil.rmtree(roots, ignore_errors=True)
