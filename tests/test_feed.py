"""tui.feed: snapshots are plain data that survive JSON, typed reasons come back typed, the
replay builds its history as the live sampler does, and each VM is joined once per snapshot."""

from __future__ import annotations

import json

from tests.monitor_support import frames
from tui.feed import ReplaySource, per_vm
from tui.feed.recording import snapshot_from_json, snapshot_to_json
from tui.host.logs.summary import ProblemCounts
from tui.host.sampling import Why


def test_a_snapshot_is_plain_data_that_survives_json() -> None:
    for frame in frames("lab.json") + frames("problems.json"):
        text = json.dumps(snapshot_to_json(frame))  # nothing but JSON's own types
        back = snapshot_from_json(json.loads(text))
        assert snapshot_to_json(back) == snapshot_to_json(frame)


def test_the_samplers_own_reasons_come_back_as_why_values() -> None:
    reasons = [
        r for f in frames("lab.json") for s in f.samples.values() for r in s.reasons.values()
    ]
    assert "needs a second sample" in reasons  # the recording has first samples
    typed = [r for r in reasons if r == "needs a second sample"]
    assert all(r is Why.NEEDS_TWO for r in typed)
    others = [r for r in reasons if r not in set(Why)]
    assert others and all(type(r) is str for r in others)  # an OS's or QMP's words stay text


def test_the_replay_keeps_the_last_points_of_each_vm() -> None:
    recorded = frames("lab.json")
    source = ReplaySource(recorded, start_at_last=True, history_len=2)
    snap = source.poll()
    assert snap.history and set(snap.history) <= {vm.name for vm in snap.inventory.vms}
    for name, points in snap.history.items():
        assert 1 <= len(points) <= 2
        sample = snap.samples.get(name)
        if sample is not None:
            assert points[-1].t == sample.t and points[-1].cpu_pct == sample.cpu_pct_of_vcpus


def test_each_vm_is_joined_with_its_own_figures_once() -> None:
    snap = ReplaySource(frames("lab.json"), start_at_last=True).poll()
    views = per_vm(snap)
    assert list(views) == [vm.name for vm in snap.inventory.vms]
    running = [name for name in views if name in snap.samples]
    assert running and len(running) < len(views)  # both kinds are in the recording
    for name, view in views.items():
        assert view.vm.name == name
        assert view.sample is snap.samples.get(name)
        assert view.history == snap.history.get(name, [])
        assert view.crash_looping == (name in snap.crash_looping)
        assert view.last_error is snap.last_errors.get(name)
        if snap.log_counts is None:
            assert view.log is None  # the journal not read yet: unknown, not "no problems"
        else:
            assert view.log == snap.log_counts.get(name, ProblemCounts())
