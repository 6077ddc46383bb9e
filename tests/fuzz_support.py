"""What every property test of a parser of untrusted bytes checks, and shared strategies.

The properties (issue 9): a parser never raises anything but its module's own error type,
stays within a time and size bound, and the sentences it writes (problems, log lines, screen
text) carry no terminal controls. Data values (paths, ids, tags) stay as the input spelled
them: the host acts on them (opens a socket, looks up a link), and the one sanitiser at the
UI boundary makes them safe to show.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

# C0 (tab and newline too: a one-line message has neither), DEL, C1, and the bidi controls.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

# Characters that matter to shell, option and JSON readers, and to terminals, weighted up
# against the whole of Unicode.
_SPECIAL = (
    " \t\n\r\\'\"$`(){}[]<>|&;#=,:/-_.0123456789abcxyzMG@*?!~"
    "\x00\x1b\x07\x08\x7f\x85\x9b\u202e\u2066\u200f\ufeff\ue000\ue001\x01"
)
special_text = st.text(alphabet=st.sampled_from(_SPECIAL), max_size=200)
any_text = st.text(max_size=200)
# os.fsdecode of arbitrary bytes: what /proc/PID/cmdline and file names give (lone surrogates)
fs_text = st.binary(max_size=60).map(os.fsdecode)
mixed_text = st.one_of(special_text, any_text, fs_text)


def unsafe_in(text: str) -> list[str]:
    return sorted(set(UNSAFE.findall(text)))


def assert_clean(text: str, what: str = "text") -> None:
    found = unsafe_in(text)
    assert not found, f"{what} carries control characters {found!r}: {text!r}"


def strings_in(value: Any) -> Iterator[str]:
    """Every string inside a dataclass / list / dict tree."""
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from strings_in(getattr(value, f.name))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings_in(k)
            yield from strings_in(v)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from strings_in(item)


class Clock:
    """Elapsed time of one call, for a bound tighter than Hypothesis's deadline."""

    def __enter__(self) -> Clock:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def mutate(words: list[str], data: st.DataObject, vocabulary: list[str]) -> list[str]:
    """WORDS with a few words replaced, inserted, cut or garbled (from VOCABULARY or anything)."""
    words = list(words)
    piece = st.one_of(st.sampled_from(vocabulary), mixed_text) if vocabulary else mixed_text
    for _ in range(data.draw(st.integers(0, 6), label="edits")):
        op = data.draw(st.sampled_from(["replace", "insert", "delete", "garble", "cut"]))
        at = data.draw(st.integers(0, max(len(words) - 1, 0)))
        if op == "insert" or not words:
            words.insert(at, data.draw(piece))
        elif op == "replace":
            words[at] = data.draw(piece)
        elif op == "delete":
            del words[at]
        elif op == "cut":
            words = words[:at]
        else:
            w = words[at]
            pos = data.draw(st.integers(0, len(w)))
            words[at] = w[:pos] + data.draw(mixed_text) + w[pos + data.draw(st.integers(0, 3)) :]
    return words
