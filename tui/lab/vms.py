"""The lab's VMs: one per state an admin meets on a real host, plus optional extra running ones."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

# Kernel parameter that makes `db`'s second build differ from the one it booted.
STALE_PARAM = "lab.generation=2"
# Kernel parameter that makes a guest print journal lines of three priorities every N seconds.
TICK_PARAM = "lab.tick=4"
# The link macvtaps sit on, inside the lab's namespace (see netns.ensure_uplink).
UPLINK = "uplink0"


@dataclass(frozen=True)
class VmSpec:
    name: str
    # running: started by `up`; idle: installed, stopped; broken: dangling `current`;
    # crashy: started, its microvm-run fails after a second, so systemd keeps restarting it.
    role: str = "running"
    mem: int = 160
    vcpu: int = 1
    balloon: bool = False
    tap: bool = False
    macvtap: bool = False  # on the lab netns' uplink (a dummy, or a veth pair inside the netns)
    share: bool = False
    guest_journal: bool = False  # a share of STATE/NAME/journal on /var/log/journal (FAQ)
    volume: bool = False
    serial_socket: bool = False  # interactive serial on NAME-console.sock instead of stdio
    stale: bool = False  # booted on generation 1, `current` swapped to generation 2
    declarative: bool = False  # `toplevel` link, no `flake` file (like install-microvm-NAME)
    kernel_params: tuple[str, ...] = field(default_factory=tuple)

    @property
    def autostart(self) -> bool:
        return self.role in ("running", "crashy")

    @property
    def tap_id(self) -> str:
        return f"vm-{self.name}"[:15]

    @property
    def macvtap_id(self) -> str:
        return f"vmm-{self.name}"[:15]

    @property
    def mac(self) -> str:
        return _mac(self.name)

    @property
    def socket(self) -> str:
        return f"{self.name}.sock"

    @property
    def console_socket(self) -> str:
        return f"{self.name}-console.sock"


def _mac(seed: str) -> str:
    h = hashlib.sha256(seed.encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in h[:5])


def macvtap_index(root: Path, name: str) -> int:
    """An ifindex for the macvtap, unique across labs: its character device is /dev/tapIFINDEX
    in the machine-wide devtmpfs."""
    h = int(hashlib.sha256(f"{root}\0{name}".encode()).hexdigest()[:8], 16)
    return 10_000 + h % 1_000_000


def default_vms(extra_running: int = 0) -> list[VmSpec]:
    vms = [
        VmSpec("web", mem=256, balloon=True, tap=True, share=True, volume=True, guest_journal=True),
        # db's guest prints err/warning/info lines on its serial console every few seconds.
        VmSpec("db", mem=192, balloon=True, stale=True, kernel_params=(TICK_PARAM,)),
        VmSpec("decl", mem=160, vcpu=2, tap=True, declarative=True),
        VmSpec("console", mem=128, serial_socket=True, tap=True, macvtap=True),
        VmSpec("crashy", role="crashy", mem=128),
        VmSpec("idle", role="idle", mem=128, tap=True),
        VmSpec("broken", role="broken", mem=128),
    ]
    vms += [VmSpec(f"vm{i:02d}", mem=128) for i in range(1, extra_running + 1)]
    return vms


def guest_journal_source(root: Path, name: str) -> Path:
    """Where the FAQ puts a guest's journal share: /var/lib/microvms/NAME/journal."""
    return root / "microvms" / name / "journal"


def vm_config(spec: VmSpec, root: Path, generation: int = 1) -> dict:
    """The VM's `microvm` options as the lab's flake reads them from vms.json (named like
    microvm.nix's options)."""
    params = ["microvm.hostname=" + spec.name, *spec.kernel_params]
    if spec.stale and generation >= 2:
        params.append(STALE_PARAM)
    extra_args: list[str] = []
    if spec.serial_socket:
        # What a user adds with `microvm.qemu.extraArgs` (and `serialConsole = false`).
        params.append("console=ttyS0")
        extra_args = [
            "-chardev",
            f"socket,id=console,path={spec.console_socket},server=on,wait=off",
            "-serial",
            "chardev:console",
        ]
    interfaces: list[dict] = []
    if spec.tap:
        interfaces.append({"type": "tap", "id": spec.tap_id, "mac": spec.mac})
    if spec.macvtap:
        interfaces.append(
            {
                "type": "macvtap",
                "id": spec.macvtap_id,
                "mac": _mac(spec.name + "/macvtap"),
                "macvtap": {
                    "link": UPLINK,
                    "mode": "bridge",
                    "index": macvtap_index(root, spec.name),
                },
            }
        )
    shares: list[dict] = []
    if spec.share:
        shares.append(
            {
                "proto": "9p",
                "tag": "shared",
                "source": str(root / "shares" / spec.name),
                "mountPoint": "/shared",
                "securityModel": "none",
                "readOnly": False,
                "socket": None,
            }
        )
    if spec.guest_journal:
        # The FAQ's journal share (virtiofs there; 9p here, no virtiofsd in the lab).
        shares.append(
            {
                "proto": "9p",
                "tag": "journal",
                "source": str(guest_journal_source(root, spec.name)),
                "mountPoint": "/var/log/journal",
                "securityModel": "none",
                "readOnly": False,
                "socket": None,
            }
        )
    return {
        "hostName": spec.name,
        "hypervisor": "qemu",
        "vcpu": spec.vcpu,
        "mem": spec.mem,
        "balloon": spec.balloon,
        "deflateOnOOM": False,
        "socket": spec.socket,
        # Under TCG (nested KVM hangs here): an explicit cpu model and accel=tcg.
        "cpu": "max",
        "qemu": {
            "machine": "q35",
            "machineOpts": {"accel": "tcg", "acpi": "on", "mem-merge": "on"},
            "serialConsole": not spec.serial_socket,
            "extraArgs": extra_args,
        },
        "kernelParams": params,
        # crashy: qemu is pointed at a kernel that does not exist, after a second of preStart.
        "kernelPath": "/var/empty/microvm-lab-missing/bzImage" if spec.role == "crashy" else None,
        "preStart": "sleep 1" if spec.role == "crashy" else "",
        "volumes": (
            [
                {
                    "image": f"{spec.name}-data.img",
                    "size": 32,
                    "fsType": "ext4",
                    "label": "data",
                    "autoCreate": True,
                    "readOnly": False,
                    "direct": False,
                    "serial": None,
                    "mountPoint": "/data",
                }
            ]
            if spec.volume
            else []
        ),
        "shares": shares,
        "interfaces": interfaces,
        "generation": generation if spec.stale else 1,
    }
