"""Several VMs' console connections open at once: at most a limit, the least recently used
idle ones closed first, all closed on exit. No Textual here."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from tui.host.console.connection import ConsoleConnection
from tui.host.model import VM
from tui.host.settings import HostSettings


class ConsoleManager:
    """Open consoles by VM name; at most LIMIT at once (idle ones closed first)."""

    def __init__(
        self,
        settings: HostSettings,
        *,
        limit: int = 8,
        factory: Callable[[VM, HostSettings], ConsoleConnection] | None = None,
        read_only: bool = False,
    ) -> None:
        self.settings = settings
        self.limit = max(1, limit)
        self.read_only = read_only  # every connection view only (see ConsoleConnection)
        self._factory = factory or (lambda vm, s: ConsoleConnection(vm, s, read_only=read_only))
        self._connections: OrderedDict[str, ConsoleConnection] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, vm: VM) -> ConsoleConnection:
        """The VM's connection, opened (and started) if needed."""
        evicted: list[ConsoleConnection] = []
        with self._lock:
            conn = self._connections.get(vm.name)
            if conn is not None and conn.closed:
                del self._connections[vm.name]
                conn = None
            if conn is None:
                conn = self._factory(vm, self.settings)
                self._connections[vm.name] = conn
                conn.start()
            else:
                conn.update_vm(vm)
            self._connections.move_to_end(vm.name)
            conn.last_used = time.monotonic()
            while len(self._connections) > self.limit:
                idle = [c for c in self._connections.values() if not c.attached and c is not conn]
                if not idle:
                    break
                victim = min(idle, key=lambda c: c.last_used)
                del self._connections[victim.name]
                evicted.append(victim)
        for victim in evicted:
            victim.close()
        return conn

    def get(self, name: str) -> ConsoleConnection | None:
        with self._lock:
            return self._connections.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._connections)

    def close(self, name: str) -> None:
        with self._lock:
            conn = self._connections.pop(name, None)
        if conn is not None:
            conn.close()

    def close_all(self, timeout: float = 2.0) -> None:
        with self._lock:
            conns = list(self._connections.values())
            self._connections.clear()
        for conn in conns:
            conn.close(timeout)

    def __len__(self) -> int:
        with self._lock:
            return len(self._connections)

    def __enter__(self) -> ConsoleManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_all()
