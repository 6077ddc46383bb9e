"""`microvm-tui lab up|down|status|publish|fleet DIR` (also `python -m tui.lab ...`)."""

from __future__ import annotations

import argparse
import json
import logging
import re
import shlex
import sys
import time
from pathlib import Path

from tui.config.decoders import LOCAL_HOST
from tui.lab.buildserver import BuildServerError
from tui.lab.config import fleet_text, write_text
from tui.lab.lab import MARKER, Lab, LabError
from tui.lab.nix import NixError


def _recorded_extra(root: Path) -> int:
    try:
        return int(json.loads((root / MARKER).read_text()).get("extra_running", 0))
    except (OSError, ValueError, AttributeError):
        return 0


def host_name(lab: Lab) -> str:
    """A [hosts.NAME] for a lab: its directory's name in the characters a host name allows."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", lab.root.name).strip("-_") or "lab"
    return name if name != LOCAL_HOST else "lab-local"


def write_fleet(lab: Lab, peers: list[Lab]) -> Path:
    """LAB/fleet.toml: LAB's settings as this machine's, each peer lab a host over its sshd. Each
    lab must be up (its config and sshd exist)."""
    for one in (lab, *peers):
        if not one.config_path.exists() or one.sshd.port() is None:
            raise LabError(f"{one.root} is not up: run `microvm-tui lab up {one.root}` first")
    entries = []
    for peer in peers:
        agent = [sys.executable, "-m", "tui", "--config", str(peer.config_path), "agent"]
        entries.append((host_name(peer), peer.sshd.ssh_args(), shlex.join(agent)))
    path = lab.root / "fleet.toml"
    write_text(path, fleet_text(lab.config_path.read_text(), entries))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="microvm-tui lab", description="A throwaway microvm.nix host in a folder."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="build and start the lab (idempotent; repairs a half-up lab)")
    p_up.add_argument("dir", type=Path)
    p_up.add_argument(
        "--extra-running", type=int, default=None, help="N more running VMs vm01..vmNN"
    )
    p_down = sub.add_parser("down", help="stop everything the lab started and remove it")
    p_down.add_argument("dir", type=Path)
    p_status = sub.add_parser("status", help="what is running (JSON)")
    p_status.add_argument("dir", type=Path)
    p_pub = sub.add_parser(
        "publish", help="as CI would: build a new runner of VM, push it to the lab's cache"
    )
    p_pub.add_argument("dir", type=Path)
    p_pub.add_argument("vm")
    p_pub.add_argument("--build", type=int, default=int(time.time()), help="the build number")
    p_fleet = sub.add_parser(
        "fleet",
        help="a fleet of labs: write DIR/fleet.toml, DIR as this machine, each PEER over ssh",
    )
    p_fleet.add_argument("dir", type=Path)
    p_fleet.add_argument("peers", type=Path, nargs="+", metavar="PEER")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="lab: %(message)s", stream=sys.stderr)

    root = args.dir
    extra = _recorded_extra(root.absolute())
    if args.command == "up" and args.extra_running is not None:
        extra = args.extra_running
    lab = Lab(root, extra_running=extra)
    try:
        if args.command == "up":
            t0 = time.monotonic()
            lab.up()
            print(f"lab up in {time.monotonic() - t0:.1f}s: {lab.root}")
            print(f"config: {lab.config_path}")
            print(f"run:    microvm-tui --config {lab.config_path}")
            print(f"ssh:    ssh {' '.join(lab.sshd.ssh_args())}")
        elif args.command == "publish":
            path = lab.buildserver.publish(lab.flake_dir, args.vm, args.build)
            print(f"published {path}")
            print(f"deploy it: microvm-tui --config {lab.config_path}, then d on {args.vm}")
        elif args.command == "fleet":
            path = write_fleet(
                lab, [Lab(p, extra_running=_recorded_extra(p.absolute())) for p in args.peers]
            )
            print(f"fleet: {path}")
            print(f"run:   microvm-tui --config {path} --all-hosts")
        elif args.command == "down":
            lab.down()
            print(f"lab down: {lab.root}")
        else:
            print(json.dumps(lab.status(), indent=2))
    except (LabError, BuildServerError, NixError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
