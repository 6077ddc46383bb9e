"""``parse_runner``: the parser for each microvm.nix hypervisor, chosen by name.

``parse_runner`` is the entry point: it takes the script text and the hypervisor name and
returns a RunnerSpec, never raising; anything it cannot read is a sentence in
``spec.problems``. Nothing here runs a program or imports Textual.
"""

from __future__ import annotations

from collections.abc import Callable

from tui.host.model import RunnerSpec
from tui.host.runners import (
    alioth,
    cloud_hypervisor,
    crosvm,
    firecracker,
    kvmtool,
    qemu,
    stratovirt,
    vfkit,
)
from tui.host.runners._options import short, shown
from tui.host.runners.firecracker import apply_firecracker_config
from tui.host.runners.runscript import (
    extract_command,  # noqa: F401  (re-exported by tui.host.runners)
    extract_exec,
    extract_fd_links,
)
from tui.host.runners.shellwords import RunnerParseError

ConfigReader = Callable[[str], str]

PARSERS: dict[str, Callable[[list[str]], RunnerSpec]] = {
    "qemu": qemu.parse,
    "cloud-hypervisor": cloud_hypervisor.parse,
    "firecracker": firecracker.parse,
    "crosvm": crosvm.parse,
    "kvmtool": kvmtool.parse,
    "stratovirt": stratovirt.parse,
    "alioth": alioth.parse,
    "vfkit": vfkit.parse,
}


def _name_fd_nics(spec: RunnerSpec, script_text: str) -> None:
    """Give macvtap NICs known only as ``fd:N`` the interface name the script opened N on."""
    if not any(nic.id.startswith("fd:") for nic in spec.nics):
        return
    links = extract_fd_links(script_text)
    for nic in spec.nics:
        fd = nic.id[len("fd:") :]
        if nic.id.startswith("fd:") and fd.isdigit() and int(fd) in links:
            nic.id = links[int(fd)]


def _read_firecracker_config(spec: RunnerSpec, config_reader: ConfigReader) -> None:
    if spec.config_file is None:
        return
    try:
        text = config_reader(spec.config_file)
    except (OSError, ValueError) as e:  # ValueError covers undecodable bytes
        reason = getattr(e, "strerror", None) or str(e)
        spec.problems.append(
            f"could not read the firecracker config {shown(spec.config_file)}: {shown(reason)}"
        )
        return
    apply_firecracker_config(spec, text)


def _say_unknowns(spec: RunnerSpec, unknowns: list[str]) -> None:
    """Record what only a run can tell; a value the parser could not read because it is a
    variable is such an unknown, not a problem of the runner."""
    spec.not_known_statically = list(unknowns)
    variables = [u for u in unknowns if u.startswith(("$", "`"))]
    if variables:
        spec.problems = [p for p in spec.problems if not any(v in p for v in variables)]


def parse_runner(
    script_text: str, hypervisor: str, config_reader: ConfigReader | None = None
) -> RunnerSpec:
    """Parse a microvm-run script for ``hypervisor`` (a name from model.HYPERVISORS).

    ``config_reader`` (path -> text, may raise OSError) is used to read firecracker's JSON
    config; without it the firecracker fields held there stay unknown. Never raises.
    """
    name = hypervisor.strip() if isinstance(hypervisor, str) else str(hypervisor)
    parser = PARSERS.get(name)
    if parser is None:
        return RunnerSpec(
            hypervisor=name, problems=[f"unknown hypervisor '{short(name)}': fields unknown"]
        )
    try:
        found = extract_exec(script_text)
    except RunnerParseError as e:
        return RunnerSpec(hypervisor=name, problems=[str(e)])
    try:
        spec = parser(found.argv)
        _say_unknowns(spec, found.unknowns)
        _name_fd_nics(spec, script_text)
        if name == "firecracker" and config_reader is not None:
            _read_firecracker_config(spec, config_reader)
    except Exception as e:  # a parser bug must not take the UI down; say so instead
        return RunnerSpec(
            hypervisor=name,
            problems=[f"the {name} runner parser failed ({type(e).__name__}: {e}); please report"],
        )
    return spec
