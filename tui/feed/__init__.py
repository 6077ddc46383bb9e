"""Where the monitor's data comes from: one ``Snapshot`` per poll, from a ``Source``.

- ``snapshot``: ``Snapshot`` (plain data), the ``Source`` protocol (``poll(focus) ->
  Snapshot``, called from a worker thread, never two at once), ``per_vm`` (each VM joined
  with its sample, history and journal figures, once per snapshot).
- ``live``: ``LiveSource``, this host (listing + systemd + links, then ``Sampler``).
- ``prefetch``: ``Prefetched``, a source's first polls started before the UI is up. A
  ``partial`` snapshot (the state dirs before systemd answered; on a big host first only a
  screenful of them, ``Inventory.unread`` counting the rest) is followed by a poll at once.
- ``replay`` + ``recording``: recorded snapshots played back, and their JSON format.

No Textual here (import-linter): the app and screens import this package, not the reverse.
"""

from tui.feed.live import REMOTE_EVERY, LiveSource
from tui.feed.prefetch import Prefetched
from tui.feed.replay import ReplaySource
from tui.feed.snapshot import Snapshot, Source, VMView, per_vm

__all__ = [
    "REMOTE_EVERY",
    "LiveSource",
    "Prefetched",
    "ReplaySource",
    "Snapshot",
    "Source",
    "VMView",
    "per_vm",
]
