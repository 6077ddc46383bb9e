"""A remote VM's console and logs over real ssh to a real sshd on loopback (the lab's LabSshd,
without the rest of the lab), against FakeSessionAgent (tests/fixtures/agent/fake_sessions.py):
typed bytes go out and come back through the pane; a failing ssh says its reason in one line;
the ssh session ends (by its pid) when the pane closes; a hostile agent (escapes, huge lines,
bad JSON, bad base64, wrong types) on the console or logs channel never crashes the app and
never gets an escape past the sanitiser. The real agent's console and logs: test_remote_lab.py.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.widgets import Static

from tests.conftest import until_in_app, wait_for
from tests.test_fleet_actions import on_fleet_row
from tui.agent.console_client import RemoteConsoleConnection, remote_console_factory
from tui.agent.hosts import RemoteHost
from tui.agent.logs_client import RemoteLogs
from tui.host.console import ConnectionState, ConsoleManager
from tui.host.logs.entry import LogLine
from tui.host.logs.query import LogQuery, vm_units
from tui.host.model import VM
from tui.host.settings import HostSettings
from tui.host.text import is_clean
from tui.lab.sshd import SSH_KEYGEN, LabSshd
from tui.screens.console import ConsoleScreen
from tui.screens.logs import LogsScreen

REPO = Path(__file__).resolve().parent.parent
FAKE = REPO / "tests" / "fixtures" / "agent" / "fake_sessions.py"
VM_WEB = VM(name="web", path=Path("/nonexistent/web"))


@pytest.fixture(scope="module")
def sshd() -> Iterator[LabSshd]:
    from tests.conftest import lab_sshd

    with lab_sshd("streams") as server:
        yield server


def fake_host(sshd: LabSshd, mode: str, ssh: list[str] | None = None) -> RemoteHost:
    return RemoteHost("h", tuple(ssh or sshd.ssh_args()), f"exec {sys.executable} {FAKE} {mode}")


def console(sshd: LabSshd, mode: str, **kw: Any) -> RemoteConsoleConnection:
    kw.setdefault("persist", "no")
    kw.setdefault("backoff_max", 1.0)
    return RemoteConsoleConnection(fake_host(sshd, mode, kw.pop("ssh", None)), VM_WEB, **kw)


class Collector:
    def __init__(self) -> None:
        self.data = bytearray()
        self.statuses: list[Any] = []

    def on_data(self, data: bytes) -> None:
        self.data += data

    def on_status(self, status: Any) -> None:
        self.statuses.append(status)


def one_line_clean(text: str) -> bool:
    return "\n" not in text and is_clean(text)


# --- the console --------------------------------------------------------------------------


def test_typed_bytes_go_to_the_remote_console_and_back(sshd: LabSshd) -> None:
    conn = console(sshd, "echo")
    seen = Collector()
    try:
        token = conn.attach(seen.on_data, seen.on_status).token
        wait_for(lambda: conn.status.interactive, 30, what="the remote console connected")
        assert conn.status.text == "h: connected to /x/console.sock"  # the host named
        wait_for(lambda: b"fake console ready" in seen.data, 10, what="the agent's first bytes")
        assert conn.write(b"echo hi\r")
        wait_for(lambda: b"echo hi\r\n" in seen.data, 10, what="the typed line echoed")
        assert b"echo hi" in conn.buffer()
        pid = conn.ssh_pid
        assert pid is not None
        conn.detach(token)  # the pane closed: ssh, our child, ends by its pid
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), 10, what="the ssh client gone")
        assert conn.ssh_pid is None and conn.sessions == 1
        conn.attach(seen.on_data, seen.on_status)  # a later visit: a new session
        wait_for(lambda: conn.sessions == 2 and conn.status.interactive, 30, what="reattached")
    finally:
        conn.close()
    assert conn.ssh_pid is None and conn.status.state is ConnectionState.CLOSED


def test_a_takeover_confirmed_here_is_asked_of_the_agent(sshd: LabSshd) -> None:
    conn = console(sshd, "takeover")
    seen = Collector()
    try:
        conn.attach(seen.on_data, seen.on_status)
        wait_for(lambda: conn.status.takeover_available, 30, what="the takeover offered")
        assert not conn.status.interactive and conn.discovered is not None
        assert conn.discovered.path == "/x/takeover.sock"  # shown only, never opened here
        assert conn.confirm_takeover()
        wait_for(lambda: conn.status.interactive, 10, what="connected after the takeover")
        assert b"took over" in seen.data
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("mode", "app_read_only", "why"),
    [
        ("echo", True, "the app is read-only"),
        ("echo", "read_only = true in [hosts.h]", "read_only = true in [hosts.h]"),
        ("readonly", False, "the agent runs as nobody (uid 65534), not root"),
    ],
)
def test_a_read_only_side_sends_nothing_and_offers_no_takeover(
    sshd: LabSshd, mode: str, app_read_only: bool | str, why: str
) -> None:
    conn = console(sshd, mode, read_only=app_read_only)
    try:
        conn.attach(lambda _d: None)
        wait_for(lambda: "view only" in conn.status.read_only_reason, 30, what="view only")
        assert conn.status.read_only_reason.startswith(f"h: {why}, view only")
        assert not conn.status.interactive and not conn.write(b"x")
        assert not conn.confirm_takeover()
    finally:
        conn.close()


def test_a_failing_ssh_says_its_reason_in_one_line(sshd: LabSshd, tmp_path: Path) -> None:
    key = tmp_path / "other"
    subprocess.run([str(SSH_KEYGEN), "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    config = tmp_path / "ssh_config"
    config.write_text(sshd.ssh_config.read_text().replace(str(sshd.client_key), str(key)))
    conn = console(sshd, "echo", ssh=["-F", str(config), sshd.alias])
    seen = Collector()
    try:
        conn.attach(seen.on_data, seen.on_status)
        wait_for(lambda: conn.status.state is ConnectionState.RECONNECTING, 30, what="the failure")
        reason = "root@127.0.0.1: Permission denied (publickey)."
        assert conn.status.text == f"h: {reason}; retrying"
        assert conn.status.read_only_reason == reason
        assert one_line_clean(conn.status.text)
        assert f"-- h: {reason} --".encode() in seen.data  # said in the pane too
        wait_for(lambda: conn.sessions >= 2, 30, what="a retry")
    finally:
        conn.close()
    logs = RemoteLogs(fake_host(sshd, "echo", ["-F", str(config), sshd.alias]), persist="no")
    opened = logs.open(VM_WEB, LogQuery(units=vm_units("web")), False, print, print)
    assert opened.status == f"h: {reason}" and opened.following is None


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("huge", "the agent sent a line over 1048576 bytes"),
        ("badjson", "the agent sent not JSON: "),
        ("badbase64", "the agent sent data that is not base64"),
        ("wrongtypes", "the agent sent status.state: not one of connecting, connected"),
        ("deep", "the agent sent a status nested too deeply"),
    ],
)
def test_a_hostile_console_agent_is_one_line_and_retried(
    sshd: LabSshd, mode: str, expected: str
) -> None:
    conn = console(sshd, mode)
    seen = Collector()
    try:
        conn.attach(seen.on_data, seen.on_status)
        wait_for(
            lambda: conn.status.state is ConnectionState.RECONNECTING, 60, what="the session end"
        )
        assert conn.status.read_only_reason.startswith(expected), conn.status
        assert one_line_clean(conn.status.text)
        wait_for(lambda: conn.sessions >= 2, 30, what="a retry")
    finally:
        conn.close()


class ConsoleApp(App[None]):
    def __init__(self, manager: ConsoleManager) -> None:
        super().__init__()
        self.manager = manager

    def on_mount(self) -> None:
        self.push_screen(ConsoleScreen(VM_WEB, HostSettings(), self.manager))


async def test_the_pane_on_a_hostile_console_agent_shows_only_clean_text(sshd: LabSshd) -> None:
    from tui.widgets.terminal import TerminalWidget

    factory = remote_console_factory(fake_host(sshd, "escapes"))
    with ConsoleManager(HostSettings(), factory=factory) as manager:  # type: ignore[arg-type]
        app = ConsoleApp(manager)
        async with app.run_test(size=(120, 30)) as pilot:
            screen = app.screen
            assert isinstance(screen, ConsoleScreen)

            def arrived() -> bool:
                status = screen.console_status
                return status is not None and "following" in status.text

            await until_in_app(pilot, arrived, 30, what="the hostile statuses")
            term = screen.query_one(TerminalWidget)
            rows = [term.render_line(y).text for y in range(term.rows)]
            # The emulator ran the escapes in its own model (the 2J cleared "guest says"):
            # what is left on the screen is plain text.
            assert any("gnp.exe" in row for row in rows), rows
            for text in (
                *rows,
                term.status,
                term.read_only_reason,
                str(screen.query_one("#console-title", Static).content),
                str(screen.query_one("#console-info", Static).content),
            ):
                assert is_clean(text, newlines=True), repr(text)
            assert app.is_running


# --- the logs -------------------------------------------------------------------------------


def remote_logs(sshd: LabSshd, mode: str) -> RemoteLogs:
    return RemoteLogs(fake_host(sshd, mode), persist="no", timeout=60)


def test_remote_logs_first_lines_then_followed(sshd: LabSshd) -> None:
    followed: list[LogLine] = []
    ended: list[str | None] = []
    logs = remote_logs(sshd, "echo")
    query = LogQuery(units=vm_units("web"))
    opened = logs.open(VM_WEB, query, False, followed.extend, ended.append)
    try:
        assert [line.text for line in opened.lines] == ["first", "second"]
        assert opened.status == "" and opened.following is not None
        assert followed == []  # held until the first lines are shown
        opened.following.start()
        wait_for(lambda: [line.text for line in followed] == ["followed"], 10, what="a batch")
    finally:
        assert opened.following is not None
        opened.following.close()
    assert ended == []  # closed by us: no end to report
    pid = opened.following.ssh_pid  # type: ignore[attr-defined]
    assert pid is not None and not Path(f"/proc/{pid}").exists()  # ended by its pid, reaped


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("huge", "h: the agent sent a line over 1048576 bytes"),
        ("badjson", "h: the agent sent not JSON: "),
        ("wrongtypes", "h: the agent sent lines[0].priority: an integer was expected"),
    ],
)
def test_a_hostile_logs_agent_is_one_line(sshd: LabSshd, mode: str, expected: str) -> None:
    opened = remote_logs(sshd, mode).open(
        VM_WEB, LogQuery(units=vm_units("web")), False, print, print
    )
    assert opened.status.startswith(expected), opened.status
    assert one_line_clean(opened.status) and opened.following is None and not opened.lines


class LogsApp(App[None]):
    def __init__(self, source: RemoteLogs) -> None:
        super().__init__()
        self.source = source

    def on_mount(self) -> None:
        self.push_screen(LogsScreen(VM_WEB, HostSettings(), source=self.source))


async def test_the_logs_view_on_a_hostile_agent_shows_only_clean_text(sshd: LabSshd) -> None:
    app = LogsApp(remote_logs(sshd, "escapes"))
    async with app.run_test(size=(140, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, LogsScreen)

        def texts() -> list[str]:
            return [line.text for line in screen.view.entries]

        await until_in_app(pilot, lambda: len(texts()) == 3, 30, what="lines and a batch")
        assert texts()[2].startswith("followed ")
        assert screen.status.startswith("note ")
        for text in (*texts(), screen.status):
            assert one_line_clean(text), repr(text)
        view = screen.view
        for y in range(view.size.height):
            assert is_clean(view.row_text(y)), view.row_text(y)
        await pilot.press("escape")
        assert app.is_running


def test_who_makes_a_remote_console_view_only() -> None:
    from tui.agent.views import remote_view_only
    from tui.config import Settings

    hosts = {"a": RemoteHost("a", ("a",)), "b": RemoteHost("b", ("b",), read_only=True)}
    assert remote_view_only(Settings(hosts=hosts), "a") is None  # the agent decides
    assert remote_view_only(Settings(hosts=hosts), "b") == "read_only = true in [hosts.b]"
    assert remote_view_only(Settings(hosts=hosts, read_only=True), "a") == (
        "started with --read-only"
    )


# --- the agent's side: its checks (run directly, on pipes) -----------------------------------


def agent_session(state_dir: Path, *args: str, stdin: bytes = b"") -> list[dict]:
    import json

    out = subprocess.run(
        [sys.executable, "-m", "tui", "--state-dir", str(state_dir), "agent", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_the_agent_refuses_a_vm_it_does_not_list(tmp_path: Path) -> None:
    (tmp_path / "alpha").mkdir()
    hello, error = agent_session(tmp_path, "console", "beta")
    assert hello["type"] == "hello" and hello["read_only"] is None  # root: not read-only
    assert error == {"type": "error", "message": "no VM beta on this host"}
    assert agent_session(tmp_path, "logs", "../alpha")[1]["message"].startswith("the name '")


def test_the_agent_reads_only_the_vm_own_units(tmp_path: Path) -> None:
    import json

    (tmp_path / "alpha").mkdir()
    query = {"type": "query", "units": ["sshd.service"], "since": "all", "lines": 5}
    messages = agent_session(tmp_path, "logs", "alpha", stdin=json.dumps(query).encode() + b"\n")
    assert messages[-1] == {
        "type": "error",
        "message": "the app sent only the units of alpha are read",
    }


# --- the fleet view (--all-hosts): each VM's console and logs go to its own host ------------


def fleet_app(sshd: LabSshd, here: Path, **changes: Any) -> Any:
    """A fleet of this host ("here", one VM web under HERE) and host "far" (a fake agent that
    says which VM it was asked for), each listing a VM named web."""
    import dataclasses

    from tui.app import MicroVMApp
    from tui.config import Settings
    from tui.feed.fleet import FLEET_REMOTE, FleetSource
    from tui.feed.replay import ReplaySource
    from tui.feed.snapshot import Snapshot
    from tui.host.model import Inventory

    def one(state_dir: Path) -> ReplaySource:
        vms = [VM(name="web", path=state_dir / "web")]
        return ReplaySource([Snapshot(inventory=Inventory(state_dir=state_dir, vms=vms))])

    far = dataclasses.replace(fake_host(sshd, "named"), name="far")
    settings = dataclasses.replace(Settings(interval=3600.0, hosts={"far": far}), **changes)
    source = FleetSource(
        {"here": one(here), "far": one(Path("/srv/far"))}, local="here", interval=3600.0
    )
    return MicroVMApp(settings, source, tty_watch=False, remote=FLEET_REMOTE)


DETACH = "ctrl+right_square_bracket"


async def open_in_fleet(pilot: Any, key: str, press: str, screen_type: type) -> Any:
    from tui.screens.fleet import FleetScreen

    app = pilot.app
    assert isinstance(app.fleet_screen(), FleetScreen)
    await on_fleet_row(pilot, key)
    await pilot.press(press)
    await until_in_app(pilot, lambda: isinstance(app.screen, screen_type), 10, what=f"{key}")
    return app.screen


async def test_the_fleet_view_opens_a_remote_vms_console_and_logs_through_its_agent(
    sshd: LabSshd, tmp_path: Path
) -> None:
    app = fleet_app(sshd, tmp_path)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await open_in_fleet(pilot, "far/web", "c", ConsoleScreen)
        conn = screen.connection
        assert isinstance(conn, RemoteConsoleConnection)
        assert conn.host.name == "far" and conn.name == "web"  # the VM's own name
        await until_in_app(
            pilot, lambda: b"agent asked for 'web'" in conn.buffer(), 30, what="the agent's line"
        )
        assert conn.status.text == "far: connected to /x/console.sock"
        assert app.consoles.names() == []  # this host's manager was not asked
        await pilot.press(DETACH)

        logs = await open_in_fleet(pilot, "far/web", "l", LogsScreen)
        assert isinstance(logs.source, RemoteLogs) and logs.source.host.name == "far"
        await until_in_app(pilot, lambda: logs.settled, 30, what="the remote lines")
        assert [line.text for line in logs.view.entries] == ["agent asked for 'web'"]
        await pilot.press("escape")
        assert app.is_running
    app.streams.close_all()


async def test_the_fleet_view_keeps_this_hosts_vms_local(sshd: LabSshd, tmp_path: Path) -> None:
    from tui.host.console import ConsoleConnection
    from tui.host.logs.session import LocalLogs

    app = fleet_app(sshd, tmp_path)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await open_in_fleet(pilot, "here/web", "c", ConsoleScreen)
        conn = screen.connection
        assert type(conn) is ConsoleConnection  # a local connection, not the agent's
        assert conn.name == "web" and conn.vm.path == tmp_path / "web"
        # The fleet's read-only line is about actions: this host's console is not view only.
        assert screen.read_only_reason is None and not screen.manager.read_only
        await pilot.press(DETACH)

        logs = await open_in_fleet(pilot, "here/web", "l", LogsScreen)
        assert isinstance(logs.source, LocalLogs) and logs.vm.name == "web"
        await pilot.press("escape")
        assert app.is_running
    app.streams.close_all()


def test_the_fleets_view_only_rules_are_each_hosts() -> None:
    from tui.agent.views import LogsRoute, StreamRoutes
    from tui.config import Settings
    from tui.feed.fleet import FLEET_REMOTE, HostStatus, join
    from tui.feed.snapshot import Snapshot
    from tui.host.model import Inventory

    def snap(vms: list[VM]) -> Snapshot:
        return Snapshot(inventory=Inventory(state_dir=Path("/x"), vms=vms))

    fleet = join(
        [
            HostStatus("here", local=True, snapshot=snap([VM_WEB])),
            HostStatus("a", snapshot=snap([VM_WEB])),
            HostStatus("b", snapshot=snap([VM_WEB])),
            HostStatus("gone", snapshot=snap([VM_WEB])),
        ]
    )
    vm = {v.name: v for v in fleet.inventory.vms}
    hosts = {"a": RemoteHost("a", ("a",)), "b": RemoteHost("b", ("b",), read_only=True)}

    def routes(**kw: Any) -> StreamRoutes:
        manager = ConsoleManager(HostSettings(), read_only=True)  # the app's: unused here
        return StreamRoutes(Settings(hosts=hosts, **kw), FLEET_REMOTE, manager, "fleet")

    r = routes()
    here, a, b = (r.console(vm[f"{h}/web"], fleet) for h in ("here", "a", "b"))
    assert not isinstance(here, str) and not isinstance(a, str) and not isinstance(b, str)
    assert here.read_only_reason is None and not here.manager.read_only  # root, not --read-only
    assert a.read_only_reason is None and not a.manager.read_only  # its agent decides
    assert b.read_only_reason == "read_only = true in [hosts.b]" and b.manager.read_only
    assert len({id(here.manager), id(a.manager), id(b.manager), id(r.consoles)}) == 4
    assert r.console(vm["a/web"], fleet).manager is a.manager  # type: ignore[union-attr]
    assert r.console(vm["gone/web"], fleet) == (
        "Consoles and logs of gone's VMs are not available: "
        "no [hosts.gone] in the config says how to reach it."
    )
    ro = routes(read_only=True)
    for key in ("here/web", "a/web"):
        route = ro.console(vm[key], fleet)
        assert not isinstance(route, str) and route.read_only_reason == "started with --read-only"
        assert route.manager.read_only and route.vm.name == "web"
    logs = r.logs(vm["b/web"], fleet)
    assert not isinstance(logs, str) and logs.vm.name == "web"
    assert isinstance(logs.source, RemoteLogs) and logs.source.host.name == "b"
    assert r.logs(vm["here/web"], fleet) == LogsRoute(VM_WEB, None)
