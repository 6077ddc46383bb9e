"""Jobs over the agent protocol: a ``Job`` snapshot as a bounded JSON object, and back.

The agent sends ``{"type": "job", "job": WIRE}`` for every change of a job on its host
(``job_to_wire``: the log's last ``WIRE_LOG_LINES`` lines, each cut, the last commands), and
the app decodes it strictly (``job_from_wire``): every field checked, every string through
the one sanitiser, so an agent cannot send escapes, huge values or paths the app would open
(the app opens nothing a job names). A job is known on the wire by its ``key``: its systemd
unit when it runs as one (the same after a reconnect, when a new agent adopts it), else the
agent's pid and job id.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tui.host.actions import jobfile
from tui.host.actions.jobs import Job, JobState
from tui.host.actions.plan import ActionPlan
from tui.host.text import sanitise

WIRE_LOG_LINES = 300
WIRE_TEXT = 1000  # characters of one log line or result on the wire
WIRE_COMMANDS = 50
MAX_KEY = 80
# The actions an app may ask an agent for, and the options each takes (name -> type).
REMOTE_ACTIONS: dict[str, dict[str, type]] = {
    "start": {},
    "stop": {},
    "restart": {},
    "force-stop": {},
    "rollback": {},
    "delete": {},
    "update": {"restart": bool},
    "create": {"flake": str, "start": bool},
    "deploy": {"store_path": str, "restart": bool},
}


class JobWireError(ValueError):
    """A job message that does not decode (one line)."""


def key_of(job: Job, pid: int) -> str:
    return job.unit or f"agent-{pid}-{job.id}"


def job_to_wire(job: Job, key: str, req: int | None = None) -> dict[str, Any]:
    options = {k: v for k, v in job.options.items() if isinstance(v, str | bool | int)}
    return {
        "key": key,
        "req": req,
        "action": job.action,
        "vm": job.vm,
        "options": options,
        "state": job.state.value,
        "created": job.created,
        "started": job.started,
        "ended": job.ended,
        "log": [line[:WIRE_TEXT] for line in job.log[-WIRE_LOG_LINES:]],
        "log_dropped": job.log_dropped + max(0, len(job.log) - WIRE_LOG_LINES),
        "progress": jobfile.plain(job.progress) if job.progress is not None else None,
        "commands": [jobfile.plain(c) for c in job.commands[-WIRE_COMMANDS:]],
        "result": (job.result or "")[:WIRE_TEXT] if job.result is not None else None,
        "outcome": jobfile.plain(job.outcome) if job.outcome is not None else None,
        "cancel_requested": job.cancel_requested,
        "unit": job.unit,
        "adopted": job.adopted,
    }


def _text(value: object, limit: int = WIRE_TEXT) -> str:
    if not isinstance(value, str):
        raise JobWireError(f"a job's text is a {type(value).__name__}")
    return sanitise(value, limit)


def _time(value: object) -> float | None:
    if value is None:
        return None
    number = jobfile.number(value)
    if number is None:
        raise JobWireError("a job's time is not a number")
    return number


def _clean(value: Any) -> Any:
    """Every string of a decoded dataclass sanitised (tuples of strings too)."""
    changes = {}
    for f in dataclasses.fields(value):
        item = getattr(value, f.name)
        if isinstance(item, str):
            changes[f.name] = sanitise(item, WIRE_TEXT)
        elif isinstance(item, tuple):
            changes[f.name] = tuple(sanitise(v, WIRE_TEXT) for v in item)
    return dataclasses.replace(value, **changes)


def job_from_wire(data: object, host: str) -> tuple[str, int | None, Job]:
    """(key, the app's request id or None, the job as the app shows it) from DATA."""
    if not isinstance(data, dict):
        raise JobWireError("a job that is not an object")
    try:
        key = _text(data.get("key"), MAX_KEY)
        req = data.get("req")
        if req is not None and (not isinstance(req, int) or isinstance(req, bool)):
            raise JobWireError("a job's req is not a number")
        log = data.get("log")
        commands = data.get("commands")
        if not isinstance(log, list) or len(log) > WIRE_LOG_LINES:
            raise JobWireError("a job's log is not a list of at most 300 lines")
        if not isinstance(commands, list) or len(commands) > WIRE_COMMANDS:
            raise JobWireError("a job's commands are not a list of at most 50")
        options = data.get("options")
        if not isinstance(options, dict) or len(options) > 16:
            raise JobWireError("a job's options are not an object")
        dropped = data.get("log_dropped")
        if not isinstance(dropped, int) or isinstance(dropped, bool) or dropped < 0:
            raise JobWireError("a job's log_dropped is not a count")
        progress = data.get("progress")
        unit = data.get("unit")
        job = Job(
            id=0,
            action=_text(data.get("action"), 40),
            vm=_text(data.get("vm"), 256),
            options={
                _text(k, 40): (_text(v) if isinstance(v, str) else v)
                for k, v in options.items()
                if isinstance(v, str | bool | int) and not isinstance(v, float)
            },
            state=JobState(data.get("state")),
            created=_time(data.get("created")) or 0.0,
            started=_time(data.get("started")),
            ended=_time(data.get("ended")),
            log=[_text(line) for line in log],
            log_dropped=dropped,
            progress=_clean(jobfile.progress_from_json(progress)) if progress else None,
            commands=[_clean(jobfile.command_from_json(c)) for c in commands],
            result=_text(data["result"]) if data.get("result") is not None else None,
            outcome=(_clean(o) if (o := jobfile.outcome_from_json(data.get("outcome"))) else None),
            cancel_requested=data.get("cancel_requested") is True,
            unit=_text(unit, MAX_KEY) if unit is not None else None,
            host=host,
        )
    except jobfile.JobFileError as exc:
        raise JobWireError(str(exc)) from None
    except ValueError as exc:  # JobState(...)
        raise JobWireError(f"a job's state is not one of ours ({sanitise(str(exc), 60)})") from None
    return key, req, job


def options_from_app(action: object, options: object) -> tuple[str, dict[str, Any]]:
    """The agent's check of a submit: a known action and only its options, each typed."""
    if not isinstance(action, str) or action not in REMOTE_ACTIONS:
        raise JobWireError("not an action the agent runs")
    allowed = REMOTE_ACTIONS[action]
    if not isinstance(options, dict):
        raise JobWireError("options that are not an object")
    out: dict[str, Any] = {}
    for name, value in options.items():
        kind = allowed.get(name) if isinstance(name, str) else None
        if kind is None:
            raise JobWireError(f"an option {action} does not take")
        if value is None and name == "store_path":
            out[name] = None
            continue
        if type(value) is not kind or (isinstance(value, str) and len(value) > 4096):
            raise JobWireError(f"option {name} of {action} is not a {kind.__name__}")
        out[name] = value
    return action, out


def plan_to_wire(plan: ActionPlan) -> dict[str, Any]:
    return {
        "shutdown_script": plan.shutdown_script,
        "runs_other_than_current": plan.runs_other_than_current,
        "runs_old": plan.runs_old,
        "volumes_inside": list(plan.volumes_inside)[:256],
        "volumes_outside": list(plan.volumes_outside)[:256],
        "gcroots_dir": str(plan.gcroots_dir),
    }


def plan_from_wire(data: object) -> ActionPlan:
    from pathlib import PurePosixPath

    if not isinstance(data, dict):
        raise JobWireError("a plan that is not an object")
    flags = [data.get(k) for k in ("shutdown_script", "runs_other_than_current", "runs_old")]
    if not all(isinstance(f, bool) for f in flags):
        raise JobWireError("a plan's facts are not true/false")
    lists = [data.get(k) for k in ("volumes_inside", "volumes_outside")]
    if not all(isinstance(v, list) and len(v) <= 256 for v in lists):
        raise JobWireError("a plan's volumes are not lists")
    inside, outside = ([_text(p, 4096) for p in v] for v in lists)  # type: ignore[union-attr]
    return ActionPlan(
        shutdown_script=flags[0],  # type: ignore[arg-type]
        runs_other_than_current=flags[1],  # type: ignore[arg-type]
        runs_old=flags[2],  # type: ignore[arg-type]
        volumes_inside=tuple(inside),
        volumes_outside=tuple(outside),
        # Only ever shown as text: never opened here.
        gcroots_dir=PurePosixPath(_text(data.get("gcroots_dir"), 4096)),  # type: ignore[arg-type]
    )
