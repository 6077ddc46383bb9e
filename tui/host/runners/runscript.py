"""Read the command line out of a microvm.nix ``bin/microvm-run`` script, without running it.

lib/runner.nix writes a bash script that ends in ``exec [-a "microvm@HOST"] CMD ARGS
${runtime_args:-}``. Before that come the hypervisor's preStart (``rm``, backgrounded
helpers, ``if`` blocks), the volume-creation script and, for macvtap, lines like
``exec 3<>/dev/tap$(< /sys/class/net/ID/ifindex)`` that only open file descriptors.

Here: the final ``exec`` (its argv, bash arrays expanded, what only a run can tell listed as
unknowns), the plain assignments, and the macvtap file descriptors the script opens. The
commands and words come from ``shellwords``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tui.host.runners._options import short
from tui.host.runners.shellwords import (
    RunnerParseError,
    ShellCommand,
    split_array,
    split_commands,
)

_ASSIGN_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.DOTALL)
_REDIRECT_RE = re.compile(r"\d*(?:<>|>>|>&|<&|>\||<<<|<|>)(.*)", re.DOTALL)
_RUNTIME_ARGS = frozenset({"${runtime_args:-}", "${runtime_args}", "$runtime_args"})
# Words that may precede a command without being the command itself.
_PREFIX_WORDS = frozenset({"then", "do", "else", "{", "!"})
_EXEC_TEXT_RE = re.compile(r"(?:(?:then|do|else|\{|!)\s+)*exec(?:\s|$)")
_ARRAY_ASSIGN_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\+?)=\((.*)\)", re.DOTALL)
_ARRAY_EXPAND_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\[[@*]\]\}")
# What a static read cannot know in a word: a variable, a command substitution, backquotes.
_RUNTIME_RE = re.compile(
    r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\$\((?:[^()]|\([^()]*\))*\)|`[^`]*`|\$[0-9@*#?$!-]"
)
_STORE_DIR_RE = re.compile(r"/nix/store/[^\s/)]+/(?:[^\s/)]+/)*")
_MACVTAP_FD_RE = re.compile(
    r"(\d+)<>/dev/tap\$\(\s*<\s*/sys/class/net/([^/\s)]+)/ifindex\s*\)", re.DOTALL
)


@dataclass
class ExecLine:
    """The final ``exec`` of a microvm-run script."""

    argv: list[str]
    process_name: str | None  # the ``-a NAME`` part (prettyProcnames), if any
    line: int
    # What only a run can tell: variables and substitutions left in argv, arrays grown under
    # a condition, ``runtime_args`` computed by a program. Each a short phrase.
    unknowns: list[str] = field(default_factory=list)


# --- the final exec ----------------------------------------------------------------------


def _strip_prefix_words(words: list[str]) -> list[str]:
    i = 0
    while i < len(words) and words[i] in _PREFIX_WORDS:
        i += 1
    return words[i:]


def _without_redirections(words: list[str]) -> list[str]:
    kept: list[str] = []
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
            continue
        m = _REDIRECT_RE.fullmatch(word)
        if m:
            skip_next = not m.group(1)  # "> file": the target is the next word
            continue
        kept.append(word)
    return kept


def _exec_options(words: list[str], line: int) -> tuple[str | None, list[str]]:
    """Take bash's own ``exec`` options (``-c``, ``-l``, ``-a NAME``) off the front."""
    name = None
    i = 0
    while i < len(words) and words[i].startswith("-") and words[i] != "-":
        word = words[i]
        i += 1
        if word == "--":
            break
        for pos, letter in enumerate(word[1:], start=1):
            if letter in "cl":
                continue
            if letter != "a":
                raise RunnerParseError(f"exec has an unknown option '{short(word)}' (line {line})")
            if pos + 1 < len(word):
                name = word[pos + 1 :]
            elif i < len(words):
                name = words[i]
                i += 1
            else:
                raise RunnerParseError(f"exec -a has no name (line {line})")
            break
    return name, words[i:]


def _as_exec(command: ShellCommand) -> ExecLine | None:
    """The command as an ``exec CMD ...`` line, or None (not exec, or only redirections)."""
    if command.words is None:
        return None
    words = _strip_prefix_words(command.words)
    if not words or words[0] != "exec":
        return None
    name, rest = _exec_options(words[1:], command.line)
    argv = [w for w in _without_redirections(rest) if w not in _RUNTIME_ARGS]
    if not argv:
        return None
    return ExecLine(argv, name, command.line)


def extract_exec(script_text: str) -> ExecLine:
    """The last ``exec`` that runs a program (not one that only opens file descriptors).

    ``"${name[@]}"`` is replaced by the elements of the bash array the script assigns
    (``name=(...)``, ``name+=(...)``); what the script leaves to run time is in ``unknowns``.
    """
    commands = split_commands(script_text)
    for index in range(len(commands) - 1, -1, -1):
        command = commands[index]
        if command.words is None and _EXEC_TEXT_RE.match(command.text):
            raise RunnerParseError(
                f"could not split the exec line {command.line} into words: {command.error}"
            )
        found = _as_exec(command)
        if found is not None:
            _expand_arrays(found, commands[:index])
            _runtime_args(found, command, commands[:index])
            found.unknowns = _dedup([*found.unknowns, *_runtime_words(found.argv)])
            return found
    raise RunnerParseError("the runner script has no 'exec' line that starts a hypervisor")


def _dedup(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


_BLOCK_OPEN = frozenset({"if", "while", "until", "for", "case", "select"})
_BLOCK_CLOSE = frozenset({"fi", "done", "esac"})


def _arrays(commands: list[ShellCommand]) -> tuple[dict[str, list[str]], list[str]]:
    """Bash arrays assigned outside any ``if``/loop, in order; and a phrase for each array
    assignment made under a condition (only a run knows whether it happens)."""
    arrays: dict[str, list[str]] = {}
    unknowns: list[str] = []
    conditions: list[str] = []
    for command in commands:
        if command.words and command.words[0] == "else" and conditions:
            conditions[-1] = f"not {conditions[-1]}"
        words = _strip_prefix_words(command.words or [])
        if not words:
            continue
        if words[0] in _BLOCK_OPEN:
            conditions.append(" ".join(words[1:]))
            continue
        if words[0] in _BLOCK_CLOSE:
            if conditions:
                conditions.pop()
            continue
        if words[0] == "elif" and conditions:
            conditions[-1] = " ".join(words[1:])
            continue
        for word in words:
            m = _ARRAY_ASSIGN_RE.fullmatch(word)
            if m is None:
                continue
            name, plus, inner = m.groups()
            if conditions:
                unknowns.append(f"{name}{plus}=(...) only when {short(conditions[-1])}")
                continue
            elements = split_array(inner, command.line)
            if plus:
                arrays.setdefault(name, []).extend(elements)
            else:
                arrays[name] = elements
    return arrays, unknowns


def _expand_arrays(found: ExecLine, before: list[ShellCommand]) -> None:
    if not any(_ARRAY_EXPAND_RE.fullmatch(w) for w in found.argv):
        return
    arrays, unknowns = _arrays(before)
    argv: list[str] = []
    for word in found.argv:
        m = _ARRAY_EXPAND_RE.fullmatch(word)
        if m is None:
            argv.append(word)
        elif m.group(1) in arrays:
            argv.extend(arrays[m.group(1)])
        else:
            unknowns.append(f"the array {short(word)} (not assigned before the exec)")
    found.argv = argv
    found.unknowns.extend(unknowns)


def _runtime_args(found: ExecLine, command: ShellCommand, before: list[ShellCommand]) -> None:
    """``runtime_args=$(extraArgsScript)``: arguments only the script's run computes."""
    if not any(w in _RUNTIME_ARGS for w in command.words or []):
        return
    for earlier in before:
        for word in earlier.words or []:
            m = _ASSIGN_RE.fullmatch(word)
            if m and m.group(1) == "runtime_args" and m.group(2):
                value = _STORE_DIR_RE.sub("…/", m.group(2))
                found.unknowns.append(f"runtime_args={short(value)}")


def _runtime_words(argv: list[str]) -> list[str]:
    """Variables and substitutions left in ARGV (a macvtap ``$(< .../ifindex)`` aside: the
    parsers read those; a ``bash -c SCRIPT`` is read by its own parser)."""
    found: list[str] = []
    for i, word in enumerate(argv):
        if i == 2 and argv[1] == "-c":
            continue
        if "$" not in word and "`" not in word:
            continue
        for m in _RUNTIME_RE.finditer(word):
            text = m.group()
            if text.startswith("$(<") and "/sys/class/net/" in text:
                continue
            found.append(short(text))
    return found


def extract_command(script_text: str) -> list[str]:
    """The argv of the final ``exec`` of a microvm-run script (``${runtime_args:-}`` dropped).

    Raises RunnerParseError with a plain-English message when there is none.
    """
    return extract_exec(script_text).argv


# --- other facts a runner script records ---------------------------------------------------


def extract_assignments(script_text: str) -> dict[str, str]:
    """Plain ``NAME=VALUE`` commands, first assignment of each name (later ones are usually
    derived from it, like vfkit's ``SOCKET_ABS="$PWD/$SOCKET_ABS"``)."""
    found: dict[str, str] = {}
    for command in split_commands(script_text):
        if not command.words:
            continue
        matches = [_ASSIGN_RE.fullmatch(w) for w in command.words]
        if all(matches):
            for m in matches:
                assert m is not None
                found.setdefault(m.group(1), m.group(2))
    return found


def extract_fd_links(script_text: str) -> dict[int, str]:
    """Macvtap file descriptors the script opens: fd number -> interface id.

    lib/macvtap.nix writes ``exec FD<>/dev/tap$(< /sys/class/net/ID/ifindex)`` for each queue;
    hypervisors that take macvtap as fds only see the number, this maps it back to the name.
    """
    links: dict[int, str] = {}
    try:
        commands = split_commands(script_text)
    except RunnerParseError:
        return links
    for command in commands:
        words = _strip_prefix_words(command.words or [])
        if not words or words[0] != "exec":
            continue
        for word in words[1:]:
            m = _MACVTAP_FD_RE.fullmatch(word)
            if m:
                links[int(m.group(1))] = m.group(2)
    return links
