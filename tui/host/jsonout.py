"""The `list --json` schema (documented in the README). Plain dicts, stable key order.

Every string is sanitised (``tui.host.text``): the JSON is read by people too (``| jq -r``
prints strings raw), so no control or bidi character from the host leaves through it."""

from __future__ import annotations

import time
from typing import Any

from tui.host.crashloop import crash_loop_problem, looks_crash_looping
from tui.host.model import VM, Inventory
from tui.host.text import sanitise, sanitise_tree


def vm_problems(vm: VM, now_usec: int) -> list[str]:
    """The VM's problems, and for `list` (one look at the host) a crash loop when the unit
    looks like one (``crashloop.looks_crash_looping``)."""
    problems = list(vm.problems)
    if looks_crash_looping(vm.unit, now_usec):
        problems.insert(0, crash_loop_problem(vm.unit))  # type: ignore[arg-type]
    return problems


def vm_to_json(vm: VM, now_usec: int | None = None) -> dict[str, Any]:
    return sanitise_tree(_vm_fields(vm, now_usec))  # type: ignore[return-value]


def _vm_fields(vm: VM, now_usec: int | None) -> dict[str, Any]:
    unit = vm.unit
    if now_usec is None:
        now_usec = time.time_ns() // 1000
    return {
        "name": vm.name,
        "path": str(vm.path),
        "hypervisor": vm.hypervisor,
        "runner": vm.runner,
        "booted": vm.booted,
        "old": vm.old,
        "declarative": vm.declarative,
        "flake": vm.flake,
        "drift": str(vm.drift),
        "vcpu": vm.vcpu,
        "mem_mib": vm.mem_mib,
        "socket": vm.socket,
        "vsock_cid": vm.vsock_cid,
        "balloon": vm.balloon,
        "unit": None
        if unit is None
        else {
            "name": unit.name,
            "active": unit.active,
            "sub": unit.sub,
            "main_pid": unit.main_pid,
            "restarts": unit.restarts,
            "control_group": unit.control_group,
            "error": unit.error,
        },
        "helper_units": [
            {"name": u.name, "active": u.active, "sub": u.sub, "error": u.error}
            for u in vm.helper_units
        ],
        "interfaces": [
            {
                "id": i.id,
                "type": i.type,
                "mac": i.mac,
                "link": i.link,
                "exists": i.exists,
                "oper_state": i.oper_state,
                "error": i.error,
            }
            for i in vm.interfaces
        ],
        "shares": [
            {
                "tag": s.tag,
                "proto": s.proto,
                "source": s.source,
                "socket": s.socket,
                "read_only": s.read_only,
                "source_exists": s.source_exists,
                "socket_exists": s.socket_exists,
            }
            for s in vm.shares
        ],
        "volumes": [
            {
                "image": v.image,
                "exists": v.exists,
                "size_bytes": v.size_bytes,
                "allocated_bytes": v.allocated_bytes,
                "read_only": v.read_only,
            }
            for v in vm.volumes
        ],
        "facts": {
            "from": vm.facts_from,
            "sources": dict(vm.fact_sources),
            "pid": vm.hypervisor_pid,
            "process_not_read": vm.process_note,
            "not_known_statically": list(vm.not_known_statically),
            "current_differs": dict(vm.current_differs),
        },
        "problems": vm_problems(vm, now_usec),
    }


def inventory_to_json(inv: Inventory, now_usec: int | None = None) -> dict[str, Any]:
    if now_usec is None:
        now_usec = time.time_ns() // 1000
    return {
        "state_dir": sanitise(inv.state_dir),
        "systemd_error": None if inv.systemd_error is None else sanitise(inv.systemd_error),
        "vms": [vm_to_json(vm, now_usec) for vm in inv.vms],
    }
