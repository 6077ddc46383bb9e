"""ROOT/microvm-tui.toml: the settings that point microvm-tui at the lab instead of the host."""

from __future__ import annotations

import json
from pathlib import Path

from tui.host.settings import DeploySource, HostSettings


def _s(value: object) -> str:
    # A JSON string with ensure_ascii is a valid TOML basic string.
    return json.dumps(str(value), ensure_ascii=True)


def config_text(settings: HostSettings, deploy: DeploySource | None = None) -> str:
    lines = [
        f"state_dir = {_s(settings.state_dir)}",
        "",
        "[host]",
        f"systemd_scope = {_s(settings.systemd_scope)}",
        f"systemd_bus = {_s(settings.systemd_bus)}",
    ]
    if settings.netns is not None:
        lines.append(f"netns = {_s(settings.netns)}")
    if settings.journal_dir is not None:
        lines.append(f"journal_dir = {_s(settings.journal_dir)}")
    lines.append(f"gcroots_dir = {_s(settings.gcroots_dir)}")
    lines.append(f"jobs_dir = {_s(settings.jobs_dir)}")
    lines.append("nix_options = [" + ", ".join(_s(o) for o in settings.nix_options) + "]")
    lines += ["", "[host.systemd_env]"]
    lines += [f"{k} = {_s(v)}" for k, v in sorted(settings.systemd_env.items())]
    if deploy is not None and (deploy.cache or deploy.hydra_url):
        lines += ["", "[deploy]"]
        if deploy.cache:
            lines.append(f"cache = {_s(deploy.cache)}")
        if deploy.hydra_url:
            lines.append(f"hydra_url = {_s(deploy.hydra_url)}")
    return "\n".join(lines) + "\n"


def fleet_text(local_config: str, peers: list[tuple[str, list[str], str]]) -> str:
    """A fleet of labs: the first lab's own settings as this machine's, and each other lab as a
    ``[hosts.NAME]`` reached over its own sshd (NAME, ssh arguments, the agent's command line)."""
    lines = [local_config.rstrip("\n")]
    for name, ssh_args, agent in peers:
        lines += ["", f"[hosts.{name}]"]
        lines.append("ssh = [" + ", ".join(_s(a) for a in ssh_args) + "]")
        lines.append(f"agent = {_s(agent)}")
    return "\n".join(lines) + "\n"


def write_config(path: Path, settings: HostSettings, deploy: DeploySource | None = None) -> None:
    write_text(path, config_text(settings, deploy))


def write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o644)  # whatever the umask: the app refuses a config group or others can write
    tmp.replace(path)
