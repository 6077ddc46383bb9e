"""Things the TUI does to a microvm.nix host: create, update, rollback, start, stop, delete.

No Textual here: every action is a plain function a script can call, and ``jobs.JobRunner``
runs them in threads for the UI.

- ``operations``: ``create``, ``update``, ``rollback``, ``start``, ``stop``, ``restart``,
  ``force_stop``, ``delete`` (and ``ACTIONS``, by name). Each is
  ``action(settings, name, reporter=None, cancel=None, **options) -> Outcome``. A package:
  ``common`` (what every action shares), ``build`` (create, update, rollback), ``units``
  (systemd), ``removal`` (delete).
- ``jobs``: ``JobRunner`` (submit / cancel / wait / drain / shutdown) and the ``Job`` snapshots
  it hands to its listener.
- ``nix``: ``build`` (internal-json progress, cancellable, returns the out path) and
  ``diff_closures``. ``nixlog``: the internal-json parser and its ``Progress``.
- ``commands``: ``run`` (argv only, recorded as ``CommandRecord``, SIGINT/SIGTERM/SIGKILL on
  cancel). ``lock``: the per-VM flock. ``cancel``: ``CancelToken``. ``errors``: what fails.
- ``symlinks``: reading the state dir's links, and switching `current`/`old` all or none
  (on ``tui.host.safefs``, which makes every file and link the actions write).

Example::

    from tui.host.actions import operations as ops
    from tui.host.settings import HostSettings

    outcome = ops.update(HostSettings(), "web", ops.Reporter(log=print))
    print(outcome.message, outcome.diff)
"""
