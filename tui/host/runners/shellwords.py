"""Split a microvm.nix ``bin/microvm-run`` script into simple commands and words, without
running it (``runscript`` reads what the commands run).

The script is split into simple commands by a small scanner that knows just enough shell
(quotes, line continuations, comments, ``$(...)``, ``${...}``, here-documents); each command
is then split into words (POSIX quoting, see split_words). Nothing is ever executed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tui.host.runners._options import short

MAX_SCRIPT_CHARS = 1 << 20  # real microvm-run scripts are a few KiB; refuse anything absurd

# Substitutions ($(...), ${...}, `...`) are swapped for these markers before words are split
# text, so that spaces inside them do not split words; they are put back afterwards. A marker
# opens with NUL, which a script never holds (_check_text refuses it): text in the script that
# looks like a marker must not be replaced by a substitution (copies of a large one would
# take memory without bound).
_SUB_OPEN, _SUB_CLOSE = "\x00", "\x01"
_SUB_RE = re.compile(f"{_SUB_OPEN}(\\d+){_SUB_CLOSE}")

# Characters the scanner must look at; everything else is copied in bulk.
_PLAIN_RE = re.compile(r"[^'\"\\\n;&|#$`()<>\s]+|[ \t\r\f\v]+")
_HEREDOC_WORD_RE = re.compile(r"'([^'\n]*)'|\"([^\"\n]*)\"|([^\s;&|()<>]+)")
# ``args=(`` / ``args+=(``: a bash array assignment (a microvm.nix fork builds argv this way).
_ARRAY_START_RE = re.compile(r"(?:^|[\s;&|])[A-Za-z_][A-Za-z0-9_]*\+?=$")


class RunnerParseError(ValueError):
    """The runner script could not be read as a microvm.nix microvm-run script."""


@dataclass
class ShellCommand:
    """One simple command of a script: its words (``None`` if its quoting is unbalanced)."""

    words: list[str] | None
    line: int
    text: str = ""  # the command's source (substitutions replaced by markers)
    error: str | None = None


# --- scanning ------------------------------------------------------------------------------


class _Scanner:
    """Splits a script into simple commands at unquoted newlines, ``;``, ``&``, ``|``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.line = 1
        self.buf: list[str] = []
        self.start_line = 1
        self.subs: list[str] = []
        self.pending_heredocs: list[tuple[str, bool]] = []
        self.commands: list[tuple[str, int]] = []

    def error(self, what: str, line: int | None = None) -> RunnerParseError:
        return RunnerParseError(f"{what} (line {line or self.line} of the script)")

    def run(self) -> list[tuple[str, int]]:
        text, n = self.text, len(self.text)
        while self.i < n:
            m = _PLAIN_RE.match(text, self.i)
            if m:
                self.buf.append(m.group())
                self.i = m.end()
                continue
            self.special(text[self.i])
        self.flush()
        if self.pending_heredocs:
            raise self.error("a here-document is never closed")
        return self.commands

    def special(self, c: str) -> None:
        text = self.text
        if c == "'":
            end = text.find("'", self.i + 1)
            if end < 0:
                raise self.error("a single quote is never closed")
            self.take(end + 1)
        elif c == '"':
            self.double_quoted()
        elif c == "\\":
            if self.i + 1 >= len(text):
                raise self.error("the script ends in a lone backslash")
            if text.startswith("\\\n", self.i):  # line continuation: joins the lines
                self.i += 2
                self.line += 1
            else:
                self.take(self.i + 2)
        elif c == "$":
            self.dollar()
        elif c == "`":
            self.substitution(self.backtick_end(self.i))
        elif c == "#" and self.at_word_start():
            end = text.find("\n", self.i)
            self.i = len(text) if end < 0 else end
        elif c == "\n":
            self.i += 1
            self.flush()
            self.line += 1
            self.skip_heredocs()
            self.start_line = self.line
        elif c == "(" and _ARRAY_START_RE.search("".join(self.buf).lstrip()):
            # name=(a b c): one word, split into elements by extract_arrays
            self.substitution(self.balanced_end(self.i + 1, "(", ")", "array (", comments=True))
        elif c in ";|()":
            self.i += 1
            self.flush()
        elif c == "&":
            if self.buf and self.buf[-1].endswith((">", "<")):  # 2>&1, <&3: a redirection
                self.take(self.i + 1)
            else:
                self.i += 1
                self.flush()
        elif c == "<" and text.startswith("<<", self.i) and not text.startswith("<<<", self.i):
            self.heredoc_start()
        else:  # a lone < or > or a whitespace character the plain pattern did not take
            self.take(self.i + 1)

    def take(self, end: int) -> None:
        chunk = self.text[self.i : end]
        self.line += chunk.count("\n")
        self.buf.append(chunk)
        self.i = end

    def at_word_start(self) -> bool:
        return self.i == 0 or self.text[self.i - 1] in " \t\n;&|()"

    def flush(self) -> None:
        command = "".join(self.buf).strip()
        if command:
            self.commands.append((command, self.start_line))
        self.buf = []
        self.start_line = self.line

    def double_quoted(self) -> None:
        text, j = self.text, self.i + 1
        opened_on = self.line
        self.buf.append('"')
        while True:
            if j >= len(text):
                raise self.error("a double quote is never closed", opened_on)
            c = text[j]
            if c == '"':
                self.buf.append('"')
                break
            if c == "\\" and text.startswith("\\\n", j):
                j += 2
                self.line += 1
                continue
            if c == "\\":
                self.buf.append(text[j : j + 2])
                j += 2
                continue
            if c == "$" and text.startswith(("$(", "${"), j):
                end = self.paren_end(j) if text[j + 1] == "(" else self.brace_end(j)
                self.i = j
                self.substitution(end)
                j = end
                continue
            if c == "`":
                self.i = j
                end = self.backtick_end(j)
                self.substitution(end)
                j = end
                continue
            if c == "\n":
                self.line += 1
            self.buf.append(c)
            j += 1
        self.i = j + 1

    def dollar(self) -> None:
        text, i = self.text, self.i
        if text.startswith("$(", i):
            self.substitution(self.paren_end(i))
        elif text.startswith("${", i):
            self.substitution(self.brace_end(i))
        elif text.startswith("$'", i):  # ANSI-C quoting: backslash escapes, then a quote
            j = i + 2
            while j < len(text) and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            if j >= len(text):
                raise self.error("a $'...' quote is never closed")
            self.substitution(j + 1)
        else:
            self.take(i + 1)

    def substitution(self, end: int) -> None:
        """Replace text[i:end] by a marker that the word splitter keeps inside one word."""
        chunk = self.text[self.i : end]
        self.line += chunk.count("\n")
        self.buf.append(f"{_SUB_OPEN}{len(self.subs)}{_SUB_CLOSE}")
        self.subs.append(chunk)
        self.i = end

    def paren_end(self, start: int) -> int:
        """End (exclusive) of ``$(...)`` or ``$((...))`` starting at ``start``."""
        return self.balanced_end(start + 2, "(", ")", "$(")

    def brace_end(self, start: int) -> int:
        return self.balanced_end(start + 2, "{", "}", "${")

    def balanced_end(
        self, j: int, opening: str, closing: str, what: str, *, comments: bool = False
    ) -> int:
        text, depth = self.text, 1
        while j < len(text):
            c = text[j]
            if c == "\\":
                j += 2
                continue
            if comments and c == "#" and text[j - 1] in " \t\n(":
                end = text.find("\n", j)
                if end < 0:
                    break
                j = end
                continue
            if c == "'" and opening == "(":
                end = text.find("'", j + 1)
                if end < 0:
                    break
                j = end + 1
                continue
            if c == '"':
                j = self.skip_double(j)
                continue
            if c == opening:
                depth += 1
            elif c == closing:
                depth -= 1
                if depth == 0:
                    return j + 1
            j += 1
        raise self.error(f"a {what} is never closed")

    def skip_double(self, j: int) -> int:
        text = self.text
        j += 1
        while j < len(text) and text[j] != '"':
            j += 2 if text[j] == "\\" else 1
        if j >= len(text):
            raise self.error("a double quote is never closed")
        return j + 1

    def backtick_end(self, start: int) -> int:
        text, j = self.text, start + 1
        while j < len(text) and text[j] != "`":
            j += 2 if text[j] == "\\" else 1
        if j >= len(text):
            raise self.error("a backquote is never closed")
        return j + 1

    def heredoc_start(self) -> None:
        text = self.text
        j = self.i + 2
        strip_tabs = text.startswith("-", j)
        if strip_tabs:
            j += 1
        while j < len(text) and text[j] in " \t":
            j += 1
        m = _HEREDOC_WORD_RE.match(text, j)
        if not m:
            raise self.error("a here-document has no delimiter")
        delimiter = next(g for g in m.groups() if g is not None).replace("\\", "")
        self.pending_heredocs.append((delimiter, strip_tabs))
        self.take(m.end())

    def skip_heredocs(self) -> None:
        """Skip the bodies of here-documents whose command line just ended."""
        text = self.text
        for delimiter, strip_tabs in self.pending_heredocs:
            while True:
                if self.i >= len(text):
                    raise self.error(
                        f"the here-document ending in '{short(delimiter)}' is never closed"
                    )
                end = text.find("\n", self.i)
                end = len(text) if end < 0 else end
                body_line = text[self.i : end]
                self.i = min(end + 1, len(text))
                self.line += 1
                if (body_line.lstrip("\t") if strip_tabs else body_line) == delimiter:
                    break
        self.pending_heredocs = []


def _restore(word: str, subs: list[str]) -> str:
    def put_back(m: re.Match[str]) -> str:
        index = int(m.group(1))
        return subs[index] if index < len(subs) else m.group()

    return _SUB_RE.sub(put_back, word)


def _check_text(script_text: str) -> None:
    if not isinstance(script_text, str):
        raise RunnerParseError("the runner script is not text")
    if len(script_text) > MAX_SCRIPT_CHARS:
        raise RunnerParseError(
            f"the runner script is {len(script_text)} characters long, far too large "
            "for a microvm-run script"
        )
    if "\x00" in script_text:
        raise RunnerParseError("the runner script contains NUL bytes, so it is not a shell script")
    if not script_text.strip():
        raise RunnerParseError("the runner script is empty")


# One POSIX shell word piece per match. A regex instead of shlex: shlex reads a character at
# a time and made `list` spend most of its time here (1.5 ms per runner script).
_PIECE = re.compile(
    r"""(?P<space>[ \t\r\n]+)
      | '(?P<single>[^']*)'
      | "(?P<double>(?:[^"\\]|\\.)*)"
      | \\(?P<escaped>.)
      | (?P<plain>[^ \t\r\n'"\\]+)""",
    re.VERBOSE | re.DOTALL,
)
_DQ_ESCAPE = re.compile(r'\\([$`"\\\n])')


def split_words(text: str) -> list[str]:
    """Split TEXT into words like a POSIX shell (quotes, backslashes; no expansion).

    Raises ValueError on an unclosed quote or a trailing backslash, as shlex does.
    """
    words: list[str] = []
    current: list[str] = []
    in_word = False
    pos, end = 0, len(text)
    while pos < end:
        m = _PIECE.match(text, pos)
        if m is None:
            raise ValueError(
                "No closing quotation" if text[pos] in "'\"" else "No escaped character"
            )
        pos = m.end()
        kind = m.lastgroup
        if kind == "space":
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
            continue
        if kind == "escaped":
            if m.group("escaped") == "\n":  # a line continuation joins, adds nothing
                continue
            current.append(m.group("escaped"))
        elif kind == "double":
            current.append(
                _DQ_ESCAPE.sub(
                    lambda e: "" if e.group(1) == "\n" else e.group(1), m.group("double")
                )
            )
        else:
            current.append(m.group(kind))
        in_word = True
    if in_word:
        words.append("".join(current))
    return words


def split_commands(script_text: str) -> list[ShellCommand]:
    """Every simple command of the script, split into words.

    Raises RunnerParseError when the script as a whole cannot be read (unclosed quotes, NUL
    bytes, too large, empty). A single command with unbalanced quoting gets ``words=None``.
    """
    _check_text(script_text)
    scanner = _Scanner(script_text)
    raw = scanner.run()
    commands = []
    for text, line in raw:
        try:
            words = split_words(text)
        except ValueError as e:
            commands.append(ShellCommand(None, line, text, str(e)))
            continue
        commands.append(ShellCommand([_restore(w, scanner.subs) for w in words], line, text))
    return commands


def split_array(inner: str, line: int) -> list[str]:
    """The words of the inside of ``name=( ... )`` (newlines and comments allowed)."""
    scanner = _Scanner(inner)
    words: list[str] = []
    for text, _ in scanner.run():
        try:
            words.extend(_restore(w, scanner.subs) for w in split_words(text))
        except ValueError as e:
            raise RunnerParseError(f"could not split the array on line {line}: {e}") from None
    return words
