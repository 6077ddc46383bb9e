"""What a runner's ``bin/microvm-run`` says about its VM, for every microvm.nix hypervisor.

The parsers live in ``dispatch`` and are loaded on first use: a `list` whose parses all come
from the disk cache (``tui.host.parsecache``) needs only ``sharefiles``'s dataclass.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PARSERS",
    "ConfigReader",
    "RunnerParseError",
    "apply_firecracker_config",
    "extract_command",
    "parse_runner",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tui.host.runners import dispatch

        return getattr(dispatch, name)
    raise AttributeError(f"module 'tui.host.runners' has no attribute '{name}'")
