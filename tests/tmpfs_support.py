"""A small real tmpfs for tests of what a full disk does (mounted in a temp dir, unmounted
after). Needs root, as the tests that use it do; a failed mount fails the test."""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_tmpfs(where: Path, size_kib: int = 256, inodes: int = 256) -> Iterator[Path]:
    mount = where / "tmpfs"
    mount.mkdir()
    options = f"size={size_kib}k,nr_inodes={inodes},mode=0755"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (root needed): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)
        mount.rmdir()


def fill_inodes(mount: Path, leave: int) -> list[Path]:
    """Use up the free inodes of MOUNT but LEAVE; the files made (remove them to free)."""
    filler = mount / ".filler"
    filler.mkdir(exist_ok=True)
    made: list[Path] = []
    for n in itertools.count():
        if os.statvfs(mount).f_ffree <= leave:
            break
        path = filler / f"f{n}"
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            made.append(path)
    assert os.statvfs(mount).f_ffree == leave
    return made


def fill_blocks(mount: Path) -> Path:
    """Use up every free block of MOUNT with one file; that file."""
    path = mount / ".blocks"
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return path
