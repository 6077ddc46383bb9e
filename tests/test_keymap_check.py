"""The [keys] table against the app's real bindings: unknown ids and conflicts named at start."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from textual.dom import DOMNode

import tui
from tui.keymap_check import class_bindings, keymap_problems, known_ids, scopes
from tui.keynames import normalize


@pytest.fixture(scope="module")
def all_scopes() -> dict:
    return scopes()


@pytest.mark.parametrize(
    ("keymap", "expected"),
    [
        ({"refresh": "q"}, '[keys] refresh = "q": q is also Quit (quit) on the VM list'),
        ({"sort": "q"}, '[keys] sort = "q": q is also Quit (quit) on the VM list'),
        ({"refresh": "ctrl+q"}, "ctrl+q is also Quit on the VM list"),
        ({"refresh": "f5,s"}, '[keys] refresh = "f5,s": s is also Sort (sort) on the VM list'),
        ({"jobs.cancel": "escape"}, "escape is also Back (jobs.close) on the jobs panel"),
        ({"refresh": "up"}, "up is also Scroll Up, Cursor up on the VM list"),
        ({"nosuch": "x"}, "[keys] nosuch: no binding has this id (the ids: "),
    ],
)
def test_a_problem_is_named(all_scopes: dict, keymap: dict[str, str], expected: str) -> None:
    problems = keymap_problems(keymap, all_scopes)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    "keymap",
    [
        {},
        {"refresh": "f5", "sort": "o", "tab_history": "h"},
        {"quit": "x", "refresh": "q"},  # q moved off Quit first: no clash
        {"help_close_q": "q"},  # shares q with Quit by default (on another screen)
        {"jobs.cancel": "delete"},
    ],
)
def test_a_good_keymap_has_no_problem(all_scopes: dict, keymap: dict[str, str]) -> None:
    assert keymap_problems(keymap, all_scopes) == []


def test_every_id_mapped_to_its_own_keys_is_no_conflict(all_scopes: dict) -> None:
    own: dict[str, set[str]] = {}
    for bindings in all_scopes.values():
        for _, b in bindings:
            if b.id:
                own.setdefault(b.id, set()).add(normalize(b.key))
    keymap = {ident: ",".join(sorted(keys)) for ident, keys in own.items()}
    assert len(keymap) > 20
    assert keymap_problems(keymap, all_scopes) == []


def test_every_binding_id_of_the_app_is_in_a_scope(all_scopes: dict) -> None:
    for info in pkgutil.walk_packages(tui.__path__, "tui."):
        if not info.name.startswith(("tui.host", "tui.lab", "tui.__main__")):
            importlib.import_module(info.name)
    ids = set()
    stack = [DOMNode]
    while stack:
        cls = stack.pop()
        stack += cls.__subclasses__()
        if cls.__module__.startswith("tui."):
            ids |= {b.id for _, b in class_bindings(cls) if b.id}
    assert ids  # the walk found the app's bindings
    assert ids <= known_ids(all_scopes)


def test_the_app_does_not_start_with_a_conflict(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[keys]\nrefresh = "q"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "tui", "--config", str(cfg), "--state-dir", str(tmp_path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,  # the app started instead: it would run until killed
        env={**os.environ, "PYTHONPATH": str(Path(tui.__file__).parent.parent)},
    )
    assert proc.returncode == 2
    problem = '[keys] refresh = "q": q is also Quit (quit) on the VM list'
    # One line; the same clash in the other screens that keep the app's keys is named too.
    assert proc.stderr.startswith(f"microvm-tui: {problem}") and proc.stderr.count("\n") == 1
