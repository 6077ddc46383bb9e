"""`microvm-tui checks`: the host checks once, for scripts and monitoring. Exit status 0 when
nothing is found, 1 when something is, 2 on bad usage. Text is sanitised: a finding quotes
paths and names a tenant may have chosen."""

from __future__ import annotations

import argparse
import json
import sys

from tui.config import Settings
from tui.host.text import sanitise

EXIT_FOUND = 1


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    checks = sub.add_parser("checks", help="the host checks: FAQ problems and leftovers")
    checks.add_argument("--json", action="store_true", help="print one JSON object")
    return checks


def cmd_checks(settings: Settings, as_json: bool) -> int:
    from tui.host.checks.report import run_checks
    from tui.host.inventory import list_vms
    from tui.host.sampling.cgroup import host_layout

    host = settings.host
    inventory = list_vms(host)
    report = run_checks(inventory, host, host_layout())
    if as_json:
        data = {
            "findings": [
                {
                    "kind": f.kind.value,
                    "vm": f.vm,
                    "subject": sanitise(f.subject),
                    "message": sanitise(f.message),
                    "fix": sanitise(f.fix),
                    "clean": f.clean.describe() if f.clean else None,
                }
                for f in report.findings
            ],
            "errors": [sanitise(e) for e in report.errors],
        }
        print(json.dumps(data, ensure_ascii=True, indent=2))
    else:
        for f in report.findings:
            where = f.vm or "host"
            print(f"{where}: {sanitise(f.message)}")
            print(f"  fix: {sanitise(f.fix)}")
        for error in report.errors:
            print(f"not checked: {sanitise(error)}", file=sys.stderr)
        if not report.findings:
            print(f"no problems found ({len(inventory.vms)} VMs)")
    return EXIT_FOUND if report.findings else 0
