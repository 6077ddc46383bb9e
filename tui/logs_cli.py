"""`microvm-tui logs NAME`: a VM's journal (its unit and helper units) or its guest's own
journal, for scripts. Lines only, sanitised: never the raw escape sequences a guest or a
service wrote."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

from tui.config import Settings
from tui.host.logs.entry import PRIORITY_NAMES, LogLine
from tui.host.logs.query import PRIORITIES, LogQuery, QueryError, Since, vm_units

EXIT_USAGE = 2


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    logs = sub.add_parser("logs", help="a VM's journal lines (its units, or --guest)")
    logs.add_argument("name", help="the VM")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("--guest", action="store_true", help="the guest's own journal (FAQ share)")
    logs.add_argument("--json", action="store_true", help="one JSON object per line")
    logs.add_argument(
        "--since", choices=[s.value for s in Since], default="all", help="default: all"
    )
    logs.add_argument(
        "-p", "--priority", choices=list(PRIORITIES), default="all", help="at most this level"
    )
    logs.add_argument("-g", "--grep", default="", help="only lines matching this regex")
    logs.add_argument("-n", "--lines", type=int, default=200, help="how many (default 200)")
    return logs


def format_line(line: LogLine, as_json: bool, source: str) -> str:
    if as_json:
        return json.dumps({**line.to_json(), "source": source}, ensure_ascii=True)
    stamp = "-"
    if line.usec:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(line.usec / 1e6))
    return f"{stamp} {line.unit or '-'} {PRIORITY_NAMES[line.priority]}: {line.text}"


def cmd_logs(settings: Settings, args: argparse.Namespace) -> int:
    from tui.host.names import name_problem
    from tui.host.statedir import read_vm

    problem = name_problem(args.name)
    if problem:
        print(f"microvm-tui: {problem}", file=sys.stderr)
        return EXIT_USAGE
    host = settings.host
    vm_dir = host.state_dir / args.name
    if not vm_dir.is_dir():
        print(f"microvm-tui: no VM {args.name} in {host.state_dir}", file=sys.stderr)
        return EXIT_USAGE
    if args.lines < 1:
        print("microvm-tui: --lines must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    since = Since(args.since)
    query = LogQuery(
        units=() if args.guest else vm_units(args.name),
        since=since,
        priority=PRIORITIES[args.priority],
        grep=args.grep,
        lines=args.lines,
    )
    try:
        query = query.checked()
    except QueryError as exc:
        print(f"microvm-tui: --grep: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from tui.host.logs.boot import with_boot_start

    resolved, why = with_boot_start(host, args.name, query)
    if resolved is None:
        print(f"microvm-tui: --since boot: {why}", file=sys.stderr)
        return EXIT_USAGE
    query = resolved
    if not args.guest:
        return _print(settings, query, args, (), ())
    from tui.host.logs.guest import find_guest_journal, opened_journal_files

    journal, why = find_guest_journal(read_vm(vm_dir))
    if journal is None:
        print(f"microvm-tui: {why}", file=sys.stderr)
        return EXIT_USAGE
    with opened_journal_files(journal) as (files, fds):
        if not files:
            print(f"microvm-tui: no journal files in {journal.source}", file=sys.stderr)
            return EXIT_USAGE
        return _print(settings, query, args, files, fds)


def _print(
    settings: Settings,
    query: LogQuery,
    args: argparse.Namespace,
    files: tuple[str, ...],
    fds: tuple[int, ...],
) -> int:
    from tui.host.logs.reader import LogFollower, read_journal

    source = "guest" if args.guest else "host"
    result = read_journal(settings.host, query, files=files, pass_fds=fds)
    if result.error:
        print(f"microvm-tui: {result.error}", file=sys.stderr)
        return 1
    out = [format_line(line, args.json, source) for line in result.lines]
    if out:
        sys.stdout.write("\n".join(out) + "\n")
        sys.stdout.flush()
    if result.note:
        print(f"microvm-tui: {result.note}", file=sys.stderr)
    if not args.follow:
        return 0
    ended: list[str | None] = []
    done = threading.Event()

    def on_lines(batch: list[LogLine]) -> None:
        sys.stdout.write("".join(format_line(x, args.json, source) + "\n" for x in batch))
        sys.stdout.flush()

    def on_end(why: str | None) -> None:
        ended.append(why)
        done.set()

    cursor = result.lines[-1].cursor if result.lines else ""
    follower = LogFollower(
        settings.host, query, on_lines, on_end, after_cursor=cursor, files=files, pass_fds=fds
    )
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    follower.start()
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        follower.close()
    if ended and ended[0]:
        print(f"microvm-tui: {ended[0]}", file=sys.stderr)
        return 1
    return 0
