"""The `list --json` schema (documented in the README). Plain dicts, stable key order."""

from __future__ import annotations

from typing import Any

from tui.host.model import VM, Inventory


def vm_to_json(vm: VM) -> dict[str, Any]:
    unit = vm.unit
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
        "problems": list(vm.problems),
    }


def inventory_to_json(inv: Inventory) -> dict[str, Any]:
    return {
        "state_dir": str(inv.state_dir),
        "systemd_error": inv.systemd_error,
        "vms": [vm_to_json(vm) for vm in inv.vms],
    }
