"""Every key binding the app has, read from the bindings themselves (with the user's keymap).

The help screen and the command palette both list what this returns, so neither can drift
from the real bindings.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode

# Where a binding lives -> the section the help screen shows it in.
SECTIONS = {
    "MicroVMApp": "Global",
    "MainScreen": "Monitor",
    "VMTable": "VM table",
    "FilterBar": "Filter line",
    "Tabs": "Detail tabs",
}


@dataclass(frozen=True)
class BindingInfo:
    section: str
    keys: tuple[str, ...]  # as shown to the user, e.g. ("ctrl+p",) or ("/",)
    description: str
    action: str
    id: str | None
    node: DOMNode


def _section(node: DOMNode) -> str:
    for cls in type(node).__mro__:
        if cls.__name__ in SECTIONS:
            return SECTIONS[cls.__name__]
    return type(node).__name__


def collect(app: App, nodes: list[DOMNode] | None = None) -> list[BindingInfo]:
    """The bindings of the app, its default screen and the screen's widgets, keymap applied.

    Bindings without a description (internal ones) and system bindings are left out.
    """
    if nodes is None:
        screen = app.screen_stack[0] if app.screen_stack else app.screen
        nodes = [app, screen, *screen.walk_children()]
    seen_classes: set[type] = set()
    out: dict[tuple[str, str], BindingInfo] = {}
    keymap = getattr(app, "_keymap", {})
    for node in nodes:
        if type(node) in seen_classes:
            continue
        seen_classes.add(type(node))
        bindings = node._bindings.copy()
        if keymap:
            bindings.apply_keymap(keymap)
        section = _section(node)
        for key, binding in bindings:
            if not binding.description or binding.system:
                continue
            display = _key_display(app, binding, key)
            ident = (section, binding.action)
            if ident in out:
                info = out[ident]
                keys = info.keys if display in info.keys else (*info.keys, display)
                out[ident] = BindingInfo(
                    section, keys, info.description, info.action, info.id or binding.id, node
                )
            else:
                out[ident] = BindingInfo(
                    section, (display,), binding.description, binding.action, binding.id, node
                )
    order = list(SECTIONS.values())
    return sorted(
        out.values(),
        key=lambda b: (order.index(b.section) if b.section in order else len(order), b.section),
    )


def _key_display(app: App, binding: Binding, key: str) -> str:
    if binding.key_display and binding.key == key:
        return binding.key_display
    return app.get_key_display(binding.with_key(key, key_display=None))
