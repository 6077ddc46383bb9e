"""The config's ``[keys]`` table checked against the app's real bindings, before the app starts.

Textual applies a keymap quietly: an id no binding has is ignored, and a key taken from another
binding drops that binding (``refresh = "q"`` leaves no Quit). Here both are named instead.

A *scope* is a set of bindings active at the same time: a screen, the widgets on it that take
focus (a focused widget's binding shadows the screen's and the app's) and, below a screen that
is not modal, the app's. A keymap *conflict* is a key that, in one scope, the keymap gives to a
remapped binding while another binding there keeps it; pairs that share a key by default (the
help screen's ``q`` closes it rather than quitting) are the design, not a conflict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tui.bindings import Scoped, class_bindings
from tui.keynames import normalize


@dataclass(frozen=True)
class _Bound:
    ident: str  # see ``Scoped``
    has_id: bool
    description: str
    remapped: bool
    default_keys: frozenset[str]
    keys: frozenset[str]  # with the keymap applied


def scopes() -> dict[str, list[Scoped]]:
    """Every scope of the app (see the module's doc) -> its bindings."""
    from textual.widgets import DataTable, Tabs

    from tui.app import MicroVMApp
    from tui.screens.checks import ChecksScreen
    from tui.screens.console import ConsoleScreen
    from tui.screens.fleet import FleetScreen, HostPicker
    from tui.screens.help import HelpScreen
    from tui.screens.jobs import JobsScreen
    from tui.screens.logs import LogsScreen
    from tui.screens.main import MainScreen
    from tui.widgets.detail.pane import DetailPane
    from tui.widgets.filter_bar import FilterBar
    from tui.widgets.jobs_table import JobsTable
    from tui.widgets.log_view import LogView
    from tui.widgets.vm_table import VMTable

    app = class_bindings(MicroVMApp)
    # Above a modal screen only the app's priority bindings still act (Textual's binding chain).
    app_priority = [(i, b) for i, b in app if b.priority]

    def of(*classes: type) -> list[Scoped]:
        return [scoped for cls in classes for scoped in class_bindings(cls)]

    return {
        "the VM list": [*app, *of(MainScreen, VMTable, DetailPane, FilterBar, Tabs)],
        "the jobs panel": [*app_priority, *of(JobsScreen, JobsTable, Tabs)],
        "the help screen": [*app_priority, *of(HelpScreen)],
        "the logs view": [*app, *of(LogsScreen, LogView)],
        "the console": [*app_priority, *of(ConsoleScreen)],
        "the checks screen": [*app_priority, *of(ChecksScreen, DataTable)],
        "the fleet view": [*app, *of(FleetScreen, DataTable, FilterBar)],
        "the host picker": [*app_priority, *of(HostPicker)],
    }


def known_ids(all_scopes: Mapping[str, list[Scoped]]) -> set[str]:
    return {b.id for bindings in all_scopes.values() for _, b in bindings if b.id}


def _bound(bindings: Iterable[Scoped], keymap: Mapping[str, str]) -> list[_Bound]:
    # One entry per binding identity, with every key it has by default and after the keymap.
    keys: dict[str, set[str]] = {}
    described: dict[str, str] = {}
    with_id: set[str] = set()
    for ident, b in bindings:
        if b.id:
            with_id.add(ident)
        keys.setdefault(ident, set()).add(normalize(b.key))
        if b.description:
            described.setdefault(ident, b.description)
    out = []
    for ident, default in keys.items():
        remapped = ident in with_id and ident in keymap
        after = {normalize(k) for k in keymap[ident].split(",")} if remapped else default
        out.append(
            _Bound(
                ident,
                ident in with_id,
                described.get(ident, ident),
                remapped,
                frozenset(default),
                frozenset(after),
            )
        )
    return out


def keymap_problems(
    keymap: Mapping[str, str], all_scopes: Mapping[str, list[Scoped]] | None = None
) -> list[str]:
    """What is wrong with KEYMAP (binding id -> Textual key list): one sentence per problem."""
    if not keymap:
        return []
    all_scopes = scopes() if all_scopes is None else all_scopes
    problems: list[str] = []
    known = known_ids(all_scopes)
    unknown = sorted(set(keymap) - known)
    if unknown:
        problems.append(
            "[keys] "
            + ", ".join(unknown)
            + ": no binding has "
            + ("this id" if len(unknown) == 1 else "these ids")
            + " (the ids: "
            + ", ".join(sorted(known))
            + ")"
        )
    for scope, bindings in all_scopes.items():
        bound = _bound(bindings, keymap)
        for moved in (b for b in bound if b.remapped):
            for key in sorted(moved.keys):
                others = [
                    other
                    for other in bound
                    if other is not moved
                    and key in other.keys
                    and not (key in moved.default_keys and key in other.default_keys)
                ]
                if others:
                    names = (
                        f"{o.description} ({o.ident})" if o.has_id else o.description
                        for o in others
                    )
                    taken = ", ".join(dict.fromkeys(names))
                    problems.append(
                        f'[keys] {moved.ident} = "{keymap[moved.ident]}": {key} is also '
                        f"{taken} on {scope}"
                    )
    return problems
