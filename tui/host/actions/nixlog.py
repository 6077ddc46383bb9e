"""Read `nix build --log-format internal-json` stderr into a ``Progress`` summary.

Each line Nix writes in that format is ``@nix {json}`` with an ``action`` of ``start``,
``stop``, ``result`` or ``msg``. The numbers below are Nix's own (``src/libutil/logging.hh``,
unchanged from 2.4 through 2.8 and later). The totals are added up the way Nix's progress bar
(``src/libmain/progress-bar.cc``) adds them up: per activity type, the numbers of activities
that stopped plus those still running, with ``setExpected`` results as a lower bound for the
expected total.

Anything that is not an ``@nix`` line (usage errors printed before the logger starts, say) is
kept as plain text; a plain line starting with ``error:`` counts as an error.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass, field

from tui.host.runners._options import shown

# ActivityType
ACT_UNKNOWN = 0
ACT_COPY_PATH = 100  # one store path copied (substituted); progress = NAR bytes
ACT_FILE_TRANSFER = 101  # one download; progress = bytes
ACT_REALISE = 102  # the whole realisation; carries setExpected for 100 and 101
ACT_COPY_PATHS = 103  # all substitutions; progress = paths
ACT_BUILDS = 104  # all builds; progress = derivations
ACT_BUILD = 105  # one derivation build; fields [drvPath, machine, curRound, nrRounds]
ACT_OPTIMISE_STORE = 106
ACT_VERIFY_PATHS = 107
ACT_SUBSTITUTE = 108  # fields [storePath, substituterUri]
ACT_QUERY_PATH_INFO = 109
ACT_POST_BUILD_HOOK = 110
ACT_BUILD_WAITING = 111

# ResultType
RES_FILE_LINKED = 100
RES_BUILD_LOG_LINE = 101  # fields [line]
RES_UNTRUSTED_PATH = 102
RES_CORRUPTED_PATH = 103
RES_SET_PHASE = 104  # fields [phase]
RES_PROGRESS = 105  # fields [done, expected, running, failed]
RES_SET_EXPECTED = 106  # fields [activityType, expected]
RES_POST_BUILD_LOG_LINE = 107  # fields [line]

# Verbosity
LVL_ERROR = 0
LVL_WARN = 1
LVL_NOTICE = 2
LVL_INFO = 3

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
_STORE_HASH = re.compile(r"^[0-9a-z]{32}-")


def strip_ansi(text: str) -> str:
    """Nix's text without its colours, and safe to show: tabs become spaces, and any other
    control character left (a bare ESC, BEL, C1, bidi overrides: from a build log, that is
    from whatever the build ran) is written as a visible escape. Newlines stay: Nix's error
    messages span lines."""
    text = _ANSI.sub("", text)
    if text.isprintable():
        return text
    return "\n".join(shown(line.expandtabs(8)) for line in text.split("\n"))


def derivation_name(path: str) -> str:
    """``/nix/store/HASH-microvm-qemu-web.drv`` -> ``microvm-qemu-web``."""
    base = path.rstrip("/").rsplit("/", 1)[-1]
    base = _STORE_HASH.sub("", base)
    return strip_ansi(base.removesuffix(".drv").replace("\n", " "))


@dataclass(frozen=True)
class Progress:
    """A snapshot of what one `nix build` has done so far. Every number is a running total."""

    builds_done: int = 0  # derivations built
    builds_expected: int = 0  # derivations to build (done included)
    builds_running: int = 0
    builds_failed: int = 0
    paths_done: int = 0  # store paths fetched from a substituter
    paths_expected: int = 0
    bytes_fetched: int = 0  # NAR bytes written into the store by substitution
    bytes_expected: int = 0
    download_done: int = 0  # bytes downloaded (compressed; 0 for file:// caches)
    download_expected: int = 0
    current_builds: tuple[str, ...] = ()  # names of the derivations building right now
    phase: str | None = None  # phase of the build whose log is shown (stdenv builds only)
    log_build: str | None = None  # the build the log tail belongs to
    log_tail: tuple[str, ...] = ()  # its last lines
    activity: str | None = None  # the latest "building ..." / "copying path ..." line
    errors: tuple[str, ...] = ()  # Nix's error messages, without colours or "error: "
    warnings: tuple[str, ...] = ()
    finished: bool = False

    def summary(self) -> str:
        """One short line, like Nix's own progress bar."""
        parts = []
        if self.builds_expected or self.builds_done or self.builds_failed:
            text = f"{self.builds_done}/{self.builds_expected} built"
            if self.builds_running:
                text += f", {self.builds_running} building"
            if self.builds_failed:
                text += f", {self.builds_failed} failed"
            parts.append(text)
        if self.paths_expected or self.paths_done:
            text = f"{self.paths_done}/{self.paths_expected} copied"
            if self.bytes_expected:
                text += f" ({_size(self.bytes_fetched)} of {_size(self.bytes_expected)})"
            parts.append(text)
        if self.download_expected:
            parts.append(
                f"{_size(self.download_done)} of {_size(self.download_expected)} downloaded"
            )
        if self.current_builds:
            parts.append("building " + ", ".join(self.current_builds))
        if parts:
            return "; ".join(parts)
        if not self.finished:
            return "evaluating"
        return "failed" if self.errors else "nothing to build"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1 << 20:
        return f"{n / 1024:.1f} KiB"
    if n < 1 << 30:
        return f"{n / (1 << 20):.1f} MiB"
    return f"{n / (1 << 30):.2f} GiB"


@dataclass
class _Activity:
    id: int
    type: int
    text: str
    fields: list
    done: int = 0
    expected: int = 0
    running: int = 0
    failed: int = 0
    expected_by_type: dict[int, int] = field(default_factory=dict)


@dataclass
class _TypeTotals:
    done: int = 0  # of stopped activities
    stopped_expected: int = 0  # what those expected when they stopped
    failed: int = 0
    expected: int = 0  # sum of setExpected for this type, from any activity


def _int(fields: list, index: int) -> int:
    try:
        value = fields[index]
    except (IndexError, TypeError):
        return 0
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(fields: list, index: int) -> str | None:
    try:
        value = fields[index]
    except (IndexError, TypeError):
        return None
    return value if isinstance(value, str) else None


class NixLogParser:
    """Feed it stderr lines one by one; ``progress()`` gives the current snapshot.

    ``feed`` returns the lines a person would want in a job log (build output as
    ``name> line``, "building ..." / "copying path ..." notices, errors and warnings), the same
    lines `nix build -L` prints in its plain format.
    """

    def __init__(self, tail_lines: int = 10) -> None:
        self._tail_lines = tail_lines
        self._acts: dict[int, _Activity] = {}
        self._totals: dict[int, _TypeTotals] = {}
        self._tails: dict[int, deque[str]] = {}
        self._phases: dict[int, str] = {}
        self._tail_id: int | None = None  # the build whose log tail is shown
        self._tail_name: str | None = None
        self._activity: str | None = None
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.plain: list[str] = []  # stderr lines that were not @nix JSON
        self._finished = False
        self._names: dict[int, str] = {}

    # -- input --------------------------------------------------------------------------

    def feed(self, line: str) -> list[str]:
        line = line.rstrip("\r\n")
        if not line.startswith("@nix "):
            return self._plain(line)
        try:
            event = json.loads(line[5:])
        except ValueError:
            return self._plain(line)
        if not isinstance(event, dict):
            return self._plain(line)
        action = event.get("action")
        if action == "start":
            return self._start(event)
        if action == "stop":
            return self._stop(event)
        if action == "result":
            return self._result(event)
        if action == "msg":
            return self._msg(event)
        return []

    def feed_all(self, text: str) -> list[str]:
        out: list[str] = []
        for line in text.splitlines():
            out.extend(self.feed(line))
        return out

    def finish(self, success: bool) -> None:
        """The process ended. On success, fetches that stopped short of their expected
        size (Nix does not send a last progress result) count as complete."""
        self._finished = True
        if success:
            for totals in self._totals.values():
                totals.done = max(totals.done, totals.expected) if totals.expected else totals.done

    def _plain(self, line: str) -> list[str]:
        text = strip_ansi(line).rstrip()
        if not text:
            return []
        self.plain.append(text)
        if text.startswith("error:"):
            self.errors.append(text[len("error:") :].strip())
        elif text.startswith("warning:"):
            self.warnings.append(text[len("warning:") :].strip())
        return [text]

    def _start(self, event: dict) -> list[str]:
        act_id = event.get("id")
        if not isinstance(act_id, int):
            return []
        act_type = event.get("type") if isinstance(event.get("type"), int) else ACT_UNKNOWN
        fields = event.get("fields") if isinstance(event.get("fields"), list) else []
        text = strip_ansi(str(event.get("text") or ""))
        act = _Activity(id=act_id, type=act_type, text=text, fields=fields)
        self._acts[act_id] = act
        if act_type == ACT_BUILD:
            drv = _str(fields, 0)
            if drv is None:
                match = re.search(r"'([^']+)'", text)
                drv = match.group(1) if match else text
            self._names[act_id] = derivation_name(drv)
        level = event.get("level")
        if text and isinstance(level, int) and level <= LVL_INFO:
            self._activity = text
            return [text + "..."] if not text.endswith("...") else [text]
        return []

    def _stop(self, event: dict) -> list[str]:
        act = self._acts.pop(event.get("id"), None)  # type: ignore[arg-type]
        if act is None:
            return []
        totals = self._totals.setdefault(act.type, _TypeTotals())
        done = act.done
        if act.type == ACT_COPY_PATH and act.expected:
            done = max(done, act.expected)  # the last chunk is never reported
        totals.done += done
        totals.stopped_expected += max(act.expected, done)
        totals.failed += act.failed
        if act.type == ACT_BUILD:
            self._phases.pop(act.id, None)
        return []

    def _result(self, event: dict) -> list[str]:
        act = self._acts.get(event.get("id"))  # type: ignore[arg-type]
        res_type = event.get("type")
        fields = event.get("fields") if isinstance(event.get("fields"), list) else []
        if res_type in (RES_BUILD_LOG_LINE, RES_POST_BUILD_LOG_LINE):
            text = strip_ansi(_str(fields, 0) or "")
            if act is None:
                return [text]
            name = self._names.get(act.id) or act.text or "nix"
            if res_type == RES_POST_BUILD_LOG_LINE:
                name += " (post-build-hook)"
            tail = self._tails.setdefault(act.id, deque(maxlen=self._tail_lines))
            tail.append(text)
            self._tail_id = act.id
            self._tail_name = name
            return [f"{name}> {text}"]
        if act is None:
            return []
        if res_type == RES_PROGRESS:
            act.done = _int(fields, 0)
            act.expected = _int(fields, 1)
            act.running = _int(fields, 2)
            act.failed = _int(fields, 3)
        elif res_type == RES_SET_EXPECTED:
            of_type = _int(fields, 0)
            totals = self._totals.setdefault(of_type, _TypeTotals())
            totals.expected -= act.expected_by_type.get(of_type, 0)
            act.expected_by_type[of_type] = _int(fields, 1)
            totals.expected += act.expected_by_type[of_type]
        elif res_type == RES_SET_PHASE:
            phase = strip_ansi(_str(fields, 0) or "").replace("\n", " ")
            if phase:
                self._phases[act.id] = phase
        return []

    def _msg(self, event: dict) -> list[str]:
        level = event.get("level")
        raw = event.get("raw_msg")
        text = strip_ansi(str(raw if isinstance(raw, str) and raw else event.get("msg") or ""))
        shown = strip_ansi(str(event.get("msg") or text))
        if level == LVL_ERROR:
            if text.startswith("error:"):
                text = text[len("error:") :].strip()
            self.errors.append(text)
        elif level == LVL_WARN:
            if text.startswith("warning:"):
                text = text[len("warning:") :].strip()
            self.warnings.append(text)
        return [shown] if shown else []

    # -- output -------------------------------------------------------------------------

    def _sum(self, act_type: int) -> tuple[int, int, int, int]:
        """done, expected, running, failed for one activity type, as Nix's bar counts them
        (except that stopped activities keep what they expected: a cancelled build shows
        0/1, not 0/0)."""
        totals = self._totals.get(act_type, _TypeTotals())
        done = totals.done
        expected = totals.stopped_expected
        running = 0
        failed = totals.failed
        for act in self._acts.values():
            if act.type != act_type:
                continue
            done += act.done
            expected += act.expected
            running += act.running
            failed += act.failed
        return done, max(expected, totals.expected, done + failed), running, failed

    def progress(self) -> Progress:
        b_done, b_expected, b_running, b_failed = self._sum(ACT_BUILDS)
        p_done, p_expected, _, _ = self._sum(ACT_COPY_PATHS)
        c_done, c_expected, _, _ = self._sum(ACT_COPY_PATH)
        d_done, d_expected, _, _ = self._sum(ACT_FILE_TRANSFER)
        building = tuple(self._names[a.id] for a in self._acts.values() if a.type == ACT_BUILD)
        tail = self._tails.get(self._tail_id) if self._tail_id is not None else None
        return Progress(
            builds_done=b_done,
            builds_expected=b_expected,
            builds_running=b_running,
            builds_failed=b_failed,
            paths_done=p_done,
            paths_expected=p_expected,
            bytes_fetched=c_done,
            bytes_expected=c_expected,
            download_done=d_done,
            download_expected=d_expected,
            current_builds=building,
            phase=self._phases.get(self._tail_id) if self._tail_id is not None else None,
            log_build=self._tail_name,
            log_tail=tuple(tail) if tail else (),
            activity=self._activity,
            errors=tuple(self.errors),
            warnings=tuple(self.warnings),
            finished=self._finished,
        )


def parse_log(text: str, tail_lines: int = 10, success: bool | None = None) -> Progress:
    """The progress a whole recorded stderr log describes."""
    parser = NixLogParser(tail_lines)
    parser.feed_all(text)
    if success is not None:
        parser.finish(success)
    return parser.progress()
