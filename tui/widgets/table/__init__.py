"""A row table on public Textual APIs: a ScrollView drawing cached row strips (Line API).

``RowTable`` holds rows of Rich ``Text`` cells keyed by a string; a row's cells are rendered
through Rich once per (row key, content version, column widths) and its styled strip once per
(that, zebra parity, cursor, hover, styles), so a sort or a cursor move only reorders keys and
draws the visible rows from cache, and an update renders only the rows that changed.
"""

from tui.widgets.table.columns import Column
from tui.widgets.table.row_cache import RenderStats
from tui.widgets.table.table import RowTable

__all__ = ["Column", "RenderStats", "RowTable"]
