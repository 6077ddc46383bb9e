"""A threaded HTTP/1.1 server on a unix socket, the base of the hypervisor API fakes."""

from __future__ import annotations

import json
import os
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True


class UnixHTTPFake:
    """Answers GET requests from ``self.routes`` ({path: (status, json body)}).

    ``hang = True`` makes it accept connections and never answer (a wedged VMM).
    ``requests`` records the paths asked for.
    """

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.routes: dict[str, tuple[int, Any]] = {}
        self.hang = False
        self.requests: list[str] = []
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                fake.requests.append(self.path)
                if fake.hang:
                    fake._release.wait(30)
                    return
                status, body = fake.routes.get(self.path, (404, None))
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if not data:
                    self.end_headers()  # the client may hang up as soon as it has these
                    return
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def address_string(self) -> str:
                return "unix"

        if os.path.exists(socket_path):
            os.unlink(socket_path)
        self._server = _Server(socket_path, Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> UnixHTTPFake:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)

    def __enter__(self) -> UnixHTTPFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
