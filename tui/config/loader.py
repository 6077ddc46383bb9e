"""Reading the settings: the config files in order, each checked (``tui.host.trustedfile``) and
decoded through the schema, then the flags through the same decoders."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tui.config.decoders import Decoder, Invalid, printable, show
from tui.config.schema import BULK, DEPLOY, HOST, TOP, Settings
from tui.host.settings import HostSettings, default_cache_dir

# The system-wide file. Tests point $MICROVM_TUI_SYSTEM_CONFIG elsewhere (tests/conftest.py) so
# the machine's own file can never reach them; nothing else should set it.
SYSTEM_CONFIG = Path("/etc/microvm-tui.toml")
SYSTEM_CONFIG_ENV = "MICROVM_TUI_SYSTEM_CONFIG"
MAX_CONFIG_BYTES = 1 << 20


def system_config() -> Path:
    override = os.environ.get(SYSTEM_CONFIG_ENV)
    return Path(override) if override else SYSTEM_CONFIG


def user_config() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "microvm-tui" / "config.toml"


class ConfigError(Exception):
    """A config file or flag that cannot be used. The message is one line."""


def _decode(decoder: Decoder, key: str, value: Any, where: str) -> Any:
    try:
        return decoder(value)
    except Invalid as exc:
        if exc.sub is not None:
            key, value = f"{key}.{printable(exc.sub, 64)}", exc.value
        raise ConfigError(f"{where}: {key} = {show(value)}: {exc}") from None


def _flag(decoder: Decoder, flag: str, value: Any) -> Any:
    try:
        return decoder(value)
    except Invalid as exc:
        raise ConfigError(f"{flag} {printable(str(value))}: {exc}") from None


def _apply(settings: Settings, data: Mapping[str, Any], where: str) -> Settings:
    host_changes: dict[str, Any] = {}
    deploy_changes: dict[str, Any] = {}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key == "host":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: host = {show(value)}: must be a table ([host])")
            for hkey, hvalue in value.items():
                if hkey not in HOST:
                    raise ConfigError(
                        f"{where}: unknown key [host].{printable(hkey)} (known: {', '.join(HOST)})"
                    )
                host_changes[hkey] = _decode(HOST[hkey], f"host.{hkey}", hvalue, where)
            continue
        if key in ("deploy", "bulk"):
            table = DEPLOY if key == "deploy" else BULK
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {key} = {show(value)}: must be a table ([{key}])")
            for tkey, tvalue in value.items():
                if tkey not in table:
                    raise ConfigError(
                        f"{where}: unknown key [{key}].{printable(tkey)}"
                        f" (known: {', '.join(table)})"
                    )
                if key == "deploy":
                    decoded = _decode(DEPLOY[tkey], f"deploy.{tkey}", tvalue, where)
                    deploy_changes[tkey] = decoded
                else:
                    option = BULK[tkey]
                    changes[option.target] = _decode(option.decode, f"bulk.{tkey}", tvalue, where)
            continue
        option = TOP.get(key)
        if option is None:
            known = ", ".join([*TOP, "[host]", "[deploy]", "[bulk]"])
            raise ConfigError(f"{where}: unknown key '{printable(key)}' (known: {known})")
        decoded = _decode(option.decode, key, value, where)
        if option.target.startswith("host."):
            host_changes[option.target[5:]] = decoded
        elif option.target == "keymap":
            changes["keymap"] = {**settings.keymap, **decoded}  # later files remap more
        elif option.target == "hosts":
            changes["hosts"] = {**settings.hosts, **decoded}  # later files add hosts
        else:
            changes[option.target] = decoded
    host = dataclasses.replace(settings.host, **host_changes)
    deploy = dataclasses.replace(settings.deploy, **deploy_changes)
    return dataclasses.replace(settings, host=host, deploy=deploy, **changes)


def load_file(settings: Settings, path: Path, *, missing_ok: bool = True) -> Settings:
    """SETTINGS with PATH's values applied (SETTINGS itself when PATH does not exist)."""
    from tui.host.trustedfile import UntrustedFile, read_trusted

    shown = printable(str(path), 300)
    try:
        raw = read_trusted(path, MAX_CONFIG_BYTES)
    except UntrustedFile as exc:
        raise ConfigError(printable(str(exc), 400)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {shown}: {exc.strerror or exc}") from None
    if raw is None:
        if missing_ok:
            return settings
        raise ConfigError(f"the config file {shown} does not exist")
    import tomllib  # here: most hosts have no config file, and `list` start-up time counts

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: not UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{shown}: {printable(str(exc), 200)}") from None
    except RecursionError:  # deeply nested arrays
        raise ConfigError(f"{shown}: nested too deeply") from None
    settings = _apply(settings, data, shown)
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
    for path in (system_config(), user_config()):
        settings = load_file(settings, path)
    if explicit is not None:
        settings = load_file(settings, explicit, missing_ok=False)
    # Flags pass the same checks as the files' values.
    host = settings.host
    if state_dir is not None:
        host = dataclasses.replace(
            host, state_dir=_flag(HOST["state_dir"], "--state-dir", str(state_dir))
        )
    flags: dict[str, Any] = {}
    if interval is not None:
        flags["interval"] = _flag(TOP["interval"].decode, "--interval", interval)
    if theme is not None:
        flags["theme"] = _flag(TOP["theme"].decode, "--theme", theme)
    if read_only is not None:
        flags["read_only"] = read_only
    return dataclasses.replace(settings, host=host, **flags)
