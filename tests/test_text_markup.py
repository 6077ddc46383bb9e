"""Markup and escapes in data, through the real app (Pilot): nothing from outside is parsed as
Rich/Textual markup (``[/`` without an open tag raised and ended the app) and nothing reaches
the screen unsanitised. Each entry path the issue names: the filter, a state dir entry name,
a state dir path, a flake ref, nix's error output in a notification and the job log."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from textual.app import App
from textual.screen import ModalScreen
from textual.widgets import Log, Static

from tests.hostile_host import (
    BAD_HYPERVISOR,
    EVIL,
    FLAKE_MARKUP,
    ODD_NAME,
    VALID_NAME,
    make_hostile_host,
)
from tests.monitor_support import SIZE, make_app, replay, until
from tests.test_text_sanitiser import assert_safe
from tui.actions import confirmation
from tui.app import MicroVMApp
from tui.feed import LiveSource
from tui.host.console import ConsoleEndpoint, EndpointKind
from tui.host.model import VM, Drift, UnitState, Volume
from tui.host.settings import HostSettings
from tui.host.text import sanitise
from tui.screens.confirm import ConfirmScreen
from tui.screens.console import TakeoverScreen
from tui.screens.jobs import JobsScreen
from tui.widgets.vm_table import VMTable


def host_settings(state: Path) -> HostSettings:
    return HostSettings(
        state_dir=state,
        systemd_scope="user",
        systemd_env={"XDG_RUNTIME_DIR": str(state.parent / "no-manager")},  # unreachable
        gcroots_dir=state.parent / "gcroots",
        nix_options=("--extra-experimental-features", "nix-command flakes"),
    )


def live_app(state: Path) -> MicroVMApp:
    host = host_settings(state)
    return make_app(LiveSource(host, sample_timeout=0.2), host=host)


def assert_screen_safe(app: MicroVMApp) -> str:
    """Everything on the app's screen now (all layers, as an SVG screenshot: the text of every
    cell, escaped for XML only) holds no control, bidi or other unsafe character."""
    svg = app.export_screenshot()
    assert_safe(svg, "screen", newlines=True)
    return svg


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    return make_hostile_host(tmp_path)


async def select(pilot, app: MicroVMApp, name: str) -> None:  # type: ignore[no-untyped-def]
    table = app.main_screen.query_one(VMTable)
    table.move_cursor(row=table.get_row_index(name))
    await pilot.pause()
    assert table.selected_name == name


# --- the filter ----------------------------------------------------------------------------


async def test_filter_with_a_closing_tag_is_shown_as_typed() -> None:
    app = make_app(replay())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.polls >= 1)
        await pilot.press("slash", *"zz[/", "left_square_bracket")
        await pilot.pause()
        empty = app.main_screen.query_one("#empty", Static)
        await until(pilot, lambda: "zz[/[" in str(empty.content))
        assert app.is_running
        assert "No VM matches “zz[/[”" in str(empty.content)
        assert_screen_safe(app)


# --- a hostile state dir -------------------------------------------------------------------


async def test_hostile_state_dir_is_shown_literally_and_sanitised(hostile: Path) -> None:
    app = live_app(hostile)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.polls >= 1, timeout=20)
        table = app.main_screen.query_one(VMTable)
        names = {table.get_cell(row, "name").plain for row in table.order}
        assert sanitise(ODD_NAME) in names  # its "[b]x[red]" shown, not taken as styles
        assert_screen_safe(app)
        for name in (VALID_NAME, BAD_HYPERVISOR, ODD_NAME, "vm0003"):
            await select(pilot, app, name)
            for tab in ("overview", "network", "shares", "storage", "units"):
                app.main_screen.query_one("DetailPane").show_tab(tab)  # type: ignore[attr-defined]
                await pilot.pause()
                assert_screen_safe(app)
        assert app.is_running


async def test_flake_ref_with_markup_in_detail_and_dialog(hostile: Path) -> None:
    app = live_app(hostile)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.polls >= 1, timeout=20)
        await select(pilot, app, "vm0003")
        assert_screen_safe(app)
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        body = str(app.screen.query_one("#body", Static).content)
        assert FLAKE_MARKUP in body
        assert_screen_safe(app)
        assert app.is_running


async def test_state_dir_path_with_markup_is_shown(tmp_path: Path) -> None:
    state = tmp_path / "a[" / "b]" / "x[/y]z"
    state.mkdir(parents=True)
    app = live_app(state)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.polls >= 1, timeout=20)
        empty = app.main_screen.query_one("#empty", Static)
        assert f"No VMs in {state}" in str(empty.content)
        assert app.is_running


async def test_nix_error_output_in_notification_and_job_log(hostile: Path) -> None:
    """A real `update` of vm0003: nix cannot build `path:/x[/x]dir` and says so, quoting it."""
    app = live_app(hostile)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.polls >= 1, timeout=20)
        await select(pilot, app, "vm0003")
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.click("#confirm")
        await until(pilot, lambda: any("failed" in n.title for n in app._notifications), 60)
        note = next(n for n in app._notifications if "failed" in n.title)
        assert "[/x]" in note.message and note.markup is False
        await pilot.pause()
        assert app.is_running
        assert_screen_safe(app)
        await pilot.press("j")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        log = app.screen.query_one("#job-log", Log)
        await until(pilot, lambda: any("[/x]" in line for line in log.lines))
        for tab in ("log", "commands"):
            await pilot.press(tab[0])
            await pilot.pause()
            assert_screen_safe(app)
        assert app.is_running


def test_settings_helper_is_isolated(tmp_path: Path) -> None:
    # The apps above never reach the machine's own systemd or gcroots.
    host = host_settings(tmp_path)
    assert host.systemd_scope == "user" and "no-manager" in host.systemd_env["XDG_RUNTIME_DIR"]
    assert dataclasses.replace(host).gcroots_dir == tmp_path.parent / "gcroots"


# --- dialogs ------------------------------------------------------------------------------------


class DialogApp(App[None]):
    def __init__(self, screen: ModalScreen) -> None:  # type: ignore[type-arg]
        super().__init__()
        self.dialog = screen

    def on_mount(self) -> None:
        self.push_screen(self.dialog)


async def test_confirm_dialog_shows_outside_text_sanitised_and_literal() -> None:
    dialog = ConfirmScreen(
        "Delete " + EVIL,
        "body " + EVIL + "\nsecond line",
        typed_name="vm" + EVIL,
        details="details " + EVIL,
        details_title="diff " + EVIL,
        danger=True,
    )
    app = DialogApp(dialog)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen is dialog)
        body = str(dialog.query_one("#body", Static).content)
        assert sanitise(EVIL) in body and "second line" in body
        await pilot.press(*"x[/")
        await pilot.press("enter")
        await until(pilot, lambda: "x[/" in str(dialog.query_one("#typed-error", Static).content))
        assert_screen_safe(app)
        assert app.is_running


def hostile_vm(tmp_path: Path) -> VM:
    e = EVIL
    return VM(
        name="web",
        path=tmp_path / ("web" + e),
        hypervisor="qemu" + e,
        runner="/nix/store/runner" + e,
        booted="/nix/store/booted" + e,
        old="/nix/store/old" + e,
        flake="path:/x" + e,
        drift=Drift.STALE,
        unit=UnitState(name="microvm@web.service", active="active", main_pid=1),
        volumes=[Volume(image=str(tmp_path / ("web" + e) / "a.img"))],
        problems=["problem " + e],
    )


@pytest.mark.parametrize("action", ["start", "stop", "restart", "update", "rollback", "delete"])
def test_every_confirmation_text_is_sanitised(tmp_path: Path, action: str) -> None:
    """The actions' texts sanitise what they quote from the VM, before any widget does."""
    confirm = confirmation(action, hostile_vm(tmp_path), HostSettings(state_dir=tmp_path))
    for part in (confirm.title, confirm.body, confirm.details):
        if part is not None:
            plain = part if isinstance(part, str) else part.plain
            assert_safe(plain, action, newlines=True)


async def test_takeover_dialog_is_sanitised(tmp_path: Path) -> None:
    endpoint = ConsoleEndpoint(
        vm="web",
        kind=EndpointKind.TAKEOVER,
        path=str(tmp_path / ("web" + EVIL) / "microvm-tui.console.sock"),
        transcript=str(tmp_path / ("web" + EVIL) / "microvm-tui.console.log"),
        explanation="explained " + EVIL,
        needs_confirmation=True,
    )
    dialog = TakeoverScreen("web", endpoint)
    app = DialogApp(dialog)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen is dialog)
        assert sanitise(EVIL) in str(dialog.query_one("#body", Static).content)
        assert_screen_safe(app)


def test_markup_only_apis_get_escaped_text() -> None:
    """The command palette's help is read as markup by Textual: ours is escaped first."""
    from textual.content import Content

    from tui.widgets.outside import outside_markup

    shown = Content.from_markup(outside_markup("a[/x]b[red]c[/]\x1b"))
    assert shown.plain == "a[/x]b[red]c[/]␛" and not shown.spans


async def test_help_footer_shows_config_paths_and_its_own_brackets_literally() -> None:
    from tui.screens.help import HelpScreen

    sources = ("/etc/a[/b]/microvm-tui.toml", "/home/x/[red]\x1b]0;T\x07.toml")
    dialog = HelpScreen([], sources)
    app = DialogApp(dialog)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen is dialog)
        footer = str(dialog.query_one("#help-footer", Static).content)
        assert "the config file's [keys] table" in footer  # was eaten as a tag before
        assert "/etc/a[/b]/microvm-tui.toml, /home/x/[red]␛]0;T␇.toml" in footer
        assert_screen_safe(app)
