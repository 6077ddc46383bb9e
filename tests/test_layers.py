"""The layering rule: tui/host never imports Textual; widgets never reach into the app."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def run_lint(config: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = [str(LINT_IMPORTS), "--no-cache"]
    if config is not None:
        argv += ["--config", str(config)]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)


def test_import_contracts_hold() -> None:
    proc = run_lint()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " 0 broken" in proc.stdout
    assert "The VT emulator (parser, screen model) imports no Textual and no UI KEPT" in proc.stdout
    assert "The data feed (snapshots, sources) builds on the host layer" in proc.stdout


def test_the_contract_catches_a_textual_import_in_host(tmp_path: Path) -> None:
    """The checker really bites: a host module importing textual breaks the contract."""
    pkg = tmp_path / "tui"
    (pkg / "host").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "host" / "__init__.py").write_text("")
    (pkg / "host" / "bad.py").write_text("import textual\n")
    config = tmp_path / "contracts.toml"
    config.write_text(
        textwrap.dedent(
            """
            [tool.importlinter]
            root_package = "tui"
            include_external_packages = true

            [[tool.importlinter.contracts]]
            name = "host never imports textual"
            type = "forbidden"
            source_modules = ["tui.host"]
            forbidden_modules = ["textual"]
            """
        )
    )
    proc = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode != 0, proc.stdout
    assert "tui.host.bad -> textual" in proc.stdout
