"""microvm-tui: a terminal manager for microvm.nix hosts."""

__version__ = "0.1.0"
