"""Every key binding the app has, read from the bindings themselves (with the user's keymap).

The help screen and the command palette both list what this returns, so neither can drift
from the real bindings. Only our bindings (those with an id, which the config file's [keys]
table remaps) are listed: Textual's generic ones (an input's ~40 text-editing keys, the
table's cursor keys) would bury them; the moves a user needs are one line per screen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from textual.app import App
from textual.binding import Binding, BindingsMap
from textual.dom import DOMNode

# Where a binding lives -> the screen the help shows it under, in this order.
SECTIONS = {
    "MicroVMApp": "Monitor",
    "MainScreen": "Monitor",
    "VMTable": "Monitor",
    "DetailPane": "Monitor",
    "FilterBar": "Filter line",
    "JobsScreen": "Jobs panel",
    "LogsScreen": "Logs view",
}
SECTION_ORDER = ("Monitor", "Filter line", "Jobs panel", "Logs view", "Console")

# Keys that are not bindings (the console pane reads keys itself; DataTable's cursor keys):
# (section, keys, description). The console's detach key comes from the settings.
FIXED_KEYS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Monitor", ("↑", "↓", "pgup", "pgdn"), "Move in the table (or click a row)"),
    ("Jobs panel", ("↑", "↓"), "Select a job"),
    ("Console", ("shift+pgup", "shift+pgdn"), "Scroll back / forward (or the mouse wheel)"),
    ("Console", ("ctrl+f",), "Search the scrollback (Enter: older match, Esc: close)"),
    ("Console", ("t",), "Take over a stdio console (offered in the pane; asks first)"),
    ("Console", ("drag",), "Select with the mouse to copy (OSC 52: works over SSH)"),
)
DETACH_DESCRIPTION = "Back to the monitor (the connection stays open)"


@dataclass(frozen=True)
class BindingInfo:
    section: str
    keys: tuple[str, ...]  # as shown to the user, e.g. ("ctrl+p",) or ("/",)
    description: str
    action: str
    id: str | None
    node: DOMNode | None  # None: a key of another screen, or not a binding


# A binding with where it was declared: its identity (its id; without one,
# "DeclaringClass.action", which no id of ours looks like) and the binding.
Scoped = tuple[str, Binding]


def class_bindings(cls: type) -> list[Scoped]:
    """CLS's bindings, its own and inherited (``BINDINGS`` along the MRO, as Textual merges
    them), one per key."""
    out: list[Scoped] = []
    for klass in reversed(cls.__mro__):
        declared = klass.__dict__.get("BINDINGS")
        if declared:
            out += [
                (b.id or f"{klass.__name__}.{b.action}", b) for b in Binding.make_bindings(declared)
            ]
    return out


def bindings_map(cls: type) -> BindingsMap:
    """CLS's bindings as Textual merges them for a new instance: along the MRO, a class's
    bindings of a key replace its bases' ones. (No class whose bindings are read here turns
    ``inherit_bindings`` off.)"""
    keys: dict[str, list[Binding]] = {}
    for klass in reversed(cls.__mro__):
        declared = klass.__dict__.get("BINDINGS")
        if declared:
            keys.update(BindingsMap(declared).key_to_bindings)
    return BindingsMap.from_keys(keys)


def keymap_of(app: App) -> Mapping[str, str]:
    """The user's keymap (binding id -> keys) the app applied with ``App.set_keymap``: the
    settings' ``[keys]`` table."""
    settings = getattr(app, "settings", None)
    return getattr(settings, "keymap", None) or {}


def _section(node: DOMNode | type) -> str:
    cls = node if isinstance(node, type) else type(node)
    for klass in cls.__mro__:
        if klass.__name__ in SECTIONS:
            return SECTIONS[klass.__name__]
    return cls.__name__


def collect(app: App, nodes: list[DOMNode] | None = None) -> list[BindingInfo]:
    """Our bindings (with an id) of the app, its default screen and the screen's widgets,
    keymap applied. System bindings and bindings without a description are left out."""
    if nodes is None:
        screen = app.screen_stack[0] if app.screen_stack else app.screen
        nodes = [app, screen, *screen.walk_children()]
    seen_classes: set[type] = set()
    out: dict[tuple[str, str], BindingInfo] = {}
    for node in nodes:
        if type(node) in seen_classes:
            continue
        seen_classes.add(type(node))
        _add(out, app, bindings_map(type(node)), _section(node), node)
    return _ordered(out.values())


def collect_for_help(app: App) -> list[BindingInfo]:
    """What the help screen lists: the monitor's bindings, the jobs panel's, the logs view's,
    the console's keys and the moves, grouped by screen."""
    from tui.screens.jobs import JobsScreen
    from tui.screens.logs import LogsScreen

    out: dict[tuple[str, str], BindingInfo] = {(b.section, b.action): b for b in collect(app)}
    _add(out, app, bindings_map(JobsScreen), "Jobs panel", None)
    _add(out, app, bindings_map(LogsScreen), "Logs view", None)
    settings = getattr(app, "settings", None)
    detach = getattr(settings, "console_detach_key", None) or "ctrl+]"
    fixed = [("Console", (detach,), DETACH_DESCRIPTION), *FIXED_KEYS]
    for section, keys, description in fixed:
        out[(section, description)] = BindingInfo(section, keys, description, "", None, None)
    return _ordered(out.values())


def _add(
    out: dict[tuple[str, str], BindingInfo],
    app: App,
    bindings: BindingsMap,
    section: str,
    node: DOMNode | None,
) -> None:
    keymap = keymap_of(app)
    if keymap:
        bindings = bindings.copy()
        bindings.apply_keymap(keymap)
    for key, binding in bindings:
        if not binding.description or binding.system or not binding.id:
            continue
        display = _key_display(app, binding, key)
        ident = (section, binding.action)
        if ident in out:
            info = out[ident]
            keys = info.keys if display in info.keys else (*info.keys, display)
            out[ident] = BindingInfo(
                section, keys, info.description, info.action, info.id or binding.id, info.node
            )
        else:
            out[ident] = BindingInfo(
                section, (display,), binding.description, binding.action, binding.id, node
            )


def _ordered(infos: object) -> list[BindingInfo]:
    order = list(SECTION_ORDER)
    return sorted(
        infos,  # type: ignore[arg-type]
        key=lambda b: (order.index(b.section) if b.section in order else len(order), b.section),
    )


def _key_display(app: App, binding: Binding, key: str) -> str:
    if binding.key_display and binding.key == key:
        return binding.key_display
    return app.get_key_display(binding.with_key(key, key_display=None))
