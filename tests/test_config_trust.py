"""Root reads only configs nobody else can have written, and runs tools found on a fixed PATH.

Issue 9.2: a config owned by another user set ``[host.systemd_env] PATH`` and root ran the
planted ``systemctl``. Here: files owned by ``nobody``, writable by group or others, reached
through a directory or a link someone else controls, FIFOs, devices and huge files are refused
with one line; a config PATH or LD_* is refused; and even settings built around the loader
(or a poisoned PATH of our own) never make root run a planted program.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tui import config
from tui.cli import main
from tui.config import ConfigError, Settings, load_file, load_settings
from tui.host import systemd, tools
from tui.host.actions.commands import run
from tui.host.actions.nix import nix_argv
from tui.host.settings import HostSettings
from tui.host.trustedfile import read_trusted

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown to nobody needs root")

NOBODY = 65534


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(config.SYSTEM_CONFIG_ENV, str(tmp_path / "no-system.toml"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("MICROVM_TUI_CONFIG", raising=False)
    path = tmp_path / "c.toml"
    path.write_text('theme = "nord"\n')
    path.chmod(0o644)
    return path


def refused(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_file(Settings(), path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: refusing to read it: ")
    return message


def test_a_file_we_own_is_read(cfg: Path) -> None:
    assert load_file(Settings(), cfg).theme == "nord"


def test_a_file_another_user_owns_is_refused(cfg: Path) -> None:
    os.chown(cfg, NOBODY, NOBODY)
    assert "it is owned by nobody (uid 65534), not root" in refused(cfg)


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666])
def test_a_file_group_or_others_can_write_is_refused(cfg: Path, mode: int) -> None:
    cfg.chmod(mode)
    assert f"it is writable by group or others (mode {mode:04o}; chmod go-w {cfg})" in refused(cfg)


def test_a_directory_others_can_write_is_refused_unless_sticky(cfg: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    target = shared / "c.toml"
    cfg.rename(target)
    shared.chmod(0o777)  # anyone could have replaced c.toml
    assert f"the directory {shared} is writable by group or others" in refused(target)
    shared.chmod(0o1777)  # sticky, as /tmp: others cannot rename or replace our file
    assert load_file(Settings(), target).theme == "nord"


def test_a_directory_another_user_owns_is_refused(cfg: Path, tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    target = theirs / "c.toml"
    cfg.rename(target)
    os.chown(theirs, NOBODY, NOBODY)
    assert f"the directory {theirs} is owned by nobody" in refused(target)


def test_a_link_another_user_owns_is_refused(cfg: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.toml"
    link.symlink_to(cfg)
    assert load_file(Settings(), link).theme == "nord"  # a link of ours: NixOS's /etc
    os.lchown(link, NOBODY, NOBODY)
    assert f"the link {link} is owned by nobody" in refused(link)


def test_no_config_under_a_users_home_is_not_an_error(tmp_path: Path) -> None:
    # sudo -E: root with a user's XDG_CONFIG_HOME that has no microvm-tui config.
    home = tmp_path / "alice"
    (home / "microvm-tui").mkdir(parents=True)
    os.chown(home, NOBODY, NOBODY)
    os.chown(home / "microvm-tui", NOBODY, NOBODY)
    assert read_trusted(home / "microvm-tui" / "config.toml", 1000) is None
    (home / "microvm-tui" / "config.toml").write_text('theme = "x"\n')
    with pytest.raises(Exception, match="owned by nobody"):
        read_trusted(home / "microvm-tui" / "config.toml", 1000)


def test_every_file_is_checked(cfg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    os.chown(cfg, NOBODY, NOBODY)
    system = tmp_path / "system.toml"
    monkeypatch.setenv(config.SYSTEM_CONFIG_ENV, str(cfg))
    with pytest.raises(ConfigError, match="owned by nobody"):
        load_settings()
    monkeypatch.setenv(config.SYSTEM_CONFIG_ENV, str(system))
    user = tmp_path / "xdg" / "microvm-tui" / "config.toml"
    user.parent.mkdir(parents=True)
    os.link(cfg, user)
    with pytest.raises(ConfigError, match="owned by nobody"):
        load_settings()
    user.unlink()
    monkeypatch.setenv("MICROVM_TUI_CONFIG", str(cfg))
    with pytest.raises(ConfigError, match="owned by nobody"):
        load_settings()


def test_cli_exits_2_with_one_line(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.chown(cfg, NOBODY, NOBODY)
    assert main(["--config", str(cfg), "--state-dir", str(tmp_path), "list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"microvm-tui: {cfg}: refusing to read it: it is owned by nobody")


def test_a_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "c.toml"
    os.mkfifo(fifo, 0o600)  # a blocking open would wait for a writer forever
    assert "not a regular file" in refused(fifo)


def test_a_device_is_refused_without_opening_it(tmp_path: Path) -> None:
    link = tmp_path / "c.toml"
    link.symlink_to("/dev/zero")
    assert "not a regular file" in refused(link)


def test_a_huge_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "c.toml"
    with big.open("wb") as fh:
        fh.truncate(config.MAX_CONFIG_BYTES + 1)
    big.chmod(0o600)
    assert f"more than {config.MAX_CONFIG_BYTES}" in refused(big)


# --- tools: found once on a fixed PATH, run by absolute path, with an environment we build ---

FAKE = "#!/bin/sh\necho ran > {marker}\n"


@pytest.fixture
def planted(tmp_path: Path) -> tuple[Path, Path]:
    """A directory with fake systemctl, journalctl and nix that write MARKER when run."""
    bin_dir = tmp_path / "evil-bin"
    bin_dir.mkdir()
    marker = tmp_path / "ran"
    for name in ("systemctl", "journalctl", "nix"):
        tool = bin_dir / name
        tool.write_text(FAKE.format(marker=marker))
        tool.chmod(0o755)
    return bin_dir, marker


def test_a_config_path_is_refused(cfg: Path, planted: tuple[Path, Path]) -> None:
    bin_dir, _ = planted
    for name in ("PATH", "LD_PRELOAD", "LD_LIBRARY_PATH"):
        cfg.write_text(f'[host.systemd_env]\n{name} = "{bin_dir}"\n')
        message = refused_value(cfg)
        assert f'host.systemd_env.{name} = "{bin_dir}": may not be set here' in message
        assert tools.SAFE_PATH in message


def refused_value(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_file(Settings(), path)
    return str(caught.value)


def test_root_never_runs_a_planted_tool(
    planted: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir, marker = planted
    # Our own PATH poisoned too, and settings made around the loader with a PATH and LD_*.
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("LD_PRELOAD", str(tmp_path / "evil.so"))
    settings = HostSettings(
        state_dir=tmp_path,
        systemd_env={"PATH": str(bin_dir), "LD_PRELOAD": str(tmp_path / "evil.so")},
        timeout=10,
    )
    env = settings.command_env()
    assert env["PATH"] == tools.SAFE_PATH
    assert not any(k.startswith("LD_") for k in env)
    for argv in (
        settings.systemctl_argv("--version"),
        settings.journalctl_argv("--version"),
        nix_argv(settings, "--version"),
    ):
        assert os.path.isabs(argv[0])
        assert os.path.dirname(argv[0]) in tools.SAFE_PATH.split(":")
        result = run(argv, env=env, timeout=10)
        assert result.returncode == 0, result
    with pytest.raises(systemd.SystemdError):  # no systemd here: the real one says so
        systemd.Systemctl(settings).show(["microvm@x.service"])
    run(settings.systemctl_argv("--version"), timeout=10)  # without env: a clean one
    assert not marker.exists()
    run([str(bin_dir / "systemctl")], timeout=10)  # the marker works: a planted tool would tell
    assert marker.read_text() == "ran\n"


def test_a_tool_only_root_could_have_written_is_chosen(
    planted: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir, _ = planted
    fake = str(bin_dir / "systemctl")
    monkeypatch.setattr(tools, "SAFE_PATH", f"{bin_dir}:{tools.SAFE_PATH}")
    assert tools._lookup("systemctl") == fake  # root's, 0755: taken (the check can pass)
    os.chmod(fake, 0o775)
    assert tools._lookup("systemctl") not in (fake, None)  # group-writable: the next one
    os.chmod(fake, 0o755)
    os.chown(fake, NOBODY, NOBODY)
    assert tools._lookup("systemctl") not in (fake, None)  # another user's
    os.chown(fake, 0, 0)
    os.chmod(fake, 0o644)
    assert tools._lookup("systemctl") not in (fake, None)  # not executable
    assert stat.S_IMODE(os.stat(fake).st_mode) == 0o644


def test_a_child_never_gets_another_users_home_or_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sudo -E: our environment is alice's. Her ~/.config/nix/nix.conf could set a
    # post-build-hook for root's nix; her CA bundle could vouch for what root fetches.
    alice = tmp_path / "alice"
    alice.mkdir()
    os.chown(alice, NOBODY, NOBODY)
    bundle = alice / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    os.chown(bundle, NOBODY, NOBODY)
    for name, value in {
        "HOME": str(alice),
        "USER": "alice",
        "LOGNAME": "alice",
        "TMPDIR": str(alice),
        "SSL_CERT_FILE": str(bundle),
        "NIX_SSL_CERT_FILE": str(bundle),
        "NIX_CONFIG": "post-build-hook = /tmp/x",
        "NIX_USER_CONF_FILES": str(bundle),
        "XDG_CONFIG_HOME": str(alice),
    }.items():
        monkeypatch.setenv(name, value)
    env = HostSettings().command_env()
    assert (env["HOME"], env["USER"], env["LOGNAME"]) == ("/root", "root", "root")
    assert not {"TMPDIR", "SSL_CERT_FILE", "NIX_SSL_CERT_FILE", "NIX_CONFIG"} & set(env)
    assert not {"NIX_USER_CONF_FILES", "XDG_CONFIG_HOME"} & set(env)
    os.chown(bundle, 0, 0)
    bundle.chmod(0o644)  # root's own bundle is passed on
    assert HostSettings().command_env()["SSL_CERT_FILE"] == str(bundle)
