"""Start-up: what the app's first frame needs is imported at start, the screens and managers
only used later are imported when first used (each module costs import CPU at launch)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LATER = (
    "tui.screens.jobs",
    "tui.screens.create",
    "tui.screens.deploy",
    "tui.screens.console",
    "tui.screens.logs",
    "tui.screens.checks",
    "tui.host.console",
    "tui.commands",
)


def test_launching_imports_no_screen_that_is_not_shown() -> None:
    code = (
        f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); "
        "import tui.cli, tui.feed, tui.app; print(json.dumps(sorted(sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(json.loads(proc.stdout))
    assert "tui.screens.main" in loaded  # the check sees what the app imports
    early = sorted(m for m in loaded if m in LATER or m.startswith(tuple(f"{x}." for x in LATER)))
    assert not early, early
