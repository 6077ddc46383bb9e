"""Deploy a prebuilt runner from a binary cache with real nix: a runner built elsewhere (here:
built, copied to a signed file:// cache, deleted from the store), found through a Hydra-shaped
JSON answer from a real HTTP server on 127.0.0.1, copied with `nix copy --from`, switched in
with `old` kept; an unsigned path is refused with nix's reason and nothing changes; hostile
build-server answers are refused in one line."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_actions_support import (
    NIX_OPTIONS,
    FlakeDir,
    make_settings,
    new_gcroots_dir,
    write_flake,
)
from tui.host.actions import operations as ops
from tui.host.actions.deploy import deploy, latest_build
from tui.host.actions.errors import CommandFailed, Refused
from tui.host.settings import DeploySource, HostSettings

pytestmark = pytest.mark.skipif(shutil.which("nix") is None, reason="needs nix")
NIX = ["nix", *NIX_OPTIONS]


def _nix(*args: str) -> str:
    proc = subprocess.run([*NIX, *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def gcroots_parent() -> Iterator[Path]:
    path = new_gcroots_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A signed binary cache (its key made by nix-store --generate-binary-cache-key) and an
    unsigned one, both file://."""
    root = tmp_path_factory.mktemp("cache")
    secret, public = root / "secret", root / "public"
    subprocess.run(
        ["nix-store", "--generate-binary-cache-key", "mvtui-test-cache-1", secret, public],
        check=True,
    )
    return {
        "signed": f"file://{root / 'signed'}",
        "unsigned": f"file://{root / 'unsigned'}",
        "secret": str(secret),
        "public": public.read_text().strip(),
    }


@pytest.fixture
def flake(tmp_path: Path) -> FlakeDir:
    return write_flake(tmp_path / "flake", {"web": "ok"})


@pytest.fixture
def settings(tmp_path: Path, gcroots_parent: Path, cache: dict[str, str]) -> HostSettings:
    runtime = tmp_path / "no-systemd"
    runtime.mkdir()
    base = make_settings(
        tmp_path / "state",
        gcroots_parent / tmp_path.name,
        systemd_scope="user",
        systemd_env={"XDG_RUNTIME_DIR": str(runtime)},
    )
    # The host trusts the cache's key, as an admin's nix.settings.trusted-public-keys would.
    options = (*base.nix_options, "--option", "trusted-public-keys", cache["public"])
    return HostSettings(**{**base.__dict__, "nix_options": options})


def _prebuilt(flake: FlakeDir, version: str, to: str) -> str:
    """What CI does: build the runner, push it to a cache; then it leaves this store."""
    flake.set_version(version)
    built = _nix(
        "build",
        "--no-link",
        "--json",
        f"{flake.ref}#nixosConfigurations.web.config.microvm.declaredRunner",
    )
    path = json.loads(built)[0]["outputs"]["out"]
    _nix("copy", "--to", to, path)
    _nix("store", "delete", path)
    assert not os.path.exists(path)
    return path


def links(vm_dir: Path) -> dict[str, str | None]:
    return {
        n: os.readlink(vm_dir / n) if (vm_dir / n).is_symlink() else None
        for n in ("current", "old")
    }


@pytest.fixture
def hydra() -> Iterator[dict[str, object]]:
    """A build server on 127.0.0.1 answering /job/NAME/latest with what ``answers`` holds."""
    answers: dict[str, object] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = answers.get(self.path)
            if body is None:
                self.send_error(404)
                return
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    answers["url"] = f"http://127.0.0.1:{server.server_address[1]}/job/{{name}}/latest"
    yield answers
    server.shutdown()
    server.server_close()


def _signed(cache: dict[str, str]) -> str:
    return f"{cache['signed']}?secret-key={cache['secret']}"


def test_deploy_from_a_signed_cache_through_hydras_json(
    settings: HostSettings, flake: FlakeDir, cache: dict[str, str], hydra: dict[str, object]
) -> None:
    ops.create(settings, "web", flake=flake.ref)
    vm_dir = settings.state_dir / "web"
    before = links(vm_dir)["current"]
    new = _prebuilt(flake, "2", _signed(cache))
    hydra["/job/web/latest"] = {"buildoutputs": {"out": {"path": new}}, "id": 7}
    source = DeploySource(cache=cache["signed"], hydra_url=str(hydra["url"]))
    lines: list[str] = []
    outcome = deploy(settings, "web", ops.Reporter(log=lines.append), source=source)
    assert outcome.changed and outcome.out_path == new
    assert links(vm_dir) == {"current": new, "old": before}
    assert os.path.isfile(os.path.join(new, "bin", "microvm-run"))  # really copied back
    assert os.readlink(settings.gcroots_dir / "old-web") == str(vm_dir / "old")
    assert any(line.startswith("diff: ") for line in lines)
    assert "deployed web" in outcome.message
    # Deploying it again changes nothing.
    again = deploy(settings, "web", source=source, store_path=new)
    assert not again.changed and links(vm_dir) == {"current": new, "old": before}


def test_an_unsigned_path_is_refused_with_nixs_reason(
    settings: HostSettings, flake: FlakeDir, cache: dict[str, str]
) -> None:
    ops.create(settings, "web", flake=flake.ref)
    vm_dir = settings.state_dir / "web"
    before = links(vm_dir)
    new = _prebuilt(flake, "3", cache["unsigned"])
    with pytest.raises(CommandFailed) as failed:
        deploy(settings, "web", source=DeploySource(cache=cache["unsigned"]), store_path=new)
    assert "signature" in str(failed.value) + failed.value.details
    assert links(vm_dir) == before and not os.path.exists(new)
    # Only the admin's own setting passes --no-check-sigs.
    source = DeploySource(cache=cache["unsigned"], check_sigs=False)
    assert deploy(settings, "web", source=source, store_path=new).out_path == new


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (b"not json", "did not answer Hydra's JSON"),
        ({"buildoutputs": {}}, "did not answer Hydra's JSON"),
        ({"buildoutputs": {"out": {"path": "/etc/passwd"}}}, "not a store path"),
        ({"buildoutputs": {"out": {"path": ["x"]}}}, "is not a string"),
        (b"[" * (2 << 20), "more than"),
    ],
)
def test_hostile_build_server_answers_are_refused(
    hydra: dict[str, object], answer: object, why: str
) -> None:
    hydra["/job/web/latest"] = answer
    with pytest.raises(Refused, match=why):
        latest_build(str(hydra["url"]), "web")


def test_a_missing_job_and_a_typed_non_store_path(
    settings: HostSettings, hydra: dict[str, object]
) -> None:
    with pytest.raises(Refused, match="answered 404"):
        latest_build(str(hydra["url"]), "nosuch")
    with pytest.raises(Refused, match="not a store path"):
        deploy(settings, "web", source=DeploySource(cache="file:///x"), store_path="/tmp/evil")
