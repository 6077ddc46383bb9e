"""Deploy a prebuilt runner (the microvm.nix FAQ's "deploy imperatively from CI"): take the
store path typed by the admin or the latest build from a Hydra-style JSON URL, copy it from a
binary cache with `nix copy --from`, then the same closure diff, atomic switch, ``old`` GC
root and restart question as update (``operations.install_runner``).

Signatures are nix's business: the copy is checked against the host's trusted keys as nix is
configured, and an unsigned or untrusted path is refused with nix's own reason.
``--no-check-sigs`` is passed only when the admin set ``[deploy] check_sigs = false``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re

from tui.host.actions import nix
from tui.host.actions.cancel import CancelToken
from tui.host.actions.commands import run
from tui.host.actions.errors import Cancelled, CommandFailed, Refused
from tui.host.actions.lock import vm_lock
from tui.host.actions.nixlog import strip_ansi
from tui.host.actions.operations import Outcome, Reporter, install_runner
from tui.host.actions.operations.common import (
    begin,
    clean_debris,
    existing_vm_dir,
    refuse_declarative,
)
from tui.host.actions.symlinks import read_link, temp_name
from tui.host.settings import DeploySource, HostSettings
from tui.host.text import sanitise

# A store path: the hash in nix's base-32 alphabet, a name of the characters nix allows.
STORE_PATH = re.compile(r"/nix/store/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]+\Z")
MAX_JSON_BYTES = 1 << 20
HTTP_TIMEOUT = 10.0
COPY_TIMEOUT = 3600.0


def store_path_problem(path: str) -> str | None:
    if not STORE_PATH.match(path):
        return f"not a store path: {sanitise(path, 120)!r} (expected /nix/store/HASH-NAME)"
    return None


def latest_build(template: str, name: str, timeout: float = HTTP_TIMEOUT) -> str:
    """The out path of the latest build of NAME's runner: TEMPLATE with {name} replaced is
    fetched (http or https only) and its JSON's ``buildoutputs.out.path`` read. The answer is
    untrusted: bounded, its shape checked, the path validated. Raises Refused."""
    import urllib.error  # here: only a deploy needs an HTTP client
    import urllib.request

    url = template.replace("{name}", urllib.parse.quote(name, safe=""))
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise Refused(f"the build URL must be http or https: {sanitise(url, 200)}")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = answer.read(MAX_JSON_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise Refused(f"{sanitise(url, 200)} answered {exc.code} {sanitise(exc.reason)}") from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Refused(f"cannot fetch {sanitise(url, 200)}: {sanitise(reason)}") from exc
    if len(body) > MAX_JSON_BYTES:
        raise Refused(f"{sanitise(url, 200)} answered more than {MAX_JSON_BYTES} bytes")
    try:
        data = json.loads(body)
        path = data["buildoutputs"]["out"]["path"]
    except (ValueError, KeyError, TypeError) as exc:
        raise Refused(
            f"{sanitise(url, 200)} did not answer Hydra's JSON with buildoutputs.out.path"
        ) from exc
    if not isinstance(path, str):
        raise Refused(f"{sanitise(url, 200)}: buildoutputs.out.path is not a string")
    problem = store_path_problem(path)
    if problem:
        raise Refused(f"{sanitise(url, 200)}: {problem}")
    return path


def copy_argv(settings: HostSettings, source: DeploySource, path: str) -> list[str]:
    if not source.cache:
        raise Refused('no binary cache is set: add `[deploy] cache = "URL"` to the config')
    args = ["copy", "--from", source.cache]
    if not source.check_sigs:
        args.append("--no-check-sigs")
    return nix.nix_argv(settings, *args, "--", path)


def _copy(
    settings: HostSettings,
    source: DeploySource,
    path: str,
    reporter: Reporter,
    cancel: CancelToken,
) -> None:
    result = run(
        copy_argv(settings, source, path),
        env=settings.command_env(),
        log=reporter.command,
        cancel=cancel,
        timeout=COPY_TIMEOUT,
    )
    if result.cancelled:
        raise Cancelled("the copy was cancelled")
    if result.returncode != 0:
        raise CommandFailed(
            f"nix copy --from {source.cache} failed", strip_ansi(result.error_text())
        )


def resolve_path(name: str, source: DeploySource, store_path: str | None) -> str:
    """The store path to deploy: the typed one, or the latest build from the URL."""
    if store_path:
        problem = store_path_problem(store_path.strip())
        if problem:
            raise Refused(problem)
        return store_path.strip()
    if not source.hydra_url:
        raise Refused('type a store path, or set `[deploy] hydra_url = "https://…/{name}/latest"`')
    return latest_build(source.hydra_url, name)


def deploy(
    settings: HostSettings,
    name: str,
    reporter: Reporter | None = None,
    cancel: CancelToken | None = None,
    *,
    source: DeploySource,
    store_path: str | None = None,
    restart: bool = False,
) -> Outcome:
    reporter, cancel, state = begin(settings, name, reporter, cancel)
    path = resolve_path(name, source, store_path)
    reporter.log(f"deploying {path}")
    with vm_lock(state, name):
        clean_debris(state, name, reporter)
        vm_dir = existing_vm_dir(state, name)
        refuse_declarative(vm_dir, name, "deployed")
        previous = read_link(vm_dir / "current")
        _copy(settings, source, path, reporter, cancel)
        cancel.check("deploy")
        # Root the copy until the switch roots it for good: `nix build` of a store path
        # makes only the out link (the path is valid now, nothing is built).
        out_link = temp_name(vm_dir, "current.deploy")
        try:
            built = nix.build(settings, path, out_link, log=reporter.command, cancel=cancel)
            if not os.path.isfile(os.path.join(built.out_path, "bin", "microvm-run")):
                raise Refused(f"{path} is not a MicroVM runner (it has no bin/microvm-run)")
            return install_runner(
                settings, name, vm_dir, previous, built.out_path, reporter, cancel,
                restart=restart, verb="deployed",
            )  # fmt: skip
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(out_link)
