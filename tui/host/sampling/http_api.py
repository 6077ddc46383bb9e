"""cloud-hypervisor and firecracker: their REST APIs over the VM's unix socket.

A tiny HTTP/1.1 GET client over AF_UNIX with a hard deadline for the whole exchange (the
stdlib's http.client only speaks TCP and has per-operation, not total, timeouts). Each request
is its own connection with ``Connection: close``; the body is delimited by Content-Length,
chunked encoding, or the server closing.

- cloud-hypervisor (vmm/src/api/openapi/cloud-hypervisor.yaml): ``GET /api/v1/vm.info``
  -> ``VmInfo`` {config: {cpus: {boot_vcpus}, memory: {size, hotplugged_size}}, state,
  memory_actual_size}; ``GET /api/v1/vm.counters`` -> {device_id: {counter: int}}, block
  devices have read_bytes/write_bytes.
- firecracker (src/firecracker/swagger/firecracker.yaml): ``GET /`` -> ``InstanceInfo``
  {state: "Not started" | "Running" | "Paused"}; ``GET /machine-config`` ->
  ``MachineConfiguration`` {vcpu_count, mem_size_mib}; ``GET /balloon/statistics`` ->
  ``BalloonStats`` {actual_mib, total_memory, available_memory, ...}, 400 + ``Error``
  {fault_message} when there is no balloon or its statistics are off.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from tui.host.sampling.reading import BlockCounters, RemoteInfo
from tui.host.unixsock import SocketError, close_quietly, connect_unix, remaining

DEFAULT_TIMEOUT = 1.0
MAX_RESPONSE = 8 << 20
MIB = 1 << 20


class HTTPAPIError(Exception):
    """The request failed; ``str(exc)`` is the reason to show."""


@dataclass
class HTTPResponse:
    status: int
    body: bytes

    def json(self) -> Any:
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise HTTPAPIError("the API answered with something that is not JSON") from exc

    def fault(self) -> str:
        """The error text of a non-2xx answer (firecracker: fault_message)."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return self.body.decode(errors="replace").strip()[:200] or f"HTTP {self.status}"
        if isinstance(data, dict) and "fault_message" in data:
            return str(data["fault_message"])
        return self.body.decode(errors="replace").strip()[:200]


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, sep, rest = data.partition(b"\r\n")
        if not sep:
            raise HTTPAPIError("truncated chunked body")
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


def http_get(socket_path: str, path: str, deadline: float, timeout_label: float) -> HTTPResponse:
    """GET PATH over the unix socket SOCKET_PATH, finished before DEADLINE (monotonic)."""
    try:
        sock = connect_unix(socket_path, deadline)
    except TimeoutError:
        raise HTTPAPIError(f"API timeout after {timeout_label:.1f} s") from None
    except SocketError as exc:
        raise HTTPAPIError(str(exc)) from exc
    try:
        request = (
            f"GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        sock.settimeout(max(0.001, remaining(deadline)))
        sock.sendall(request)
        buf = bytearray()
        header_end = -1
        length: int | None = None
        chunked = False
        status = 0
        while True:
            if header_end < 0:
                header_end = buf.find(b"\r\n\r\n")
                if header_end >= 0:
                    head = bytes(buf[:header_end]).decode("latin-1").split("\r\n")
                    parts = head[0].split(" ", 2)
                    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
                        raise HTTPAPIError("the socket does not speak HTTP")
                    status = int(parts[1])
                    for line in head[1:]:
                        key, _, value = line.partition(":")
                        key = key.strip().lower()
                        if key == "content-length":
                            length = int(value.strip())
                        elif key == "transfer-encoding" and "chunked" in value.lower():
                            chunked = True
                    if status in (204, 304) or 100 <= status < 200:
                        length = 0
            if header_end >= 0:
                body = bytes(buf[header_end + 4 :])
                if length is not None and len(body) >= length:
                    return HTTPResponse(status, body[:length])
                if chunked and body.endswith(b"0\r\n\r\n"):
                    return HTTPResponse(status, _dechunk(body))
            if len(buf) > MAX_RESPONSE:
                raise HTTPAPIError("API response too large")
            left = remaining(deadline)
            if left <= 0:
                raise TimeoutError
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                if header_end < 0:
                    raise HTTPAPIError("the API closed the connection without answering")
                body = bytes(buf[header_end + 4 :])
                return HTTPResponse(status, _dechunk(body) if chunked else body)
            buf += chunk
    except TimeoutError:
        raise HTTPAPIError(f"API timeout after {timeout_label:.1f} s") from None
    except ValueError as exc:
        raise HTTPAPIError(f"malformed HTTP answer: {exc}") from exc
    except OSError as exc:
        raise HTTPAPIError(f"API connection failed: {exc.strerror or exc}") from exc
    finally:
        close_quietly(sock)


# --- cloud-hypervisor ---------------------------------------------------------------------


def query_cloud_hypervisor(socket_path: str, timeout: float = DEFAULT_TIMEOUT) -> RemoteInfo:
    started = time.monotonic()
    deadline = started + timeout
    info = RemoteInfo()
    try:
        resp = http_get(socket_path, "/api/v1/vm.info", deadline, timeout)
        if resp.status == 404:
            info.status = "not created"
            info.fail_missing("the VM is not created yet")
        elif resp.status != 200:
            info.fail_missing(f"vm.info: HTTP {resp.status}: {resp.fault()}")
        else:
            vm_info = resp.json() or {}
            state = vm_info.get("state")
            info.status = str(state).lower() if state else None
            config = vm_info.get("config") or {}
            cpus = config.get("cpus") or {}
            if "boot_vcpus" in cpus:
                info.vcpu_count = int(cpus["boot_vcpus"])
            memory = config.get("memory") or {}
            if "size" in memory:
                info.mem_configured_bytes = int(memory["size"]) + int(
                    memory.get("hotplugged_size") or 0
                )
            if vm_info.get("memory_actual_size") is not None:
                info.mem_guest_visible_bytes = int(vm_info["memory_actual_size"])
            info.reasons["mem_guest_used_bytes"] = (
                "cloud-hypervisor's API reports no guest memory statistics"
            )
            info.reasons["vcpu_threads"] = "cloud-hypervisor's API does not name vCPU threads"
            counters_resp = http_get(socket_path, "/api/v1/vm.counters", deadline, timeout)
            if counters_resp.status == 200:
                counters = counters_resp.json() or {}
                info.block = {
                    str(dev): BlockCounters(int(c["read_bytes"]), int(c.get("write_bytes", 0)))
                    for dev, c in counters.items()
                    if isinstance(c, dict) and "read_bytes" in c
                }
                info.read_at = time.monotonic()
            else:
                info.reasons["block"] = f"vm.counters: HTTP {counters_resp.status}"
            info.fail_missing("not in cloud-hypervisor's vm.info")
    except HTTPAPIError as exc:
        info.error = str(exc)
        info.fail_missing(str(exc))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        info.error = f"unexpected cloud-hypervisor answer: {exc!r}"
        info.fail_missing(info.error)
    info.elapsed_s = time.monotonic() - started
    return info


# --- firecracker --------------------------------------------------------------------------


def query_firecracker(socket_path: str, timeout: float = DEFAULT_TIMEOUT) -> RemoteInfo:
    started = time.monotonic()
    deadline = started + timeout
    info = RemoteInfo()
    try:
        resp = http_get(socket_path, "/", deadline, timeout)
        if resp.status == 200:
            state = (resp.json() or {}).get("state")
            info.status = str(state).lower() if state else None
        else:
            info.reasons["status"] = f"instance info: HTTP {resp.status}: {resp.fault()}"

        resp = http_get(socket_path, "/machine-config", deadline, timeout)
        mem_mib: int | None = None
        if resp.status == 200:
            machine = resp.json() or {}
            if "vcpu_count" in machine:
                info.vcpu_count = int(machine["vcpu_count"])
            if "mem_size_mib" in machine:
                mem_mib = int(machine["mem_size_mib"])
                info.mem_configured_bytes = mem_mib * MIB
        else:
            why = f"machine-config: HTTP {resp.status}: {resp.fault()}"
            info.reasons["vcpu_count"] = info.reasons["mem_configured_bytes"] = why

        resp = http_get(socket_path, "/balloon/statistics", deadline, timeout)
        if resp.status == 200:
            stats = resp.json() or {}
            if mem_mib is not None and "actual_mib" in stats:
                info.mem_guest_visible_bytes = max(0, mem_mib - int(stats["actual_mib"])) * MIB
            total, avail = stats.get("total_memory"), stats.get("available_memory")
            if avail is None:
                avail = stats.get("free_memory")
            if total is not None and avail is not None:
                info.mem_guest_used_bytes = max(0, int(total) - int(avail))
            else:
                info.reasons["mem_guest_used_bytes"] = (
                    "the guest has not reported balloon statistics yet"
                )
        else:
            why = f"no balloon statistics: {resp.fault()}"
            info.reasons["mem_guest_visible_bytes"] = why
            info.reasons["mem_guest_used_bytes"] = why
        info.reasons["vcpu_threads"] = "firecracker's API does not name vCPU threads"
        info.reasons["block"] = "firecracker reports block I/O only in its metrics file"
        info.read_at = time.monotonic()
        info.fail_missing("not in firecracker's answers")
    except HTTPAPIError as exc:
        info.error = str(exc)
        info.fail_missing(str(exc))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        info.error = f"unexpected firecracker answer: {exc!r}"
        info.fail_missing(info.error)
    info.elapsed_s = time.monotonic() - started
    return info
