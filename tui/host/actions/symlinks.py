"""The state dir's links as the actions read and change them (the safe primitives live in
``tui.host.safefs``; these names are what the actions and their tests use)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from tui.host.safefs import opened_dir, rename_noreplace, replace_symlink, replace_symlinks_at

__all__ = [
    "read_link",
    "rename_noreplace",
    "replace_symlink",
    "resolved",
    "swap_links",
    "temp_name",
]


def temp_name(directory: Path, stem: str) -> Path:
    """A hidden, unused name in DIRECTORY: ``.STEM-XXXXXXXX`` (for a tool that makes the
    file itself, such as nix's out-link; files of our own use ``safefs``)."""
    while True:
        path = directory / f".{stem}-{secrets.token_hex(4)}"
        if not os.path.lexists(path):
            return path


def read_link(path: Path) -> str | None:
    """The target of symlink PATH as written, None when there is no symlink there."""
    try:
        return os.readlink(path)
    except OSError:
        return None


def resolved(link: Path) -> str | None:
    """Where symlink LINK finally leads (relative targets are relative to its folder)."""
    target = read_link(link)
    if target is None:
        return None
    return os.path.realpath(os.path.join(link.parent, target))


def swap_links(vm_dir: Path, changes: list[tuple[str, str]]) -> None:
    """Point each link NAME in VM_DIR at its TARGET, all or none (``replace_symlinks_at``)."""
    with opened_dir(vm_dir) as fd:
        replace_symlinks_at(fd, changes)
