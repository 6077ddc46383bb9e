"""Things the TUI does to a microvm.nix host: create, update, rollback, start, stop, delete.

No Textual here: every action is a plain function (``operations``) that a script can call, and
``jobs.JobRunner`` runs them in threads for the UI. See each module's docstring.
"""
