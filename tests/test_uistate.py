"""The remembered-choices file (tui/host/uistate.py): round trip, planted links and dirs,
broken files; and the app keeping theme, sort and tab across a restart (issue 10, item 21)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from tests.monitor_support import SIZE, make_app, replay, until
from tui.host.uistate import FILE_NAME, READ_LIMIT, UIState, UIStateStore, default_dir
from tui.widgets.detail.pane import DetailPane
from tui.widgets.vm_table import VMTable


def test_round_trip_and_file_mode(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "microvm-tui"
    store = UIStateStore(directory)
    assert store.load() == UIState() and store.problem is None  # nothing yet: no complaint
    assert store.update(theme="nord", sort_column="cpu", sort_reverse=True, detail_tab="history")
    assert store.update(last_flake="git+file:///etc/nixos")
    again = UIStateStore(directory).load()
    assert again == UIState("nord", "cpu", True, "history", "git+file:///etc/nixos")
    assert oct(os.stat(directory).st_mode & 0o777) == "0o700"
    assert oct(os.stat(directory / FILE_NAME).st_mode & 0o777) == "0o600"
    assert sorted(os.listdir(directory)) == [FILE_NAME]  # no temp file left behind


def test_default_dir_follows_xdg_state_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "/x/state")
    assert default_dir() == Path("/x/state/microvm-tui")
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", "/home/someone")
    assert default_dir() == Path("/home/someone/.local/state/microvm-tui")


def test_a_symlink_planted_at_the_file_is_replaced_not_written_through(tmp_path: Path) -> None:
    directory = tmp_path / "microvm-tui"
    directory.mkdir(mode=0o700)
    target = tmp_path / "precious"
    target.write_text("keep me")
    (directory / FILE_NAME).symlink_to(target)
    store = UIStateStore(directory)
    store.load()
    assert store.state == UIState() and "not followed" in (store.problem or "")
    assert store.update(theme="nord")
    assert target.read_text() == "keep me"
    assert not (directory / FILE_NAME).is_symlink()
    assert json.loads((directory / FILE_NAME).read_text()) == {"theme": "nord"}


def test_a_symlinked_state_dir_is_not_used(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "microvm-tui").symlink_to(elsewhere)
    store = UIStateStore(tmp_path / "microvm-tui")
    assert not store.update(theme="nord")
    assert "not followed" in (store.problem or "")
    assert os.listdir(elsewhere) == []


@pytest.mark.parametrize("how", ["group-writable", "other-writable", "other-owner"])
def test_a_dir_that_is_not_ours_alone_is_refused(tmp_path: Path, how: str) -> None:
    directory = tmp_path / "microvm-tui"
    directory.mkdir(mode=0o700)
    if how == "group-writable":
        os.chmod(directory, 0o770)
    elif how == "other-writable":
        os.chmod(directory, 0o707)
    else:
        os.chown(directory, 65534, 65534)  # the tests run as root (as the app does)
    (directory / FILE_NAME).write_text(json.dumps({"theme": "planted"}))
    store = UIStateStore(directory)
    assert store.load() == UIState()
    assert "not used" in (store.problem or "")
    assert not store.update(theme="nord")
    assert json.loads((directory / FILE_NAME).read_text()) == {"theme": "planted"}


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe",
        b"[1, 2]",
        b"",
        json.dumps({"theme": 5, "sort_reverse": "x"}).encode(),
    ],
)
def test_a_broken_file_is_ignored_without_a_traceback(tmp_path: Path, content: bytes) -> None:
    directory = tmp_path / "microvm-tui"
    directory.mkdir(mode=0o700)
    (directory / FILE_NAME).write_bytes(content)
    store = UIStateStore(directory)
    assert store.load() == UIState()
    assert store.update(theme="nord")  # and it is written over


def test_a_fifo_or_a_huge_file_is_not_read(tmp_path: Path) -> None:
    directory = tmp_path / "microvm-tui"
    directory.mkdir(mode=0o700)
    os.mkfifo(directory / FILE_NAME)
    result: list[UIState] = []
    reader = threading.Thread(target=lambda: result.append(UIStateStore(directory).load()))
    reader.start()
    reader.join(5)
    assert not reader.is_alive(), "a FIFO hung the read"
    assert result == [UIState()]
    os.unlink(directory / FILE_NAME)
    (directory / FILE_NAME).write_bytes(b" " * (READ_LIMIT + 1))
    store = UIStateStore(directory)
    assert store.load() == UIState() and "larger" in (store.problem or "")


async def test_the_app_keeps_theme_sort_and_tab_across_a_restart(tmp_path: Path) -> None:
    directory = tmp_path / "microvm-tui"
    app = make_app(replay())
    app.ui_state = UIStateStore(directory)
    app._apply_ui_state(app.ui_state)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.polls >= 1)
        app.theme = "nord"
        app.main_screen.query_one(VMTable).set_sort("memory", reverse=False)
        await pilot.press("6")  # the History tab
        await until(pilot, lambda: UIStateStore(directory).load().detail_tab == "history")
    saved = UIStateStore(directory).load()
    assert saved == UIState("nord", "memory", False, "history", None)

    again = make_app(replay())
    again.ui_state = UIStateStore(directory)
    again._apply_ui_state(again.ui_state)
    async with again.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: again.polls >= 1)
        table = again.main_screen.query_one(VMTable)
        assert again.theme == "nord"
        assert (table.sort_column, table.sort_reverse) == ("memory", False)
        assert again.main_screen.query_one(DetailPane).active_tab == "history"
