"""Firecracker command lines and config files (lib/runners/firecracker.nix).

The command line only names the API socket and a JSON ``--config-file`` in the Nix store;
vCPUs, memory, drives, NICs and vsock live in that file. ``parse`` reads the command line and
``apply_firecracker_config`` adds what the JSON says, so the caller decides how (and whether)
to read a file.
"""

from __future__ import annotations

import json
from typing import Any

from tui.host.model import NicSpec, RunnerSpec, SerialSpec, VolumeSpec
from tui.host.runners._options import (
    OptionTable,
    basename,
    is_store_disk,
    iter_options,
    names,
    not_understood,
    short,
    shown,
)

FIRECRACKER_OPTIONS = OptionTable(
    program="firecracker",
    flags=names(
        """--enable-pci --no-api --no-seccomp --boot-timer --show-level --show-log-origin
        --version --help -h --snapshot-version"""
    ),
    single=names(
        """--config-file --api-sock --id --log-path --level --module --metadata
        --seccomp-filter --http-api-max-payload-size --mmds-size-limit --start-time-us
        --start-time-cpu-us --parent-cpu-time-us --describe-snapshot"""
    ),
    long_equals=True,
)


def parse(argv: list[str]) -> RunnerSpec:
    # Firecracker's serial console is its own stdout, which systemd sends to the journal.
    spec = RunnerSpec(hypervisor="firecracker", serial=SerialSpec(kind="stdio"))
    if not argv:
        spec.problems.append("the runner's command line is empty")
        return spec
    spec.binary = argv[0]
    if basename(argv[0]) != "firecracker":
        spec.problems.append(
            f"the runner starts '{short(basename(argv[0]))}', which does not look like firecracker"
        )
    no_api = False
    for option, values in iter_options(argv[1:], FIRECRACKER_OPTIONS, spec.problems):
        value = values[0] if values else ""
        match option:
            case "":
                spec.problems.append(not_understood("firecracker", value))
            case "--config-file":
                spec.config_file = value
            case "--api-sock":
                spec.socket = value
            case "--no-api":
                no_api = True
    if no_api:
        spec.socket = None
    if spec.config_file is None:
        spec.problems.append("the firecracker command line has no --config-file")
    return spec


# --- the JSON config -----------------------------------------------------------------------


def _number(section: dict[str, Any], key: str, where: str, problems: list[str]) -> int | None:
    value = section.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    problems.append(f"the firecracker config's {where}.{key} is not a positive number")
    return None


def _machine(config: dict[str, Any], spec: RunnerSpec) -> None:
    machine = config.get("machine-config")
    if not isinstance(machine, dict):
        spec.problems.append("the firecracker config has no machine-config section")
        return
    spec.vcpu = _number(machine, "vcpu_count", "machine-config", spec.problems)
    spec.mem_mib = _number(machine, "mem_size_mib", "machine-config", spec.problems)


def _list(config: dict[str, Any], key: str, problems: list[str]) -> list[dict[str, Any]]:
    value = config.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
        problems.append(f"the firecracker config's {key} is not a list of objects")
        return []
    return value


def _drives(config: dict[str, Any], spec: RunnerSpec) -> None:
    for drive in _list(config, "drives", spec.problems):
        path = drive.get("path_on_host")
        if not isinstance(path, str) or not path:
            spec.problems.append(
                f"the firecracker drive '{short(str(drive.get('drive_id')))}' has no path_on_host"
            )
            continue
        if drive.get("drive_id") == "store" or is_store_disk(path):
            continue  # the guest's /nix/store image, not a volume
        read_only = drive.get("is_read_only")
        spec.volumes.append(
            VolumeSpec(image=path, read_only=read_only if isinstance(read_only, bool) else False)
        )


def _interfaces(config: dict[str, Any], spec: RunnerSpec) -> None:
    for interface in _list(config, "network-interfaces", spec.problems):
        name = interface.get("host_dev_name") or interface.get("iface_id")
        if not isinstance(name, str):
            spec.problems.append("a firecracker network interface has no host_dev_name")
            continue
        mac = interface.get("guest_mac")
        spec.nics.append(NicSpec(id=name, type="tap", mac=mac if isinstance(mac, str) else None))


def _vsock(config: dict[str, Any], spec: RunnerSpec) -> None:
    vsock = config.get("vsock")
    if vsock is None:
        return
    cid = vsock.get("guest_cid") if isinstance(vsock, dict) else None
    if isinstance(cid, int) and not isinstance(cid, bool) and cid > 2:
        spec.vsock_cid = cid
    else:
        spec.problems.append("the firecracker config's vsock.guest_cid is not a usable CID")


def apply_firecracker_config(spec: RunnerSpec, json_text: str) -> RunnerSpec:
    """Fill vcpu, memory, volumes, NICs, vsock and balloon from a Firecracker JSON config.

    Never raises: bad JSON or odd values become problems. Returns ``spec`` (changed in place).
    """
    name = shown(spec.config_file or "the firecracker config file")
    try:
        config = json.loads(json_text)
    except (ValueError, RecursionError) as e:
        spec.problems.append(f"{name} is not valid JSON: {short(str(e), 120)}")
        return spec
    if not isinstance(config, dict):
        spec.problems.append(f"{name} does not hold a JSON object")
        return spec
    _machine(config, spec)
    spec.volumes = []
    spec.nics = []
    _drives(config, spec)
    _interfaces(config, spec)
    _vsock(config, spec)
    spec.balloon = config.get("balloon") is not None
    return spec
