"""tui.host.safefs on real files: planted symlinks, FIFOs and devices never steer a write,
hang a read or fill memory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tui.host import safefs


def test_write_file_replaces_a_planted_symlink_and_leaves_its_target(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "dir").mkdir()
    os.symlink(victim, tmp_path / "dir" / "state.json")
    safefs.write_file(tmp_path / "dir" / "state.json", b"{}\n")
    assert victim.read_text() == "precious"
    assert not (tmp_path / "dir" / "state.json").is_symlink()
    assert (tmp_path / "dir" / "state.json").read_bytes() == b"{}\n"
    assert os.listdir(tmp_path / "dir") == ["state.json"]  # no temp file left


def test_write_file_mode_ignores_umask_and_is_exact(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        safefs.write_file(tmp_path / "f", b"x", 0o644)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "f").st_mode) == 0o644


def test_write_file_refuses_a_symlinked_directory(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, tmp_path / "dir")
    with pytest.raises(safefs.NotRegularFile, match="symlink"):
        safefs.write_file(tmp_path / "dir" / "f", b"x")
    assert os.listdir(elsewhere) == []


def test_write_file_make_parents_creates_and_refuses_planted_link(tmp_path: Path) -> None:
    safefs.write_file(tmp_path / "a" / "b" / "f", b"x", make_parents=True)
    assert (tmp_path / "a" / "b" / "f").read_bytes() == b"x"
    assert stat.S_IMODE(os.stat(tmp_path / "a" / "b").st_mode) == 0o700
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, tmp_path / "a" / "c")
    with pytest.raises(safefs.NotRegularFile):
        safefs.write_file(tmp_path / "a" / "c" / "d" / "f", b"x", make_parents=True)
    assert os.listdir(elsewhere) == []


def test_write_failure_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"old")
    (tmp_path / "d").mkdir()  # a directory at the name: the rename fails
    with safefs.opened_dir(tmp_path) as fd, pytest.raises(OSError):
        safefs.write_file_at(fd, "d", b"new")
    assert sorted(os.listdir(tmp_path)) == ["d", "f"]


def test_temp_names_are_exclusive_and_random(tmp_path: Path) -> None:
    with safefs.opened_dir(tmp_path) as fd:
        a_fd, a = safefs.create_temp_file(fd, "x")
        b_fd, b = safefs.create_temp_file(fd, "x")
        os.close(a_fd)
        os.close(b_fd)
        d = safefs.make_temp_dir(fd, "y")
    assert a != b and a.startswith(".x-") and d.startswith(".y-")
    assert (tmp_path / d).is_dir() and not (tmp_path / d).is_symlink()


def test_read_regular_refuses_fifo_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "flake")
    with pytest.raises(safefs.NotRegularFile, match="FIFO"):
        safefs.read_regular(tmp_path / "flake", 100)


def test_read_regular_refuses_device_and_link_to_it(tmp_path: Path) -> None:
    os.symlink("/dev/zero", tmp_path / "z")
    with pytest.raises(safefs.NotRegularFile, match="symlink"):
        safefs.read_regular(tmp_path / "z", 100)
    with pytest.raises(safefs.NotRegularFile, match="character device"):
        safefs.read_regular(tmp_path / "z", 100, follow=True)


def test_read_regular_bounds(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"a" * 101)
    with pytest.raises(safefs.TooLarge):
        safefs.read_regular(tmp_path / "f", 100)
    assert safefs.read_regular(tmp_path / "f", 101) == b"a" * 101
    os.symlink("f", tmp_path / "l")
    assert safefs.read_regular(tmp_path / "l", 200, follow=True) == b"a" * 101


def test_read_regular_bound_holds_for_files_without_a_size(tmp_path: Path) -> None:
    # /proc files say size 0 and have more: the read itself stops at LIMIT + 1.
    with pytest.raises(safefs.TooLarge):
        safefs.read_regular("/proc/self/maps", 10, follow=True)


def test_replace_symlink_swaps_and_cleans_up(tmp_path: Path) -> None:
    os.symlink("/nix/store/a", tmp_path / "current")
    safefs.replace_symlink(tmp_path / "current", "/nix/store/b")
    assert os.readlink(tmp_path / "current") == "/nix/store/b"
    assert os.listdir(tmp_path) == ["current"]
    safefs.replace_symlink(tmp_path / "new", "/nix/store/c")
    assert os.readlink(tmp_path / "new") == "/nix/store/c"


@pytest.mark.parametrize("kind", ["empty dir", "file", "symlink", "dangling symlink"])
def test_rename_noreplace_never_replaces(tmp_path: Path, kind: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "flake").write_text("x")
    dst = tmp_path / "dst"
    if kind == "empty dir":
        dst.mkdir()
    elif kind == "file":
        dst.write_text("mine")
    elif kind == "symlink":
        os.symlink(src, dst)
    else:
        os.symlink(tmp_path / "nowhere", dst)
    with pytest.raises(FileExistsError):
        safefs.rename_noreplace(src, dst)
    assert (src / "flake").read_text() == "x"
    assert os.path.lexists(dst)


def test_rename_noreplace_moves(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    safefs.rename_noreplace(tmp_path / "src", tmp_path / "dst")
    assert os.listdir(tmp_path) == ["dst"]


def test_open_lock_file_refuses_fifo_and_symlink(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    os.symlink(tmp_path / "target", tmp_path / "link")
    with safefs.opened_dir(tmp_path) as fd:
        with pytest.raises(safefs.NotRegularFile):
            safefs.open_lock_file(fd, "fifo")
        with pytest.raises(safefs.NotRegularFile, match="symlink"):
            safefs.open_lock_file(fd, "link")
    assert not (tmp_path / "target").exists()


def test_describe_says_what_could_not_be_read(tmp_path: Path) -> None:
    exc = PermissionError(13, "Permission denied", str(tmp_path / "flake"))
    assert safefs.describe(exc) == f"{tmp_path / 'flake'}: permission denied"
