"""Host checks: the microvm.nix FAQ's problems and the leftovers its tracker reports, each found
cheaply, said in one line with the fix in words, and (for leftovers) cleaned on request.

``findings`` holds what a check finds, ``vm_checks`` the per-VM checks (block device access,
a virtiofs source replaced under a running virtiofsd, a journal share's machine-id), ``leftovers``
what a removed VM left behind (units, GC roots, taps, control sockets), ``clean`` the cleaning,
``report`` runs them all once (the app does so once a minute, off the poll).
"""
