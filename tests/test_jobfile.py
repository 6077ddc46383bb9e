"""A job file's values (``tui.host.actions.jobfile``) without a lab: the spec's host settings and
options come back exactly as the app had them, and records of the wrong shape are one line.
(Job files of real units: tests/test_jobunits_lab.py.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tui.host.actions import jobfile
from tui.host.actions.commands import CommandRecord
from tui.host.actions.nixlog import Progress
from tui.host.actions.operations import Outcome
from tui.host.settings import DeploySource, HostSettings, SystemdBus


def test_settings_and_options_round_trip() -> None:
    settings = HostSettings(
        state_dir=Path("/srv/vms"),
        systemd_scope="user",
        systemd_env={"XDG_RUNTIME_DIR": "/run/user/0"},
        netns="labns",
        console_log_dir=Path("/var/log/vms"),
        journal_dir=None,
        nix_options=("--option", "substituters", ""),
        cache_dir=Path("/var/cache/x"),
        timeout=7.5,
        systemd_bus=SystemdBus("path", Path("/run/bus")),
        jobs_dir=Path("/run/x/jobs"),
    )
    data = json.loads(json.dumps(jobfile.settings_json(settings)))
    assert jobfile.settings_from_json(data) == settings
    options = {"source": DeploySource("file:///c", "http://h/{name}", False), "restart": True}
    again = jobfile.options_from_json(json.loads(json.dumps(jobfile.options_json(options))))
    assert again == options


def test_records_come_back_typed() -> None:
    progress = Progress(builds_done=2, builds_expected=3, current_builds=("a", "b"), phase="x")
    record = CommandRecord(("/usr/bin/nix", "build"), 1.0, 0.5, 0, 42, "exit 0")
    outcome = Outcome("updated web", changed=True, restart_needed=None, notes=("n",))
    for value, back in (
        (progress, jobfile.progress_from_json),
        (record, jobfile.command_from_json),
        (outcome, jobfile.outcome_from_json),
    ):
        assert back(json.loads(json.dumps(jobfile.plain(value)))) == value


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (
            {
                "argv": ["x"],
                "started": "now",
                "duration": 1,
                "returncode": 0,
                "pid": 1,
                "outcome": "",
            },
            "started is not a float",
        ),
        (
            {
                "argv": "rm -rf /",
                "started": 1,
                "duration": 1,
                "returncode": 0,
                "pid": 1,
                "outcome": "",
            },
            "argv is not a list of strings",
        ),
        ({"argv": ["x"]}, "lacks a field"),
        ([], "not an object"),
    ],
)
def test_a_record_of_the_wrong_shape_is_one_line(data: object, said: str) -> None:
    with pytest.raises(jobfile.JobFileError, match=said):
        jobfile.command_from_json(data)


def test_a_job_dir_of_another_owner_or_mode_is_refused(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o711)
    with pytest.raises(jobfile.JobFileError, match="must be ours and 0700"):
        jobfile.open_job_dir(open_dir)
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    with pytest.raises(jobfile.JobFileError, match="symlink"):
        jobfile.open_job_dir(link)
    fd = jobfile.open_job_dir(tmp_path / "new" / "jobs")
    try:
        assert os.stat(tmp_path / "new" / "jobs").st_mode & 0o777 == 0o700
        jobfile.create(fd, "1700000000-0123abcd", {"action": "start", "vm": "web"})
        with pytest.raises(jobfile.JobFileError, match="File exists"):
            jobfile.create(fd, "1700000000-0123abcd", {"action": "start", "vm": "web"})
        with pytest.raises(jobfile.JobFileError, match="not a job name"):
            jobfile.create(fd, "../../etc/passwd", {})
    finally:
        os.close(fd)
