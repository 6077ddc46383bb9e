"""`nix build` with live progress, cancellation and a real out path; `nix store diff-closures`.

Both run ``nix`` from PATH with ``settings.nix_options`` (experimental features, substituters,
...) right after the program name, so they apply to every subcommand.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tui.host import tools
from tui.host.actions.cancel import CancelToken
from tui.host.actions.commands import CommandLog, CommandRecord, run
from tui.host.actions.errors import Cancelled, CommandFailed
from tui.host.actions.nixlog import NixLogParser, Progress, strip_ansi
from tui.host.settings import HostSettings

# `-L` must come before `--log-format`: in Nix 2.8 `-L` itself switches the log format to
# "bar-with-logs", so whichever comes last wins. The JSON logger sends build output anyway.
LOG_ARGS = ("-L", "--log-format", "internal-json")
PROGRESS_INTERVAL = 0.1  # seconds between progress callbacks for mere byte counters

ProgressCallback = Callable[[Progress], None]
LineCallback = Callable[[str], None]


class BuildFailed(CommandFailed):
    """`nix build` exited non-zero. ``details`` holds Nix's error messages; ``progress`` the
    last progress, whose ``log_tail`` is the end of the failed build's log."""

    def __init__(self, message: str, details: str, progress: Progress) -> None:
        super().__init__(message, details)
        self.progress = progress


@dataclass(frozen=True)
class BuildResult:
    out_path: str
    progress: Progress
    record: CommandRecord


def nix_argv(settings: HostSettings, *args: str) -> list[str]:
    return [tools.path("nix"), *settings.nix_options, *args]


def build_argv(settings: HostSettings, installable: str, out_link: Path) -> list[str]:
    return nix_argv(settings, "build", *LOG_ARGS, "--json", "-o", str(out_link), "--", installable)


def build(
    settings: HostSettings,
    installable: str,
    out_link: Path,
    *,
    on_progress: ProgressCallback | None = None,
    on_line: LineCallback | None = None,
    log: CommandLog | None = None,
    cancel: CancelToken | None = None,
    grace: float = 5.0,
    tail_lines: int = 10,
) -> BuildResult:
    """Build INSTALLABLE with an out-link at OUT_LINK; return the out path.

    ON_PROGRESS gets a fresh ``Progress`` whenever something a person would notice changed
    (at most every 0.1 s for byte counters) and once more at the end. ON_LINE gets the lines
    `nix build -L` would print (``name> build output``, "building ...", errors).
    Raises BuildFailed, Cancelled (after Nix has stopped), or CommandFailed (no nix).
    """
    parser = NixLogParser(tail_lines)
    last_sent = 0.0

    def on_stderr(line: str) -> None:
        nonlocal last_sent
        lines = parser.feed(line)
        if on_line is not None:
            for text in lines:
                on_line(text)
        now = time.monotonic()
        if on_progress is not None and (lines or now - last_sent >= PROGRESS_INTERVAL):
            last_sent = now
            on_progress(parser.progress())

    result = run(
        build_argv(settings, installable, out_link),
        env=settings.command_env(),
        log=log,
        cancel=cancel,
        on_stderr_line=on_stderr,
        grace=grace,
    )
    parser.finish(result.returncode == 0)
    progress = parser.progress()
    if on_progress is not None:
        on_progress(progress)

    if result.cancelled:
        raise Cancelled(f"the build was cancelled (nix stopped on {_signal_of(result.record)})")
    if result.returncode != 0:
        errors = (
            list(progress.errors)
            or [line for line in parser.plain if line.strip()][-5:]
            or [result.record.outcome]
        )
        if progress.log_tail and progress.builds_failed:
            errors.append(f"last lines of the build log of {progress.log_build}:")
            errors.extend(f"  {line}" for line in progress.log_tail)
        raise BuildFailed(
            f"nix build failed ({result.record.outcome})", "\n".join(errors), progress
        )

    out_path = _out_path_from_json(result.stdout)
    if out_path is None:
        try:
            out_path = os.readlink(out_link)
        except OSError as exc:
            raise CommandFailed(
                "nix build succeeded but left no out link", exc.strerror or str(exc)
            ) from exc
    return BuildResult(out_path=out_path, progress=progress, record=result.record)


def _signal_of(record: CommandRecord) -> str:
    inner = record.outcome.partition("(")[2].rstrip(")")
    return inner or "SIGINT"


def _out_path_from_json(stdout: str) -> str | None:
    """`nix build --json` prints ``[{"drvPath": ..., "outputs": {"out": PATH}}]``."""
    try:
        data = json.loads(stdout)
    except ValueError:
        return None
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return None
    outputs = data[0].get("outputs")
    if not isinstance(outputs, dict):
        return None
    out = outputs.get("out")
    if not isinstance(out, str):
        out = next((v for v in outputs.values() if isinstance(v, str)), None)
    return out


def diff_closures(
    settings: HostSettings,
    old: str,
    new: str,
    *,
    log: CommandLog | None = None,
    cancel: CancelToken | None = None,
    timeout: float = 120.0,
) -> str:
    """`nix store diff-closures OLD NEW`, colours removed. Empty when nothing changed."""
    result = run(
        nix_argv(settings, "store", "diff-closures", "--", old, new),
        env=settings.command_env(),
        log=log,
        cancel=cancel,
        timeout=timeout,
    )
    if result.cancelled:
        raise Cancelled("diff-closures was cancelled")
    if result.returncode != 0:
        raise CommandFailed("nix store diff-closures failed", strip_ansi(result.error_text()))
    return strip_ansi(result.stdout).rstrip("\n")
