from pathlib import Path

import pytest

from tui.config import ConfigError, Settings, load_file, load_settings


def test_flags_override_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'state_dir = "/srv/vms"\ninterval = 2.5\ntheme = "nord"\n'
        '[host]\nsystemd_scope = "user"\nnetns = "labns"\n'
        'nix_options = ["--option", "substituters", ""]\n'
        '[host.systemd_env]\nXDG_RUNTIME_DIR = "/run/lab"\n'
        '[keys]\nrefresh = "f5"\n'
    )
    cfg.write_text(
        'update_restart = "always"\nconsole_detach_key = "ctrl+b"\nconsole_size_key = "f9"\n'
        + cfg.read_text()
    )
    s = load_settings(cfg, interval=0.5)
    assert s.host.state_dir == Path("/srv/vms")
    assert s.interval == 0.5
    assert s.theme == "nord"
    assert s.host.systemd_scope == "user"
    assert s.host.netns == "labns"
    assert s.host.nix_options == ("--option", "substituters", "")
    assert s.host.systemd_env == {"XDG_RUNTIME_DIR": "/run/lab"}
    assert s.keymap == {"refresh": "f5"}
    assert s.update_restart == "always"
    assert s.console_detach_key == "ctrl+b"
    assert s.console_size_key == "f9"
    assert s.host.systemctl_argv("show") == ["systemctl", "--user", "show"]
    assert str(cfg) in s.sources


def test_state_dir_flag_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    cfg = tmp_path / "c.toml"
    cfg.write_text('state_dir = "/srv/vms"\n')
    assert load_settings(cfg, state_dir=tmp_path).host.state_dir == tmp_path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("interval = 0\n", "interval must be between"),
        ("bogus = 1\n", "unknown key 'bogus'"),
        ("[host]\nsystemd_scope = 'session'\n", "must be 'system' or 'user'"),
        ("[host]\nwhat = 1\n", "unknown key [host].what"),
        ("this is = not toml [\n", "c.toml"),
        ("interval = 'fast'\n", "c.toml"),
        ("update_restart = 'sometimes'\n", "must be 'ask', 'always' or 'never'"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_file(Settings(), cfg)


def test_missing_explicit_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_cache_dir_default_home_and_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert load_settings().host.cache_dir == tmp_path / "cache" / "microvm-tui"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert load_settings().host.cache_dir == tmp_path / "home" / ".cache" / "microvm-tui"
    cfg = tmp_path / "c.toml"
    cfg.write_text('[host]\ncache_dir = "~/parses"\n')
    assert load_settings(cfg).host.cache_dir == tmp_path / "home" / "parses"
    cfg.write_text('[host]\ncache_dir = ""\n')
    assert load_settings(cfg).host.cache_dir is None  # off: every run parses
