"""A small D-Bus client connection on the host loop, with jeepney doing the protocol work.

jeepney (pure Python, no dependencies) builds, serialises and parses the messages and runs the
authentication; this module owns the socket: it reads with a bound on every message (jeepney
buffers whatever size a header claims), turns any malformed message into ``BusError`` (never a
traceback of the parser), matches replies to calls under a deadline, and hands every signal to
one callback, in order, on the loop's thread.

Two kinds of peer: a message bus (the system bus, the lab's bus: ``Hello`` first, signals
routed by match rules) and a direct connection to systemd's private socket (no bus daemon, no
``Hello``; systemd sends it every signal).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jeepney import HeaderFields, Message, MessageType
from jeepney.auth import BEGIN, Authenticator
from jeepney.bus_messages import message_bus
from jeepney.wrappers import DBusAddress, new_method_call

# A reply or signal larger than this ends the connection: systemd's answers about a few thousand
# units are a few MB (ListUnitsByPatterns: ~300 bytes a unit).
MAX_MESSAGE = 32 << 20
MAX_NAME = 255  # bus names, interfaces, members (the spec's limit)


class BusError(Exception):
    """The bus could not be reached or asked, or sent something we do not accept. One line."""


class CallError(BusError):
    """The peer answered a call with a D-Bus error (NAME: its message)."""

    def __init__(self, name: str, text: str) -> None:
        super().__init__(f"{name}: {text}" if text else name)
        self.name = name


@dataclass(frozen=True)
class Endpoint:
    """Where the bus is: a unix socket PATH; BUS false for a direct (peer to peer) connection."""

    path: Path
    bus: bool = True


Signal = Callable[[Message], None]


def _one_line(text: object, limit: int = 200) -> str:
    s = " ".join(str(text).split())
    return "".join(c if c.isprintable() else "?" for c in s)[:limit]


def message_size(head: bytes) -> int:
    """The whole size of the message whose first 16 bytes are HEAD, checked against
    MAX_MESSAGE (BusError when it is not a D-Bus header we accept)."""
    order = {b"l": "<", b"B": ">"}.get(head[:1])
    if order is None or head[3] != 1:  # endianness mark, protocol version 1
        raise BusError("the bus sent something that is not a D-Bus message")
    body, fields = (
        struct.unpack(order + "I", head[4:8])[0],
        struct.unpack(order + "I", head[12:16])[0],
    )
    header = 16 + fields
    size = header + (-header % 8) + body
    if size > MAX_MESSAGE:
        raise BusError(f"the bus sent a message of {size} bytes (at most {MAX_MESSAGE})")
    return size


class Connection:
    """One D-Bus connection. ``open`` it, ``call`` methods, get signals through ON_SIGNAL;
    ``closed`` completes (with the reason, None when we closed it) when the connection ends."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_signal: Signal | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._serials = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Message]] = {}
        self.on_signal = on_signal
        self.unique_name: str | None = None
        self.closed: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._receive())

    @classmethod
    async def open(
        cls, endpoint: Endpoint, timeout: float, on_signal: Signal | None = None
    ) -> Connection:
        """Connect to ENDPOINT, authenticate (EXTERNAL: our uid) and, on a bus, say Hello;
        all within TIMEOUT seconds."""
        try:
            return await asyncio.wait_for(cls._open(endpoint, timeout, on_signal), timeout)
        except TimeoutError:
            raise BusError(f"{endpoint.path} did not answer within {timeout:g} s") from None
        except OSError as exc:
            raise BusError(f"cannot connect to {endpoint.path}: {exc.strerror or exc}") from None

    @classmethod
    async def _open(
        cls, endpoint: Endpoint, timeout: float, on_signal: Signal | None
    ) -> Connection:
        reader, writer = await asyncio.open_unix_connection(str(endpoint.path), limit=65536)
        try:
            auth = Authenticator()
            for request in auth:
                writer.write(request)
                await writer.drain()
                line = await reader.readuntil(b"\r\n")  # bounded by the reader's limit
                auth.feed(line)
            writer.write(BEGIN)
            await writer.drain()
        except asyncio.IncompleteReadError:
            writer.close()
            raise BusError(f"{endpoint.path} hung up while we authenticated") from None
        except (asyncio.LimitOverrunError, ValueError) as exc:  # AuthenticationError is one
            writer.close()
            raise BusError(f"{endpoint.path} refused us: {_one_line(exc)}") from None
        conn = cls(reader, writer, on_signal)
        if endpoint.bus:
            try:
                reply = await conn.call(message_bus.Hello(), timeout)
            except BaseException:
                conn.close()
                raise
            conn.unique_name = reply[0] if reply and isinstance(reply[0], str) else None
        return conn

    async def call(self, message: Message, timeout: float) -> tuple[Any, ...]:
        """Send the method call MESSAGE; its reply's body. BusError on an error reply, a
        timeout or the connection ending."""
        if self.closed.done():
            raise BusError(f"the connection to the bus ended: {self.closed.result() or 'closed'}")
        serial = next(self._serials)
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[serial] = future
        try:
            self._writer.write(message.serialise(serial))
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise BusError(f"no answer within {timeout:g} s") from None
        except OSError as exc:
            raise BusError(f"cannot write to the bus: {exc.strerror or exc}") from None
        finally:
            self._waiting.pop(serial, None)
        if reply.header.message_type == MessageType.error:
            name = reply.header.fields.get(HeaderFields.error_name, "error")
            body = reply.body
            text = body[0] if body and isinstance(body[0], str) else ""
            raise CallError(_one_line(name, MAX_NAME), _one_line(text))
        return tuple(reply.body)

    async def add_matches(self, rules: Sequence[str], timeout: float) -> None:
        """Ask the bus daemon to route the signals of RULES (match rule strings) to us."""
        await asyncio.gather(*(self.call(message_bus.AddMatch(rule), timeout) for rule in rules))

    async def _receive(self) -> None:
        reason: str | None = "the bus closed the connection"
        try:
            while True:
                head = await self._reader.readexactly(16)
                size = message_size(head)
                raw = head + await self._reader.readexactly(size - 16)
                try:
                    message = Message.from_buffer(raw)
                except Exception as exc:  # any parse failure of bytes from outside
                    raise BusError(
                        f"the bus sent a malformed message ({type(exc).__name__})"
                    ) from None
                self._dispatch(message)
        except asyncio.IncompleteReadError:
            pass
        except asyncio.CancelledError:
            reason = None
        except BusError as exc:
            reason = str(exc)
        except OSError as exc:
            reason = f"reading the bus failed: {exc.strerror or exc}"
        finally:
            self._end(reason)

    def _dispatch(self, message: Message) -> None:
        kind = message.header.message_type
        if kind in (MessageType.method_return, MessageType.error):
            serial = message.header.fields.get(HeaderFields.reply_serial)
            future = self._waiting.get(serial) if isinstance(serial, int) else None
            if future is not None and not future.done():
                future.set_result(message)
        elif kind == MessageType.signal and self.on_signal is not None:
            self.on_signal(message)
        # method calls to us: we serve nothing (the peer gets no answer, as from a busy client)

    def _end(self, reason: str | None) -> None:
        if not self.closed.done():
            self.closed.set_result(reason)
        error = BusError(f"the connection to the bus ended: {reason or 'closed'}")
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(error)
        self._waiting.clear()
        with contextlib.suppress(Exception):
            self._writer.close()

    def close(self) -> None:
        if not self._task.done():
            self._task.cancel()
        self._end(None)


def method(
    path: str,
    interface: str,
    member: str,
    signature: str | None = None,
    body: tuple[Any, ...] = (),
    destination: str | None = None,
) -> Message:
    """A method call message (jeepney's ``new_method_call``); no DESTINATION on a direct
    connection (there is no bus to route it)."""
    address = DBusAddress(path, bus_name=destination or "x.direct", interface=interface)
    message = new_method_call(address, member, signature, body)
    if destination is None:
        del message.header.fields[HeaderFields.destination]
    return message
