"""Small helpers shared by the per-hypervisor argument parsers.

None of these raise on bad input: they return ``None`` (or skip) and the caller words the
problem, because only the caller knows which option the value came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from tui.host.model import NicSpec

_SIZE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgtKMGT]?)(?:i?[bB])?\s*")
_MIB_PER_UNIT = {"b": 1 / (1 << 20), "k": 1 / 1024, "m": 1, "g": 1024, "t": 1 << 20}
_STORE_DISK_RE = re.compile(r"(?:^|/)[0-9a-z]{32}-microvm-store-disk\.[a-z]+$")
_TRUE = frozenset({"on", "true", "yes", "1", "y"})
_FALSE = frozenset({"off", "false", "no", "0", "n"})


# --- values ---------------------------------------------------------------------------


def parse_mib(text: str, default_unit: str = "M") -> int | None:
    """A memory size like ``512``, ``512M``, ``1G``, ``1.5GiB`` in MiB (bare numbers use
    ``default_unit``); None if it is not a size."""
    m = _SIZE_RE.fullmatch(text)
    if not m:
        return None
    unit = (m.group(2) or default_unit).lower()
    mib = float(m.group(1)) * _MIB_PER_UNIT[unit]
    return int(mib) if mib >= 1 else None


def parse_count(text: str) -> int | None:
    """A positive decimal integer (vCPUs, CIDs), or None."""
    text = text.strip()
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value > 0 else None


def parse_bool(text: str | None) -> bool | None:
    if text is None:
        return None
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return None


def first_int(text: str) -> int | None:
    """The first integer in a value like ``3``, ``3 4``, ``[3,4]`` or ``3:4``."""
    m = re.search(r"\d+", text)
    return int(m.group()) if m else None


def is_store_disk(path: str) -> bool:
    """The read-only image of the guest's /nix/store that microvm.nix builds
    (``microvm-store-disk.erofs``/``.squashfs``): not one of the VM's volumes."""
    return _STORE_DISK_RE.search(path) is not None


def basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def fd_nic_id(fd: int | None) -> str:
    """Placeholder id of a NIC known only by its file descriptor; ``parse_runner`` swaps it
    for the interface name the script opened that descriptor on."""
    return f"fd:{fd}" if fd is not None else "fd:?"


# --- comma-separated option lists -------------------------------------------------------


def split_list(text: str, *, qemu: bool = False) -> list[str]:
    """Split ``a,b=c,d=[1,2],e="x,y"`` on commas outside brackets and quotes.

    QEMU escapes a literal comma by doubling it (``file=a,,b`` is ``a,b``).
    """
    # Fast path for the common case: `list` parses thousands of these per run.
    if (",," not in text) if qemu else ('"' not in text and "[" not in text):
        return text.split(",")
    items: list[str] = []
    current: list[str] = []
    depth = 0
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == quote:
                quote = ""
        elif c == "," and depth == 0:
            if qemu and text.startswith(",,", i):
                current.append(",")
                i += 2
                continue
            items.append("".join(current))
            current = []
            i += 1
            continue
        elif c == '"' and not qemu:
            quote = c
        elif c == "[" and not qemu:
            depth += 1
        elif c == "]" and depth:
            depth -= 1
        current.append(c)
        i += 1
    items.append("".join(current))
    return items


@dataclass
class Opts:
    """A parsed ``kind,key=value,flag`` list: bare words in ``words``, keys lower-cased."""

    words: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)

    def get(self, *keys: str) -> str | None:
        for key in keys:
            if key in self.values:
                return self.values[key]
        return None

    def first_word(self) -> str | None:
        return self.words[0] if self.words else None

    def flag(self, *keys: str) -> bool | None:
        """A boolean option given as ``key=on``/``key=true`` or as a bare ``key``."""
        for key in keys:
            if key in self.values:
                return parse_bool(self.values[key])
            if key in self.words:
                return True
        return None


def parse_opts(text: str, *, qemu: bool = False) -> Opts:
    opts = Opts()
    for item in split_list(text, qemu=qemu):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if sep:
            opts.values[key.strip().lower()] = value
        else:
            opts.words.append(item)
    return opts


# --- argv walking -----------------------------------------------------------------------


@dataclass(frozen=True)
class OptionTable:
    """Which options a hypervisor accepts and how many values each takes."""

    program: str  # for messages: "qemu", "cloud-hypervisor", ...
    flags: frozenset[str]  # no value
    single: frozenset[str]  # exactly one value
    multi: frozenset[str] = frozenset()  # one or more values, up to the next option
    long_equals: bool = False  # accepts ``--opt=value``
    dash_equivalent: bool = False  # QEMU style: ``--opt`` means ``-opt``


def _is_option(arg: str) -> bool:
    return arg.startswith("-") and arg != "-" and not _looks_negative(arg)


def _looks_negative(arg: str) -> bool:
    return len(arg) > 1 and (arg[1].isdigit() or arg[1] == ".")


def iter_options(
    argv: list[str], table: OptionTable, problems: list[str]
) -> Iterator[tuple[str, list[str]]]:
    """Yield ``(option, values)`` pairs; positional arguments come as ``("", [arg])``.

    Unknown options and options missing their value become problems and are not yielded.
    """
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not _is_option(arg):
            yield "", [arg]
            continue
        if table.dash_equivalent and arg.startswith("--"):
            arg = arg[1:]
        attached: str | None = None
        if table.long_equals and arg.startswith("--") and "=" in arg:
            arg, _, attached = arg.partition("=")
        if arg in table.flags and attached is None:
            yield arg, []
        elif arg in table.single:
            if attached is not None:
                yield arg, [attached]
            elif i < len(argv):
                yield arg, [argv[i]]
                i += 1
            else:
                problems.append(f"the {table.program} option '{short(arg)}' has no value")
        elif arg in table.multi:
            values = [attached] if attached is not None else []
            while i < len(argv) and not _is_option(argv[i]):
                values.append(argv[i])
                i += 1
            if values:
                yield arg, values
            else:
                problems.append(f"the {table.program} option '{short(arg)}' has no value")
        else:
            shown = arg if attached is None else f"{arg}={attached}"
            if attached is None and i < len(argv) and not _is_option(argv[i]):
                shown = f"{arg} {argv[i]}"  # guess: an unknown option with a value
                i += 1
            problems.append(not_understood(table.program, shown))


def names(text: str) -> frozenset[str]:
    """Option names from a whitespace-separated list (keeps the option tables readable)."""
    return frozenset(text.split())


def not_understood(program: str, arg: str) -> str:
    return f"did not understand the {program} argument '{short(arg)}'"


def unreadable(what: str, option: str, value: str) -> str:
    """The problem for a value that does not parse, e.g. "could not read the memory size
    from '-m abc'"."""
    return f"could not read the {what} from '{option} {short(value)}'"


def shown(text: str) -> str:
    """TEXT for a problem message: every character that is not printable (C0 and C1
    controls, bidi overrides, line separators) written as a visible escape, so a hostile
    argument cannot drive the admin's terminal or reorder the sentence around it."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else _escape(c) for c in text)


def _escape(c: str) -> str:
    code = ord(c)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def short(text: str, limit: int = 60) -> str:
    """A value for a problem message, cut so a garbage argument cannot flood the UI, and
    made safe to show (see ``shown``)."""
    text = text.replace("\n", " ")
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return shown(text)


def nic(id: str, type: str, mac: str | None) -> NicSpec:
    return NicSpec(id=id, type=type, mac=mac or None)
