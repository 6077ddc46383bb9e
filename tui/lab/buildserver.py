"""The lab's stand-in for a CI: a signed binary cache (``file://`` under the lab dir, its key
made by `nix-store --generate-binary-cache-key`, trusted through the lab's nix options) and a
small HTTP server on 127.0.0.1 answering Hydra's JSON (``/job/NAME/latest`` ->
``buildoutputs.out.path``) for the builds published to it.

``publish`` is what CI does for a VM: build its runner from a copy of the lab's flake with one
kernel parameter changed (so the path is new), push it to the cache, and drop it from the local
store again, so a deploy really copies it back with `nix copy --from`.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tui.host.names import is_valid_name
from tui.lab import nix

KEY_NAME = "microvm-tui-lab-cache-1"


class BuildServerError(RuntimeError):
    pass


class BuildServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "ci"
        self.cache_dir = self.dir / "cache"
        self.jobs_dir = self.dir / "jobs"
        self.secret = self.dir / "secret-key"
        self.public = self.dir / "public-key"
        self.pid_file = root / "run" / "buildserver.pid"
        self.port_file = root / "run" / "buildserver.port"

    @property
    def cache_url(self) -> str:
        return f"file://{self.cache_dir}"

    def public_key(self) -> str | None:
        try:
            return self.public.read_text().strip() or None
        except OSError:
            return None

    def nix_options(self) -> tuple[str, ...]:
        key = self.public_key()
        return ("--option", "trusted-public-keys", key) if key else ()

    def hydra_url(self) -> str | None:
        try:
            port = int(self.port_file.read_text())
        except (OSError, ValueError):
            return None
        return f"http://127.0.0.1:{port}/job/{{name}}/latest"

    def ensure_key(self) -> None:
        if self.public_key():
            return
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        subprocess.run(
            ["nix-store", "--generate-binary-cache-key", KEY_NAME, self.secret, self.public],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        """Start the HTTP server (once; its pid and port in the lab's run dir)."""
        if self.pid() is not None:
            return
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.port_file.unlink(missing_ok=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui.lab.buildserver", str(self.jobs_dir), str(self.port_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )
        self.pid_file.write_text(f"{proc.pid}\n")
        import time

        deadline = time.monotonic() + 10
        while self.hydra_url() is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BuildServerError("the lab's build server did not start")
            time.sleep(0.05)

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return (
            pid
            if b"tui.lab.buildserver" in cmdline and str(self.jobs_dir).encode() in cmdline
            else None
        )

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
        self.pid_file.unlink(missing_ok=True)
        self.port_file.unlink(missing_ok=True)

    def publish(self, flake_dir: Path, name: str, build: int) -> str:
        """CI's build number BUILD of NAME's runner: built, pushed, gone from the store."""
        if not is_valid_name(name):
            raise BuildServerError(f"not a VM name: {name!r}")
        self.ensure_key()
        work = self.dir / "flake"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(flake_dir, work, symlinks=True)
        doc = json.loads((work / "vms.json").read_text())
        if name not in doc["vms"]:
            raise BuildServerError(f"the lab has no VM {name}")
        doc["vms"][name]["kernelParams"].append(f"lab.ci-build={build}")
        (work / "vms.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        out = nix._nix(["build", "--no-link", "--json", nix.runner_attr(f"path:{work}", name)])
        path = json.loads(out)[0]["outputs"]["out"]
        nix._nix(["copy", "--to", f"{self.cache_url}?secret-key={self.secret}", path])
        subprocess.run(
            ["nix", *nix.NIX_OPTIONS, "store", "delete", path], capture_output=True, check=False
        )
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        answer = {"id": build, "job": name, "buildoutputs": {"out": {"path": path}}}
        (self.jobs_dir / f"{name}.json").write_text(json.dumps(answer) + "\n")
        return path


def serve(jobs_dir: Path, port_file: Path) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = self.path.split("/")
            # /job/NAME/latest
            if len(parts) != 4 or parts[1] != "job" or parts[3] != "latest":
                self.send_error(404)
                return
            name = parts[2]
            if not is_valid_name(name):
                self.send_error(404)
                return
            try:
                body = (jobs_dir / f"{name}.json").read_bytes()
            except OSError:
                self.send_error(404, "no build of this job")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = port_file.with_name(port_file.name + ".tmp")
    tmp.write_text(str(server.server_address[1]))
    tmp.replace(port_file)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), Path(sys.argv[2]))
