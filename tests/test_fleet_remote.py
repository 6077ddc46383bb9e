"""The fleet view over real ssh (the lab's sshd on loopback, without the rest of the lab): a
working host (the real agent), a hostile one (FakeAgent: escapes in every text), a silent
one (a hello, then nothing) and an unreachable one side by side. The app never crashes, no
escape reaches the screen, the unreachable host's row says ssh's reason in one line, and the
working hosts keep updating while the others fail."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import until_in_app
from tests.monitor_support import replay, settings
from tests.test_remote_source import fake_agent, real_agent, sshd  # noqa: F401 (a fixture)
from tui.agent.client import RemoteSource
from tui.agent.hosts import RemoteHost
from tui.app import MicroVMApp
from tui.feed.fleet import FLEET_REMOTE, FleetSource
from tui.host.text import is_clean
from tui.lab.sshd import LabSshd
from tui.screens.fleet import FleetScreen
from tui.widgets.fleet_table import FleetTable, HostsTable


def remote(server: LabSshd, name: str, agent: str, ssh: list[str] | None = None) -> RemoteSource:
    host = RemoteHost(name, tuple(ssh or server.ssh_args()), agent)
    return RemoteSource(host, interval=0.5, persist="no", backoff_max=1.0, silence=3.0)


def row_text(table: HostsTable | FleetTable, key: str) -> str:
    return " ".join(cell.plain for cell in table.get_row(key))


async def test_hostile_and_unreachable_hosts_beside_working_ones(
    sshd: LabSshd,  # noqa: F811
    tmp_path: Path,
) -> None:
    (tmp_path / "alpha").mkdir()
    unreachable = ["-F", str(sshd.ssh_config), "-p", "1", sshd.alias]
    source = FleetSource(
        {
            "local": replay(),
            "ok": remote(sshd, "ok", real_agent(tmp_path)),
            "evil": remote(sshd, "evil", fake_agent("escapes")),
            "silent": remote(sshd, "silent", fake_agent("silent")),
            "gone": remote(sshd, "gone", fake_agent("escapes"), unreachable),
        },
        local="local",
        interval=0.5,
    )
    app = MicroVMApp(settings(interval=0.5), source, tty_watch=False, remote=FLEET_REMOTE)
    async with app.run_test(size=(200, 50)) as pilot:
        await until_in_app(pilot, lambda: isinstance(app.screen, FleetScreen), 30, what="fleet")
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        hosts = screen.query_one(HostsTable)
        table = screen.query_one(FleetTable)

        def statuses() -> dict:
            snap = screen.snapshot
            return {s.name: s for s in snap.hosts} if snap else {}

        await until_in_app(
            pilot,
            lambda: (
                (s := statuses())
                and s["ok"].reachable
                and s["evil"].reachable
                and s["gone"].error
                and s["silent"].error
            ),
            60,
            what="every host's first answer or reason",
        )
        s = statuses()
        assert s["gone"].error == "ssh: connect to host 127.0.0.1 port 1: Connection refused"
        assert "no message from the agent" in (s["silent"].error or "")
        assert s["ok"].rtt_ms is not None and s["ok"].rtt_ms > 0
        assert "ok/alpha" in table.keys
        assert any(k.startswith("evil/") for k in table.keys)

        # Nothing from the hostile agent reaches the screen raw.
        for key in table.keys:
            assert is_clean(row_text(table, key)), row_text(table, key)
        for key in hosts.keys:
            text = row_text(hosts, key)
            assert is_clean(text) and "\n" not in text, text
        assert "down: ssh: connect to host 127.0.0.1 port 1" in row_text(hosts, "gone")

        # The working remote host keeps updating while two others fail: a VM made now shows.
        (tmp_path / "beta").mkdir()
        await until_in_app(pilot, lambda: "ok/beta" in table.keys, 30, what="beta on ok")
        assert app.is_running
