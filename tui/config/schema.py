"""The typed ``Settings`` and its schema: which key of a config file fills which field,
decoded by which decoder (``HOST``, ``TOP``, ``DEPLOY``, ``BULK``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from tui.agent.hosts import RemoteHost
from tui.config.decoders import (
    INTERVAL_RANGE,
    Decoder,
    absolute_path,
    boolean,
    build_url,
    cache_url,
    choice,
    count,
    detach_key,
    environment,
    hosts_table,
    keymap,
    name_text,
    netns,
    seconds,
    size_key,
    string_list,
    systemd_bus,
)
from tui.host.settings import DeploySource, HostSettings

TIMEOUT_RANGE = (0.1, 600.0)  # seconds for one external command or socket query


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
    deploy: DeploySource = field(default_factory=DeploySource)  # [deploy]
    # [bulk]: how many VMs of a bulk action build (update, deploy) and restart at once.
    bulk_builds: int = 1
    bulk_restarts: int = 4
    sources: tuple[str, ...] = ()  # which files were read, for the help screen
    # Other hosts, reached over ssh with an agent there ([hosts.NAME]); by name, in file order.
    hosts: dict[str, RemoteHost] = field(default_factory=dict)


# --- the schema ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    decode: Decoder
    target: str  # the Settings field, or "host.FIELD"


HOST: dict[str, Decoder] = {
    "state_dir": absolute_path(False),
    "systemd_scope": choice("system", "user"),
    "systemd_env": environment,
    "netns": netns,
    "console_log_dir": absolute_path(True),
    "journal_dir": absolute_path(True),
    "gcroots_dir": absolute_path(False),
    "nix_options": string_list,
    "cache_dir": absolute_path(True),
    "timeout": seconds(*TIMEOUT_RANGE),
    "systemd_bus": systemd_bus,
    "jobs_dir": absolute_path(False),
}
assert set(HOST) == {f.name for f in dataclasses.fields(HostSettings)}

TOP: dict[str, Option] = {
    "state_dir": Option(HOST["state_dir"], "host.state_dir"),
    "interval": Option(seconds(*INTERVAL_RANGE), "interval"),
    "theme": Option(name_text, "theme"),
    "read_only": Option(boolean, "read_only"),
    "update_restart": Option(choice("ask", "always", "never"), "update_restart"),
    "console_detach_key": Option(detach_key, "console_detach_key"),
    "console_size_key": Option(size_key, "console_size_key"),
    "keys": Option(keymap, "keymap"),
    "hosts": Option(hosts_table, "hosts"),
}

# Tables of their own: [deploy] fills Settings.deploy, [bulk] the bulk_* fields.
DEPLOY: dict[str, Decoder] = {"cache": cache_url, "hydra_url": build_url, "check_sigs": boolean}
BULK: dict[str, Option] = {
    "builds": Option(count(1, 64), "bulk_builds"),
    "restarts": Option(count(1, 256), "bulk_restarts"),
}
