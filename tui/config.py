"""Settings: one typed object from config files, environment and flags, read once at start.

Files, later ones win: /etc/microvm-tui.toml, ~/.config/microvm-tui/config.toml, then the
file named by --config or $MICROVM_TUI_CONFIG. Flags win over all files.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.host.settings import HostSettings, default_cache_dir

SYSTEM_CONFIG = Path("/etc/microvm-tui.toml")


def user_config() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "microvm-tui" / "config.toml"


@dataclass(frozen=True)
class Settings:
    host: HostSettings = field(default_factory=HostSettings)
    interval: float = 1.0  # seconds between polls
    theme: str = "textual-dark"
    read_only: bool = False  # forced read-only even as root
    keymap: dict[str, str] = field(default_factory=dict)  # binding id -> keys
    update_restart: str = "ask"  # after an update that needs it: "ask", "always", "never"
    console_detach_key: str = "ctrl+]"  # leaves the console pane; never sent to the guest
    console_size_key: str = "f12"  # types `stty rows R cols C` (the pane's size) into the guest
    sources: tuple[str, ...] = ()  # which files were read, for the help screen


class ConfigError(Exception):
    pass


_HOST_KEYS = {f.name: f for f in dataclasses.fields(HostSettings)}


def _host_from(table: dict[str, Any], base: HostSettings, where: str) -> HostSettings:
    changes: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _HOST_KEYS:
            raise ConfigError(f"{where}: unknown key [host].{key}")
        if key in ("state_dir", "console_log_dir", "gcroots_dir", "cache_dir"):
            value = Path(value).expanduser() if value else None
        elif key == "nix_options":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: [host].nix_options must be a list of strings")
            value = tuple(value)
        elif key == "systemd_env":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: [host.systemd_env] must be a table")
            value = {str(k): str(v) for k, v in value.items()}
        elif key == "systemd_scope" and value not in ("system", "user"):
            raise ConfigError(f"{where}: [host].systemd_scope must be 'system' or 'user'")
        elif key == "timeout":
            value = float(value)
        changes[key] = value
    return dataclasses.replace(base, **changes)


def _apply(settings: Settings, data: dict[str, Any], where: str) -> Settings:
    host = settings.host
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key == "state_dir":
            host = dataclasses.replace(host, state_dir=Path(value))
        elif key == "host":
            host = _host_from(value, host, where)
        elif key == "interval":
            interval = float(value)
            if not 0.1 <= interval <= 3600:
                raise ConfigError(f"{where}: interval must be between 0.1 and 3600 seconds")
            changes["interval"] = interval
        elif key == "theme":
            changes["theme"] = str(value)
        elif key == "update_restart":
            if value not in ("ask", "always", "never"):
                raise ConfigError(f"{where}: update_restart must be 'ask', 'always' or 'never'")
            changes["update_restart"] = value
        elif key == "console_detach_key":
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where}: console_detach_key must be a key name like 'ctrl+]'")
            changes["console_detach_key"] = value
        elif key == "console_size_key":
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where}: console_size_key must be a key name like 'f12'")
            changes["console_size_key"] = value
        elif key == "read_only":
            changes["read_only"] = bool(value)
        elif key == "keys":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: [keys] must be a table of binding id = keys")
            changes["keymap"] = {**settings.keymap, **{str(k): str(v) for k, v in value.items()}}
        else:
            raise ConfigError(f"{where}: unknown key '{key}'")
    return dataclasses.replace(settings, host=host, **changes)


def load_file(settings: Settings, path: Path) -> Settings:
    try:
        with path.open("rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return settings
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    import tomllib  # here: most hosts have no config file, and `list` start-up time counts

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    try:
        settings = _apply(settings, data, str(path))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return dataclasses.replace(settings, sources=(*settings.sources, str(path)))


def load_settings(
    config: Path | None = None,
    *,
    state_dir: Path | None = None,
    interval: float | None = None,
    theme: str | None = None,
    read_only: bool | None = None,
) -> Settings:
    """Settings from the standard files, CONFIG (or $MICROVM_TUI_CONFIG) and flags."""
    settings = Settings(host=HostSettings(cache_dir=default_cache_dir()))
    explicit = config or (
        Path(os.environ["MICROVM_TUI_CONFIG"]) if os.environ.get("MICROVM_TUI_CONFIG") else None
    )
    for path in (SYSTEM_CONFIG, user_config()):
        settings = load_file(settings, path)
    if explicit is not None:
        if not explicit.exists():
            raise ConfigError(f"the config file {explicit} does not exist")
        settings = load_file(settings, explicit)
    host = settings.host
    if state_dir is not None:
        host = dataclasses.replace(host, state_dir=state_dir)
    flags: dict[str, Any] = {}
    if interval is not None:
        flags["interval"] = interval
    if theme is not None:
        flags["theme"] = theme
    if read_only is not None:
        flags["read_only"] = read_only
    return dataclasses.replace(settings, host=host, **flags)
