"""Settings: one typed object from config files, environment and flags, read once at start.

Files, later ones win: /etc/microvm-tui.toml, ~/.config/microvm-tui/config.toml, then the
file named by --config or $MICROVM_TUI_CONFIG. Flags win over all files. ``[keys]`` tables
merge (a later file remaps more bindings); every other value replaces.

A file is read only if nobody but root or us can have written it (``tui.host.trustedfile``).
Every value is decoded in one place, the schema (``TOP`` and ``HOST``): a bad one stops
the load with one line naming the file, the key, the value and what is allowed.

- ``decoders``: raw TOML value -> typed value, or ``Invalid`` (and ``printable``/``show``).
- ``schema``: ``Settings`` and the tables of keys (``HOST``, ``TOP``, ``DEPLOY``, ``BULK``).
- ``loader``: the files in order, the flags, ``ConfigError``.
"""

from __future__ import annotations

from tui.config.decoders import LOCAL_HOST, Invalid, printable, show
from tui.config.loader import (
    MAX_CONFIG_BYTES,
    SYSTEM_CONFIG,
    SYSTEM_CONFIG_ENV,
    ConfigError,
    load_file,
    load_settings,
    system_config,
    user_config,
)
from tui.config.schema import (
    BULK,
    DEPLOY,
    HOST,
    INTERVAL_RANGE,
    TIMEOUT_RANGE,
    TOP,
    Option,
    Settings,
)

__all__ = [
    "BULK",
    "DEPLOY",
    "HOST",
    "INTERVAL_RANGE",
    "LOCAL_HOST",
    "MAX_CONFIG_BYTES",
    "SYSTEM_CONFIG",
    "SYSTEM_CONFIG_ENV",
    "TIMEOUT_RANGE",
    "TOP",
    "ConfigError",
    "Invalid",
    "Option",
    "Settings",
    "load_file",
    "load_settings",
    "printable",
    "show",
    "system_config",
    "user_config",
]
