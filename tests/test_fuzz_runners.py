"""Property tests (Hypothesis) of the runner readers: the microvm-run script reader, every
hypervisor's argv parser, firecracker's JSON config and share/microvm.

Properties: nothing raises but the module's own error type (RunnerParseError for the
script reader; nothing at all for ``parse_runner`` and the argv parsers), every call stays
within a time bound, the words read out of a script are no longer than the script, and every
problem sentence is free of terminal controls. The default profile keeps this short;
``pytest -m fuzz --hypothesis-profile=long`` is the fuzzing run.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz_support import (
    Clock,
    assert_clean,
    mixed_text,
    mutate,
    special_text,
    strings_in,
)
from tui.host.model import RunnerSpec
from tui.host.runners import PARSERS, apply_firecracker_config, parse_runner
from tui.host.runners._options import OptionTable
from tui.host.runners.runscript import extract_assignments, extract_exec, extract_fd_links
from tui.host.runners.sharefiles import read_share_dir
from tui.host.runners.shellwords import RunnerParseError, split_commands
from tui.host.statedir import parse_runner_dir

pytestmark = pytest.mark.fuzz

FIXTURES = Path(__file__).parent / "fixtures" / "runners"
SCRIPTS = {h: (FIXTURES / h / "bin" / "microvm-run").read_text() for h in PARSERS}
VARIANTS = {str(p): p.read_text() for p in sorted(FIXTURES.glob("*/variants/microvm-run.*"))}
SCRIPT_LINES = sorted(
    {line for s in [*SCRIPTS.values(), *VARIANTS.values()] for line in s.splitlines()}
)
TIME_BOUND = 1.0  # seconds per call; real scripts take about a millisecond


def check_problems(spec: RunnerSpec) -> None:
    for problem in spec.problems:
        assert_clean(problem, "a runner problem")


def check_size(spec: RunnerSpec, argv: list[str]) -> None:
    """What a parse keeps grows with its input, not faster: values are the argv's own
    (twice at most: a path and its basename), each problem quotes at most 60 characters
    (10 per character once escaped) in a sentence."""
    kept = sum(len(s) for s in strings_in(spec))
    assert kept <= 2 * sum(map(len, argv)) + 1000 * (len(argv) + 1), kept


# --- the microvm-run script reader -----------------------------------------------------------


scripts = st.one_of(
    mixed_text,
    # a real script with lines cut, repeated, garbled
    st.builds(
        "\n".join,
        st.lists(st.one_of(st.sampled_from(SCRIPT_LINES), special_text), max_size=40),
    ),
    st.sampled_from(sorted([*SCRIPTS.values(), *VARIANTS.values()])).flatmap(
        lambda s: st.tuples(st.integers(0, len(s)), special_text).map(
            lambda cut: s[: cut[0]] + cut[1] + s[cut[0] :]
        )
    ),
)


@given(scripts)
@example("exec qemu $(" + "x" * 1000 + ") " + "\ue0000\ue001 " * 1000)
@example("exec qemu $(a) \x0101\x01")
def test_script_reader_raises_only_its_own_error_and_invents_no_text(text: str) -> None:
    with Clock() as clock:
        try:
            commands = split_commands(text)
        except RunnerParseError as e:
            assert_clean(str(e), "a script reader error")
            commands = []
    assert clock.seconds < TIME_BOUND
    # Every word is made of the script's own characters, so all words together are no longer
    # than the script: nothing is expanded or copied.
    assert sum(len(w) for c in commands for w in c.words or []) <= len(text)
    for reader in (extract_exec, extract_assignments):
        with Clock() as clock:
            try:
                reader(text)
            except RunnerParseError as e:
                assert_clean(str(e), "a script reader error")
        assert clock.seconds < TIME_BOUND
    extract_fd_links(text)  # never raises at all


@given(st.one_of(st.sampled_from(sorted(PARSERS)), mixed_text), scripts)
@example("\x1b]0;owned\x07", "exec x")
def test_parse_runner_never_raises(hypervisor: str, text: str) -> None:
    with Clock() as clock:
        spec = parse_runner(text, hypervisor, config_reader=lambda path: "{}")
    assert clock.seconds < TIME_BOUND
    assert isinstance(spec, RunnerSpec)
    check_problems(spec)


# --- every hypervisor's argv parser ----------------------------------------------------------


def _table(hypervisor: str) -> OptionTable:
    module = vars(importlib.import_module(PARSERS[hypervisor].__module__))
    return next(v for v in module.values() if isinstance(v, OptionTable))


def _argv(hypervisor: str) -> list[str]:
    return extract_exec(SCRIPTS[hypervisor]).argv


def _vocabulary(hypervisor: str) -> list[str]:
    table = _table(hypervisor)
    words = sorted(table.flags | table.single | table.multi) + _argv(hypervisor)
    return [*words, "--", "-", "", "=", ",", ",,", "[", "]", '"', "id=", "path=", "fd=3"]


@pytest.mark.parametrize("hypervisor", sorted(PARSERS))
@given(data=st.data())
def test_argv_parser_never_raises(hypervisor: str, data: st.DataObject) -> None:
    argv = mutate(_argv(hypervisor), data, _vocabulary(hypervisor))
    with Clock() as clock:
        spec = PARSERS[hypervisor](argv)
    assert clock.seconds < TIME_BOUND
    assert isinstance(spec, RunnerSpec)
    check_problems(spec)
    check_size(spec, argv)


@pytest.mark.parametrize("hypervisor", sorted(PARSERS))
@given(argv=st.lists(mixed_text, max_size=30))
def test_argv_parser_takes_any_words(hypervisor: str, argv: list[str]) -> None:
    spec = PARSERS[hypervisor](argv)
    check_problems(spec)
    check_size(spec, argv)


# --- firecracker's JSON config ---------------------------------------------------------------

_FC_KEYS = [
    "machine-config", "vcpu_count", "mem_size_mib", "drives", "path_on_host", "drive_id",
    "is_read_only", "network-interfaces", "host_dev_name", "iface_id", "guest_mac", "vsock",
    "guest_cid", "balloon", "store",
]  # fmt: skip
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | mixed_text
    | st.sampled_from(_FC_KEYS),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.one_of(st.sampled_from(_FC_KEYS), mixed_text), inner, max_size=5)
    ),
    max_leaves=30,
)


@given(st.one_of(json_values.map(json.dumps), mixed_text, st.just("[" * 100000)))
@example(json.dumps({"machine-config": {"vcpu_count": 1e400}}))
def test_firecracker_config_never_raises(text: str) -> None:
    spec = RunnerSpec(hypervisor="firecracker", config_file="/nix/store/x-fc.json")
    with Clock() as clock:
        apply_firecracker_config(spec, text)
    assert clock.seconds < TIME_BOUND
    check_problems(spec)


# --- share/microvm -----------------------------------------------------------------------------

_SHARE_FILES = [
    "hypervisor", "tap-interfaces", "tap-flags", "macvtap-interfaces", "virtiofs",
    "pci-devices", "usb-devices", "vsock-cid",
]  # fmt: skip


@given(
    files=st.dictionaries(
        st.sampled_from(_SHARE_FILES),
        st.one_of(mixed_text.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary()),
        max_size=len(_SHARE_FILES),
    ),
    virtiofs_entries=st.lists(
        st.tuples(
            st.text(
                st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
                min_size=1,
                max_size=20,
            ),
            mixed_text,
        ),
        max_size=3,
    ),
)
def test_share_dir_reader_never_raises(
    tmp_path_factory: pytest.TempPathFactory,
    files: dict[str, bytes],
    virtiofs_entries: list[tuple[str, str]],
) -> None:
    runner = tmp_path_factory.mktemp("runner")
    share = runner / "share" / "microvm"
    share.mkdir(parents=True)
    for name, data in files.items():
        if name == "virtiofs":
            continue
        (share / name).write_bytes(data)
    if virtiofs_entries:
        (share / "virtiofs").mkdir()
        for tag, source in virtiofs_entries:
            if tag in (".", ".."):
                continue
            (share / "virtiofs" / tag).mkdir(exist_ok=True)
            (share / "virtiofs" / tag / "source").write_text(source, errors="surrogatepass")
    with Clock() as clock:
        result = read_share_dir(runner)
    assert clock.seconds < TIME_BOUND
    for problem in result.problems:
        assert_clean(problem, "a share/microvm problem")


# --- regression examples of bugs the properties found ----------------------------------------


def test_a_hostile_argument_is_quoted_with_visible_escapes() -> None:
    spec = PARSERS["qemu"](["\x1b]0;owned\x07", "--bogus\u202e"])
    assert any("\\x1b]0;owned\\x07" in p for p in spec.problems), spec.problems
    assert any("-bogus\\u202e" in p for p in spec.problems), spec.problems
    check_problems(spec)


def test_a_hostile_hypervisor_file_is_quoted_with_visible_escapes(tmp_path: Path) -> None:
    share = tmp_path / "share" / "microvm"
    share.mkdir(parents=True)
    (share / "hypervisor").write_bytes(b"\x7fqemu\x1b[2J")
    problems = read_share_dir(tmp_path).problems
    assert problems == ["share/microvm/hypervisor names an unknown hypervisor '\\x7fqemu\\x1b[2J'"]


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("cat <<\x1b]0\x07\n", "the here-document ending in '\\x1b]0\\x07' is never closed"),
        ("exec -\x9bq qemu\n", "exec has an unknown option '-\\x9bq'"),
    ],
)
def test_a_script_reader_error_quotes_with_visible_escapes(script: str, message: str) -> None:
    with pytest.raises(RunnerParseError) as caught:
        extract_exec(script)
    assert message in str(caught.value)


def test_text_that_looks_like_a_substitution_marker_stays_literal() -> None:
    # The reader once put substitutions back by markers the script itself could spell: one
    # large $(...) and many look-alikes made the words grow as their product (memory).
    text = "exec qemu $(" + "x" * 1000 + ") " + "\ue0000\ue001 " * 1000
    argv = extract_exec(text).argv
    assert argv[1] == "$(" + "x" * 1000 + ")"
    assert argv[2:] == ["\ue0000\ue001"] * 1000


@given(
    script=st.one_of(
        st.binary(max_size=300),
        scripts.map(lambda t: t.encode("utf-8", "surrogateescape")),
    ),
    hypervisor=st.one_of(st.sampled_from(sorted(PARSERS)), st.binary(max_size=20)),
)
def test_runner_dir_reader_never_raises(
    tmp_path_factory: pytest.TempPathFactory, script: bytes, hypervisor: str | bytes
) -> None:
    """bin/microvm-run and share/microvm/hypervisor as bytes from disk (not UTF-8, NUL...)."""
    runner = tmp_path_factory.mktemp("runner")
    (runner / "bin").mkdir()
    (runner / "share" / "microvm").mkdir(parents=True)
    (runner / "bin" / "microvm-run").write_bytes(script)
    name = hypervisor if isinstance(hypervisor, bytes) else hypervisor.encode()
    (runner / "share" / "microvm" / "hypervisor").write_bytes(name)
    with Clock() as clock:
        parsed, _ = parse_runner_dir(runner.parent, runner)
    assert clock.seconds < TIME_BOUND
    problems = [*parsed.share.problems, *(parsed.spec.problems if parsed.spec else [])]
    for problem in [*problems, parsed.script_problem or ""]:
        assert_clean(problem, "a runner problem")
