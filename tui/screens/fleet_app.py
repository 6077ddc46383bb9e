"""The app's side of the fleet view (``--all-hosts``), apart from the view itself: the view's
module (its tables and widgets) is imported when it is first opened, not for the first frame
of a one-host app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.feed.fleet import FleetSnapshot

if TYPE_CHECKING:
    from tui.screens.fleet import FleetScreen


class FleetAppMixin:
    """The app's side of the fleet view (``--all-hosts``): the ``:`` key, the palette's
    "Host: NAME" entries, and each poll's snapshot handed to the view when it is open."""

    fleet: bool = False  # set by the app: the source is a FleetSource

    def fleet_hosts(self) -> list[str]:
        snap = getattr(self, "snapshot", None)
        return [s.name for s in snap.hosts] if isinstance(snap, FleetSnapshot) else []

    _fleet_view: FleetScreen | None = None  # the one made by open_fleet

    def fleet_screen(self) -> FleetScreen | None:
        view = self._fleet_view
        return view if view is not None and view in self.screen_stack else None  # type: ignore[attr-defined]

    def open_fleet(self) -> FleetScreen:
        screen = self.fleet_screen()
        if screen is None:
            from tui.screens.fleet import FleetScreen

            screen = self._fleet_view = FleetScreen()
            self.push_screen(screen, self._fleet_closed)  # type: ignore[attr-defined]
            snap = getattr(self, "snapshot", None)
            if isinstance(snap, FleetSnapshot):
                self.call_after_refresh(screen.show, snap)  # type: ignore[attr-defined]
        return screen

    def show_fleet(self, snapshot: object) -> bool:
        """SNAPSHOT on the fleet view if it is open; True if it covers the monitor (which
        then is not updated until it shows again: a poll draws one screen)."""
        screen = self.fleet_screen()
        if screen is None or not isinstance(snapshot, FleetSnapshot):
            return False
        if screen.is_mounted:
            screen.show(snapshot)
        return self.screen is screen  # type: ignore[attr-defined]

    def _fleet_closed(self, key: str | None) -> None:
        main = self.main_screen  # type: ignore[attr-defined]
        snap = getattr(self, "snapshot", None)
        if snap is not None:
            main.show(snap)  # the latest, skipped while the fleet view covered it
        if key is None:
            return
        main.table.select_name(key)
        main.action_open_vm()

    def action_host_switcher(self) -> None:
        if not self.fleet:
            self.notify(  # type: ignore[attr-defined]
                "One host here: `microvm-tui --all-hosts` shows every host of the config.",
                severity="information",
            )
            return
        screen = self.fleet_screen()
        if screen is not None and self.screen is screen:  # type: ignore[attr-defined]
            screen.action_pick_host()
        else:
            self.open_fleet()

    def action_show_host(self, host: str) -> None:
        screen = self.open_fleet()
        self.call_after_refresh(screen.show_host, host or None)  # type: ignore[attr-defined]
