"""Snapshots to JSON and back: recorded host data for deterministic tests and screenshots.

A recording is ``{"version": 1, "frames": [snapshot, ...]}``; a frame's ``inventory`` may be
null for "unchanged since the previous frame" (or single VMs ``{"$same": name}``), and
``history`` may be left empty (a replay rebuilds it from the samples). The encoding is generic
over the host layer's dataclasses (field names as keys, ``Path`` and enums as strings), and decoding
follows the dataclasses' type hints, so a field added to the model reads back as its default
from an older recording.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import types
import typing
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

from tui.feed.snapshot import Snapshot
from tui.host.safefs import read_regular, write_file

VERSION = 1
MAX_RECORDING_BYTES = 256 << 20  # a long lab recording is a few MB
SAME = "$same"  # a VM unchanged since the previous frame


def encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: encode(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not f.metadata.get("transient")  # working state, not host data
        }
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [encode(v) for v in value]
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def decode(tp: Any, data: Any) -> Any:
    """DATA (from JSON) as type TP."""
    if data is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return decode(args[0], data)
        for arg in args:  # ``Why | str``: the enum member when the text is one
            if isinstance(arg, type) and issubclass(arg, Enum):
                with contextlib.suppress(ValueError):
                    return arg(data)
        return data
    if origin in (list, tuple, set, frozenset):
        (arg, *_) = typing.get_args(tp) or (Any,)
        items = [decode(arg, v) for v in data]
        return items if origin is list else origin(items)
    if origin is dict:
        _, arg = typing.get_args(tp) or (str, Any)
        return {k: decode(arg, v) for k, v in data.items()}
    if tp is Any or tp is object:
        return data
    if isinstance(tp, type):
        if dataclasses.is_dataclass(tp):
            hints = _hints(tp)
            kwargs = {
                f.name: decode(hints[f.name], data[f.name])
                for f in dataclasses.fields(tp)
                if f.init and f.name in data
            }
            return tp(**kwargs)
        if issubclass(tp, Enum | Path):
            return tp(data)
        if tp is float and isinstance(data, int):
            return float(data)
    return data


def snapshot_to_json(snapshot: Snapshot) -> dict[str, Any]:
    return encode(snapshot)


def snapshot_from_json(data: dict[str, Any]) -> Snapshot:
    return decode(Snapshot, data)


def dump_frames(frames: list[Snapshot], path: Path | str) -> None:
    doc = {"version": VERSION, "frames": [snapshot_to_json(f) for f in frames]}
    data = (json.dumps(doc, indent=1, sort_keys=False) + "\n").encode("utf-8")
    write_file(path, data, 0o644)  # never through a link planted at PATH


def load_frames(path: Path | str) -> list[Snapshot]:
    """The frames of a recording. A frame whose inventory is null has the previous frame's
    (recordings store an unchanged inventory once)."""
    doc = json.loads(read_regular(path, MAX_RECORDING_BYTES, follow=True))
    if doc.get("version") != VERSION:
        raise ValueError(f"{path}: unknown recording version {doc.get('version')!r}")
    frames = []
    previous: dict[str, Any] | None = None
    for data in doc["frames"]:
        inv = data.get("inventory")
        if inv is None or previous is None:
            if previous is None and inv is None:
                raise ValueError(f"{path}: the first frame has no inventory")
            inv = inv or previous
        else:
            before = {vm["name"]: vm for vm in previous["vms"]}
            vms = [before[vm[SAME]] if SAME in vm else vm for vm in inv["vms"]]
            inv = {**inv, "vms": vms}
        previous = inv
        frames.append(snapshot_from_json({**data, "inventory": inv}))
    return frames


def compact_frames(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Encoded frames with what did not change since the previous frame left out: the whole
    inventory (null), or single VMs (``{"$same": name}``)."""
    out = []
    previous: dict[str, Any] | None = None
    for data in frames:
        inv = data["inventory"]
        if previous is not None:
            if inv == previous:
                data = {**data, "inventory": None}
            else:
                before = {vm["name"]: vm for vm in previous["vms"]}
                vms = [
                    {SAME: vm["name"]} if before.get(vm["name"]) == vm else vm for vm in inv["vms"]
                ]
                data = {**data, "inventory": {**inv, "vms": vms}}
        previous = inv
        out.append(data)
    return out
