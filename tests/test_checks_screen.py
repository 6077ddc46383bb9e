"""The host checks view: findings listed with their fix, a leftover cleaned after a
confirmation (for real: a GC root link in a folder of the test's), read-only refusing it, hostile
text shown as text; and the app's `!` opening it. The findings come from ``run_checks`` on real
files, so what the view shows is what the checks find."""

from __future__ import annotations

from pathlib import Path

from textual.app import App

from tests.conftest import until_in_app
from tests.snapshot_support import snapshots_in_top_level_folder  # noqa: F401
from tui.host.checks.findings import CheckReport
from tui.host.checks.leftovers import stale_gcroots
from tui.host.settings import HostSettings
from tui.screens.checks import ChecksScreen
from tui.screens.confirm import ConfirmScreen

SIZE = (110, 24)


def _host(tmp_path: Path) -> HostSettings:
    roots = tmp_path / "gcroots"
    roots.mkdir()
    (tmp_path / "state" / "web").mkdir(parents=True)
    for name in ("web", "gone", "booted-gone"):
        (roots / name).symlink_to(f"/nix/store/{'0' * 32}-x")
    # A link's target is anyone's text: markup and an escape sequence stay text on screen.
    (roots / "old-gone").symlink_to("/nix/store/x[b]bold?[/b]\x1b]0;title\x07")
    return HostSettings(state_dir=tmp_path / "state", gcroots_dir=roots)


def _runner(host: HostSettings):  # type: ignore[no-untyped-def]
    def run() -> CheckReport:
        report = CheckReport(findings=stale_gcroots(host.gcroots_dir, {"web"}))
        report.errors.append("host checks: systemd is not reachable: no bus")
        report.took_ms = 12.0
        return report

    return run


class ChecksApp(App[None]):
    def __init__(self, host: HostSettings, read_only: str | None = None) -> None:
        super().__init__()
        self.host = host
        self.read_only = read_only

    def on_mount(self) -> None:
        self.push_screen(ChecksScreen(_runner(self.host), self.host, self.read_only))


def _rows(app: App) -> int:  # type: ignore[type-arg]
    screen = app.screen
    return screen.query_one("#checks-table").row_count if isinstance(screen, ChecksScreen) else 0


async def test_a_leftover_is_cleaned_after_confirming(tmp_path: Path) -> None:
    host = _host(tmp_path)
    app = ChecksApp(host)
    async with app.run_test(size=SIZE) as pilot:
        await until_in_app(pilot, lambda: _rows(app) == 3, 10)
        title = str(app.screen.query_one("#checks-title").render())
        assert "3 problems" in title
        await pilot.press("c")
        await until_in_app(pilot, lambda: isinstance(app.screen, ConfirmScreen), 10)
        await pilot.press("enter")  # the focused button is Clean
        await until_in_app(pilot, lambda: _rows(app) == 2, 10)
    assert not (host.gcroots_dir / "booted-gone").is_symlink()  # the first row, sorted
    assert (host.gcroots_dir / "gone").is_symlink() and (host.gcroots_dir / "web").is_symlink()


async def test_read_only_refuses_cleaning(tmp_path: Path) -> None:
    host = _host(tmp_path)
    app = ChecksApp(host, read_only="not running as root")
    async with app.run_test(size=SIZE) as pilot:
        await until_in_app(pilot, lambda: _rows(app) == 3, 10)
        await pilot.press("c")
        await until_in_app(
            pilot, lambda: any("read-only" in n.message for n in app._notifications), 10
        )
        assert isinstance(app.screen, ChecksScreen)
    assert len(list(host.gcroots_dir.iterdir())) == 4


def test_the_checks_view(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # The folder name is fixed so the paths on screen are the same every run.
    root = Path("/tmp/mvtui-checks-snapshot")
    import shutil

    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    try:
        host = _host(root)

        async def shown(pilot) -> None:  # type: ignore[no-untyped-def]
            await until_in_app(pilot, lambda: _rows(pilot.app) == 3, 10)

        assert snap_compare(ChecksApp(host), terminal_size=SIZE, run_before=shown)
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def test_bang_opens_the_checks_view_and_the_overview_shows_a_vms_findings() -> None:
    from tests.monitor_support import SIZE as APP_SIZE
    from tests.monitor_support import frames, make_app, until
    from tests.test_monitor_app import _plain, select
    from tui.feed import ReplaySource
    from tui.host.checks.findings import CheckKind, Finding
    from tui.widgets.detail.pane import DetailPane

    recorded = frames()
    recorded[-1].checks = CheckReport(
        findings=[
            Finding(
                CheckKind.JOURNAL_MACHINE_ID,
                "web",
                "journal share 'journal' holds 2 machine-id directories",
                'give the guest a fixed machine-id: microvm.machineId = "<32 hex digits>"',
                vm="web",
            )
        ]
    )
    app = make_app(ReplaySource(recorded, start_at_last=True))
    async with app.run_test(size=APP_SIZE) as pilot:
        await until(pilot, lambda: app.polls >= 1)
        await select(pilot, app, "web")
        overview = _plain(app.main_screen.query_one(DetailPane).query_one("#view-overview"))
        assert "⚠ journal share 'journal' holds 2 machine-id directories" in overview
        assert "fix: give the guest a fixed machine-id" in overview
        await select(pilot, app, "idle")
        overview = _plain(app.main_screen.query_one(DetailPane).query_one("#view-overview"))
        assert "Host checks" not in overview
        await pilot.press("exclamation_mark")
        await until_in_app(pilot, lambda: isinstance(app.screen, ChecksScreen), 10)
