"""Command line: `microvm-tui` (the app), `microvm-tui list`, `logs`, `lab`.

`list` must stay fast: this module imports neither Textual nor psutil nor pyroute2 at top level.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tui.agent.hosts import RemoteHost
from tui.config import LOCAL_HOST, TOP, ConfigError, Invalid, Settings, load_settings, show
from tui.host.signals import let_sigint_reach_children
from tui.host.text import sanitise

if TYPE_CHECKING:
    from tui.feed.live import FirstScreen
    from tui.host.uistate import UIStateStore

EXIT_USAGE = 2


# --- flag types: the config schema's checks, so a flag has the same bounds as the file's key --


def _interval(text: str) -> float:
    value: object = text
    with contextlib.suppress(ValueError):
        value = float(text)
    try:
        return TOP["interval"].decode(value)
    except Invalid as exc:
        raise argparse.ArgumentTypeError(f"{show(text)}: {exc}") from None


def _theme(text: str) -> str:
    try:
        return TOP["theme"].decode(text)
    except Invalid as exc:
        raise argparse.ArgumentTypeError(f"{show(text)}: {exc}") from None


def _path(text: str) -> Path:
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"{show(text)}: must be a path (not empty)")
    return Path(os.path.abspath(os.path.expanduser(text)))


def _common(parser: argparse.ArgumentParser, default: object = None) -> None:
    # Sub-commands take the same flags; SUPPRESS keeps them from erasing the top-level ones.
    parser.add_argument(
        "--state-dir",
        type=_path,
        default=default,
        help="where the VMs live (default /var/lib/microvms)",
    )
    parser.add_argument(
        "--config",
        type=_path,
        default=default,
        help="a TOML config file read after the standard ones",
    )
    parser.add_argument(
        "--host",
        default=default,
        metavar="NAME",
        help="a host of the config's [hosts.NAME] tables (over ssh), or local (the default)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="microvm-tui",
        description="A terminal manager for microvm.nix hosts. Without a command: the app.",
    )
    _common(parser)
    parser.add_argument(
        "--interval", type=_interval, help="seconds between polls, 0.2 to 3600 (default 1)"
    )
    parser.add_argument("--theme", type=_theme, help="a Textual theme name, e.g. textual-light")
    parser.add_argument(
        "--read-only", action="store_true", default=None, help="never change anything"
    )
    parser.add_argument(
        "--all-hosts",
        dest="fleet",
        action="store_true",
        help="watch every host of the config and this one (the fleet view; read-only)",
    )
    sub = parser.add_subparsers(dest="command")
    ls = sub.add_parser("list", help="list the VMs (a fast `microvm -l`)")
    _common(ls, argparse.SUPPRESS)
    ls.add_argument("--json", action="store_true", help="print one JSON object")
    ls.add_argument(
        "--all-hosts",
        action="store_true",
        help="every host of the config and this one: one object per host, its VMs or its error",
    )
    from tui.logs_cli import add_parser as add_logs_parser

    _common(add_logs_parser(sub), argparse.SUPPRESS)
    agent = sub.add_parser(
        "agent", help="the host side of `--host`: snapshots as JSON lines on stdin/stdout"
    )
    _common(agent, argparse.SUPPRESS)
    agent.add_argument(
        "session", nargs="*", help="`console VM` or `logs VM`: one VM's console or logs stream"
    )
    from tui.checks_cli import add_parser as add_checks_parser

    _common(add_checks_parser(sub), argparse.SUPPRESS)
    lab = sub.add_parser("lab", help="a throwaway microvm.nix host for demos and tests")
    lab.add_argument("lab_args", nargs=argparse.REMAINDER)
    return parser


# --- list -------------------------------------------------------------------------------

_COLOURS = {"green": "32", "red": "31", "yellow": "33", "dim": "2", "bold": "1"}


def _paint(text: str, colour: str | None, enabled: bool) -> str:
    if not enabled or not colour:
        return text
    return f"\x1b[{_COLOURS[colour]}m{text}\x1b[0m"


def _unit_colour(active: str | None) -> str | None:
    return {"active": "green", "failed": "red", "activating": "yellow"}.get(active or "", "dim")


def _drift_colour(drift: str) -> str | None:
    return {"current": "green", "stale": "yellow", "broken": "red"}.get(drift)


MISSING_MARK = "!"
LEGEND = f"NIC{MISSING_MARK}: declared by the runner, missing on the host (normal while stopped)"
CRASH_LOOP = "crash-looping:"  # how crashloop.crash_loop_problem starts


def format_table(data: dict, colour: bool, legend: bool = False) -> str:
    """The `list` table. LEGEND (on a terminal): explain the marks the table uses."""
    headers = [
        "NAME", "UNIT", "RESTARTS", "HYPERVISOR", "VCPU", "MEMORY", "DRIFT", "NICS", "PROBLEMS"
    ]  # fmt: skip
    rows: list[tuple[list[str], list[str | None]]] = []
    marked = False
    for vm in data["vms"]:
        unit = vm["unit"] or {}
        active = unit.get("active") or "unknown"
        if unit.get("sub") and active not in ("unknown",):
            active = f"{active}/{unit['sub']}"
        nics = ",".join(
            i["id"] + ("" if i["exists"] in (True, None) else MISSING_MARK)
            for i in vm["interfaces"]
        )
        marked = marked or MISSING_MARK in nics
        problems = "; ".join(vm["problems"])
        restarts = unit.get("restarts")
        looping = any(p.startswith(CRASH_LOOP) for p in vm["problems"])
        # The data is sanitised already (inventory_to_json); once more here, for every cell,
        # keeps the table safe whatever feeds it.
        cells = [
            sanitise(cell)
            for cell in (
                vm["name"],
                active,
                "?" if restarts is None else f"{restarts}{' ⟳' if looping else ''}",
                vm["hypervisor"] or "?",
                "" if vm["vcpu"] is None else str(vm["vcpu"]),
                "" if vm["mem_mib"] is None else f"{vm['mem_mib']} MiB",
                vm["drift"],
                nics or "-",
                problems or "-",
            )
        ]
        colours = [
            "bold",
            _unit_colour(unit.get("active")),
            "red" if looping else ("yellow" if restarts else "dim"),
            None,
            None,
            None,
            _drift_colour(vm["drift"]),
            None,
            "red" if vm["problems"] else "dim",
        ]
        rows.append((cells, colours))
    widths = [len(h) for h in headers]
    for cells, _ in rows:
        for i, cell in enumerate(cells[:-1]):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for cells, colours in rows:
        parts = []
        for i, (cell, col) in enumerate(zip(cells, colours, strict=True)):
            padded = cell if i == len(cells) - 1 else cell.ljust(widths[i])
            parts.append(_paint(padded, col, colour))
        lines.append("  ".join(parts).rstrip())
    if legend and marked:
        lines.append(_paint(LEGEND, "dim", colour))
    if data.get("systemd_error"):
        lines.append(f"systemd: {sanitise(data['systemd_error'])}")
    if not data["vms"]:
        lines.append(f"no VMs in {sanitise(data['state_dir'])}")
    return "\n".join(lines)


def cmd_list(settings: Settings, as_json: bool) -> int:
    from tui.host.inventory import list_vms
    from tui.host.jsonout import inventory_to_json

    inv = list_vms(settings.host)
    if inv.error:
        print(f"microvm-tui: {sanitise(inv.error)}", file=sys.stderr)
        return EXIT_USAGE
    data = inventory_to_json(inv)
    if as_json:
        # Indented for a reader; compact (and made by the C encoder, ~10x faster) for a pipe.
        # One write: json.dump writes each token, a system call apiece if stdout is unbuffered.
        text = json.dumps(data, indent=2 if sys.stdout.isatty() else None)
        sys.stdout.write(text + "\n")
    else:
        tty = sys.stdout.isatty()
        colour = tty and not os.environ.get("NO_COLOR")
        print(format_table(data, colour, legend=tty))
    return 0


# --- many hosts ---------------------------------------------------------------------------


def pick_host(settings: Settings, name: str | None) -> RemoteHost | None:
    """The configured host NAME (None: this machine); ``ConfigError`` for an unknown name."""
    if name is None or name == LOCAL_HOST:
        return None
    host = settings.hosts.get(name)
    if host is None:
        known = ", ".join([LOCAL_HOST, *settings.hosts])
        raise ConfigError(f"--host {show(name)}: no such host in the config (known: {known})")
    return host


def host_listing(settings: Settings, hosts: list[RemoteHost | None]) -> list[dict]:
    """One object per host: its VMs (the `list --json` schema) or its error. Remote hosts are
    asked all at once, each over its own ssh session; none waits for another."""
    from tui.agent.client import RemoteHostError, RemoteSource
    from tui.host.jsonout import inventory_to_json

    remote = [h for h in hosts if h is not None]
    sources = {}
    if remote:
        sources = {h.name: RemoteSource(h, persist="no") for h in remote}
    out = []
    try:
        for host in hosts:
            entry: dict = {"host": LOCAL_HOST if host is None else host.name}
            if host is None:
                from tui.host.inventory import list_vms

                inv = list_vms(settings.host)
                entry["ssh"] = None
            else:
                entry["ssh"] = list(host.ssh)
                try:
                    inv = sources[host.name].poll_complete().inventory
                except RemoteHostError as exc:  # one line, sanitised
                    out.append({**entry, "error": sanitise(exc.reason)})
                    continue
            if inv.error:
                out.append({**entry, "error": sanitise(inv.error)})
                continue
            out.append({**entry, "error": None, **inventory_to_json(inv)})
    finally:
        for source in sources.values():
            source.close()
    return out


def cmd_list_hosts(settings: Settings, hosts: list[RemoteHost | None], as_json: bool) -> int:
    listing = host_listing(settings, hosts)
    if as_json:
        text = json.dumps({"hosts": listing}, indent=2 if sys.stdout.isatty() else None)
        sys.stdout.write(text + "\n")
    else:
        tty = sys.stdout.isatty()
        colour = tty and not os.environ.get("NO_COLOR")
        for i, entry in enumerate(listing):
            print(("" if i == 0 else "\n") + _paint(f"== {entry['host']}", "bold", colour))
            if entry["error"]:
                print(_paint(f"unreachable: {entry['error']}", "red", colour))
            else:
                print(format_table(entry, colour, legend=tty))
    return 1 if any(entry["error"] for entry in listing) else 0


# --- entry --------------------------------------------------------------------------------


def _job_exec(argv: list[str]) -> int:
    """The hidden `job-exec --jobs-dir DIR --job NAME`: a job's systemd unit runs it."""
    parser = argparse.ArgumentParser(prog="microvm-tui job-exec")
    parser.add_argument("--jobs-dir", type=_path, required=True)
    parser.add_argument("--job", required=True)
    args = parser.parse_args(argv)
    from tui.host.actions.job_exec import job_exec

    return job_exec(args.jobs_dir, args.job)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["job-exec"]:  # not in --help: only the app's units run it
        return _job_exec(argv[1:])
    let_sigint_reach_children()
    args = build_parser().parse_args(argv)
    if args.command == "lab":
        from tui.lab import main as lab_main

        return lab_main(args.lab_args)
    try:
        settings = load_settings(
            args.config,
            state_dir=args.state_dir,
            interval=getattr(args, "interval", None),
            theme=getattr(args, "theme", None),
            read_only=getattr(args, "read_only", None),
        )
    except ConfigError as exc:
        print(f"microvm-tui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        host = pick_host(settings, getattr(args, "host", None))
    except ConfigError as exc:
        print(f"microvm-tui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "list":
        try:
            if args.all_hosts:
                return cmd_list_hosts(settings, [None, *settings.hosts.values()], args.json)
            if host is not None:
                return cmd_list_hosts(settings, [host], args.json)
            return cmd_list(settings, args.json)
        except BrokenPipeError:  # `microvm-tui list | head`
            return 0
    if args.command == "agent" and args.session:
        from tui.agent.stream_server import run_session

        return run_session(settings, args.session)
    if args.command == "agent":
        from tui.agent.server import run_agent

        return run_agent(settings)
    if args.command == "logs":
        from tui.logs_cli import cmd_logs

        try:
            return cmd_logs(settings, args)
        except BrokenPipeError:
            return 0
    if args.command == "checks":
        from tui.checks_cli import cmd_checks

        try:
            return cmd_checks(settings, args.json)
        except BrokenPipeError:
            return 0
    if settings.keymap:  # named now: Textual would drop a clashing binding or an unknown id
        from tui.keymap_check import keymap_problems

        problems = keymap_problems(settings.keymap)
        if problems:
            print(f"microvm-tui: {'; '.join(problems)}", file=sys.stderr)
            return EXIT_USAGE
    # The first poll runs while Textual loads (tui.feed does not import it).
    from tui.feed import LiveSource, Prefetched, Source
    from tui.host.uistate import UIStateStore

    ui_state = UIStateStore()

    remote = None if host is None else host.name
    if getattr(args, "fleet", False):
        from tui.feed.fleet import FLEET_REMOTE, fleet_source

        source: Source = fleet_source(settings, list(settings.hosts.values()), LOCAL_HOST)
        remote = FLEET_REMOTE
    elif host is not None:
        from tui.agent.client import RemoteSource

        source = RemoteSource(host, interval=host.interval or settings.interval)
    else:
        source = Prefetched(LiveSource(settings.host, first_screen=first_screen(ui_state)))
    from tui.app import run_app

    return run_app(settings, source, remote=remote, ui_state=ui_state)


def first_screen(store: UIStateStore) -> FirstScreen | None:
    """The VMs a big host's first look reads: the table's first screenful in the sort the
    app remembers (None: the sort needs every state dir read)."""
    from tui.feed.live import FirstScreen
    from tui.widgets.vm_rows import first_by_name

    state = store.load()
    from_end = first_by_name(state.sort_column, state.sort_reverse)
    return None if from_end is None else FirstScreen(from_end=from_end)
