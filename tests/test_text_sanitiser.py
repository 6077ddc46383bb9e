"""The one sanitiser (tui.host.text) and `list` against a hostile state dir: no control, bidi
or undecodable character from the host leaves through the text table or the JSON."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from tests.hostile_host import BAD_HYPERVISOR, EVIL, ODD_NAME, VALID_NAME, make_hostile_host
from tui.host.inventory import list_vms
from tui.host.jsonout import inventory_to_json
from tui.host.settings import HostSettings
from tui.host.text import is_clean, sanitise
from tui.vt import TerminalEmulator, line_cells, line_runs

BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# For searching rendered text quickly: C0, DEL, C1, soft hyphen, the bidi marks, overrides and
# isolates, zero-width and other format characters, separators, BOM, surrogates, private use.
UNSAFE_RE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
    "\ufeff\ufff9-\ufffb\ud800-\udfff\ue000-\uf8ff]"
)


def _unsafe(ch: str) -> bool:
    """What must never be shown: controls, format (bidi...), surrogates, private use,
    unassigned, line/paragraph separators."""
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def assert_safe(text: str, where: str = "", *, newlines: bool = False) -> None:
    shown = text.replace("\n", "") if newlines else text
    bad = [i for i, ch in enumerate(shown) if _unsafe(ch)]
    if bad:
        i = bad[0]
        raise AssertionError(f"{where}: {len(bad)} unsafe, first in {shown[i - 60 : i + 20]!r}")


# --- the function -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "ch",
    [chr(c) for c in range(0x20)]
    + ["\x7f"]
    + [chr(c) for c in range(0x80, 0xA0)]
    + list(BIDI)
    + ["\u00ad", "\u200b", "\ufeff", "\u2028", "\u2029", "\udcff", "\ue000", "\U000e0001"],
)
def test_every_unsafe_character_becomes_one_visible_placeholder(ch: str) -> None:
    out = sanitise(f"a{ch}b")
    assert len(out) == 3 and out[0] == "a" and out[2] == "b"
    assert out[1] != ch and out[1].isprintable() and out[1] != ""
    assert is_clean(out)


def test_placeholders_say_what_was_there() -> None:
    assert sanitise("\x1b]0;x\x07") == "␛]0;x␇"
    assert sanitise("\x7f\x9b\u202e\u00a0") == "␡?? "
    assert sanitise("plain ünïcode ✔ 漢字") == "plain ünïcode ✔ 漢字"


def test_limit_and_newlines() -> None:
    assert sanitise("abcdef", 4) == "abc…"
    assert sanitise("abc", 3) == "abc"
    assert sanitise("a\nb\x1b") == "a␊b␛"
    assert sanitise("a\nb\x1b", newlines=True) == "a\nb␛"
    assert sanitise(Path("/x\x1b")) == "/x␛"
    assert sanitise(b"\xff".decode(errors="surrogateescape")) == "?"


# --- `list` ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_hostile_host(tmp_path_factory.mktemp("hostile"))


def _run_list(state: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "XDG_RUNTIME_DIR": str(state.parent / "no-manager"),  # systemd unreachable
        "XDG_CONFIG_HOME": str(state.parent / "no-config"),
    }
    return subprocess.run(
        [sys.executable, "-m", "tui", "list", "--state-dir", str(state), *args],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )


def _strings(value: object, path: str = "$"):  # type: ignore[no-untyped-def]
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield f"{path}.{k}", k
            yield from _strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")


def test_list_json_every_string_is_sanitised(hostile: Path) -> None:
    proc = _run_list(hostile, "--json")
    assert proc.returncode == 0, proc.stderr
    raw = proc.stdout.decode("utf-8")  # strict: nothing undecodable leaves either
    data = json.loads(raw)
    strings = list(_strings(data))
    for where, text in strings:
        assert_safe(text, where)
    names = [vm["name"] for vm in data["vms"]]
    assert sanitise(ODD_NAME) in names and VALID_NAME in names
    # The hostile text did reach the JSON (so the walk above looked at it), made visible.
    shown = sanitise(EVIL)
    hypervisor = next(vm["hypervisor"] for vm in data["vms"] if vm["name"] == BAD_HYPERVISOR)
    assert hypervisor.startswith("qemu␛]0;PWNED-TITLE␛\\")  # the reproduction
    assert sum(shown in text for _, text in strings) >= 10


def test_list_table_is_sanitised(hostile: Path) -> None:
    proc = _run_list(hostile)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode("utf-8")
    assert_safe(out, "list", newlines=True)
    row = next(line for line in out.splitlines() if line.startswith(BAD_HYPERVISOR))
    assert "qemu␛]0;PWNED-TITLE␛\\" in row  # the reproduction, made visible
    assert sanitise(ODD_NAME) in out


# --- the terminal emulator (guest bytes) ------------------------------------------------------


@pytest.mark.parametrize(
    "stream",
    [
        "\u202eevil",  # first thing on the screen: nothing to attach it to
        "ab\u202ecd\u2066e\u2069f\u200fg\u061ch",  # inside a line: attached to a cell
        "\x1b[5;5H\u2067x\u2068",  # after a cursor move
        "wide漢\u202e字",  # next to wide characters
    ],
)
def test_emulator_never_hands_out_bidi_controls(stream: str) -> None:
    emulator = TerminalEmulator(20, 5)
    emulator.feed(stream.encode())
    emulator.feed(b"\x1b]0;t\xe2\x80\xaeitle\x07\x1b]1;ic\xe2\x81\xa6on\x07")
    screen = emulator.screen
    for y in range(screen.lines):
        runs = line_runs(line_cells(screen.buffer[y], screen.columns), screen.columns)
        text = "".join(t for t, _ in runs)
        assert not UNSAFE_RE.search(text), repr(text)
    assert screen.title == "t?itle" and screen.icon_name == "ic?on"


def _model_strings(value: object, path: str = ""):  # type: ignore[no-untyped-def]
    """(path, text) of every string field in a model dataclass tree (paths as in the JSON)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Path):
        yield path, str(value)
    elif dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            yield from _model_strings(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _model_strings(v, f"{path}[{i}]")


def _at(data: object, path: str) -> object:
    for part in re.findall(r"\.(\w+)|\[(\d+)\]", path):
        key, index = part
        if key:
            if not isinstance(data, dict) or key not in data:
                return KeyError
            data = data[key]
        else:
            data = data[int(index)]  # type: ignore[index]
    return data


def test_every_model_string_reaches_the_json_sanitised(hostile: Path) -> None:
    """Walk every string field of the model built from the hostile state dir: each one the JSON
    carries is there exactly as the sanitiser makes it (and the hostile text reached many)."""
    inv = list_vms(
        HostSettings(
            state_dir=hostile,
            systemd_scope="user",
            systemd_env={"XDG_RUNTIME_DIR": str(hostile.parent / "no-manager")},
        )
    )
    data = inventory_to_json(inv)
    hostile_fields = set()
    for path, text in _model_strings(inv.vms, ".vms"):
        shown = _at(data, path)
        if shown is KeyError:
            continue  # not in the JSON schema (toplevel, serial, runner_bin, ...)
        assert shown == sanitise(text), path
        assert_safe(shown, path)  # type: ignore[arg-type]
        if "PWNED-TITLE" in text:
            hostile_fields.add(re.sub(r"\[\d+\]", "[]", path))
    expected = {
        ".vms[].hypervisor",
        ".vms[].booted",
        ".vms[].old",
        ".vms[].interfaces[].id",
        ".vms[].interfaces[].mac",
        ".vms[].shares[].tag",
        ".vms[].shares[].source",
        ".vms[].volumes[].image",
        ".vms[].problems[]",
    }
    assert expected <= hostile_fields, expected - hostile_fields
