"""[hosts.NAME] tables in the typed config (tui/config/) and --host (tui/cli.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui import cli
from tui.agent.hosts import DEFAULT_AGENT, RemoteHost
from tui.config import ConfigError, Settings, load_file


def write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o644)
    return path


def test_hosts_string_and_list_forms(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[hosts.alpha]\nssh = "root@alpha"\n'
        '[hosts.beta]\nssh = ["-p", "2222", "-J", "jump", "admin@beta"]\n'
        'agent = ["/run/current-system/sw/bin/microvm-tui", "agent"]\n',
    )
    s = load_file(Settings(), path)
    assert s.hosts == {
        "alpha": RemoteHost("alpha", ("root@alpha",), DEFAULT_AGENT),
        "beta": RemoteHost(
            "beta",
            ("-p", "2222", "-J", "jump", "admin@beta"),
            "/run/current-system/sw/bin/microvm-tui agent",
        ),
    }


def test_per_host_settings(tmp_path: Path) -> None:
    """A host's own poll interval and read_only beside how to reach it; unset, the app's."""
    path = write(
        tmp_path,
        'interval = 2\n[hosts.far]\nssh = "root@far"\ninterval = 10\nread_only = true\n'
        '[hosts.near]\nssh = "root@near"\n',
    )
    s = load_file(Settings(), path)
    far, near = s.hosts["far"], s.hosts["near"]
    assert (far.interval, far.read_only) == (10.0, True)
    assert (near.interval, near.read_only) == (None, False)


def test_later_files_add_hosts(tmp_path: Path) -> None:
    first = write(tmp_path, '[hosts.a]\nssh = "a"\n[hosts.b]\nssh = "b"\n', "1.toml")
    second = write(tmp_path, '[hosts.b]\nssh = "root@b2"\n[hosts.c]\nssh = "c"\n', "2.toml")
    s = load_file(load_file(Settings(), first), second)
    assert [(h.name, h.ssh) for h in s.hosts.values()] == [
        ("a", ("a",)),
        ("b", ("root@b2",)),
        ("c", ("c",)),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[hosts.a]\nssh = ["-o", "StrictHostKeyChecking=no", "a"]',
            "hosts.a.ssh = a list: StrictHostKeyChecking=no turns host-key checking off",
        ),
        (
            '[hosts.a]\nssh = ["-oUserKnownHostsFile=/dev/null", "a"]',
            "-oUserKnownHostsFile=/dev/null turns host-key checking off",
        ),
        ('[hosts.a]\nssh = "-oProxyCommand=evil"', 'must be "user@host"'),
        ('[hosts.a]\nssh = "root@a b"', 'must be "user@host"'),
        ('[hosts.a]\nagent = "x"', "hosts.a = a table: needs ssh"),
        (
            '[hosts.a]\nssh = "a"\nport = 22',
            "hosts.a.port = 22: unknown key (known: ssh, agent, interval, read_only)",
        ),
        ('[hosts.a]\nssh = "a"\ninterval = 0', "hosts.a.interval = 0: must be a number of seconds"),
        ('[hosts.a]\nssh = "a"\ninterval = nan', "hosts.a.interval = nan"),
        (
            '[hosts.a]\nssh = "a"\nread_only = "yes"',
            'hosts.a.read_only = "yes": must be true or false',
        ),
        ('[hosts.local]\nssh = "a"', "'local' is this machine"),
        ('[hosts."a b"]\nssh = "a"', "not a host name"),
        ("[hosts.a]\nssh = []", "must end with the destination"),
        ('[hosts.a]\nssh = "a"\nagent = "\\u001b[2J"', "hosts.a.agent"),
        ("hosts = 3", "must be tables [hosts.NAME]"),
    ],
)
def test_bad_hosts_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text + "\n")
    with pytest.raises(ConfigError) as err:
        load_file(Settings(), path)
    assert message in str(err.value)
    assert "\n" not in str(err.value) and "\x1b" not in str(err.value)


def test_unknown_host_flag_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, '[hosts.alpha]\nssh = "root@alpha"\n')
    assert cli.main(["--config", str(path), "--host", "nope", "list"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == 'microvm-tui: --host "nope": no such host in the config (known: local, alpha)'


def test_list_all_hosts_without_hosts_is_the_local_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "vms" / "alpha").mkdir(parents=True)
    code = cli.main(["--state-dir", str(tmp_path / "vms"), "list", "--json", "--all-hosts"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    [local] = data["hosts"]
    assert local["host"] == "local" and local["error"] is None and local["ssh"] is None
    assert [vm["name"] for vm in local["vms"]] == ["alpha"]
