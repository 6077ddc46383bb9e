"""Byte sources a console connection reads from: a unix socket, a pty, a followed log file,
a ``journalctl -f`` child process.

Each gives bytes available now without blocking (``read``), takes typed bytes when interactive
(``write``) and says which fd to wait on (``fileno``; None: poll). The connection
(:mod:`tui.host.console.connection`) decides when to read and where the bytes go. No Textual here.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
import stat
import subprocess
import tty

from tui.host.console.journal import JournalDecoder, lines_to_terminal
from tui.host.console.trust import open_pty
from tui.host.tools import child_env
from tui.host.unixsock import close_quietly

log = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024  # at most this much per read (the screen feeds it on in slices)
HISTORY_BYTES = 128 * 1024  # tail of a log file / transcript shown on first attach
FILE_POLL = 0.1  # seconds between looks at a followed file
RELAY_PIPE = 1024 * 1024  # the relay's pipe: this much guest output waits without the guest


class Source:
    interactive = False

    def fileno(self) -> int | None:
        """For select(); None: poll with :data:`FILE_POLL`."""
        return None

    def write_fileno(self) -> int | None:
        """For select() when typed bytes wait (an interactive source)."""
        return self.fileno()

    def read(self) -> bytes | None:
        """Bytes available now (maybe b""), or None at EOF (the source is gone)."""
        raise NotImplementedError

    def write(self, data: bytes) -> int:
        return len(data)  # read-only sources swallow nothing: callers check `interactive`

    def close(self) -> None:
        pass


class SocketSource(Source):
    """A unix stream socket (QEMU's serial chardev), read through a relay when one is given.

    Why a relay: QEMU sends a UART's bytes one ``send()`` at a time, and the socket holds only
    about 270 such sends (each costs ~770 bytes of the sender's 208 KiB buffer), after which the
    guest waits for us. A Python thread needs the GIL to read, which the UI thread holds while
    it emulates and repaints, and holds all the longer when a busy host preempts it: the guest
    then printed a 2 MB flood 1.5-2.5x slower than through ``socat``. The relay, ``cat`` (by
    absolute path, our environment; our child, ended by its pid) reading the socket into a
    1 MiB pipe, drains it as promptly as socat does; the pipe coalesces the single bytes, so
    the guest never waits for the UI. Typed bytes go to the socket directly. Without ``cat``
    the thread reads the socket itself.
    """

    interactive = True

    def __init__(self, sock: socket.socket, relay: str | None = None) -> None:
        self.sock = sock
        self.proc: subprocess.Popen[bytes] | None = None
        self._read_fd = sock.fileno()
        if relay is not None:
            try:
                self._start_relay(relay)
            except OSError:
                log.warning("console relay %s did not start; reading the socket itself", relay)
                self.proc = None
                self._read_fd = sock.fileno()
        if self.proc is None:
            sock.setblocking(False)

    def _start_relay(self, relay: str) -> None:
        # The relay blocks in read(); ours never block: MSG_DONTWAIT, not O_NONBLOCK, which
        # the two of us would share.
        self.sock.setblocking(True)
        r, w = os.pipe2(os.O_CLOEXEC)
        try:
            with contextlib.suppress(OSError):
                fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, RELAY_PIPE)
            self.proc = subprocess.Popen(
                [relay],
                stdin=self.sock.fileno(),
                stdout=w,
                stderr=subprocess.DEVNULL,
                env=child_env(),
                start_new_session=True,  # a Ctrl-C meant for the app does not reach it
            )
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
        os.set_blocking(r, False)
        self._read_fd = r

    def fileno(self) -> int | None:
        return self._read_fd

    def write_fileno(self) -> int | None:
        return self.sock.fileno()

    def read(self) -> bytes | None:
        if self.proc is not None:
            try:
                data = os.read(self._read_fd, READ_CHUNK)
            except (BlockingIOError, InterruptedError):
                return b""
            return data if data else None  # the relay ended: the socket's EOF
        chunks: list[bytes] = []
        size = 0
        while size < READ_CHUNK:
            try:
                data = self.sock.recv(READ_CHUNK - size)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                return b"".join(chunks) or None
            if not data:
                return b"".join(chunks) or None
            chunks.append(data)
            size += len(data)
        return b"".join(chunks)

    def write(self, data: bytes) -> int:
        try:
            return self.sock.send(data, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return 0

    def close(self) -> None:
        proc = self.proc
        if proc is not None:
            end_child(proc)
            with contextlib.suppress(OSError):
                os.close(self._read_fd)
        close_quietly(self.sock)


def end_child(proc: subprocess.Popen[bytes]) -> None:
    """End a child of ours by its pid: TERM, then KILL if it does not go within 2 s."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=2)


class PtySource(Source):
    interactive = True

    def __init__(self, path: str, pid: int | None) -> None:
        # Only /dev/pts/N that the hypervisor PID holds open (QMP named it: untrusted).
        self.fd = open_pty(path, pid)
        try:
            if os.isatty(self.fd):
                tty.setraw(self.fd)  # no echo, no CR/LF translation on our side
        except OSError:
            pass

    def fileno(self) -> int | None:
        return self.fd

    def read(self) -> bytes | None:
        try:
            data = os.read(self.fd, READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError as exc:
            if exc.errno == errno.EIO:  # the hypervisor closed its side
                return None
            raise
        return data if data else None

    def write(self, data: bytes) -> int:
        try:
            return os.write(self.fd, data)
        except (BlockingIOError, InterruptedError):
            return 0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def tail_start(fd: int, size: int, history: int) -> int:
    """Where to start reading to show the last HISTORY bytes, from a line start."""
    if size <= history:
        return 0
    start = size - history
    os.lseek(fd, start, os.SEEK_SET)
    head = os.read(fd, 4096)
    newline = head.find(b"\n")
    return start + newline + 1 if newline >= 0 else start


class FileSource(Source):
    """Follow a file that something appends to (``tail -F``): survives truncation and
    replacement, waits for a missing file to appear. A log file is lines: bare LFs are shown
    as line ends (:func:`lines_to_terminal`)."""

    def __init__(
        self, path: str, history: int = HISTORY_BYTES, resume: tuple[int, int] | None = None
    ) -> None:
        self.path = path
        self.fd: int | None = None
        self.ino: int | None = None
        self.pos = 0
        self._open(history, resume)

    def _open(self, history: int, resume: tuple[int, int] | None = None) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            return
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # a FIFO or /dev/zero here is not a log: ignore it
            os.close(fd)
            return
        self.fd, self.ino = fd, st.st_ino
        if resume is not None and resume[0] == st.st_ino and resume[1] <= st.st_size:
            self.pos = resume[1]  # the same file: go on where we left it
        elif history <= 0:
            self.pos = 0
        else:
            self.pos = tail_start(fd, st.st_size, history)
        os.lseek(fd, self.pos, os.SEEK_SET)

    def read(self) -> bytes | None:
        if self.fd is None:
            self._open(HISTORY_BYTES)
            if self.fd is None:
                return b""
        assert self.fd is not None
        data = os.read(self.fd, READ_CHUNK)
        if data:
            self.pos += len(data)
            return lines_to_terminal(data)
        try:
            st = os.stat(self.path)
        except OSError:
            return b""  # removed: keep what we have, wait for a new one
        try:
            deleted = os.fstat(self.fd).st_nlink == 0  # (its inode number may be reused)
        except OSError:
            deleted = True
        if deleted or st.st_ino != self.ino:
            self.close()
            self._open(0)  # replaced: the new file from its start
        elif st.st_size < self.pos:
            self.pos = 0  # truncated
            os.lseek(self.fd, 0, os.SEEK_SET)
        return b""

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


class JournalSource(Source):
    """``journalctl -o json -f`` as a child process; ended by its pid on close."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # a Ctrl-C meant for the app does not reach it
        )
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.decoder = JournalDecoder()

    def fileno(self) -> int | None:
        assert self.proc.stdout is not None
        return self.proc.stdout.fileno()

    def read(self) -> bytes | None:
        assert self.proc.stdout is not None
        try:
            data = os.read(self.proc.stdout.fileno(), READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return b""
        if not data:
            return None
        return self.decoder.feed(data)

    def error_text(self) -> str:
        """What journalctl said on stderr (after it exited)."""
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        try:
            text = self.proc.stderr.read(4096).decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""
        return text.splitlines()[-1] if text else f"exit status {self.proc.returncode}"

    def close(self) -> None:
        proc = self.proc
        end_child(proc)  # our child, by its pid
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
