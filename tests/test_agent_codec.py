"""The agent protocol's codec and messages (tui/agent/codec.py, protocol.py): snapshots round
trip as JSON; what an agent sends is decoded strictly, bounded and sanitised."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
from pathlib import Path

import pytest

from tui.agent import codec, protocol
from tui.agent.codec import CodecError, apply_patch, diff, snapshot_from_wire, snapshot_to_wire
from tui.feed.recording import load_frames
from tui.host.model import Drift

FIXTURES = Path(__file__).parent / "fixtures" / "monitor"


def frames() -> list:
    out = []
    for name in ("lab", "problems", "nosystemd"):
        out += load_frames(FIXTURES / f"{name}.json")
    return out


def test_every_recorded_frame_round_trips_through_json() -> None:
    checked = 0
    for frame in frames():
        wire = snapshot_to_wire(frame, exact=True)
        line = protocol.encode({"type": "snapshot", "seq": 1, "full": wire})
        message = protocol.decode(line, protocol.AGENT_TYPES)
        back = snapshot_from_wire(message["full"])
        assert back == dataclasses.replace(frame, history={})
        checked += 1
    assert checked > 30


def test_the_wire_shortens_floats_to_what_is_shown() -> None:
    frame = load_frames(FIXTURES / "lab.json")[-1]
    short = snapshot_from_wire(snapshot_to_wire(frame))
    for name, sample in frame.samples.items():
        got = short.samples[name]
        for field in ("t", "cpu_pct_of_vcpus", "cpu_pct_of_host", "uptime_s"):
            want, have = getattr(sample, field), getattr(got, field)
            assert (want is None) == (have is None)
            if want is not None:
                assert abs(have - want) <= max(abs(want) * 1e-3, 0.005), (field, want, have)
    assert codec.short_float(100.88376313004532) == 100.9
    assert codec.short_float(2074.612455567) == 2074.61
    assert codec.short_float(0.03459175899295722) == 0.03459


def test_patches_carry_only_what_changed_and_rebuild_each_frame() -> None:
    recorded = [snapshot_to_wire(f) for f in load_frames(FIXTURES / "lab.json")]
    state = copy.deepcopy(recorded[0])
    for before, after in itertools.pairwise(recorded):
        patch = json.loads(json.dumps(diff(before, after)))
        assert len(json.dumps(patch)) < len(json.dumps(after))
        apply_patch(state, patch)
        assert state == after
    assert diff(recorded[-1], recorded[-1]) == {}


def recorded_session() -> list[dict]:
    """A session's messages' snapshots as the agent sends them (every recorded frame)."""
    out = []
    for name in ("lab", "problems", "nosystemd"):
        out += [snapshot_to_wire(f) for f in load_frames(FIXTURES / f"{name}.json")]
    return out


def test_the_session_decoder_gives_what_a_whole_decode_gives() -> None:
    """Every frame, decoded from patches by one SnapshotDecoder (which decodes only what a
    patch touched), equals the patched wire form decoded whole; VMs come, go and change
    meanwhile."""
    recorded = recorded_session()
    decoder = codec.SnapshotDecoder()
    state = copy.deepcopy(recorded[0])
    got = decoder.full(json.loads(json.dumps(recorded[0])))
    assert got == snapshot_from_wire(state)
    for before, after in itertools.pairwise(recorded):
        patch = json.loads(json.dumps(diff(before, after)))
        got = decoder.patch(copy.deepcopy(patch))
        apply_patch(state, patch)
        assert got == snapshot_from_wire(state)
        assert sorted(vm.name for vm in got.inventory.vms) == sorted(after["inventory"]["vms"])
    assert len(recorded) > 30


def test_a_patch_decodes_only_the_vms_it_touched() -> None:
    wire = snapshot_to_wire(load_frames(FIXTURES / "lab.json")[-1])
    decoder = codec.SnapshotDecoder()
    first = decoder.full(copy.deepcopy(wire))
    vms = len(wire["inventory"]["vms"])
    assert decoder.vm_decodes == vms
    # The samples change (as every poll), the VMs do not: no VM decoded again.
    later = copy.deepcopy(wire)
    for sample in later["samples"].values():
        sample["cpu_pct_of_vcpus"] = 42.0
    snap = decoder.patch(diff(wire, later))
    assert decoder.vm_decodes == vms
    assert all(s.cpu_pct_of_vcpus == 42.0 for s in snap.samples.values())
    assert snap.inventory.vms == first.inventory.vms
    # One VM's problems change: that VM alone is decoded again, with the checks.
    name = next(iter(later["inventory"]["vms"]))
    changed = copy.deepcopy(later)
    changed["inventory"]["vms"][name]["problems"] = ["\x1b[2Jnew"]
    snap = decoder.patch(diff(later, changed))
    assert decoder.vm_decodes == vms + 1
    assert next(v for v in snap.inventory.vms if v.name == name).problems == ["␛[2Jnew"]
    # A wrong value in a patch is refused as in a whole snapshot.
    bad = copy.deepcopy(changed)
    bad["inventory"]["vms"][name]["vcpu"] = "2"
    with pytest.raises(CodecError, match="vcpu: an integer was expected, not str"):
        decoder.patch(diff(changed, bad))


def test_a_vm_that_left_is_deleted_by_the_patch() -> None:
    wire = snapshot_to_wire(load_frames(FIXTURES / "lab.json")[-1])
    fewer = copy.deepcopy(wire)
    gone = next(iter(fewer["inventory"]["vms"]))
    del fewer["inventory"]["vms"][gone]
    patch = diff(wire, fewer)
    assert patch == {"sub": {"inventory": {"sub": {"vms": {"del": [gone]}}}}}
    state = copy.deepcopy(wire)
    apply_patch(state, patch)
    assert gone not in {vm.name for vm in snapshot_from_wire(state).inventory.vms}


def test_strings_from_the_agent_are_sanitised() -> None:
    wire = snapshot_to_wire(load_frames(FIXTURES / "lab.json")[-1])
    name = next(iter(wire["inventory"]["vms"]))
    vm = wire["inventory"]["vms"][name]
    vm["problems"] = ["\x1b]52;c;ZXZpbA==\x07 \x1b[2J\u202ewrong"]
    vm["flake"] = "\x9b31m"
    snap = snapshot_from_wire(wire)
    got = next(v for v in snap.inventory.vms if v.name == name)
    assert got.problems == ["␛]52;c;ZXZpbA==␇ ␛[2J?wrong"]
    assert got.flake == "?31m"


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda vm: vm.update(vcpu="2"), "vcpu: an integer was expected, not str"),
        (lambda vm: vm.update(vcpu=True), "vcpu: an integer was expected, not bool"),
        (lambda vm: vm.update(vcpu=1 << 70), "vcpu: an integer out of range"),
        (lambda vm: vm.update(drift="sideways"), "drift: not one of"),
        (lambda vm: vm.update(problems="not a list"), "problems: a list was expected"),
        (lambda vm: vm.update(problems=["x" * 20000]), "characters (at most 16384)"),
        (lambda vm: vm.pop("name"), "name: missing"),
        (lambda vm: vm.update(unit=[1, 2]), "unit: an object was expected, not list"),
        (lambda vm: vm.update(interfaces=[{"id": None, "type": "tap"}]), "null where a value"),
    ],
)
def test_wrong_values_are_refused_with_where(change, where: str) -> None:
    wire = snapshot_to_wire(load_frames(FIXTURES / "lab.json")[-1])
    vm = next(iter(wire["inventory"]["vms"].values()))
    change(vm)
    with pytest.raises(CodecError) as err:
        snapshot_from_wire(wire)
    assert where in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_keys_are_ignored_for_newer_agents() -> None:
    frame = load_frames(FIXTURES / "lab.json")[-1]
    wire = snapshot_to_wire(frame, exact=True)
    wire["something_new"] = {"x": 1}
    next(iter(wire["inventory"]["vms"].values()))["new_field"] = [1, 2]
    assert snapshot_from_wire(wire) == dataclasses.replace(frame, history={})


def test_drift_is_an_enum_again() -> None:
    snap = snapshot_from_wire(snapshot_to_wire(load_frames(FIXTURES / "lab.json")[-1]))
    assert all(isinstance(vm.drift, Drift) for vm in snap.inventory.vms)


@pytest.mark.parametrize(
    "patch",
    [
        [],
        {"set": []},
        {"bogus": {}},
        {"del": [1]},
        {"sub": {"poll_ms": {"set": {}}}},
        {"sub": {"host": {"sub": {"x": {}}}}},
    ],
)
def test_bad_patches_are_refused(patch: object) -> None:
    wire = snapshot_to_wire(load_frames(FIXTURES / "lab.json")[-1])
    with pytest.raises(CodecError):
        apply_patch(wire, patch)


def test_deep_patch_is_refused() -> None:
    patch: dict = {}
    inner = patch
    base: dict = {}
    b = base
    for _ in range(20):
        b["k"] = {}
        b = b["k"]
        inner["sub"] = {"k": {}}
        inner = inner["sub"]["k"]
    with pytest.raises(CodecError, match="nested too deeply"):
        apply_patch(base, patch)


# --- protocol lines --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "what"),
    [
        (b"not json\n", "not JSON"),
        (b"[1,2]\n", "must be an object"),
        (b'{"type": "bogus"}\n', "unknown message type bogus"),
        (b'{"type": "\x1b[31m"}\n', "not JSON"),  # a raw control character is not JSON
        (b'{"type": "\\u001b[31m"}\n', "unknown message type ␛[31m"),
        (b'{"type": "hello", "x": NaN}\n', "NaN is not JSON"),
        (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
        (b"\xff\xfe\n", "not JSON"),
    ],
)
def test_bad_lines_are_one_line_protocol_errors(line: bytes, what: str) -> None:
    with pytest.raises(protocol.ProtocolError) as err:
        protocol.decode(line, protocol.AGENT_TYPES)
    assert what in str(err.value)
    assert "\n" not in str(err.value) and "\x1b" not in str(err.value)


def test_line_bounds() -> None:
    with pytest.raises(protocol.ProtocolError, match="at most"):
        protocol.decode(b" " * (protocol.MAX_LINE + 1), protocol.AGENT_TYPES)
    with pytest.raises(protocol.ProtocolError, match="at most 100"):
        protocol.encode({"type": "error", "message": "x" * 200}, limit=100)


def test_version_mismatch_names_both_versions() -> None:
    assert protocol.version_mismatch(1, "0.1.0", 1, "0.1.0") is None
    line = protocol.version_mismatch(2, "0.2.0", 1, "0.1.0")
    assert line == (
        "version mismatch: the agent (microvm-tui 0.2.0) speaks protocol 2, "
        "the app (microvm-tui 0.1.0) protocol 1"
    )
    hostile = protocol.version_mismatch(True, "\x1b[2J" * 50, 1, "0.1.0")
    assert hostile is not None and "\x1b" not in hostile and "protocol unknown" in hostile


def test_codec_encodes_non_finite_floats_as_null() -> None:
    assert codec.encode(float("nan")) is None
    assert codec.encode({"a": [float("inf"), 1.5]}) == {"a": [None, 1.5]}
    assert codec.encode(float("-inf"), exact=False) is None
