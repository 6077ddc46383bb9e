"""The actions UI end to end against the lab: real nix, real systemd, real QEMU.

Everything goes through the keys and dialogs of a small app wired like the real one
(``ActionsTestApp``), with the real JobRunner and host actions. The steps build on each other
(module order): create ``extra1`` from the lab flake and start it; change its memory in the
lab flake and update (diff, stale until restarted, restart, current); roll back; a failing
build; a second update while one runs, a cancelled build and a cancelled create (no debris);
the declarative VM refused; at the end stop and delete ``extra1`` with its typed name.

The lab's flake has no function to add a VM, so the test adds ``extra1`` to the flake's
``vms.json`` (the file the lab generates, with the lab's own ``vm_config``) and puts the file
back as it was at the end, whatever happened (``extra_vm`` fixture).

To iterate without a fresh lab per run: ``python -m tui.lab up DIR`` once, then run with
``MVTUI_TEST_LAB=DIR``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.test_actions_support import processes_with, write_flake
from tests.test_actions_ui_support import ActionsTestApp, wait_until
from tui.config import load_settings
from tui.host import tools
from tui.host.actions import operations as ops
from tui.host.actions.errors import ActionError, Busy
from tui.host.actions.jobs import Job, JobState
from tui.host.inventory import list_vms
from tui.host.model import VM, Drift
from tui.host.settings import default_cache_dir
from tui.lab import Lab
from tui.lab.lab import guest_booted
from tui.lab.vms import VmSpec, vm_config
from tui.screens.confirm import ConfirmScreen
from tui.screens.create import CreateScreen
from tui.screens.jobs import JobsScreen
from tui.widgets.jobs_table import JobsTable

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]

NAME = "extra1"
BUILD_S = 240.0  # a nix evaluation + build of a lab runner, on a loaded machine
BOOT_S = 240.0  # a guest boot under TCG, on a loaded machine
SIZE = (120, 40)


# --- fixtures ----------------------------------------------------------------------------------


class Extra:
    """extra1's place in the lab flake, and what the steps learn about it."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.vms_json = lab.flake_dir / "vms.json"
        self.original = self.vms_json.read_bytes()
        self.spec = VmSpec(NAME, mem=128)
        self.first_runner: str | None = None
        self.second_runner: str | None = None
        self.tmp = Path(lab.root) / "tmp" / "actions-ui-test"

    def set_config(self, **changes: Any) -> None:
        """Write extra1 into vms.json (the way the lab writes every VM), with CHANGES."""
        doc = json.loads(self.original)
        config = vm_config(self.spec, self.lab.root)
        config.update(changes)
        doc["vms"][NAME] = config
        self.vms_json.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")

    @property
    def state(self) -> Path:
        return self.lab.settings.state_dir / NAME


@pytest.fixture(scope="module")
def extra(the_lab: Lab) -> Iterator[Extra]:
    ext = Extra(the_lab)
    assert not ext.state.exists(), f"{ext.state} exists before the test: a leftover?"
    ext.set_config()
    try:
        yield ext
    finally:
        # Leave the lab as it was, whatever happened above.
        settings = the_lab.settings
        for name in (NAME, "extra2"):
            if (settings.state_dir / name).exists():
                with contextlib.suppress(ActionError):
                    ops.delete(settings, name)
        ext.vms_json.write_bytes(ext.original)
        shutil.rmtree(ext.tmp, ignore_errors=True)
        remove_traces(the_lab, (NAME, "extra2"))


def remove_traces(lab: Lab, names: tuple[str, ...]) -> None:
    """The indirect GC roots that `nix build -o` registered for the (now gone) out-links of
    the VMs the test made. (Their journal lines stay in the lab's volatile journal.)"""
    state = str(lab.settings.state_dir)
    prefixes = tuple(f"{state}/{p}" for n in names for p in (f"{n}/", f".{n}."))
    auto = Path("/nix/var/nix/gcroots/auto")
    for link in auto.iterdir() if auto.is_dir() else ():
        target = readlink(link)
        if target and target.startswith(prefixes) and not os.path.lexists(target):
            link.unlink(missing_ok=True)


def new_app(lab: Lab, **kwargs: Any) -> ActionsTestApp:
    settings = load_settings(lab.config_path)
    assert settings.host == replace(lab.settings, cache_dir=default_cache_dir())
    return ActionsTestApp(
        settings=settings, list_vms=lambda: list_vms(lab.settings, links=False).vms, **kwargs
    )


# --- helpers -----------------------------------------------------------------------------------


def vm_now(lab: Lab, name: str = NAME) -> VM | None:
    # No links: the interfaces do not matter here, and pyroute2 must not run on the loop.
    return next((v for v in list_vms(lab.settings, links=False).vms if v.name == name), None)


def readlink(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def links(vm_dir: Path) -> dict[str, str]:
    """What a failed or cancelled job must leave alone: the names in the VM dir, with the
    targets of its symlinks and the contents of its small files."""
    out = {}
    for entry in sorted(os.scandir(vm_dir), key=lambda e: e.name):
        if entry.is_symlink():
            out[entry.name] = "-> " + os.readlink(entry.path)
        elif entry.is_file(follow_symlinks=False):
            out[entry.name] = Path(entry.path).read_text(errors="replace")[:200]
        else:
            out[entry.name] = "other"
    return out


def debris(lab: Lab, name: str) -> list[str]:
    """Temp dirs beside the state dir and temp links in the VM dir a job may leave behind."""
    state = lab.settings.state_dir
    found = [e for e in os.listdir(state) if e.startswith(f".{name}.") and e != f".{name}.lock"]
    vm_dir = state / name
    if vm_dir.is_dir():
        found += [f"{name}/{e}" for e in os.listdir(vm_dir) if e.startswith(".")]
    return found


def main_pid_cmdline(lab: Lab) -> str:
    vm = vm_now(lab)
    assert vm is not None and vm.unit is not None and vm.unit.main_pid
    return Path(f"/proc/{vm.unit.main_pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def console_offset(lab: Lab) -> float:
    """Where the guest's serial output in the journal starts from now on (a wall-clock time)."""
    return time.time()


def wait_booted(lab: Lab, since: float) -> None:
    wait_for(
        lambda: guest_booted(lab.settings, NAME, since), BOOT_S, 0.5, f"{NAME}'s guest to boot"
    )


def running_current(lab: Lab) -> VM | None:
    vm = vm_now(lab)
    if vm is None or vm.unit is None or vm.unit.active != "active" or not vm.unit.main_pid:
        return None
    return vm if vm.drift == Drift.CURRENT else None


async def confirm(pilot, title: str) -> ConfirmScreen:
    app = pilot.app

    def shown() -> ConfirmScreen | None:
        screen = app.screen
        if isinstance(screen, ConfirmScreen) and screen.title_text == title:
            return screen if screen.query("#confirm") else None  # composed
        return None

    return await wait_until(pilot, shown, what=f"the dialog '{title}'")


async def job_done(pilot, action: str, name: str = NAME, timeout: float = BUILD_S) -> Job:
    app = pilot.app

    def finished() -> Job | None:
        jobs = [j for j in app.actions.feed.jobs() if j.action == action and j.vm == name]
        return jobs[-1] if jobs and jobs[-1].state.finished else None

    return await wait_until(pilot, finished, timeout, f"{action} {name} to finish")


async def select(pilot, name: str = NAME) -> None:
    app = pilot.app
    app.action_refresh()
    await wait_until(pilot, lambda: name in app.main_screen.table.rows, what=f"{name} listed")
    app.select(name)
    await wait_until(pilot, lambda: app.selected_vm() and app.selected_vm().name == name)


def notified(app: ActionsTestApp, text: str) -> bool:
    return any(text in n.message for n in app._notifications)


# --- the steps ---------------------------------------------------------------------------------


async def test_create_from_the_lab_flake_then_start(the_lab: Lab, extra: Extra) -> None:
    app = new_app(the_lab)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        dialog = app.screen
        assert isinstance(dialog, CreateScreen)
        await pilot.press(*NAME)
        flake = dialog.query_one("#flake")
        flake.value = the_lab.flake_ref()
        await pilot.pause()
        assert not dialog.query_one("#create").disabled
        await pilot.click("#create")
        job = await job_done(pilot, "create")
        assert job.state is JobState.SUCCEEDED, job.result
        assert any(r.argv[0] == tools.path("nix") and r.returncode == 0 for r in job.commands)
        assert job.progress is not None and job.progress.finished

        vm = vm_now(the_lab)
        assert vm is not None, "created, but not listed"
        assert vm.flake == the_lab.flake_ref()
        assert vm.unit is not None and vm.unit.active == "inactive"
        extra.first_runner = vm.runner

        await select(pilot)
        offset = console_offset(the_lab)
        await pilot.press("t")
        dialog = await confirm(pilot, f"Start {NAME}?")
        assert f"the guest boots from current ({vm.runner})" in str(dialog.body)
        await pilot.press("enter")
        job = await job_done(pilot, "start", timeout=60)
        assert job.state is JobState.SUCCEEDED, job.result
        vm = wait_for(lambda: running_current(the_lab), 60, 0.5, f"{NAME} running")
        assert "-m 128M" in main_pid_cmdline(the_lab)
        wait_booted(the_lab, offset)


async def test_update_shows_the_diff_and_stays_stale_until_restarted(
    the_lab: Lab, extra: Extra
) -> None:
    assert extra.first_runner, "needs the create step"
    extra.set_config(mem=192)
    app = new_app(the_lab)
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot)
        await pilot.press("u")
        dialog = await confirm(pilot, f"Update {NAME}?")
        assert f"old → {extra.first_runner} (current now)" in str(dialog.body)
        await pilot.press("enter")
        job = await job_done(pilot, "update")
        assert job.state is JobState.SUCCEEDED, job.result
        assert job.outcome is not None and job.outcome.restart_needed
        new_runner = job.outcome.out_path
        assert new_runner and new_runner != extra.first_runner

        # The offer: the diff-closures output, and a restart only if the admin says so.
        offer = await confirm(pilot, f"Restart {NAME}?")
        details = str(offer.query_one("#details-text").content)
        assert details == (job.outcome.diff or "").rstrip("\n") or "(no package changes)"
        assert any(line.startswith("diff: ") for line in job.log)
        assert any("diff-closures" in r.argv for r in job.commands)
        vm = vm_now(the_lab)
        assert vm is not None and vm.drift == Drift.STALE
        assert vm.runner == new_runner and vm.old == extra.first_runner
        assert vm.booted == extra.first_runner
        assert "-m 128M" in main_pid_cmdline(the_lab)  # still the old build

        offset = console_offset(the_lab)
        await pilot.press("enter")  # "Restart now"
        job = await job_done(pilot, "restart", timeout=BOOT_S)
        assert job.state is JobState.SUCCEEDED, job.result
        vm = wait_for(lambda: running_current(the_lab), 60, 0.5, f"{NAME} current")
        assert vm.booted == new_runner
        assert "-m 192M" in main_pid_cmdline(the_lab)
        extra.second_runner = new_runner
        wait_booted(the_lab, offset)


async def test_rollback_brings_the_old_runner_back(the_lab: Lab, extra: Extra) -> None:
    assert extra.second_runner, "needs the update step"
    app = new_app(the_lab)
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot)
        await pilot.press("b")
        dialog = await confirm(pilot, f"Roll {NAME} back?")
        assert f"current → {extra.first_runner} (old now)" in str(dialog.body)
        await pilot.press("enter")
        job = await job_done(pilot, "rollback", timeout=60)
        assert job.state is JobState.SUCCEEDED, job.result
        await confirm(pilot, f"Restart {NAME}?")
        vm = vm_now(the_lab)
        assert vm is not None
        assert vm.runner == extra.first_runner and vm.old == extra.second_runner
        assert vm.drift == Drift.STALE  # until restarted
        await pilot.press("escape")  # "later"
        await pilot.pause()
        assert not app.actions.runner.active_on(NAME)

        offset = console_offset(the_lab)
        await select(pilot)
        await pilot.press("R")
        await confirm(pilot, f"Restart {NAME}?")
        await pilot.press("enter")
        job = await job_done(pilot, "restart", timeout=BOOT_S)
        assert job.state is JobState.SUCCEEDED, job.result
        vm = wait_for(lambda: running_current(the_lab), 60, 0.5, f"{NAME} current")
        assert vm.booted == extra.first_runner
        assert "-m 128M" in main_pid_cmdline(the_lab)
        wait_booted(the_lab, offset)


async def test_a_failing_build_shows_nix_error_and_changes_nothing(
    the_lab: Lab, extra: Extra
) -> None:
    extra.set_config(vcpu="many")  # an evaluation error in the lab flake's qemu runner
    before = links(extra.state)
    app = new_app(the_lab)
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot)
        await pilot.press("u")
        await confirm(pilot, f"Update {NAME}?")
        await pilot.press("enter")
        job = await job_done(pilot, "update")
        assert job.state is JobState.FAILED
        assert job.progress is not None and job.progress.errors
        # Nix's own words, in the job's result (and so in its notification and the panel).
        assert "cannot compare an integer with a string" in "\n".join(job.progress.errors)
        assert job.result is not None and job.result.startswith("nix build failed")
        assert "cannot compare an integer with a string" in job.result
        await pilot.press("j")
        panel = app.screen
        assert isinstance(panel, JobsScreen)
        assert str(panel.query_one(JobsTable).get_cell(str(job.id), "state")) == "✖ failed"
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)  # no restart offered
    assert links(extra.state) == before
    assert debris(the_lab, NAME) == []
    assert readlink(extra.state / "current") == extra.first_runner
    extra.set_config()


async def test_a_second_update_is_refused_and_a_cancelled_build_leaves_no_debris(
    the_lab: Lab, extra: Extra
) -> None:
    slow = write_flake(extra.tmp / "slow-flake", {NAME: "slow", "extra2": "slow"})
    flake_file = extra.state / "flake"
    original_flake = flake_file.read_bytes()
    flake_file.write_text(slow.ref)  # what `microvm -c -f` would have written
    try:
        before = links(extra.state)
        app = new_app(the_lab)
        async with app.run_test(size=SIZE) as pilot:
            await select(pilot)
            await pilot.press("u")
            await confirm(pilot, f"Update {NAME}?")
            await pilot.press("enter")
            await wait_until(
                pilot,
                lambda: any(
                    f"started {slow.marker}" in line for line in app.actions.feed.jobs()[-1].log
                ),
                BUILD_S,
                "the slow builder to start",
            )
            running = app.actions.feed.jobs()[-1]
            assert running.state is JobState.RUNNING

            # The same app: refused before any dialog, with the reason.
            await pilot.press("u")
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen)
            assert notified(app, f"update {NAME} (job {running.id}) is still running on {NAME}")
            # Another app instance (the VM lock): refused at once, saying who holds it: the
            # job's own process (job-exec in its systemd unit), not the app.
            with pytest.raises(
                Busy, match=rf"another job is running on {NAME} \(pid \d+\)"
            ) as busy:
                ops.update(the_lab.settings, NAME)
            holder = int(str(busy.value).rsplit("pid ", 1)[1].rstrip(")"))
            assert holder != os.getpid()
            assert b"job-exec" in Path(f"/proc/{holder}/cmdline").read_bytes()

            # Cancel from the jobs panel.
            await pilot.press("j")
            panel = app.screen
            assert isinstance(panel, JobsScreen)
            panel.query_one(JobsTable).select_id(running.id)
            await pilot.press("x")
            job = await job_done(pilot, "update", timeout=60)
            assert job.state is JobState.CANCELLED, job.result
        wait_for(lambda: not processes_with(slow.marker), 30, 0.2, "the builder to be gone")
        assert links(extra.state) == before
        assert debris(the_lab, NAME) == []
        assert readlink(extra.state / "current") == extra.first_runner

        # A cancelled create: nothing appears, nothing is left beside the state dir.
        app = new_app(the_lab)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("n")
            dialog = app.screen
            assert isinstance(dialog, CreateScreen)
            await pilot.press(*"extra2")
            dialog.query_one("#flake").value = slow.ref
            await pilot.pause()
            await pilot.click("#create")
            await wait_until(
                pilot,
                lambda: (
                    app.actions.feed.jobs()
                    and any(
                        f"started {slow.marker}" in line for line in app.actions.feed.jobs()[-1].log
                    )
                ),
                BUILD_S,
                "the slow create to start",
            )
            await pilot.press("j", "x")
            job = await job_done(pilot, "create", "extra2", timeout=60)
            assert job.state is JobState.CANCELLED, job.result
        wait_for(lambda: not processes_with(slow.marker), 30, 0.2, "the builder to be gone")
        assert not (the_lab.settings.state_dir / "extra2").exists()
        assert debris(the_lab, "extra2") == []
        assert not any(p.name.endswith("extra2") for p in the_lab.settings.gcroots_dir.iterdir())
    finally:
        flake_file.write_bytes(original_flake)


async def test_the_declarative_vm_is_refused(the_lab: Lab, extra: Extra) -> None:
    app = new_app(the_lab)
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot, "decl")
        await pilot.press("u")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert notified(app, "decl is managed fully declaratively")
        # Past the UI's check, the host refuses it too, and says why.
        job = app.actions.submit("update", "decl")
        assert job is not None
        job = await job_done(pilot, "update", "decl", timeout=30)
        assert job.state is JobState.FAILED
        assert "decl is managed fully declaratively" in (job.result or "")


async def test_stop_and_delete_with_the_typed_name(the_lab: Lab, extra: Extra) -> None:
    app = new_app(the_lab)
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot)
        await pilot.press("T")
        await confirm(pilot, f"Stop {NAME}?")
        await pilot.press("enter")
        job = await job_done(pilot, "stop", timeout=BOOT_S)
        assert job.state is JobState.SUCCEEDED, job.result
        vm = vm_now(the_lab)
        assert vm is not None and vm.unit is not None and vm.unit.active != "active"

        await select(pilot)
        await pilot.press("D")
        dialog = await confirm(pilot, f"Delete {NAME}?")
        await pilot.press(*"extra", "enter")  # not the name: refused
        await pilot.pause()
        assert app.screen is dialog
        assert app.actions.feed.jobs()[-1].action != "delete"
        await pilot.press("1", "enter")
        job = await job_done(pilot, "delete", timeout=BOOT_S)
        assert job.state is JobState.SUCCEEDED, job.result
    assert vm_now(the_lab) is None
    assert not extra.state.exists()
    assert debris(the_lab, NAME) == []
    roots = the_lab.settings.gcroots_dir
    assert not any(p.name in (NAME, f"booted-{NAME}", f"old-{NAME}") for p in roots.iterdir())
    assert threading.active_count() < 50  # no job threads piling up
