"""Property tests (Hypothesis) of the config loader: any file, hostile or mistaken, gives either
settings within the schema's bounds or one ConfigError line, never another exception, within a
time bound.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tui.config import HOST, INTERVAL_RANGE, TIMEOUT_RANGE, TOP, ConfigError, Settings, load_file
from tui.host.tools import forbidden_env
from tui.keynames import keys_problem

# CPU seconds for one load (a 1 MiB file included: about 0.1 s). CPU time, not wall time, and
# no Hypothesis deadline: the machine is shared, and a busy neighbour must not fail the test.
TIME_BOUND = 1.0
PROPS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("props") / "c.toml"


# --- TOML documents made of the schema's keys, odd keys and odd values -------------------------

text = st.text(max_size=20) | st.sampled_from(["", "~", "/", "ctrl+]", "q", "f5", "a\u202eb"])
key_names = st.sampled_from([*TOP, "host", *HOST, "PATH", "LD_PRELOAD", "refresh", "quit"]) | text


def toml_key(key: str) -> str:
    return json.dumps(key)  # a JSON string is a TOML basic string (lone surrogates: a TOML error)


def toml_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)


scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 0.1, 0.2, 1, 600, 3600, 3601, 1e308, -1]),
    text,
    st.sampled_from(["/var/lib/microvms", "", "relative", "~/x", "user", "system", "ask"]),
)
values = st.recursive(
    scalars.map(toml_scalar),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
        st.dictionaries(key_names.map(toml_key), inner, max_size=3).map(
            lambda d: "{" + ", ".join(f"{k} = {v}" for k, v in d.items()) + "}"
        ),
    ),
    max_leaves=8,
)
assignments = st.lists(st.tuples(key_names.map(toml_key), values), max_size=6).map(
    lambda pairs: "".join(f"{k} = {v}\n" for k, v in pairs)
)
sections = st.sampled_from(["", "[host]\n", "[keys]\n", "[host.systemd_env]\n", "[[host]]\n"])
documents = st.lists(st.tuples(sections, assignments), max_size=4).map(
    lambda parts: "".join(s + a for s, a in parts)
)


def check(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)
    started = time.process_time()
    try:
        loaded = load_file(Settings(), path)
    except ConfigError as exc:
        message = str(exc)
        assert message and "\n" not in message and message.isprintable(), message
    else:
        assert INTERVAL_RANGE[0] <= loaded.interval <= INTERVAL_RANGE[1]
        assert TIMEOUT_RANGE[0] <= loaded.host.timeout <= TIMEOUT_RANGE[1]
        assert loaded.host.state_dir.is_absolute()
        assert isinstance(loaded.read_only, bool)
        assert not any(forbidden_env(name) for name in loaded.host.systemd_env)
        assert all(keys_problem(keys) is None for keys in loaded.keymap.values())
    assert time.process_time() - started < TIME_BOUND


@PROPS
@given(documents)
@example('interval = 0.5\n[host]\ntimeout = 3\n[keys]\nrefresh = "f5"\n')
@example("host = 5\n")
@example("[host]\ntimeout = 1e308\n")
@example('[host]\ntimeout = "nan"\n')
@example("a = " + "[" * 5000 + "]" * 5000 + "\n")  # nested past the recursion limit
def test_any_document_loads_or_is_one_config_error(path: Path, document: str) -> None:
    check(path, document.encode("utf-8", "surrogatepass"))


@PROPS
@given(st.binary(max_size=512))
@example(b"\xff\xfe")
@example(b"theme = '\x00'\n")
@example(b"x" * (1 << 20))
def test_any_bytes_load_or_are_one_config_error(path: Path, data: bytes) -> None:
    check(path, data)
