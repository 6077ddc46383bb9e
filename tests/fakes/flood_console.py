"""FakeFloodConsole: a serial console socket whose "guest" prints as fast as its reader takes it.

A real guest under QEMU/TCG prints ~0.1-0.2 MB/s, which the pane keeps up with; this fake has no
such limit (hundreds of MB/s on loopback), so it shows what a flood faster than the emulator does
to the app: keys typed meanwhile must still reach the "guest" (``received``), and no byte may be
lost. One client at a time, like qemu's serial chardev. Used by the console tests and by
``bench/console_latency.py --flood``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class FakeFloodConsole:
    """Serve PATH; once a client connects, send PAYLOAD until TOTAL bytes went out (then
    ``done_marker``), as fast as the client reads. Bytes the client sends are kept in
    ``received``, and in ``arrivals`` with their arrival times (``time.perf_counter``) and how much
    of the flood had been sent by then."""

    def __init__(
        self,
        path: str,
        payload: bytes,
        total: int,
        done_marker: bytes = b"\r\nFLOOD-DONE\r\n",
        hold: bool = False,
    ) -> None:
        self.path = path
        self.payload = payload
        self.total = total
        self.done_marker = done_marker
        self.sent = 0
        self.received = bytearray()
        self.arrivals: list[tuple[float, bytes, int]] = []  # (when, bytes, flood sent by then)
        self.go = threading.Event()  # the flood begins (at once unless HOLD: then on go.set())
        if not hold:
            self.go.set()
        self.started = threading.Event()  # a client connected and the flood began
        self.finished = threading.Event()  # every byte (and the marker) was sent
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        self._listener.listen(1)
        self._client: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        thread = threading.Thread(target=self._serve, name="fake-flood-accept", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _serve(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        self._client = client
        reader = threading.Thread(target=self._read, args=(client,), daemon=True)
        reader.start()
        self._threads.append(reader)
        while not self.go.wait(0.1):
            if self._stop.is_set():
                return
        self.started.set()
        view = memoryview(self.payload)
        try:
            while self.sent < self.total and not self._stop.is_set():
                piece = view[: min(len(view), self.total - self.sent)]
                client.sendall(piece)  # blocks while the reader is behind: a guest's UART would
                self.sent += len(piece)
            client.sendall(self.done_marker)
        except OSError:
            return
        self.finished.set()

    def _read(self, client: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                data = client.recv(4096)
            except OSError:
                return
            if not data:
                return
            with self._changed:
                self.received += data
                self.arrivals.append((time.perf_counter(), data, self.sent))
                self._changed.notify_all()

    def wait_for(self, data: bytes, timeout: float, after: float = 0.0) -> float | None:
        """Block until DATA was received (in one read, at AFTER or later); its arrival time,
        or None after TIMEOUT."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for when, chunk, _sent in self.arrivals:
                    if when >= after and data in chunk:
                        return when
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)

    def stop(self) -> None:
        self._stop.set()
        for sock in (self._client, self._listener):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()
        for thread in self._threads:
            thread.join(2)
