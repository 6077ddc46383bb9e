"""The detail pane under the VM table and its tabs, one module per tab (``overview``,
``history``, ``network``, ``storage``, ``shares``, ``units``) on shared blocks (``base``)."""
