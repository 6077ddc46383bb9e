"""List every VM of a state dir with unit and link state: the data behind `list` and the table."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from tui.host.links import LinkReader, LinkReadError, LinkTable, read_links
from tui.host.model import ASKING, PENDING, VM, Inventory, UnitState
from tui.host.names import is_valid_name, unit_name
from tui.host.running import attach_processes
from tui.host.safefs import describe
from tui.host.settings import HostSettings
from tui.host.statedir import RunnerCache, read_vm
from tui.host.systemd import (
    HELPERS,
    Systemctl,
    SystemdClient,
    UnitReport,
    unit_states,
    unknown,
)
from tui.host.unitlog import failed_helper_problem

LIST_CACHE_SIZE = 1 << 16  # `list` keeps a parse for every VM it sees


def vm_dirs(state_dir: Path) -> list[Path]:
    """Entries of the state dir that may be VMs. Hidden ones are in-flight temp dirs."""
    entries = []
    with os.scandir(state_dir) as it:
        for entry in it:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir():  # follows symlinks, like `microvm -l`'s `ls`
                    entries.append(Path(entry.path))
            except OSError:
                continue
    return sorted(entries, key=lambda p: p.name)


def _helper_names(vm: VM) -> list[str]:
    return [
        template.format(vm.name)
        for template, program in HELPERS
        if program is None or program in vm.runner_bin
    ]


def ask_units(
    settings: HostSettings, names: list[str], client: SystemdClient | None = None
) -> Future[UnitReport]:
    """Start asking systemd about the units of the VMs called NAMES (every helper template:
    which ones apply is known only once the runners are read), in a thread of its own, so
    systemd answers while the state dirs are read."""
    valid = [n for n in names if is_valid_name(n)]
    mains = [unit_name(n) for n in valid]
    helpers = [template.format(n) for n in valid for template, _ in HELPERS]
    future: Future[UnitReport] = Future()

    def run() -> None:
        try:
            future.set_result(unit_states(client or Systemctl(settings), mains, helpers))
        except BaseException as exc:  # handed to whoever waits for the answer
            future.set_exception(exc)

    threading.Thread(target=run, name="systemd-units", daemon=True).start()
    return future


def attach_units(
    settings: HostSettings,
    vms: list[VM],
    client: SystemdClient | None = None,
    asked: Future[UnitReport] | None = None,
) -> str | None:
    """Fill each VM's unit and helper units (``unit_states``: one list-units, `show` only for
    loaded units that need it); the error, if any. ASKED: an ``ask_units`` under way for
    these VMs; else systemd is asked now, through CLIENT (default: systemctl as SETTINGS
    say)."""
    if asked is None:
        asked = ask_units(settings, [vm.name for vm in vms], client)
    report = asked.result()
    states = report.units
    for vm in vms:
        if not vm.name_valid:
            vm.unit = unknown(unit_name(vm.name), "no unit: the name is not valid")
            continue
        vm.unit = states[unit_name(vm.name)]
        vm.helper_units = [states[h] for h in _helper_names(vm)]
        for helper in vm.helper_units:
            # A failed helper fails the VM's next start ("a dependency job failed") until it
            # is reset: a problem of the VM, whatever the VM's own state.
            if helper.active == "failed":
                vm.problems.append(failed_helper_problem(settings, helper.name, helper.result))
    return report.error


def pending_view(inv: Inventory) -> Inventory:
    """INV as it stands before systemd answered (the app's first look): each VM a copy whose
    unit is PENDING, so finishing the listing later changes nothing the copy's holder sees."""
    vms = [
        dataclasses.replace(
            vm,
            unit=UnitState(name=unit_name(vm.name), active=PENDING, error=ASKING)
            if vm.name_valid
            else unknown(unit_name(vm.name), "no unit: the name is not valid"),
            helper_units=[],
            problems=list(vm.problems),
            interfaces=[dataclasses.replace(i) for i in vm.interfaces],
        )
        for vm in inv.vms
    ]
    return dataclasses.replace(inv, vms=vms)


def attach_links(
    settings: HostSettings, vms: list[VM], reader: LinkReader | None = None
) -> LinkTable | None:
    """Fill each interface's existence and state from one read of the links (READER's, else a
    one-off read); that read, or None when no VM declares an interface."""
    ids = [iface.id for vm in vms for iface in vm.interfaces]
    if not ids:
        return None
    if reader is not None:
        table = reader.read(ids)
    else:
        try:
            table = LinkTable(links=read_links(ids, settings.netns), t=time.monotonic())
        except LinkReadError as exc:
            table = LinkTable(error=str(exc), t=time.monotonic())
    if table.error is not None:
        for vm in vms:
            for iface in vm.interfaces:
                iface.error = table.error
        return table
    links = table.links
    for vm in vms:
        for iface in vm.interfaces:
            link = links.get(iface.id)
            iface.exists = link is not None
            if link is not None:
                iface.oper_state = link.oper_state
    return table


def list_vms(settings: HostSettings, *, units: bool = True, links: bool = True) -> Inventory:
    """One listing; runner parses come from and go to the disk cache when one is set."""
    if settings.cache_dir is None:
        return read_inventory(settings, units=units, links=links)[0]
    from tui.host import parsecache

    runners = RunnerCache(maxsize=LIST_CACHE_SIZE)
    parsecache.load(runners, settings.cache_dir)
    inv = read_inventory(settings, units=units, links=links, runners=runners)[0]
    if inv.error is None:
        parsecache.save(runners, settings.cache_dir)
    return inv


@dataclass
class Listing:
    """A listing under way: the state dirs are read (all but UNREAD), systemd's answer
    (ASKED) may not be in."""

    inv: Inventory
    asked: Future[UnitReport] | None = None
    # State dirs not read yet (a first look that read a screenful only), in name order.
    unread: list[Path] = field(default_factory=list)
    runners: RunnerCache | None = None  # where the reads of UNREAD take their parses


def first_names(dirs: list[Path], count: int, *, from_end: bool = False) -> list[Path]:
    """COUNT of DIRS in the table's order by name (lower case first, as the table sorts):
    the first ones, or with FROM_END the last ones; all of them when there are no more."""
    if len(dirs) <= count:
        return dirs
    ordered = sorted(dirs, key=lambda p: (p.name.lower(), p.name))
    return ordered[-count:] if from_end else ordered[:count]


def _read_dirs(inv: Inventory, dirs: list[Path], runners: RunnerCache | None) -> None:
    for path in dirs:
        try:
            inv.vms.append(read_vm(path, runners))
        except OSError as exc:  # what could not be read, in one line (not a repr)
            vm = VM(name=path.name, path=path)
            vm.problems.append(f"cannot read {describe(exc)}")
            inv.vms.append(vm)
        except Exception as exc:  # one bad VM never hides the others
            vm = VM(name=path.name, path=path)
            vm.problems.append(f"internal error while reading this VM: {exc!r}")
            inv.vms.append(vm)


def start_listing(
    settings: HostSettings,
    *,
    units: bool = True,
    runners: RunnerCache | None = None,
    client: SystemdClient | None = None,
    first: int | None = None,
    from_end: bool = False,
) -> Listing:
    """Read the state dirs, with systemd asked meanwhile (UNITS, through CLIENT: by default
    systemctl); ``finish_listing`` adds the units and the links.

    FIRST: when there are more VMs, read only that many (``first_names``, FROM_END: the last
    ones) and leave the rest in ``unread`` (``read_rest`` reads them), and do not ask systemd
    yet (``ask_listing_units`` does): a big host's first screenful at once, before systemd's
    answer about thousands of units costs its CPU."""
    inv = Inventory(state_dir=settings.state_dir)
    try:
        dirs = vm_dirs(settings.state_dir)
    except FileNotFoundError:
        inv.error = f"the state dir {settings.state_dir} does not exist"
        return Listing(inv)
    except NotADirectoryError:
        inv.error = f"the state dir {settings.state_dir} is not a directory"
        return Listing(inv)
    except OSError as exc:
        inv.error = f"cannot read the state dir {settings.state_dir}: {exc.strerror or exc}"
        return Listing(inv)
    now = dirs if first is None else first_names(dirs, first, from_end=from_end)
    whole = now is dirs
    asked = ask_units(settings, [p.name for p in dirs], client) if units and whole else None
    if runners is not None:
        runners.room_for(len(dirs))
    _read_dirs(inv, now, runners)
    taken = set(now)
    unread = [] if whole else [p for p in dirs if p not in taken]
    inv.unread = len(unread)
    return Listing(inv, asked, unread, runners)


def ask_listing_units(
    settings: HostSettings, listing: Listing, client: SystemdClient | None = None
) -> None:
    """Ask systemd about every VM of LISTING (read or not), unless it was asked already."""
    if listing.asked is None and listing.inv.error is None:
        names = [vm.name for vm in listing.inv.vms] + [p.name for p in listing.unread]
        listing.asked = ask_units(settings, names, client)


def read_rest(listing: Listing) -> None:
    """Read LISTING's unread state dirs; its VMs are then in name order, as a whole read's."""
    if not listing.unread:
        return
    inv = listing.inv
    _read_dirs(inv, listing.unread, listing.runners)
    listing.unread = []
    inv.unread = 0
    inv.vms.sort(key=lambda vm: vm.name)


def finish_listing(
    settings: HostSettings,
    listing: Listing,
    *,
    links: bool = True,
    link_reader: LinkReader | None = None,
) -> tuple[Inventory, LinkTable | None]:
    """LISTING with systemd's answer waited for and attached, and the links read (with
    LINK_READER); also that read of the links (None: none made)."""
    read_rest(listing)
    inv = listing.inv
    if inv.error is not None:
        return inv, None
    if listing.asked is not None:
        inv.systemd_error = attach_units(settings, inv.vms, asked=listing.asked)
        inv.systemd_note = listing.asked.result().note
        attach_processes(inv.vms)  # a running VM's facts: from its process, not the script
    return inv, (finish_links(settings, inv, link_reader) if links else None)


def finish_links(
    settings: HostSettings, inv: Inventory, link_reader: LinkReader | None = None
) -> LinkTable:
    """The links of INV's VMs read (with LINK_READER) and attached, a missing one of a running
    VM noted as its problem; that read of the links, for the sampler."""
    table = attach_links(settings, inv.vms, link_reader)
    for vm in inv.vms:
        for iface in vm.interfaces:
            if iface.exists is False and vm.unit is not None and vm.unit.active == "active":
                vm.problems.append(f"interface {iface.id} is declared but missing on the host")
    return table


def read_inventory(
    settings: HostSettings,
    *,
    units: bool = True,
    links: bool = True,
    runners: RunnerCache | None = None,
    link_reader: LinkReader | None = None,
) -> tuple[Inventory, LinkTable | None]:
    """``list_vms`` for the monitor: runner parses reused from RUNNERS, the links read with
    LINK_READER; also that read of the links (None: none made), for the sampler."""
    listing = start_listing(settings, units=units, runners=runners)
    return finish_listing(settings, listing, links=links, link_reader=link_reader)
