"""Jobs over the agent protocol, without a lab: a read-only agent (a non-root login) refuses
a submit in one line; what an app may ask for is checked by the agent; what an agent sends
about jobs is decoded strictly and sanitised, and a bad message is one line, never a crash.
(Jobs that really run, over real ssh: tests/test_jobs_remote_lab.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tui.agent import jobwire, protocol
from tui.agent.remote_jobs import RemoteJobs
from tui.agent.server import Agent
from tui.config import Settings
from tui.host.actions.jobs import Job, JobState
from tui.host.settings import HostSettings
from tui.host.text import is_clean


def test_a_read_only_agent_refuses_a_submit_in_one_line(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to become another user")
    (tmp_path / "web").mkdir()
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become nobody, then be an agent on the pipes
        try:
            os.close(to_child_w)
            os.close(from_child_r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            settings = Settings(host=HostSettings(state_dir=tmp_path, cache_dir=None))
            agent = Agent(settings, os.fdopen(to_child_r, "rb"), os.fdopen(from_child_w, "wb"))
            os._exit(agent.run())
        except BaseException:
            os._exit(99)
    os.close(to_child_r)
    os.close(from_child_w)
    refused = None
    with os.fdopen(from_child_r, "rb") as out, os.fdopen(to_child_w, "wb") as inp:
        hello = protocol.decode(out.readline(), protocol.AGENT_TYPES)
        assert hello["read_only"]
        for message in (
            {"type": "start", "protocol": protocol.PROTOCOL, "app": "t", "interval": 0.5},
            {"type": "submit", "req": 7, "action": "restart", "vm": "web", "options": {}},
        ):
            inp.write(protocol.encode(message))
            inp.flush()
        for _ in range(20):  # snapshots may come first
            message = protocol.decode(out.readline(), protocol.AGENT_TYPES)
            if message["type"] == "refused":
                refused = message
                break
            assert message["type"] != "job"
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert refused is not None and refused["req"] == 7
    assert refused["message"] == (
        "the agent is read-only: the agent runs as nobody (uid 65534), not root"
    )


@pytest.mark.parametrize(
    ("action", "options", "why"),
    [
        ("rm", {}, "not an action the agent runs"),
        ("restart", {"flake": "x"}, "an option restart does not take"),
        ("create", {"flake": 42}, "option flake of create is not a str"),
        ("create", {"start": "yes"}, "option start of create is not a bool"),
        ("deploy", {"source": {"cache": "file:///tmp/evil"}}, "an option deploy does not take"),
        ("update", {"restart": True}, None),
    ],
)
def test_the_agent_checks_what_an_app_asks_for(action: str, options: dict, why: str | None) -> None:
    if why is None:
        assert jobwire.options_from_app(action, options) == (action, options)
        return
    with pytest.raises(jobwire.JobWireError, match=why):
        jobwire.options_from_app(action, options)


def wire_job(**changes: object) -> dict:
    job = Job(id=3, action="restart", vm="web", state=JobState.RUNNING, created=1.0)
    job.log = ["systemctl restart microvm@web.service"]
    return {**jobwire.job_to_wire(job, "microvm-tui-job-1-abc.service", req=None), **changes}


def test_a_job_from_the_agent_reaches_the_listener_sanitised() -> None:
    seen: list[Job] = []
    jobs = RemoteJobs("evil", lambda message: True)
    jobs.listener = seen.append
    jobs.handle(
        {
            "type": "job",
            "job": wire_job(
                vm="web\x1b]52;c;cm0gLXJm\x07",
                log=["\x1b[2Jcleared\x1b[31m red", "ok"],
                result="done\x1b[?1049h",
            ),
        }
    )
    assert jobs.problem is None
    (job,) = seen
    assert job.host == "evil" and job.title.endswith(" on evil")
    for text in (job.vm, job.result or "", *job.log):
        assert is_clean(text), text
    # The same key again: the same job, a later version.
    jobs.handle({"type": "job", "job": wire_job(state="succeeded", result="restarted web")})
    assert [j.id for j in seen] == [job.id, job.id] and seen[1].version > seen[0].version


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        ({"state": "pwned"}, "state is not one of ours"),
        ({"log": ["x"] * 301}, "at most 300"),
        ({"log": [{"not": "text"}]}, "text is a dict"),
        ({"commands": [{"argv": "rm -rf /"}]}, "argv is not a list of strings"),
        ({"created": "yesterday"}, "time is not a number"),
        ({"log_dropped": -1}, "log_dropped"),
    ],
)
def test_a_bad_job_message_is_one_line_and_dropped(bad: dict, said: str) -> None:
    seen: list[Job] = []
    jobs = RemoteJobs("evil", lambda message: True)
    jobs.listener = seen.append
    jobs.handle({"type": "job", "job": wire_job(**bad)})
    assert seen == [] and jobs.jobs() == []
    assert jobs.problem is not None and said in jobs.problem
    assert "\n" not in jobs.problem and is_clean(jobs.problem)


def test_a_submit_without_a_session_fails_at_once_saying_why() -> None:
    jobs = RemoteJobs("far", lambda message: False)
    job = jobs.submit("restart", "web")
    assert job.state is JobState.FAILED and job.result == "far is not connected"
    assert jobs.plan("web", timeout=0.1) == "far is not connected"
