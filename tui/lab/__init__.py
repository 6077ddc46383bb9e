"""A throwaway but real microvm.nix host in a folder, for the demo and the integration tests.

`Lab(ROOT).up()` makes ROOT look, to the rest of microvm-tui, exactly like a microvm.nix host:
a flake without inputs whose `nixosConfigurations.NAME.config.microvm.declaredRunner` are runner
packages in microvm.nix's layout (flake.py, files/flake.nix; guest kernel/initramfs: guest.py),
state dirs made the way `microvm -c` makes them (nix.py), a systemd user manager with the
microvm@ unit templates (systemd.py), taps in a network namespace of the lab's own (netns.py), and
ROOT/microvm-tui.toml pointing the app at it (config.py). No Textual here.
"""

from tui.lab.cli import main
from tui.lab.lab import Lab, LabError
from tui.lab.vms import VmSpec, default_vms

__all__ = ["Lab", "LabError", "VmSpec", "default_vms", "main"]
