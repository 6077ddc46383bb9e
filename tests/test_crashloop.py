"""Crash-loop detection: NRestarts growth over a window (tui.host.crashloop)."""

from __future__ import annotations

from tui.host.crashloop import (
    LOOP_WINDOW_S,
    CrashLoopTracker,
    crash_loop_problem,
    looks_crash_looping,
)
from tui.host.model import UnitState


def unit(restarts: int | None, active: str = "activating", sub: str = "auto-restart") -> UnitState:
    return UnitState(name="microvm@vm.service", active=active, sub=sub, restarts=restarts)


def test_a_loop_that_keeps_restarting_stays_flagged_past_the_window() -> None:
    """Restarting every 4 s for ten minutes: the oldest restart seen left the window long ago,
    the ones inside it still count (a window anchored at the oldest restart would drop it)."""
    tracker = CrashLoopTracker()
    now, n = 0.0, 0
    flagged_at = None
    while now <= 2 * LOOP_WINDOW_S:
        looping = tracker.update({"vm": unit(n)}, now)
        if looping and flagged_at is None:
            flagged_at = now
        if flagged_at is not None:
            assert looping == {"vm"}, f"dropped at {now:.0f} s"
        now += 4
        n += 1
    assert flagged_at == 12.0  # the third restart after the first look


def test_old_restarts_do_not_count() -> None:
    """Two restarts long ago and one now are not three within the window."""
    tracker = CrashLoopTracker()
    tracker.update({"vm": unit(0, "active", "running")}, 0.0)
    tracker.update({"vm": unit(2, "active", "running")}, 10.0)
    assert tracker.update({"vm": unit(2, "active", "running")}, 10.0 + LOOP_WINDOW_S) == set()
    assert tracker.update({"vm": unit(3)}, 20.0 + LOOP_WINDOW_S) == set()
    assert tracker.update({"vm": unit(5)}, 30.0 + LOOP_WINDOW_S) == {"vm"}


def test_several_restarts_between_two_polls_all_count() -> None:
    tracker = CrashLoopTracker()
    tracker.update({"vm": unit(10)}, 0.0)
    assert tracker.update({"vm": unit(13)}, 1.0) == {"vm"}


def test_a_moment_of_inactive_inside_the_loop_does_not_end_it() -> None:
    """systemd's restart job passes through inactive/dead: one such poll keeps the loop, two
    in a row (a stop) end it."""
    tracker = CrashLoopTracker()
    tracker.update({"vm": unit(0)}, 0.0)
    assert tracker.update({"vm": unit(3)}, 1.0) == {"vm"}
    assert tracker.update({"vm": unit(3, "inactive", "dead")}, 2.0) == {"vm"}
    assert tracker.update({"vm": unit(4, "active", "running")}, 3.0) == {"vm"}
    assert tracker.update({"vm": unit(4, "inactive", "dead")}, 4.0) == {"vm"}
    assert tracker.update({"vm": unit(4, "inactive", "dead")}, 5.0) == set()


def test_a_start_by_hand_resets_the_count() -> None:
    tracker = CrashLoopTracker()
    tracker.update({"vm": unit(0)}, 0.0)
    assert tracker.update({"vm": unit(3)}, 1.0) == {"vm"}
    assert tracker.update({"vm": unit(0, "active", "running")}, 2.0) == set()
    assert tracker.update({"vm": unit(2, "active", "running")}, 3.0) == set()


def test_unknown_and_gone_units_are_forgotten() -> None:
    tracker = CrashLoopTracker()
    tracker.update({"vm": unit(0)}, 0.0)
    assert tracker.update({"vm": unit(None)}, 1.0) == set()
    assert tracker.update({"vm": unit(3)}, 2.0) == set()  # counted afresh from here
    assert tracker.update({}, 3.0) == set()
    assert tracker.update({"vm": unit(6)}, 4.0) == set()


def test_one_look_for_list() -> None:
    now = 10_000 * 1_000_000
    recent = now - 20 * 1_000_000
    old = now - int(LOOP_WINDOW_S + 60) * 1_000_000

    def u(restarts: int, active: str, sub: str, started: int | None) -> UnitState:
        return UnitState(
            name="microvm@vm.service", active=active, sub=sub, restarts=restarts,
            active_enter_usec=started,
        )  # fmt: skip

    assert looks_crash_looping(u(3, "activating", "auto-restart", recent), now)
    assert looks_crash_looping(u(7, "active", "running", recent), now)
    assert looks_crash_looping(u(7, "activating", "auto-restart", None), now)
    assert not looks_crash_looping(u(2, "activating", "auto-restart", recent), now)
    assert not looks_crash_looping(u(7, "active", "running", old), now)  # up for a while
    assert not looks_crash_looping(u(7, "inactive", "dead", recent), now)
    assert not looks_crash_looping(None, now)
    text = crash_loop_problem(u(7, "active", "running", recent))
    assert text == (
        "crash-looping: 7 automatic restarts of microvm@vm.service, the last within 5 min"
    )


def test_a_loop_going_on_before_the_first_look_shows_at_once() -> None:
    """As `list` says it: restarts ≥ 3 and the last start within the window; until the window
    has been watched, then only restarts seen count."""
    now_usec = 10_000 * 1_000_000
    looping = UnitState(
        name="microvm@vm.service", active="activating", sub="auto-restart", restarts=57,
        active_enter_usec=now_usec - 2_000_000,
    )  # fmt: skip
    settled = UnitState(
        name="microvm@ok.service", active="active", sub="running", restarts=57,
        active_enter_usec=now_usec - int(LOOP_WINDOW_S + 60) * 1_000_000,
    )  # fmt: skip
    tracker = CrashLoopTracker()
    assert tracker.update({"vm": looping, "ok": settled}, 0.0, now_usec) == {"vm"}
    # No restart seen since, the last start long past: no longer a loop.
    looping.active_enter_usec = now_usec - int(LOOP_WINDOW_S + 1) * 1_000_000
    assert tracker.update({"vm": looping, "ok": settled}, 1.0, now_usec) == set()
    # Watched for a whole window: only the restarts seen count.
    looping.active_enter_usec = now_usec
    assert tracker.update({"vm": looping}, LOOP_WINDOW_S + 2, now_usec) == set()
