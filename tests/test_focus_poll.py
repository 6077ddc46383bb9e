"""The app polls at once when the VM in focus changes (its detail needs what only the VM in focus
is asked over QMP), once the cursor rests: a cursor passing over rows starts no poll per row.
Recorded lab data, no lab needed (the lab's own test: tests/test_qmp_focus_lab.py)."""

from __future__ import annotations

from tests.monitor_support import SIZE, frames, make_app, until
from tui.app import MicroVMApp
from tui.feed import ReplaySource, Snapshot


class FocusReplay(ReplaySource):
    """The recorded lab, remembering the focus of each poll."""

    def __init__(self) -> None:
        super().__init__(frames(), start_at_last=True)
        self.polled: list[str | None] = []

    def poll(self, focus: str | None = None) -> Snapshot:
        self.polled.append(focus)
        return super().poll(focus)


def quiet(app: MicroVMApp) -> bool:
    """A poll done, none under way, none due for a focus change."""
    return app.polls > 0 and not app._polling and app._focus_settle is None


async def test_the_cursor_resting_on_another_vm_polls_it_once() -> None:
    source = FocusReplay()
    app = make_app(source)  # a poll timer of an hour: every poll here is a focus change's
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: quiet(app) and app.main_screen.selected_name is not None)
        await until(pilot, lambda: quiet(app) and source.polled[-1] is not None)
        table = app.main_screen.table
        first = app.main_screen.selected_name
        assert source.polled[-1] == first  # the launch's first row, polled once the table shows
        start = len(source.polled)
        # Rows passed over faster than FOCUS_SETTLE_S, as a held arrow key does.
        for row in range(1, 5):
            table.move_cursor(row=row)
        target = app.main_screen.selected_name
        assert target not in (None, first)
        await until(pilot, lambda: len(source.polled) > start and quiet(app))
        assert source.polled[start:] == [target]
        # Back and forth to the same VM before it rests: no poll.
        table.move_cursor(row=0)
        table.move_cursor(row=4)
        await pilot.pause()  # their RowHighlighted handled: the settle timer armed
        assert app._focus_settle is not None
        await until(pilot, lambda: quiet(app))
        assert source.polled[start:] == [target]
