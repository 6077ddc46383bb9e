"""Deploy in the lab as an admin would: CI (``lab publish``) pushes a new runner of a VM to the
lab's signed cache and its build server; the deploy finds it through the server's Hydra JSON,
copies it with `nix copy --from` (signature checked against the key the lab's nix trusts), and
switches it in, keeping `old`."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

import pytest

from tui.config import load_settings
from tui.host.actions import operations as ops
from tui.host.actions.deploy import deploy

pytestmark = pytest.mark.lab


def test_the_labs_config_names_its_cache_and_build_server(lab) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(lab.config_path)
    assert settings.deploy == lab.deploy_source
    assert settings.deploy.hydra_url.startswith("http://127.0.0.1:")
    url = settings.deploy.hydra_url.replace("{name}", "nosuch")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(url, timeout=5)


def test_deploy_what_ci_published(lab) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(lab.config_path)
    vm_dir = settings.host.state_dir / "idle"
    before = os.readlink(vm_dir / "current")
    published = lab.buildserver.publish(lab.flake_dir, "idle", 42)
    assert published != before and not os.path.exists(published)
    try:
        lines: list[str] = []
        outcome = deploy(
            settings.host, "idle", ops.Reporter(log=lines.append), source=settings.deploy
        )
        assert outcome.changed and os.readlink(vm_dir / "current") == published
        assert os.readlink(vm_dir / "old") == before
        assert "lab.ci-build=42" in (vm_dir / "current" / "bin" / "microvm-run").read_text()
    finally:
        ops.rollback(settings.host, "idle")
    assert os.readlink(vm_dir / "current") == before
