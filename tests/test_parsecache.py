"""The runner parses `list` keeps on disk (``parsecache``): a listing is the same with and
without the file, a warm run parses nothing, and a file that is foreign, torn, hostile or
from other code is ignored without a trace of it in the listing. Runners here are real Nix
store paths (``nix-store --add``), as on a host."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from tests.synthetic_host import make_host
from tui.host import inventory, parsecache, statedir
from tui.host.jsonout import inventory_to_json
from tui.host.settings import HostSettings
from tui.host.statedir import RunnerCache


@pytest.fixture(scope="module")
def store_host(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_host(tmp_path_factory.mktemp("host"), 3, nix_store=True)


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every runner parsed from its files, in order."""
    seen: list[Path] = []
    real = statedir.parse_runner_dir

    def spy(vm_dir: Path, runner: Path) -> tuple[statedir.RunnerParse, list[str]]:
        seen.append(runner)
        return real(vm_dir, runner)

    monkeypatch.setattr(statedir, "parse_runner_dir", spy)
    return seen


def settings(state: Path, cache: Path | None) -> HostSettings:
    return HostSettings(
        state_dir=state,
        systemd_scope="user",
        systemd_env={"XDG_RUNTIME_DIR": str(state.parent / "no-manager")},
        cache_dir=cache,
    )


def listing(state: Path, cache: Path | None) -> dict:
    return inventory_to_json(inventory.list_vms(settings(state, cache), links=False))


def test_runners_are_store_paths(store_host: Path) -> None:
    assert os.readlink(store_host / "vm0000" / "current").startswith("/nix/store/")


def test_warm_run_parses_nothing_and_lists_the_same(
    store_host: Path, tmp_path: Path, parses: list[Path]
) -> None:
    uncached = listing(store_host, None)
    assert len(parses) == 3
    cold = listing(store_host, tmp_path / "c")
    assert len(parses) == 6  # an empty cache parses every runner
    warm = listing(store_host, tmp_path / "c")
    assert len(parses) == 6  # ... and then none
    assert uncached == cold == warm
    assert warm["vms"][1]["vcpu"] == 2 and warm["vms"][1]["mem_mib"] == 512


def test_live_facts_are_read_on_a_warm_run(store_host: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c"
    listing(store_host, cache)
    image = store_host / "vm0002" / "vm0002-var.img"
    image.write_bytes(b"x" * 4096)
    try:
        warm = listing(store_host, cache)
        assert warm["vms"][2]["volumes"][0]["size_bytes"] == 4096
    finally:
        image.write_bytes(b"")


def test_a_new_runner_is_parsed(store_host: Path, tmp_path: Path, parses: list[Path]) -> None:
    """`current` moved to another store path: that one is parsed, the others come from disk."""
    cache = tmp_path / "c"
    listing(store_host, cache)
    vm = store_host / "vm0001"
    old = os.readlink(vm / "current")
    src = tmp_path / "microvm-qemu-vm0001"
    subprocess.run(["cp", "-r", old, str(src)], check=True)
    script = src / "bin" / "microvm-run"
    script.chmod(0o644)
    script.write_text(script.read_text().replace("-smp 2", "-smp 5"))
    new = subprocess.run(
        ["nix-store", "--add", str(src)], check=True, capture_output=True, text=True
    ).stdout.strip()
    os.replace(_symlink(new, vm / ".current.tmp"), vm / "current")
    try:
        del parses[:]
        data = listing(store_host, cache)
        assert [str(p) for p in parses] == [new]
        assert data["vms"][1]["vcpu"] == 5 and data["vms"][1]["drift"] == "stale"
    finally:
        os.replace(_symlink(old, vm / ".current.tmp"), vm / "current")


def _symlink(target: str, path: Path) -> Path:
    os.symlink(target, path)
    return path


def test_only_store_runners_are_kept(tmp_path: Path) -> None:
    state = make_host(tmp_path / "fake", 2)  # runners in a plain dir, which can change
    cache = tmp_path / "c"
    listing(state, cache)
    assert not (cache / parsecache.CACHE_FILE).exists()


@pytest.mark.parametrize("mode", [0o620, 0o602])
def test_a_file_others_can_write_is_ignored(
    store_host: Path, tmp_path: Path, parses: list[Path], mode: int
) -> None:
    cache = tmp_path / "c"
    listing(store_host, cache)
    (cache / parsecache.CACHE_FILE).chmod(mode)
    del parses[:]
    assert listing(store_host, cache) == listing(store_host, None)
    assert len(parses) == 6  # both runs parsed: the file was not trusted


def test_a_foreign_owner_is_ignored(store_host: Path, tmp_path: Path, parses: list[Path]) -> None:
    cache = tmp_path / "c"
    listing(store_host, cache)
    os.chown(cache / parsecache.CACHE_FILE, 65534, 65534)
    del parses[:]
    listing(store_host, cache)
    assert len(parses) == 3


def test_a_hostile_pickle_runs_nothing(store_host: Path, tmp_path: Path) -> None:
    """A file that would call a function when unpickled: refused, the listing is right."""
    cache = tmp_path / "c"
    cache.mkdir(mode=0o700)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple:
            return (os.mkdir, (str(marker),))

    (cache / parsecache.CACHE_FILE).write_bytes(pickle.dumps({"stamp": 0, "entries": Evil()}))
    (cache / parsecache.CACHE_FILE).chmod(0o600)
    assert listing(store_host, cache) == listing(store_host, None)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage", pickle.dumps([1, 2, 3]), pickle.dumps({"stamp": "old", "entries": {}})],
    ids=["empty", "garbage", "not-a-dict", "other-code"],
)
def test_a_bad_file_is_replaced(store_host: Path, tmp_path: Path, content: bytes) -> None:
    cache = tmp_path / "c"
    cache.mkdir(mode=0o700)
    path = cache / parsecache.CACHE_FILE
    path.write_bytes(content)
    path.chmod(0o600)
    assert listing(store_host, cache) == listing(store_host, None)
    runners = RunnerCache()
    assert parsecache.load(runners, cache)  # the listing wrote a good file over it
    assert len(runners) == 3


def test_entries_from_other_code_are_not_used(
    store_host: Path, tmp_path: Path, parses: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "c"
    listing(store_host, cache)
    monkeypatch.setattr(parsecache, "code_stamp", lambda: ("a newer parser",))
    del parses[:]
    listing(store_host, cache)
    assert len(parses) == 3


def test_an_unwritable_cache_dir_changes_nothing(store_host: Path, tmp_path: Path) -> None:
    """A cache dir that cannot be made (a file is in the way): the listing is whole."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert listing(store_host, blocker / "c") == listing(store_host, None)
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_a_failed_write_leaves_no_temp_files(store_host: Path, tmp_path: Path) -> None:
    """The rename over the old file fails (a directory is in its place): nothing is left."""
    cache = tmp_path / "c"
    (cache / parsecache.CACHE_FILE / "x").mkdir(parents=True)
    assert listing(store_host, cache) == listing(store_host, None)
    assert sorted(os.listdir(cache)) == [parsecache.CACHE_FILE]


def test_list_cli_uses_the_users_cache(store_host: Path, tmp_path: Path) -> None:
    """`microvm-tui list --json` writes $XDG_CACHE_HOME/microvm-tui and prints the same twice."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    argv = [sys.executable, "-m", "tui", "list", "--json", "--state-dir", str(store_host)]
    first = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    assert (tmp_path / "xdg" / "microvm-tui" / parsecache.CACHE_FILE).is_file()
    second = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    assert json.loads(first) == json.loads(second)
    assert [vm["name"] for vm in json.loads(second)["vms"]] == ["vm0000", "vm0001", "vm0002"]


def test_another_users_cache_dir_is_neither_read_nor_written(
    store_host: Path, tmp_path: Path, parses: list[Path]
) -> None:
    """Root under sudo with a user's $HOME: that user's cache dir is left alone."""
    cache = tmp_path / "c"
    listing(store_host, cache)
    os.chown(cache, 65534, 65534)
    before = (cache / parsecache.CACHE_FILE).stat()
    del parses[:]
    listing(store_host, cache)
    assert len(parses) == 3
    after = (cache / parsecache.CACHE_FILE).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
