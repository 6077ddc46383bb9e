"""The config's value decoders: a raw TOML value in, a typed value out, or ``Invalid`` saying
what is allowed; and how a value is shown in a message (``printable``, ``show``)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tui.agent.hosts import DEFAULT_AGENT, RemoteHost
from tui.agent.ssh import hostkey_check_disabled
from tui.host.settings import SystemdBus
from tui.host.tools import SAFE_PATH, forbidden_env
from tui.keynames import detach_key_problem, keys_problem, normalize_list

MAX_TEXT = 4096  # characters in one path, option or environment value


class Invalid(ValueError):
    """A decoder's verdict on one value: what is allowed (or what is wrong with it). In a
    table, SUB names the entry at fault and VALUE is that entry's value."""

    def __init__(self, message: str, sub: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.sub = sub
        self.value = value


# --- showing values in a message -----------------------------------------------------------


def printable(text: str, limit: int = 80) -> str:
    """TEXT with control characters escaped and cut at LIMIT: it goes to the admin's terminal."""
    cut = text[:limit]
    shown = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in cut)
    return shown + ("…" if len(text) > limit else "")


def show(value: Any) -> str:
    """VALUE as a config file would spell it, short and printable."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + printable(value).replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return printable(str(value))


# --- decoders: raw TOML value -> typed value, or Invalid -----------------------------------

Decoder = Callable[[Any], Any]


INTERVAL_RANGE = (0.2, 3600.0)  # seconds between polls


def seconds(low: float, high: float) -> Decoder:
    def decode(value: Any) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not low <= value <= high:  # NaN fails the comparison too
            raise Invalid(f"must be a number of seconds from {low:g} to {high:g}")
        return float(value)

    return decode


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid("must be true or false (no quotes)")
    return value


def choice(*options: str) -> Decoder:
    def decode(value: Any) -> str:
        if value not in options:
            raise Invalid("must be one of " + ", ".join(f'"{o}"' for o in options))
        return value

    return decode


def _string(value: Any, what: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise Invalid(f"must be {what} (a quoted string)")
    if "\0" in value or len(value) > limit:
        raise Invalid(f"must be {what} (no NUL, at most {limit} characters)")
    return value


def name_text(value: Any) -> str:
    text = _string(value, "a name", 64)
    if not text or not text.isprintable():
        raise Invalid("must be a name (printable, not empty)")
    return text


def absolute_path(empty_is_none: bool) -> Decoder:
    what = 'an absolute path, or "" for none' if empty_is_none else "an absolute path"

    def decode(value: Any) -> Path | None:
        text = _string(value, what)
        if not text:
            if empty_is_none:
                return None
            raise Invalid(f"must be {what}")
        path = Path(os.path.expanduser(text))
        if not path.is_absolute():
            raise Invalid(f"must be {what} (~ is allowed)")
        return path

    return decode


_NETNS = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


def netns(value: Any) -> str | None:
    text = _string(value, "a network namespace name", 64)
    if not text:
        return None
    if not _NETNS.fullmatch(text):
        raise Invalid('must be a network namespace name (letters, digits, _ . -) or ""')
    return text


def string_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > 256:
        raise Invalid("must be a list of strings (at most 256)")
    return tuple(_string(v, "a list of strings") for v in value)


def systemd_bus(value: Any) -> SystemdBus:
    what = '"auto", "system", "private", "systemctl" or "unix:path=/absolute/socket"'
    text = _string(value, what, 1024)
    if text in ("auto", "system", "private", "systemctl"):
        return SystemdBus(text)
    path = text.removeprefix("unix:path=")
    if path == text or not path.startswith("/") or not path.isprintable() or "," in path:
        raise Invalid(f"must be {what}")
    return SystemdBus("path", Path(path))


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def environment(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > 64:
        raise Invalid('must be a table of NAME = "value" (at most 64)')
    out: dict[str, str] = {}
    for name, text in value.items():
        if not _ENV_NAME.fullmatch(name):
            raise Invalid("not an environment variable name (letters, digits, _)", name, text)
        if forbidden_env(name):
            raise Invalid(
                "may not be set here: it would choose the program that runs "
                f"(tools are found on a fixed PATH: {SAFE_PATH})",
                name,
                text,
            )
        try:
            out[name] = _string(text, "a string")
        except Invalid as exc:
            raise Invalid(str(exc), name, text) from None
    return out


_BINDING_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def keymap(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise Invalid('must be a table of binding id = "keys"')
    out: dict[str, str] = {}
    for ident, keys in value.items():
        if not _BINDING_ID.fullmatch(ident):
            raise Invalid("not a binding id (see the help screen, ?)", ident, keys)
        if isinstance(keys, dict):  # jobs.cancel = "x": TOML reads a dotted key as a table
            sub = next(iter(keys), "")
            raise Invalid(
                f'quote an id with a dot: "{ident}.{printable(sub, 64)}" = "…"', ident, keys
            )
        try:
            text = _string(keys, 'a key list, e.g. "f5" or "r,f5"', 256)
        except Invalid as exc:
            raise Invalid(str(exc), ident, keys) from None
        problem = keys_problem(text)
        if problem:
            raise Invalid(printable(problem, 200), ident, keys)
        out[ident] = normalize_list(text)  # as Textual names the keys of its events
    return out


def detach_key(value: Any) -> str:
    text = _string(value, 'a key name like "ctrl+]"', 64)
    problem = detach_key_problem(text)
    if problem:
        raise Invalid(printable(problem, 200))
    return text.strip()


def size_key(value: Any) -> str:
    """The console's key that types the pane's size into the guest: like the detach key, one
    the guest never needs (it is taken by the pane)."""
    text = _string(value, 'a key name like "f12"', 64)
    problem = detach_key_problem(text)
    if problem:
        raise Invalid(printable(problem.replace("ctrl+]", "f12"), 200))
    return text.strip()


LOCAL_HOST = "local"  # the name of this machine among the hosts
_HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# A host's own settings beside how to reach it: its poll interval (a far host may want a slower
# one) and read_only (look at that host, change nothing there, whatever its agent could do).
HOST_KEYS = ("ssh", "agent", "interval", "read_only")


def remote_host(name: str, value: Any) -> RemoteHost:
    """One [hosts.NAME] table. ``ssh``: "user@host" or a list of ssh arguments (options, then
    the destination); ``agent``: the remote command (default "microvm-tui agent")."""
    if not isinstance(value, dict):
        raise Invalid("must be a table ([hosts.NAME] with ssh = ...)")
    unknown = [k for k in value if k not in HOST_KEYS]
    if unknown:
        raise Invalid(f"unknown key (known: {', '.join(HOST_KEYS)})", unknown[0], value[unknown[0]])
    if "ssh" not in value:
        raise Invalid('needs ssh = "user@host" (or a list of ssh arguments)')
    raw = value["ssh"]
    try:
        if isinstance(raw, str):
            dest = _string(raw, '"user@host"', 256)
            if not dest or dest.startswith("-") or any(c.isspace() for c in dest):
                raise Invalid('must be "user@host" (no spaces, not starting with -) or a list')
            args: tuple[str, ...] = (dest,)
        else:
            args = string_list(raw)
            if not args or args[-1].startswith("-"):
                raise Invalid("must end with the destination (user@host)")
    except Invalid as exc:
        raise Invalid(str(exc), "ssh", raw) from None
    bad = hostkey_check_disabled(args)
    if bad is not None:
        raise Invalid(f"{printable(bad)} turns host-key checking off: not allowed", "ssh", raw)
    agent = value.get("agent", DEFAULT_AGENT)
    if isinstance(agent, list):
        import shlex

        agent = shlex.join(string_list(agent))
    try:
        agent = _string(agent, "a command line", 1024)
    except Invalid as exc:
        raise Invalid(str(exc), "agent", agent) from None
    if not agent.strip() or not agent.isprintable():
        raise Invalid("must be a command line (printable, not empty)", "agent", agent)
    extra: dict[str, Any] = {}
    for key, decode in (("interval", seconds(*INTERVAL_RANGE)), ("read_only", boolean)):
        if key in value:
            try:
                extra[key] = decode(value[key])
            except Invalid as exc:
                raise Invalid(str(exc), key, value[key]) from None
    return RemoteHost(name=name, ssh=args, agent=agent, **extra)


def hosts_table(value: Any) -> dict[str, RemoteHost]:
    if not isinstance(value, dict) or len(value) > 256:
        raise Invalid("must be tables [hosts.NAME] (at most 256)")
    out: dict[str, RemoteHost] = {}
    for name, table in value.items():
        if not _HOST_NAME.fullmatch(name) or name == LOCAL_HOST:
            raise Invalid(
                f"not a host name (letters, digits, _ . -; {LOCAL_HOST!r} is this machine)",
                name,
                table,
            )
        try:
            out[name] = remote_host(name, table)
        except Invalid as exc:
            sub = name if exc.sub is None else f"{name}.{exc.sub}"
            raise Invalid(str(exc), sub, table if exc.sub is None else exc.value) from None
    return out


def cache_url(value: Any) -> str | None:
    text = _string(value, 'a binary cache URL, e.g. "https://cache.example.org"', 1024).strip()
    if not text:
        return None
    if text.startswith("-") or "://" not in text or any(c.isspace() for c in text):
        raise Invalid('must be a binary cache URL like "https://cache.example.org" or ""')
    return text


def build_url(value: Any) -> str | None:
    text = _string(value, "a URL with {name}", 1024).strip()
    if not text:
        return None
    if not text.startswith(("http://", "https://")) or "{name}" not in text:
        raise Invalid(
            'must be an http(s) URL with {name} in it, e.g. "https://hydra/job/{name}/latest"'
        )
    return text


def count(low: int, high: int) -> Decoder:
    def decode(value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise Invalid(f"must be a whole number from {low} to {high}")
        return value

    return decode
