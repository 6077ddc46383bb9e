"""The action registry is the one place an action is spelled: the app's bindings, the
read-only set, the refusals and the dialogs all come from it, and no other UI module names an
action id as a string."""

from __future__ import annotations

import ast
from pathlib import Path

from textual.binding import Binding

from tui.actions import ACTIONS, CHANGING_IDS, CHANGING_METHODS, ActionId, Scope
from tui.app import MicroVMApp
from tui.bindings import bindings_map
from tui.host.actions.jobs import default_actions
from tui.screens.main import MainScreen

TUI = Path(__file__).resolve().parent.parent / "tui"
REGISTRY = TUI / "actions" / "registry.py"
# The host layer may not import the UI (import-linter): the job runner keys its operations by
# the same names (checked below against the registry). The lab is test infrastructure.
# The host layer, the lab, and the agent's job wire: it names the host layer's operations
# (tui/host/actions/operations ACTIONS) that an app may ask an agent to run, not UI actions.
NOT_UI = (TUI / "host", TUI / "lab", TUI / "agent" / "jobwire.py", TUI / "agent" / "agent_jobs.py")
# The same word meaning something else than an action, where it is.
OTHER_MEANINGS = {
    ("actions/dialogs.py", "restart"): "the update's restart-after option",
    ("widgets/vm_state.py", "start"): "a systemd sub-state",
    ("widgets/terminal/keys.py", "delete"): "a key name",
    ("agent/protocol.py", "start"): "the agent protocol's start message",
    ("agent/client.py", "start"): "the agent protocol's start message",
    ("agent/server.py", "start"): "the agent protocol's start message",
    ("cli.py", "checks"): "the CLI's subcommand",
    ("checks_cli.py", "checks"): "the CLI's subcommand",
    ("keynames.py", "delete"): "a key name",
    ("cli.py", "logs"): "the CLI's subcommand",
    ("logs_cli.py", "logs"): "the CLI's subcommand",
    ("config/loader.py", "deploy"): "the config's [deploy] table",
    ("app.py", "jobs"): "a remote source's `jobs` attribute (its agent's job runner)",
    ("agent/fleet_jobs.py", "jobs"): "a remote source's `jobs` attribute (its agent's job runner)",
    ("agent/streams.py", "console"): "the agent's session kinds (`agent console VM`)",
    ("agent/streams.py", "logs"): "the agent's session kinds (`agent logs VM`)",
    ("agent/console_client.py", "console"): "the agent's console session",
    ("agent/logs_client.py", "logs"): "the agent's logs session",
    ("agent/stream_server.py", "console"): "the agent's console session",
}


def _spelled(tree: ast.AST, words: set[str]) -> list[tuple[int, str]]:
    """String constants in WORDS, except a widget's DOM id (``id="start"``)."""
    dom_ids = {
        id(kw.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for kw in node.keywords
        if kw.arg == "id"
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in words
        and id(node) not in dom_ids
    ]


def test_no_ui_module_spells_an_action_id() -> None:
    words = {str(s.id) for s in ACTIONS.values()} | {s.method for s in ACTIONS.values()}
    found = []
    for path in sorted(TUI.rglob("*.py")):
        if path == REGISTRY or any(path.is_relative_to(d) for d in NOT_UI):
            continue
        rel = path.relative_to(TUI).as_posix()
        for line, word in _spelled(ast.parse(path.read_text()), words):
            if (rel, word) not in OTHER_MEANINGS:
                found.append(f"tui/{rel}:{line}: {word!r}")
    assert found == [], "use tui.actions.ActionId / the registry instead"


def test_the_check_sees_a_bare_id() -> None:
    tree = ast.parse('app.actions.request("delete")\nStatic("", id="start")')
    assert _spelled(tree, {"delete", "start"}) == [(1, "delete")]


def test_every_job_runner_operation_is_a_host_changing_action_and_back() -> None:
    """Read-only mode turns off exactly what can reach the job runner (the host layer's own
    list, independent of the registry's flag)."""
    JOB_RUNNER_ACTIONS = default_actions()  # the operations and deploy
    assert set(JOB_RUNNER_ACTIONS) == CHANGING_IDS
    for spec in ACTIONS.values():
        assert spec.changes_host == (spec.id in JOB_RUNNER_ACTIONS), spec.id
        if spec.needs_vm and spec.changes_host:
            assert spec.dialog is not None, spec.id
    assert {"vm_action", "create_vm"} == CHANGING_METHODS


def test_each_scope_binds_its_registry_actions_by_their_ids_in_order() -> None:
    for scope, cls in ((Scope.APP, MicroVMApp), (Scope.MAIN, MainScreen)):
        specs = [s for s in ACTIONS.values() if s.scope is scope]
        ours = [b for b in cls.BINDINGS if isinstance(b, Binding)]
        assert [b.id for b in ours] == [str(s.id) for s in specs], scope
        merged = {b.id: b for _key, b in bindings_map(cls) if b.id}
        for spec in specs:
            b = merged[str(spec.id)]
            assert (b.key, b.action, b.description, b.show, b.key_display) == (
                spec.keys,
                spec.method,
                spec.description,
                spec.in_footer,
                spec.key_display,
            )
    assert {s.scope for s in ACTIONS.values()} == set(Scope)
    assert ActionId("force-stop") is ActionId.FORCE_STOP
