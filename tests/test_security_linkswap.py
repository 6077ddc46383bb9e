"""Issue 9.7: a full disk (no inode, no block) between the link changes of an update or a
rollback leaves `current` and `old` both as they were, never one changed and one not; and
``replace_symlink`` never leaves a moment (or a failure) without the link.

On a small real tmpfs, with the free inodes used up to every count the switch needs in turn.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_actions_support import make_settings, new_gcroots_dir, write_flake
from tests.tmpfs_support import fill_blocks, fill_inodes, small_tmpfs
from tui.host import safefs
from tui.host.actions import operations as ops
from tui.host.actions.errors import ActionError

A, B, C = "/nix/store/aaaa-runner-a", "/nix/store/bbbb-runner-b", "/nix/store/cccc-runner-c"


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path) as mount:
        yield mount


def _links(directory: Path) -> dict[str, str]:
    """Every entry of DIRECTORY but the filler: name -> link target."""
    return {
        name: os.readlink(directory / name)
        for name in sorted(os.listdir(directory))
        if name not in (".filler", ".blocks")
    }


# Update: old -> what current was, current -> the new build (3 links made: new old, new
# current, the copy of current; 4 when an old link exists, which is copied too).
CASES = {
    "update, old exists": ({"current": A, "old": C}, [("old", A), ("current", B)], 4),
    "update, first one": ({"current": A}, [("old", A), ("current", B)], 3),
    "rollback": ({"current": A, "old": B}, [("current", B), ("old", A)], 4),
}


@pytest.mark.parametrize("case", CASES)
def test_switch_is_all_or_none_at_every_free_inode_count(tmpfs: Path, case: str) -> None:
    before, changes, needed = CASES[case]
    vm_dir = tmpfs / "vm"
    for free in range(needed + 1):
        shutil.rmtree(vm_dir, ignore_errors=True)
        shutil.rmtree(tmpfs / ".filler", ignore_errors=True)
        vm_dir.mkdir()
        for name, target in before.items():
            os.symlink(target, vm_dir / name)
        fill_inodes(tmpfs, free)
        with safefs.opened_dir(vm_dir) as fd:
            if free < needed:
                with pytest.raises(OSError) as info:
                    safefs.replace_symlinks_at(fd, changes)
                assert info.value.errno == errno.ENOSPC
                assert _links(vm_dir) == before, f"{free} free inodes"
            else:
                safefs.replace_symlinks_at(fd, changes)
                assert _links(vm_dir) == {**before, **dict(changes)}


def test_a_failed_rename_in_the_second_phase_puts_the_first_back(
    tmpfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Renames need no inode on tmpfs, so this step's failure is injected (EIO on the second
    rename): the link switched first gets its copy back."""
    vm_dir = tmpfs / "vm"
    vm_dir.mkdir()
    os.symlink(A, vm_dir / "current")
    os.symlink(C, vm_dir / "old")
    real_replace = os.replace
    calls: list[str] = []

    def failing_second(src, dst, **kw):  # type: ignore[no-untyped-def]
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(errno.EIO, "injected failure", dst)
        return real_replace(src, dst, **kw)

    monkeypatch.setattr(safefs.os, "replace", failing_second)
    with safefs.opened_dir(vm_dir) as fd, pytest.raises(OSError, match="injected"):
        safefs.replace_symlinks_at(fd, [("old", A), ("current", B)])
    assert _links(vm_dir) == {"current": A, "old": C}


def test_replace_symlink_keeps_the_link_when_the_disk_is_full(tmpfs: Path) -> None:
    """A long target needs a block on tmpfs: with none free the new link cannot be made, and
    the old one must still be there (unlink-then-symlink would have lost it)."""
    os.symlink(A, tmpfs / "root")
    fill_blocks(tmpfs)
    long_target = "/nix/store/" + "x" * 200
    with pytest.raises(OSError) as info:
        safefs.replace_symlink(tmpfs / "root", long_target)
    assert info.value.errno == errno.ENOSPC
    assert _links(tmpfs) == {"root": A}
    os.unlink(tmpfs / ".blocks")
    safefs.replace_symlink(tmpfs / "root", long_target)
    assert _links(tmpfs) == {"root": long_target}


# --- the update action itself, with the real nix ---------------------------------------


@pytest.fixture
def gcroots() -> Iterator[Path]:
    path = new_gcroots_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(shutil.which("nix") is None, reason="needs nix")
def test_update_on_a_full_disk_changes_neither_link(
    tmpfs: Path, tmp_path: Path, gcroots: Path
) -> None:
    settings = make_settings(tmpfs / "state", gcroots)
    flake = write_flake(tmp_path / "flake", {"web": "ok"}, version="1")
    ops.create(settings, "web", flake=flake.ref)
    vm_dir = settings.state_dir / "web"
    ops.update(settings, "web")  # nothing new; now give it an `old`
    first = os.readlink(vm_dir / "current")
    os.symlink(first, vm_dir / "old")
    for free, version in enumerate(("2", "3", "4", "5")):
        before = {n: os.readlink(vm_dir / n) for n in ("current", "old")}
        flake.set_version(version)
        filled: list[Path] = []

        def on_line(line: str, free: int = free, filled: list[Path] = filled) -> None:
            if line.startswith("built "):  # the build is done: now the disk is full
                filled.extend(fill_inodes(tmpfs, free))

        with pytest.raises(ActionError) as info:
            ops.update(settings, "web", ops.Reporter(log=on_line))
        assert filled, "the disk was never filled"
        message = str(info.value)
        assert "No space left on device" in message and "\n" not in message
        assert "left them as they were" in message
        assert {n: os.readlink(vm_dir / n) for n in ("current", "old")} == before
        assert sorted(os.listdir(vm_dir)) == ["current", "flake", "old"]  # no temp links
        for path in filled:
            path.unlink()
    flake.set_version("6")
    outcome = ops.update(settings, "web")
    assert os.readlink(vm_dir / "current") == outcome.out_path
    assert os.readlink(vm_dir / "old") == before["current"]
