"""QMP doubles: a listener that accepts and never speaks, and a scripted QMP server."""

from __future__ import annotations

import json
import os
import socket
import socketserver
import threading
from collections.abc import Iterator
from typing import Any


class HungQMPListener:
    """A unix socket that accepts connections and never sends a greeting (a wedged qemu, or
    one whose QMP socket another client holds)."""

    def __init__(self, path: str) -> None:
        self.path = path
        if os.path.exists(path):
            os.unlink(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(64)
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)  # held open, never answered

    @property
    def accepted(self) -> int:
        return len(self._conns)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self._conns:
            conn.close()
        self._sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


def json_stream(conn: socket.socket) -> Iterator[dict[str, Any]]:
    """The JSON objects a client sends, as qemu's monitor reads them: a stream of objects,
    newlines optional (qemu.qmp sends none)."""
    decoder = json.JSONDecoder()
    buf = ""
    while chunk := conn.recv(65536):
        buf += chunk.decode()
        while buf.strip():
            try:
                message, end = decoder.raw_decode(buf.lstrip())
            except ValueError:
                break  # the rest of it is still on its way
            buf = buf.lstrip()[end:]
            yield message


class FakeQMPServer:
    """Speaks QMP like qemu 7.2 for the queries the sampler makes (greeting,
    qmp_capabilities, then one reply per command, echoing ``id``), with an asynchronous
    event before each reply to prove clients skip events. Many clients at once (unlike qemu):
    it is for benchmarks and tests of the client, not of qemu's one-client rule."""

    GREETING = {
        "QMP": {
            "version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "fake"},
            "capabilities": ["oob"],
        }
    }

    def __init__(self, path: str, *, thread_id: int = 1, mem_bytes: int = 64 << 20) -> None:
        self.path = path
        self.replies: dict[str, Any] = {
            "qmp_capabilities": {},
            "query-status": {"status": "running", "singlestep": False, "running": True},
            "query-cpus-fast": [
                {
                    "thread-id": thread_id,
                    "props": {"core-id": 0, "thread-id": 0, "socket-id": 0},
                    "qom-path": "/machine/unattached/device[0]",
                    "cpu-index": 0,
                    "target": "x86_64",
                }
            ],
            "query-memory-size-summary": {"base-memory": mem_bytes, "plugged-memory": 0},
            "query-balloon": {"actual": mem_bytes},
            "qom-get": {"stats": {}, "last-update": 0},
            "qom-set": {},
            "query-blockstats": [
                {
                    "device": "vd0",
                    "qdev": "/machine/peripheral-anon/device[1]/virtio-backend",
                    "stats": {"rd_bytes": 0, "wr_bytes": 0, "rd_operations": 0},
                }
            ],
        }
        self.errors: dict[str, dict[str, str]] = {}
        if os.path.exists(path):
            os.unlink(path)
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self._write(fake.GREETING)
                for request in json_stream(self.request):
                    command = request.get("execute")
                    self._write({"event": "NIC_RX_FILTER_CHANGED", "data": {}})
                    reply: dict[str, Any]
                    if command in fake.errors:
                        reply = {"error": fake.errors[command]}
                    elif command in fake.replies:
                        reply = {"return": fake.replies[command]}
                    else:
                        reply = {
                            "error": {
                                "class": "CommandNotFound",
                                "desc": f"The command {command} has not been found",
                            }
                        }
                    if "id" in request:
                        reply["id"] = request["id"]
                    self._write(reply)

            def _write(self, message: dict[str, Any]) -> None:
                self.wfile.write(json.dumps(message).encode() + b"\r\n")
                self.wfile.flush()

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self._server = Server(path, Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if os.path.exists(self.path):
            os.unlink(self.path)


class PushingQMPServer:
    """A hostile QMP server: it greets (GREETING), then pushes BODY whatever the client asks,
    every EVERY seconds (0: as fast as the socket takes it; None: once), until the client
    goes. An event drip, an event flood, a huge or broken reply. ``sent`` counts the bytes
    pushed, so a test can tell the flood really flowed."""

    GREETING = json.dumps(FakeQMPServer.GREETING).encode() + b"\r\n"

    def __init__(
        self, path: str, body: bytes, *, every: float | None = None, greeting: bytes = GREETING
    ) -> None:
        self.path, self.body, self.every, self.greeting = path, body, every, greeting
        self.sent = 0
        if os.path.exists(path):
            os.unlink(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(8)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._push, args=(conn,), daemon=True).start()

    def _push(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.sendall(self.greeting)
                while not self._stop.is_set():
                    conn.sendall(self.body)
                    self.sent += len(self.body)
                    if self.every is None:
                        while conn.recv(1 << 16):  # held open until the client goes
                            pass
                        return
                    if self.every:
                        self._stop.wait(self.every)
            except OSError:  # the client went away: what a client must do
                return

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(2)
        if os.path.exists(self.path):
            os.unlink(self.path)
