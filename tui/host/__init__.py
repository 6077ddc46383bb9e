"""The host layer: reads and changes a microvm.nix host. Never imports Textual."""
