"""THE list of the app's actions: every key binding, palette entry, help line, read-only rule,
refusal and confirmation of an action derives from its ``ActionSpec`` here.

An action id (``ActionId``) is also its binding id, so the config's ``[keys]`` table remaps it
by that name; the ids of host-changing actions are the names the job runner knows
(``tui.host.actions.operations.ACTIONS``). No other module spells an id as a string
(tests/test_action_registry.py checks).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from enum import Enum, StrEnum

from textual.actions import parse
from textual.binding import Binding

from tui.actions import dialogs
from tui.actions.dialogs import Dialog
from tui.widgets.detail.pane import TAB_IDS


class ActionId(StrEnum):
    QUIT = "quit"
    HELP = "help"
    REFRESH = "refresh"
    CONSOLE = "console"
    LOGS = "logs"
    START = "start"
    STOP = "stop"
    RESTART = "restart"
    UPDATE = "update"
    ROLLBACK = "rollback"
    DEPLOY = "deploy"
    CREATE = "create"
    FORCE_STOP = "force-stop"
    DELETE = "delete"
    JOBS = "jobs"
    HOSTS = "host_switcher"
    CHECKS = "checks"
    COMMAND_PALETTE = "command_palette"
    FILTER = "filter"
    SORT = "sort"
    SORT_REVERSE = "sort_reverse"
    TOGGLE_DETAIL = "toggle_detail"
    NEXT_TAB = "next_tab"
    PREV_TAB = "prev_tab"
    CLEAR_FILTER = "clear_filter"
    MARK = "mark"
    MARK_SHOWN = "mark_shown"
    CLEAR_MARKS = "clear_marks"
    # and one "tab_TAB" per detail tab (tab_id), made from the detail pane's list of tabs


class Scope(Enum):
    """Where an action's binding lives (and so which screens it acts on)."""

    APP = "app"  # the App: the monitor, and (priority bindings only) above modal screens
    MAIN = "main"  # the monitor's screen (MainScreen)


class Needs(Enum):
    """What the selected VM must have before an action is even offered (else: refused, with
    the reason, before any dialog)."""

    IMPERATIVE = "imperative"  # not managed fully declaratively (no 'toplevel' link)
    FLAKE = "flake"  # a 'flake' file to rebuild from
    OLD = "old"  # an 'old' runner to roll back to
    RUNNER = "runner"  # a usable 'current' runner


@dataclass(frozen=True)
class ActionSpec:
    id: str  # an ActionId (or tab_id): the binding id [keys] remaps, the job runner's name
    _: KW_ONLY
    label: str  # a verb, capitalised: the dialog's button, "Label: not done"
    description: str  # the footer's and the help screen's words
    keys: str  # the default key(s), Textual's comma-separated names
    help: str  # one sentence: the tooltip, the palette's help line
    method: str  # the Textual action the binding runs (on the scope's node)
    key_display: str | None = None
    scope: Scope = Scope.APP
    changes_host: bool = False  # off in read-only mode (shown disabled; asking says why)
    needs_vm: bool = False  # acts on the selected VM
    new_vm: bool = False  # makes a VM, on the host shown: refused where no one host is (the fleet)
    typed_name: bool = False  # destructive: the VM's name must be typed to confirm
    in_footer: bool = True
    priority: bool = False
    bulk: bool = False  # with VMs marked, applies to the marked VMs (one confirmation)
    needs: frozenset[Needs] = frozenset()
    past: str = ""  # "updated": the declarative refusal's word (with Needs.IMPERATIVE)
    offers_restart: bool = False  # a success that leaves an older runner running offers one
    dialog: Dialog | None = None  # its confirmation (changes_host and needs_vm)

    @property
    def method_name(self) -> str:
        """``vm_action('start')`` -> ``vm_action``: what ``check_action`` is asked about."""
        return parse(self.method)[1]

    def binding(self, tooltip: str | None = None) -> Binding:
        return Binding(
            self.keys,
            self.method,
            self.description,
            show=self.in_footer,
            key_display=self.key_display,
            priority=self.priority,
            tooltip=self.help if tooltip is None else tooltip,
            id=str(self.id),
        )


def tab_id(tab: str) -> str:
    """The id of the key that opens the detail tab TAB ("tab_network")."""
    return f"tab_{tab}"


def _on_vm(ident: ActionId) -> str:
    """The Textual action of a host-changing action on the selected VM
    (``ActionsAppMixin.action_vm_action``)."""
    return f"vm_action({ident.value!r})"


# In each scope's binding order (the footer shows them so). Keys are chosen not to clash with the
# main screen's / (filter), s / S (sort), d (detail), [ ] and digits (tabs), space / a / A
# (marks): start is t ("sTart"), stop T, deploy P ("Prebuilt").
ACTIONS: dict[str, ActionSpec] = {
    spec.id: spec
    for spec in (
        ActionSpec(
            ActionId.QUIT,
            label="Quit",
            description="Quit",
            keys="q",
            help="Leave the app",
            method="quit",
        ),
        ActionSpec(
            ActionId.HELP,
            label="Help",
            description="Help",
            keys="question_mark",
            key_display="?",
            help="Every key, by screen",
            method="help",
        ),
        ActionSpec(
            ActionId.REFRESH,
            label="Refresh",
            description="Refresh",
            keys="r",
            help="Poll the host now",
            method="refresh",
        ),
        ActionSpec(
            ActionId.CONSOLE,
            label="Console",
            description="Console",
            keys="c",
            help="The selected VM's console",
            method="console",
        ),
        ActionSpec(
            ActionId.LOGS,
            label="Logs",
            description="Logs",
            keys="l",
            help="The selected VM's logs",
            method="logs",
        ),
        ActionSpec(
            ActionId.START,
            label="Start",
            description="Start",
            keys="t",
            help="Start the VM (systemctl start microvm@NAME)",
            method=_on_vm(ActionId.START),
            changes_host=True,
            needs_vm=True,
            bulk=True,
            needs=frozenset({Needs.RUNNER}),
            dialog=dialogs.start,
        ),
        ActionSpec(
            ActionId.STOP,
            label="Stop",
            description="Stop",
            keys="T",
            help="Shut the VM down (systemctl stop microvm@NAME)",
            method=_on_vm(ActionId.STOP),
            changes_host=True,
            needs_vm=True,
            bulk=True,
            dialog=dialogs.stop,
        ),
        ActionSpec(
            ActionId.RESTART,
            label="Restart",
            description="Restart",
            keys="R",
            help="Shut the VM down and start it again",
            method=_on_vm(ActionId.RESTART),
            changes_host=True,
            needs_vm=True,
            bulk=True,
            needs=frozenset({Needs.RUNNER}),
            dialog=dialogs.restart,
        ),
        ActionSpec(
            ActionId.UPDATE,
            label="Update",
            description="Update",
            keys="u",
            help="Rebuild the VM's runner from its flake",
            method=_on_vm(ActionId.UPDATE),
            changes_host=True,
            needs_vm=True,
            bulk=True,
            needs=frozenset({Needs.IMPERATIVE, Needs.FLAKE}),
            past="updated",
            offers_restart=True,
            dialog=dialogs.update,
        ),
        ActionSpec(
            ActionId.ROLLBACK,
            label="Rollback",
            description="Rollback",
            keys="b",
            help="Swap the 'current' and 'old' runners",
            method=_on_vm(ActionId.ROLLBACK),
            changes_host=True,
            needs_vm=True,
            bulk=True,
            needs=frozenset({Needs.IMPERATIVE, Needs.OLD}),
            past="rolled back",
            offers_restart=True,
            dialog=dialogs.rollback,
        ),
        # Its dialog asks for a store path (``tui.screens.deploy``); ``dialogs.deploy`` says
        # where the runner comes from.
        ActionSpec(
            ActionId.DEPLOY,
            label="Deploy",
            description="Deploy",
            keys="P",
            help="Install a prebuilt runner from the binary cache ([deploy])",
            method=_on_vm(ActionId.DEPLOY),
            changes_host=True,
            needs_vm=True,
            bulk=True,
            needs=frozenset({Needs.IMPERATIVE}),
            past="deployed",
            offers_restart=True,
            in_footer=False,  # the footer is full at 80 columns; the help screen lists it
            dialog=dialogs.deploy,
        ),
        ActionSpec(
            ActionId.CREATE,
            label="Create",
            description="New VM",
            keys="n",
            help="Build and install a new VM",
            method="create_vm",
            changes_host=True,
            new_vm=True,
        ),
        # Destructive: in the help screen and the palette, not the footer.
        ActionSpec(
            ActionId.FORCE_STOP,
            label="Force stop",
            description="Force stop",
            keys="K",
            help="Kill the VM's processes (SIGKILL)",
            method=_on_vm(ActionId.FORCE_STOP),
            changes_host=True,
            needs_vm=True,
            typed_name=True,
            in_footer=False,
            dialog=dialogs.force_stop,
        ),
        ActionSpec(
            ActionId.DELETE,
            label="Delete",
            description="Delete",
            keys="D",
            help="Stop the VM and remove its state dir",
            method=_on_vm(ActionId.DELETE),
            changes_host=True,
            needs_vm=True,
            typed_name=True,
            in_footer=False,
            needs=frozenset({Needs.IMPERATIVE}),
            past="deleted",
            dialog=dialogs.delete,
        ),
        ActionSpec(
            ActionId.JOBS,
            label="Jobs",
            description="Jobs",
            keys="j",
            help="The jobs panel: progress, logs, commands",
            method="jobs",
        ),
        ActionSpec(
            ActionId.HOSTS,
            label="Hosts",
            description="Hosts",
            keys="colon",
            key_display=":",
            help="The fleet view (--all-hosts): every host's VMs, and a host to show",
            method="host_switcher",
        ),
        ActionSpec(
            ActionId.CHECKS,
            label="Host checks",
            description="Checks",
            keys="exclamation_mark",
            key_display="!",
            help="The host checks: FAQ problems and leftovers, with the fix and a clean step",
            method="checks",
            in_footer=False,
        ),
        ActionSpec(
            ActionId.COMMAND_PALETTE,
            label="Commands",
            description="Commands",
            keys="ctrl+p",
            help="Search every command",
            method="command_palette",
            priority=True,
            in_footer=False,
        ),
        # The monitor's own moves.
        ActionSpec(
            ActionId.FILTER,
            label="Filter",
            description="Filter",
            keys="slash",
            key_display="/",
            help="Show only the VMs whose name has the text typed",
            method="filter",
            scope=Scope.MAIN,
        ),
        ActionSpec(
            ActionId.SORT,
            label="Sort",
            description="Sort",
            keys="s",
            help="Sort the table by the next column",
            method="sort_next",
            scope=Scope.MAIN,
        ),
        ActionSpec(
            ActionId.SORT_REVERSE,
            label="Reverse sort",
            description="Reverse sort",
            keys="S",
            help="Reverse the table's order",
            method="sort_reverse",
            scope=Scope.MAIN,
            in_footer=False,
        ),
        ActionSpec(
            ActionId.TOGGLE_DETAIL,
            label="Detail",
            description="Detail",
            keys="d",
            help="Show or hide the selected VM's detail",
            method="toggle_detail",
            scope=Scope.MAIN,
        ),
        ActionSpec(
            ActionId.NEXT_TAB,
            label="Next tab",
            description="Next tab",
            keys="right_square_bracket",
            key_display="]",
            help="The detail's next tab",
            method="next_tab",
            scope=Scope.MAIN,
        ),
        ActionSpec(
            ActionId.PREV_TAB,
            label="Previous tab",
            description="Previous tab",
            keys="left_square_bracket",
            key_display="[",
            help="The detail's previous tab",
            method="prev_tab",
            scope=Scope.MAIN,
            in_footer=False,
        ),
        *(
            ActionSpec(
                tab_id(tab),
                label=f"{tab.title()} tab",
                description=f"{tab.title()} tab",
                keys=str(i),
                help=f"The detail's {tab.title()} tab",
                method=f"show_tab({tab!r})",
                scope=Scope.MAIN,
                in_footer=False,
            )
            for i, tab in enumerate(TAB_IDS, 1)
        ),
        # The filter line's own Esc clears while typing; this one clears a kept filter.
        ActionSpec(
            ActionId.CLEAR_FILTER,
            label="Clear filter",
            description="Clear filter",
            keys="escape",
            help="Show every VM again",
            method="clear_filter",
            scope=Scope.MAIN,
            in_footer=False,
        ),
        # Marks: with VMs marked, the bulk actions apply to them (tui/actions/bulk.py).
        ActionSpec(
            ActionId.MARK,
            label="Mark",
            description="Mark",
            keys="space",
            key_display="space",
            help="Mark or unmark the selected VM (the bulk actions apply to the marked VMs)",
            method="toggle_mark",
            scope=Scope.MAIN,
            in_footer=False,
        ),
        ActionSpec(
            ActionId.MARK_SHOWN,
            label="Mark shown",
            description="Mark all",
            keys="a",
            help="Mark every VM the filter shows",
            method="mark_shown",
            scope=Scope.MAIN,
            in_footer=False,
        ),
        ActionSpec(
            ActionId.CLEAR_MARKS,
            label="Clear marks",
            description="Clear marks",
            keys="A",
            help="Unmark every VM",
            method="clear_marks",
            scope=Scope.MAIN,
            in_footer=False,
        ),
    )
}

# What read-only mode turns off, as Textual action names and as binding ids.
CHANGING_METHODS = frozenset(s.method_name for s in ACTIONS.values() if s.changes_host)
CHANGING_IDS = frozenset(str(s.id) for s in ACTIONS.values() if s.changes_host)


def spec_of(ident: str) -> ActionSpec | None:
    """The action whose id (or binding id) is IDENT."""
    return ACTIONS.get(ident)


def spec_for_call(method: str, parameters: tuple[object, ...] = ()) -> ActionSpec | None:
    """The action a Textual action call (``vm_action``, ``("start",)``) belongs to."""
    for spec in ACTIONS.values():
        _target, name, params = parse(spec.method)
        if name == method and tuple(params) == tuple(parameters):
            return spec
    return None


def bindings(scope: Scope) -> list[Binding]:
    """The bindings of SCOPE's node, for its ``BINDINGS``."""
    return [spec.binding() for spec in ACTIONS.values() if spec.scope is scope]
