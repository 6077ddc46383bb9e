"""Snapshots as plain JSON for the agent protocol, and back, strictly.

Encoding is generic over the host layer's dataclasses (field names as keys, ``Path`` and enums
as strings, sets as lists, non-finite floats as null), leaving out working state (fields marked
``transient``) and the per-VM history (the app keeps its own from the samples). The inventory's
VM list travels as an object keyed by VM name, so a change to one VM is a change to one key.

Decoding reads what a remote agent sent: untrusted. It follows the dataclasses' type hints and
checks every value against them (a wrong type, a missing required field, a string, list or
number out of bounds is a ``CodecError`` naming where), and every string, keys included,
passes the one sanitiser (``tui.host.text.sanitise``). Unknown keys are ignored: a newer agent
of the same protocol version may send more.

``diff`` / ``apply_patch``: "only what changed since the last snapshot", as a patch of nested
objects (``{"set": {k: v}, "sub": {k: patch}, "del": [k]}``); lists are replaced whole.
``SnapshotDecoder`` keeps a session's wire form and what was decoded from it, and decodes
again only what a patch touched (a VM, a sample, a field), with the same checks.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

from tui.feed import Snapshot
from tui.host.model import VM, Inventory
from tui.host.text import sanitise

MAX_TEXT = 16384  # characters in one string (a store path, a log line, a problem)
MAX_ITEMS = 100_000  # entries in one list or object
MAX_INT = 1 << 63
MAX_PATCH_DEPTH = 6


class CodecError(ValueError):
    """What the agent sent does not decode; the message names where (one line)."""


# --- encoding ------------------------------------------------------------------------------


def short_float(value: float) -> float | None:
    """VALUE as the wire carries it: 4 significant digits below 1000 (a CPU %, a rate, seconds
    of a query), hundredths above (timestamps, uptimes); what changes every poll is mostly
    such figures, and their noise digits were most of the bytes."""
    if not math.isfinite(value):
        return None
    if abs(value) >= 1000:
        return round(value, 2)
    return float(f"{value:.4g}")


def encode(value: Any, exact: bool = True) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: encode(getattr(value, f.name), exact)
            for f in dataclasses.fields(value)
            if not f.metadata.get("transient")
        }
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float):
        if exact:
            return value if math.isfinite(value) else None
        return short_float(value)
    if isinstance(value, dict):
        return {str(k): encode(v, exact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v, exact) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(encode(v, exact) for v in value)
    return value


def snapshot_to_wire(snapshot: Snapshot, *, exact: bool = False) -> dict[str, Any]:
    """SNAPSHOT as the agent sends it (floats shortened unless EXACT)."""
    data = encode(dataclasses.replace(snapshot, history={}), exact)
    del data["history"]
    inv = data["inventory"]
    inv["vms"] = {vm["name"]: vm for vm in inv["vms"]}
    return data


# --- decoding ------------------------------------------------------------------------------


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _fail(where: str, what: str) -> CodecError:
    return CodecError(f"{where or 'the snapshot'}: {what}")


def _text(data: Any, where: str) -> str:
    if not isinstance(data, str):
        raise _fail(where, f"a string was expected, not {type(data).__name__}")
    if len(data) > MAX_TEXT:
        raise _fail(where, f"a string of {len(data)} characters (at most {MAX_TEXT})")
    return sanitise(data)


def _key(key: str, where: str) -> str:
    return _text(key, f"{where} (a key)")


def _where(where: str, key: object) -> str:
    return f"{where}.{sanitise(key, 64)}" if where else sanitise(key, 64)


def decode(tp: Any, data: Any, where: str = "") -> Any:
    """DATA (JSON from an agent) as type TP, checked; ``CodecError`` when it is not one."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if data is None:
            if type(None) in args:
                return None
            raise _fail(where, "null where a value is required")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return decode(arg, data, where)
            except CodecError as exc:
                errors.append(exc)
        raise errors[0]
    if data is None:
        raise _fail(where, "null where a value is required")
    if origin in (list, tuple, set, frozenset):
        if not isinstance(data, list):
            raise _fail(where, f"a list was expected, not {type(data).__name__}")
        if len(data) > MAX_ITEMS:
            raise _fail(where, f"a list of {len(data)} entries (at most {MAX_ITEMS})")
        args = typing.get_args(tp)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(data):
                raise _fail(where, f"{len(args)} entries were expected, not {len(data)}")
            pairs = enumerate(zip(args, data, strict=True))
            return tuple(decode(a, v, f"{where}[{i}]") for i, (a, v) in pairs)
        arg = args[0] if args else str
        items = [decode(arg, v, f"{where}[{i}]") for i, v in enumerate(data)]
        return items if origin is list else origin(items)
    if origin is dict:
        if not isinstance(data, dict):
            raise _fail(where, f"an object was expected, not {type(data).__name__}")
        if len(data) > MAX_ITEMS:
            raise _fail(where, f"an object of {len(data)} entries (at most {MAX_ITEMS})")
        kt, vt = typing.get_args(tp) or (str, str)
        if kt is not str:
            raise _fail(where, "keys other than strings are not decoded")
        return {_key(k, where): decode(vt, v, _where(where, k)) for k, v in data.items()}
    if tp is str:
        return _text(data, where)
    if tp is bool:
        if not isinstance(data, bool):
            raise _fail(where, f"true or false was expected, not {type(data).__name__}")
        return data
    if tp is int:
        if not isinstance(data, int) or isinstance(data, bool):
            raise _fail(where, f"an integer was expected, not {type(data).__name__}")
        if not -MAX_INT < data < MAX_INT:
            raise _fail(where, "an integer out of range")
        return data
    if tp is float:
        if not isinstance(data, int | float) or isinstance(data, bool):
            raise _fail(where, f"a number was expected, not {type(data).__name__}")
        value = float(data)
        if not math.isfinite(value):
            raise _fail(where, "a number out of range")
        return value
    if tp is Path:
        return Path(_text(data, where))
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(data)
        except ValueError:
            raise _fail(where, f"not one of {', '.join(str(m.value) for m in tp)}") from None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise _fail(where, f"an object was expected, not {type(data).__name__}")
        hints = _hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if not f.init or f.metadata.get("transient"):
                continue
            if f.name in data:
                kwargs[f.name] = decode(hints[f.name], data[f.name], _where(where, f.name))
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise _fail(_where(where, f.name), "missing")
        return tp(**kwargs)
    raise _fail(where, f"no decoder for {tp!r}")


def snapshot_from_wire(data: Any) -> Snapshot:
    """A Snapshot from an agent's wire form (its ``history`` empty: the app keeps that)."""
    if not isinstance(data, dict):
        raise _fail("", "an object was expected")
    inv_data = data.get("inventory")
    if not isinstance(inv_data, dict) or not isinstance(inv_data.get("vms"), dict):
        raise _fail("inventory", "an object with a vms object was expected")
    vms_data = inv_data["vms"]
    if len(vms_data) > MAX_ITEMS:
        raise _fail("inventory.vms", f"{len(vms_data)} VMs (at most {MAX_ITEMS})")
    vms = [decode(VM, vm, _where("inventory.vms", name)) for name, vm in vms_data.items()]
    inv = decode(Inventory, {**inv_data, "vms": []}, "inventory")
    inv.vms = vms
    rest = {k: v for k, v in data.items() if k not in ("inventory", "history")}
    snap = decode(Snapshot, {**rest, "inventory": {"state_dir": "/"}}, "")
    snap.inventory = inv
    return snap


# --- patches: what changed since the last snapshot -----------------------------------------


def diff(old: dict[str, Any], new: dict[str, Any], depth: int = 3) -> dict[str, Any]:
    """A patch that turns OLD into NEW ({} when they are equal). Objects down to DEPTH levels
    are patched key by key; anything else that changed is sent whole."""
    changed: dict[str, Any] = {}
    sub: dict[str, Any] = {}
    for key, value in new.items():
        if key not in old:
            changed[key] = value
            continue
        before = old[key]
        if before == value:
            continue
        if depth > 0 and isinstance(value, dict) and isinstance(before, dict):
            sub[key] = diff(before, value, depth - 1)
        else:
            changed[key] = value
    gone = [key for key in old if key not in new]
    patch: dict[str, Any] = {}
    if changed:
        patch["set"] = changed
    if sub:
        patch["sub"] = sub
    if gone:
        patch["del"] = gone
    return patch


def apply_patch(base: dict[str, Any], patch: Any, where: str = "", depth: int = 0) -> None:
    """Apply PATCH (from an agent: checked) to BASE in place."""
    if depth > MAX_PATCH_DEPTH:
        raise _fail(where, "a patch nested too deeply")
    if not isinstance(patch, dict) or set(patch) - {"set", "sub", "del"}:
        raise _fail(where, "a patch must be an object of set, sub and del")
    changed, sub, gone = patch.get("set", {}), patch.get("sub", {}), patch.get("del", [])
    if not isinstance(changed, dict) or not isinstance(sub, dict) or not isinstance(gone, list):
        raise _fail(where, "a patch's set and sub must be objects, its del a list")
    for key in gone:
        if not isinstance(key, str):
            raise _fail(where, "a patch deletes a key that is not a string")
        base.pop(key, None)
    base.update(changed)
    for key, inner in sub.items():
        target = base.get(key)
        if not isinstance(target, dict):
            raise _fail(_where(where, key), "a patch of something that is not an object")
        apply_patch(target, inner, _where(where, key), depth + 1)
    if len(base) > MAX_ITEMS:
        raise _fail(where, f"an object of {len(base)} entries (at most {MAX_ITEMS})")


# --- a session's snapshots: decode only what a patch touched -------------------------------

_WHOLE = None  # in a patch's outline: this key was set or deleted (its old value is gone)


def _outline(patch: dict[str, Any]) -> dict[str, Any]:
    """Which keys PATCH (already applied, so well-formed) touches: key -> ``_WHOLE`` or the
    outline of its sub-patch."""
    out: dict[str, Any] = dict.fromkeys(patch.get("set", {}), _WHOLE)
    out.update(dict.fromkeys(patch.get("del", []), _WHOLE))
    for key, inner in patch.get("sub", {}).items():
        if key not in out:
            out[key] = _outline(inner)
    return out


def _keyed_value_type(tp: Any) -> Any:
    """V when TP is ``dict[str, V]`` or ``dict[str, V] | None`` (decoded entry by entry)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            return None
        tp = args[0]
    if typing.get_origin(tp) is dict:
        kt, vt = typing.get_args(tp) or (str, str)
        return vt if kt is str else None
    return None


def _replace_fields(old: Any, data: Any, touched: dict[str, Any], where: str) -> Any:
    """OLD (a decoded dataclass) with the fields TOUCHED by a patch decoded again from DATA
    (its patched wire form), the same checks as ``decode``; None when it cannot be done so
    (then the whole entry is decoded again)."""
    tp = type(old)
    if not dataclasses.is_dataclass(tp) or not isinstance(data, dict):
        return None
    fields = {f.name: f for f in dataclasses.fields(tp)}
    hints = _hints(tp)
    changes: dict[str, Any] = {}
    for name in touched:
        f = fields.get(name)
        if f is None:
            continue  # a key we do not know: ignored, as ``decode`` ignores it
        if not f.init or f.metadata.get("transient"):
            return None
        if name in data:
            changes[name] = decode(hints[name], data[name], _where(where, name))
        elif f.default is not dataclasses.MISSING:
            changes[name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            changes[name] = f.default_factory()
        else:
            raise _fail(_where(where, name), "missing")
    return dataclasses.replace(old, **changes)


class _Entries:
    """One object of the wire (VMs by name, samples by name...): each entry decoded once and
    again only when a patch touched it; the same checks and the same messages as ``decode``."""

    def __init__(self, value_type: Any, where: str) -> None:
        self.value_type = value_type
        self.where = where
        self.decoded: dict[str, tuple[str, Any]] = {}  # wire key -> (clean key, value)
        self.decodes = 0  # entries decoded so far

    def update(self, data: Any, touched: Any) -> dict[str, Any]:
        """DATA's entries decoded; TOUCHED: ``_WHOLE`` (all again) or an outline (its keys)."""
        if not isinstance(data, dict):
            raise _fail(self.where, f"an object was expected, not {type(data).__name__}")
        if len(data) > MAX_ITEMS:
            raise _fail(self.where, f"an object of {len(data)} entries (at most {MAX_ITEMS})")
        if touched is _WHOLE:
            self.decoded = {}
        else:
            for key, inner in touched.items():
                entry = self.decoded.pop(key, None)
                if entry is not None and inner is not _WHOLE and key in data:
                    changed = _replace_fields(entry[1], data[key], inner, _where(self.where, key))
                    if changed is not None:  # only the fields the patch touched, decoded
                        self.decoded[key] = (entry[0], changed)
                        self.decodes += 1
            if len(self.decoded) > len(data):  # entries gone without a patch naming them
                self.decoded = {k: v for k, v in self.decoded.items() if k in data}
        out = {}
        for key, value in data.items():
            entry = self.decoded.get(key)
            if entry is None:
                clean = _key(key, self.where)
                entry = (clean, decode(self.value_type, value, _where(self.where, key)))
                self.decoded[key] = entry
                self.decodes += 1
            out[entry[0]] = entry[1]
        return out


class SnapshotDecoder:
    """One session's snapshots from an agent (``full`` once, then ``patch`` each interval):
    the wire form is kept and patched in place; a VM, a sample, a journal figure or another
    field is decoded again only when the patch touched it (most patches touch the running
    VMs' samples only), so an idle host costs the app little. Decoded objects are shared
    between successive snapshots: they are read, never changed, by the app."""

    def __init__(self) -> None:
        self.wire: dict[str, Any] | None = None
        self._vms = _Entries(VM, "inventory.vms")
        self._inventory: Inventory | None = None
        self._fields: dict[str, Any] = {}  # Snapshot field -> decoded value
        self._entries: dict[str, _Entries] = {}  # keyed Snapshot fields, entry by entry

    @property
    def vm_decodes(self) -> int:
        """VMs decoded so far (an unchanged VM is not decoded again)."""
        return self._vms.decodes

    def full(self, wire: Any) -> Snapshot:
        if not isinstance(wire, dict):
            raise CodecError("a snapshot that is not an object")
        self.wire = wire
        return self._decode(_WHOLE)

    def patch(self, patch: Any) -> Snapshot:
        if self.wire is None:
            raise CodecError("a patch before the first whole snapshot")
        apply_patch(self.wire, patch)
        return self._decode(_outline(patch))

    def _decode(self, touched: Any) -> Snapshot:
        """A Snapshot from the wire form; TOUCHED: what changed since the last (an outline)."""
        data = self.wire
        assert data is not None

        def part(outline: Any, key: str) -> Any:  # a key's outline; {} when untouched
            return _WHOLE if outline is _WHOLE else outline.get(key, {})

        inv_touched = part(touched, "inventory")
        inv_data = data.get("inventory")
        if not isinstance(inv_data, dict) or not isinstance(inv_data.get("vms"), dict):
            raise _fail("inventory", "an object with a vms object was expected")
        if len(inv_data["vms"]) > MAX_ITEMS:
            n = len(inv_data["vms"])
            raise _fail("inventory.vms", f"{n} VMs (at most {MAX_ITEMS})")
        vms = list(self._vms.update(inv_data["vms"], part(inv_touched, "vms")).values())
        rest_touched = inv_touched is _WHOLE or any(k != "vms" for k in inv_touched)
        if self._inventory is None or rest_touched:
            self._inventory = decode(Inventory, {**inv_data, "vms": []}, "inventory")
        inv = dataclasses.replace(self._inventory, vms=vms)

        hints = _hints(Snapshot)
        kwargs: dict[str, Any] = {"inventory": inv}
        for f in dataclasses.fields(Snapshot):
            name = f.name
            if name in ("inventory", "history") or not f.init or f.metadata.get("transient"):
                continue
            if name not in data:
                self._fields.pop(name, None)
                self._entries.pop(name, None)
                continue
            value, outline = data[name], part(touched, name)
            value_type = _keyed_value_type(hints[name])
            if value_type is not None and isinstance(value, dict):
                entries = self._entries.get(name)
                if entries is None:
                    entries = self._entries[name] = _Entries(value_type, name)
                    outline = _WHOLE
                kwargs[name] = entries.update(value, outline)
            elif name not in self._fields or outline != {}:
                self._entries.pop(name, None)
                kwargs[name] = self._fields[name] = decode(hints[name], value, name)
            else:
                kwargs[name] = self._fields[name]
        return Snapshot(**kwargs)
