"""The monitor's source on a host bigger than its runner cache's starting size (256)."""

from __future__ import annotations

from pathlib import Path

from tests.synthetic_host import make_host
from tui.host.settings import HostSettings


def _settings(state: Path, tmp_path: Path, cache_dir: Path | None = None) -> HostSettings:
    return HostSettings(
        state_dir=state,
        systemd_scope="user",
        systemd_env={"XDG_RUNTIME_DIR": str(tmp_path / "no-manager")},  # systemd not asked
        cache_dir=cache_dir,
    )


def test_a_host_that_grows_is_parsed_once_not_at_every_poll(tmp_path: Path) -> None:
    from tui.feed import LiveSource

    state = make_host(tmp_path, 10)
    source = LiveSource(_settings(state, tmp_path))
    source.runners.immutable_roots = (str(tmp_path / "store") + "/",)  # the fake Nix store
    try:
        source.listing()
        make_host(tmp_path, 300)  # 290 more VMs while the monitor runs
        first, _ = source.listing()
        assert len(first.vms) == 300 and all(vm.vcpu == 2 for vm in first.vms)
        parsed = source.runners.misses
        assert parsed == 300
        for _ in range(2):
            source.listing()
        assert source.runners.misses == parsed  # every runner came from the cache
    finally:
        source.close()


def test_the_parses_on_disk_are_all_taken_at_start(tmp_path: Path) -> None:
    """`list` keeps every parse on disk; the monitor starts from all of them, not 256."""
    from tui.feed import LiveSource
    from tui.host.inventory import list_vms

    state = make_host(tmp_path, 300, nix_store=True)
    cache = tmp_path / "cache"
    list_vms(_settings(state, tmp_path, cache), links=False)
    source = LiveSource(_settings(state, tmp_path, cache))
    try:
        assert len(source.runners) == 300
        inv, _ = source.listing()
        assert len(inv.vms) == 300 and source.runners.misses == 0
    finally:
        source.close()
