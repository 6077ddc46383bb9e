"""The journal: each VM's unit lines and a guest's own journal, for the Logs view, the table's
problem counts, the Overview's last error and `microvm-tui logs`. No Textual here."""
