"""The config loader: the schema's values and bounds, file order, [keys] merging, the flags.

No test here reads the machine's own /etc/microvm-tui.toml or ~/.config (tests/conftest.py
points both elsewhere; ``test_the_machines_files_are_never_read`` checks it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tui import config
from tui.cli import main
from tui.config import ConfigError, Settings, load_file, load_settings


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The three files load_settings reads, in tmp_path (none of them written yet)."""
    system = tmp_path / "etc" / "microvm-tui.toml"
    home = tmp_path / "xdg"
    monkeypatch.setenv(config.SYSTEM_CONFIG_ENV, str(system))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.delenv("MICROVM_TUI_CONFIG", raising=False)
    user = home / "microvm-tui" / "config.toml"
    for path in (system, user):
        path.parent.mkdir(parents=True, exist_ok=True)
    return {"system": system, "user": user, "explicit": tmp_path / "c.toml"}


def test_the_machines_files_are_never_read() -> None:
    assert config.system_config() != config.SYSTEM_CONFIG
    assert not str(config.user_config()).startswith(str(Path.home()))


def test_flags_override_files(files: dict[str, Path]) -> None:
    cfg = files["explicit"]
    cfg.write_text(
        'update_restart = "always"\nconsole_detach_key = "ctrl+b"\n'
        'state_dir = "/srv/vms"\ninterval = 2.5\ntheme = "nord"\n'
        '[host]\nsystemd_scope = "user"\nnetns = "labns"\n'
        'nix_options = ["--option", "substituters", ""]\n'
        '[host.systemd_env]\nXDG_RUNTIME_DIR = "/run/lab"\n'
        '[keys]\nrefresh = "f5"\n'
    )
    cfg.write_text('console_size_key = "f9"\n' + cfg.read_text())
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
    assert s.host.systemctl_argv("show")[1:] == ["--user", "show"]
    assert str(cfg) in s.sources


def test_state_dir_flag_wins(files: dict[str, Path], tmp_path: Path) -> None:
    files["explicit"].write_text('state_dir = "/srv/vms"\n')
    assert load_settings(files["explicit"], state_dir=tmp_path).host.state_dir == tmp_path


def test_files_are_read_system_then_user_then_explicit(files: dict[str, Path]) -> None:
    files["system"].write_text('theme = "system"\ninterval = 7\nupdate_restart = "never"\n')
    files["user"].write_text('theme = "user"\ninterval = 8\n')
    files["explicit"].write_text('theme = "explicit"\n')
    s = load_settings(files["explicit"])
    assert (s.theme, s.interval, s.update_restart) == ("explicit", 8.0, "never")
    assert s.sources == tuple(str(files[k]) for k in ("system", "user", "explicit"))
    s = load_settings()
    assert (s.theme, s.interval, s.update_restart) == ("user", 8.0, "never")


def test_keys_tables_merge_across_files(files: dict[str, Path]) -> None:
    files["system"].write_text('[keys]\nrefresh = "f5"\nsort = "o"\n')
    files["user"].write_text('[keys]\nfilter = "f"\n')
    files["explicit"].write_text('[keys]\nrefresh = "f6, ?"\n')
    s = load_settings(files["explicit"])
    # Later files remap more; a later value for the same id wins; keys in Textual's names.
    assert s.keymap == {"refresh": "f6,question_mark", "sort": "o", "filter": "f"}
    files["explicit"].write_text('[keys]\n"jobs.cancel" = "delete"\n')
    assert load_settings(files["explicit"]).keymap["jobs.cancel"] == "delete"


def test_journal_dir_and_empty_paths(files: dict[str, Path]) -> None:
    cfg = files["explicit"]
    cfg.write_text('[host]\nsystemd_scope = "user"\njournal_dir = "/srv/journal"\n')
    host = load_settings(cfg).host
    assert host.journal_dir == Path("/srv/journal")
    assert host.journalctl_argv("-u", "x")[1:] == ["--directory=/srv/journal", "-u", "x"]
    cfg.write_text('[host]\njournal_dir = ""\nconsole_log_dir = ""\ncache_dir = ""\n')
    host = load_settings(cfg).host
    assert (host.journal_dir, host.console_log_dir, host.cache_dir) == (None, None, None)


def test_missing_explicit_config(files: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(files["explicit"])


def test_cache_dir_default_home_and_off(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert load_settings().host.cache_dir == tmp_path / "cache" / "microvm-tui"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert load_settings().host.cache_dir == tmp_path / "home" / ".cache" / "microvm-tui"
    cfg = files["explicit"]
    cfg.write_text('[host]\ncache_dir = "~/parses"\n')
    assert load_settings(cfg).host.cache_dir == tmp_path / "home" / "parses"
    cfg.write_text('[host]\ncache_dir = ""\n')
    assert load_settings(cfg).host.cache_dir is None  # off: every run parses


# --- bad values: one line naming the file, the key, the value and what is allowed ----------

SECONDS = "must be a number of seconds from 0.2 to 3600"
TIMEOUT = "must be a number of seconds from 0.1 to 600"
BAD = [
    ("host = 5", "host = 5: must be a table ([host])"),
    ("[host]\ntimeout = 1e308", f"host.timeout = 1e+308: {TIMEOUT}"),
    ("[host]\ntimeout = nan", f"host.timeout = nan: {TIMEOUT}"),
    ('[host]\ntimeout = "nan"', f'host.timeout = "nan": {TIMEOUT}'),
    ("[host]\ntimeout = -1", f"host.timeout = -1: {TIMEOUT}"),
    ("[host]\ntimeout = true", f"host.timeout = true: {TIMEOUT}"),
    ('state_dir = ""', 'state_dir = "": must be an absolute path'),
    ('state_dir = "vms"', 'state_dir = "vms": must be an absolute path'),
    ('[host]\nstate_dir = "a\\u0000b"', "host.state_dir = "),
    ('[host]\njournal_dir = "logs"', 'host.journal_dir = "logs": must be an absolute path'),
    ('read_only = "false"', 'read_only = "false": must be true or false (no quotes)'),
    ("interval = true", f"interval = true: {SECONDS}"),
    ("interval = 0", f"interval = 0: {SECONDS}"),
    ("interval = -1", f"interval = -1: {SECONDS}"),
    ("interval = 0.1", f"interval = 0.1: {SECONDS}"),
    ("interval = 3601", f"interval = 3601: {SECONDS}"),
    ("interval = inf", f"interval = inf: {SECONDS}"),
    ('interval = "fast"', f'interval = "fast": {SECONDS}'),
    ("theme = 5", "theme = 5: must be a name (a quoted string)"),
    ("keys = 5", 'keys = 5: must be a table of binding id = "keys"'),
    ('[keys]\nquit = "notakey!!"', 'keys.quit = "notakey!!": not a key name (a character, or'),
    ('[keys]\nquit = "q,notakey"', "keys.quit = \"q,notakey\": 'notakey': not a key name"),
    ('[keys]\nquit = "q,"', 'keys.quit = "q,": an empty key name'),
    ('[keys]\nquit = "ctrl+shift+ctrl+q"', "a modifier given twice"),
    ('[keys]\nquit = "Ctrl+q"', "'Ctrl' is not a modifier"),
    ("[keys]\nrefresh = 5", "keys.refresh = 5: must be a key list"),
    ('[keys]\njobs.cancel = "x"', 'keys.jobs = a table: quote an id with a dot: "jobs.cancel" = '),
    ('[keys]\n"re fresh" = "r"', 'keys.re fresh = "r": not a binding id'),
    ('console_detach_key = "a"', 'console_detach_key = "a": the guest needs that key'),
    ('console_detach_key = "shift+x"', 'console_detach_key = "shift+x": the guest needs'),
    ('console_detach_key = "ctrl+a,ctrl+b"', "one key, not a list"),
    ('console_detach_key = ""', "an empty key name"),
    ('[host.systemd_env]\nPATH = "/tmp/x"', 'host.systemd_env.PATH = "/tmp/x": may not be set'),
    ('[host.systemd_env]\nLD_PRELOAD = "/x.so"', "host.systemd_env.LD_PRELOAD = "),
    ('[host.systemd_env]\n"A B" = "x"', "not an environment variable name"),
    ("[host.systemd_env]\nX = 1", "host.systemd_env.X = 1: must be a string"),
    ("[host]\nsystemd_env = 5", "host.systemd_env = 5: must be a table"),
    ('[host]\nnix_options = "--impure"', "host.nix_options = "),
    ("[host]\nnix_options = [1]", "host.nix_options = a list: must be a list of strings"),
    ('[host]\nnetns = "../etc"', 'host.netns = "../etc": must be a network namespace name'),
    ('[host]\nsystemd_scope = "session"', 'must be one of "system", "user"'),
    ('[host]\nsystemd_bus = "session"', 'host.systemd_bus = "session": must be "auto"'),
    ('[host]\nsystemd_bus = "unix:path=run/bus"', "unix:path=/absolute/socket"),
    ('[host]\nsystemd_bus = "unix:path=/run/x,guid=1"', 'host.systemd_bus = "unix:path=/run/x,'),
    ("[host]\nsystemd_bus = 1", "host.systemd_bus = 1: must be"),
    ('update_restart = "sometimes"', 'must be one of "ask", "always", "never"'),
    ('[deploy]\ncache = "-oops"', 'deploy.cache = "-oops": must be a binary cache URL'),
    ('[deploy]\nhydra_url = "ftp://x/{name}"', "deploy.hydra_url = "),
    ('[deploy]\nhydra_url = "https://hydra/latest"', "with {name} in it"),
    ('[deploy]\ncheck_sigs = "no"', 'deploy.check_sigs = "no": must be true or false'),
    ("[deploy]\nwhat = 1", "unknown key [deploy].what"),
    ("deploy = 1", "deploy = 1: must be a table ([deploy])"),
    ("[bulk]\nbuilds = 0", "bulk.builds = 0: must be a whole number from 1 to 64"),
    ("[bulk]\nrestarts = 1.5", "bulk.restarts = 1.5: must be a whole number"),
    ("bogus = 1", "unknown key 'bogus'"),
    ("[host]\nwhat = 1", "unknown key [host].what"),
    ("this is = not toml [", "c.toml: "),
    ('theme = "\\u001b]0;title\\u0007"', 'theme = "\\u001b]0;title\\u0007": must be a name'),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[t for t, _ in BAD])
def test_a_bad_value_is_one_line_naming_key_and_value(
    tmp_path: Path, text: str, message: str
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text + "\n")
    with pytest.raises(ConfigError) as caught:
        load_file(Settings(), cfg)
    shown = str(caught.value)
    assert shown.startswith(str(cfg))
    assert message in shown
    assert "\n" not in shown and shown.isprintable()  # no control character reaches a tty


@pytest.mark.parametrize(
    "argv",
    [
        ["--interval", "-1"],
        ["--interval", "0"],
        ["--interval", "nan"],
        ["--interval", "inf"],
        ["--interval", "1e308"],
        ["--interval", "true"],
        ["--state-dir", ""],
        ["--config", ""],
        ["--theme", ""],
    ],
)
def test_a_bad_flag_exits_2_naming_it(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([*argv, "list"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[0]}: " in err
    if argv[0] == "--interval":
        assert f'"{argv[1]}": {SECONDS}' in err


def test_a_bad_config_stops_list_with_one_line(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files["explicit"].write_text("interval = -1\n")
    # With a state dir that exists, list would succeed if the config were taken.
    assert main(["--config", str(files["explicit"]), "--state-dir", str(tmp_path), "list"]) == 2
    err = capsys.readouterr().err
    assert err == f"microvm-tui: {files['explicit']}: interval = -1: {SECONDS}\n"


def test_deploy_and_bulk_tables(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[deploy]\ncache = "https://cache.example.org"\n'
        'hydra_url = "https://hydra.example.org/job/vms/{name}/latest"\ncheck_sigs = false\n'
        "[bulk]\nbuilds = 2\nrestarts = 8\n"
    )
    settings = load_file(Settings(), cfg)
    assert settings.deploy.cache == "https://cache.example.org"
    assert settings.deploy.hydra_url == "https://hydra.example.org/job/vms/{name}/latest"
    assert settings.deploy.check_sigs is False
    assert (settings.bulk_builds, settings.bulk_restarts) == (2, 8)
    assert Settings().deploy.check_sigs is True  # nix checks signatures unless told


def test_interval_bounds_are_inclusive(files: dict[str, Path]) -> None:
    for ok in (0.2, 1, 3600):
        files["explicit"].write_text(f"interval = {ok}\n")
        assert load_settings(files["explicit"]).interval == ok
    assert load_settings(interval=0.2).interval == 0.2
    with pytest.raises(ConfigError, match=r"^--interval 0\.19: must be a number of seconds"):
        load_settings(interval=0.19)  # a caller other than argparse gets the same bound


@pytest.mark.parametrize("key", ["ctrl+]", "alt+x", "f12", "ctrl+shift+f1", "meta+q"])
def test_a_detach_key_the_guest_does_not_type_is_taken(files: dict[str, Path], key: str) -> None:
    files["explicit"].write_text(f'console_detach_key = "{key}"\n')
    assert load_settings(files["explicit"]).console_detach_key == key


def test_the_readme_example_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme[readme.index("### Configuration") :]
    example = section[
        section.index("```toml\n") + 8 : section.index("```\n", section.index("```toml"))
    ]
    cfg = tmp_path / "c.toml"
    cfg.write_text(example)
    s = load_file(Settings(), cfg)
    assert s.interval == 1.0 and s.host.timeout == 5.0 and s.keymap == {"refresh": "r"}
    assert s.host.journal_dir is None and s.host.netns is None


def test_the_labs_config_file_loads_as_written(files: dict[str, Path], tmp_path: Path) -> None:
    from dataclasses import replace

    from tui.host.settings import default_cache_dir
    from tui.lab import Lab
    from tui.lab.config import write_config

    lab = Lab(tmp_path / "lab")  # not brought up: its settings and config writer only
    lab.root.mkdir()
    write_config(lab.config_path, lab.settings)
    expected = replace(lab.settings, cache_dir=default_cache_dir())
    assert load_settings(lab.config_path).host == expected


@pytest.mark.parametrize(
    ("text", "scope", "socket"),
    [
        ('"auto"', "system", ("/run/dbus/system_bus_socket", True)),
        ('"system"', "user", ("/run/dbus/system_bus_socket", True)),
        ('"private"', "system", ("/run/systemd/private", False)),
        ('"unix:path=/var/tmp/lab/run/bus"', "user", ("/var/tmp/lab/run/bus", True)),
        ('"systemctl"', "system", None),
    ],
)
def test_systemd_bus_names_the_socket_the_monitor_uses(
    tmp_path: Path, text: str, scope: str, socket: tuple[str, bool] | None
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[host]\nsystemd_scope = "{scope}"\nsystemd_bus = {text}\n')
    host = load_file(Settings(), cfg).host
    found = host.bus_socket()
    assert (None if found is None else (str(found[0]), found[1])) == socket
    assert f'"{host.systemd_bus}"' == text  # what the lab's config writer writes back
