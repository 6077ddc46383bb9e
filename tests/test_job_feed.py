"""The job feed (``tui.actions.job_feed``): which of the runner's snapshots the app keeps, what
it publishes, and what it hands on, in a real (headless) Textual app with a real JobRunner."""

from __future__ import annotations

import threading
from dataclasses import replace

from textual.app import App

from tests.conftest import until_in_app
from tui.actions.job_feed import JobFeed
from tui.host.actions.commands import CommandRecord
from tui.host.actions.jobs import Job, JobRunner, JobState
from tui.host.settings import HostSettings


def record(n: int) -> CommandRecord:
    return CommandRecord(
        ("/run/current-system/sw/bin/true", str(n)), 1.0, 0.1, 0, 100 + n, "exit 0"
    )


async def test_a_stale_snapshot_is_dropped_and_each_command_is_logged_once() -> None:
    app: App[None] = App()
    async with app.run_test():
        states: list[tuple[JobState | None, JobState]] = []
        feed = JobFeed(
            app,
            JobRunner(HostSettings()),
            lambda before, job: states.append((before.state if before else None, job.state)),
        )
        queued = Job(id=1, action="restart", vm="web", version=1)
        running = replace(queued, state=JobState.RUNNING, commands=[record(1)], version=2)
        more = replace(running, commands=[record(1), record(2)], version=3)
        feed.add(queued)
        feed.add(running)
        feed.add(more)
        # The notifier thread's order is not the app's: an older snapshot arriving late.
        feed.add(running)
        assert feed.job(1) == more
        assert [r for _, r in feed.command_log()] == [record(1), record(2)]
        # Handed on when the state changed (not for the new command, not for the stale one).
        assert states == [(None, JobState.QUEUED), (JobState.QUEUED, JobState.RUNNING)]
        assert feed.running_on() == {"web": "restart web"}


async def test_the_runners_thread_posts_onto_the_app_and_a_closed_feed_keeps_nothing() -> None:
    app: App[None] = App()
    async with app.run_test() as pilot:
        runner = JobRunner(HostSettings())
        feed = JobFeed(app, runner, lambda before, job: None)
        assert runner.listener == feed._listener  # the runner tells the feed
        on_app_thread: list[bool] = []
        feed.subscribe(
            app.screen,
            lambda update: on_app_thread.append(
                threading.current_thread() is threading.main_thread()
            ),
        )
        thread = threading.Thread(target=runner.listener, args=(Job(id=1, action="start", vm="a"),))
        thread.start()
        thread.join()
        await until_in_app(pilot, lambda: feed.job(1) is not None, 5, what="the posted job")
        assert on_app_thread == [True]
        feed.close()
        runner.listener(Job(id=2, action="start", vm="b"))
        feed.add(Job(id=3, action="start", vm="c"))
        await pilot.pause()
        assert [job.id for job in feed.jobs()] == [1]
