"""Keep pytest-textual-snapshot SVGs in the repository's top-level ``snapshots/`` folder.

How pytest-textual-snapshot 1.1.0 stores snapshots: its ``snap_compare`` fixture does
``snapshot.use_extension(SVGImageExtension)`` (syrupy), reading the module global
``pytest_textual_snapshot.SVGImageExtension`` each time the fixture is set up.
``SVGImageExtension`` is a syrupy ``SingleFileSnapshotExtension``: one file per snapshot at
``<dir of the test file>/__snapshots__/<test module>/<test name>.svg``.

The danger with ``--snapshot-update``: at the end of the session syrupy *deletes* every file it
discovered under that directory that no test of the run used (``SnapshotReport.unused`` +
``SnapshotSession.remove_unused_snapshots``; files it cannot attribute to an extension are
unlinked outright). Its filtering by selected tests is heuristic (``-k``, ``::node``,
deselection, skips...), so a partial update run can remove other tests' snapshots.

What this module does:

* :class:`TopLevelSVGExtension` stores ``snapshots/<test module>/<test name>.svg`` at the
  repository root;
* it *discovers nothing* and *deletes nothing*: syrupy then has no "unused" snapshots, so no
  run, partial or not, can delete a file. The price: stale SVGs of removed tests are not
  reported; delete them by hand (``git rm snapshots/<module>/<test>.svg``).
* :func:`snapshots_in_top_level_folder` is an autouse fixture that swaps the extension in for
  ``snap_compare`` (autouse fixtures are set up before ``snap_compare``; monkeypatch undoes it).

Use it -- either for every test, with this one line in ``tests/conftest.py``::

    from tests.snapshot_support import snapshots_in_top_level_folder  # noqa: F401

or per snapshot-test module, with the same line at the top of that module. Then use
``snap_compare`` as documented by pytest-textual-snapshot, and create or refresh snapshots with
``pytest tests/test_x.py --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_textual_snapshot
from pytest_textual_snapshot import SVGImageExtension
from syrupy.data import SnapshotCollections

if TYPE_CHECKING:
    from syrupy.location import PyTestLocation

SNAPSHOTS_DIR = Path(__file__).resolve().parent.parent / "snapshots"


class TopLevelSVGExtension(SVGImageExtension):
    """pytest-textual-snapshot's SVG extension, rooted at ``snapshots/`` and never deleting."""

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        # One folder per test module, like syrupy's own single-file layout, so tests with the
        # same name in two modules cannot collide.
        return str(SNAPSHOTS_DIR / test_location.basename)

    def discover_snapshots(self, *, test_location: PyTestLocation) -> SnapshotCollections:
        # Nothing discovered -> nothing "unused" -> syrupy never deletes a snapshot file.
        return SnapshotCollections()

    def delete_snapshots(self, *, snapshot_location: str, snapshot_names: set[str]) -> None:
        return None  # belt and braces: refuse even if asked


@pytest.fixture(autouse=True)
def snapshots_in_top_level_folder(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make ``snap_compare`` read and write ``snapshots/<module>/<test>.svg``."""
    monkeypatch.setattr(pytest_textual_snapshot, "SVGImageExtension", TopLevelSVGExtension)
    yield
