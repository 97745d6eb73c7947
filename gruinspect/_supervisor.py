"""Bound the time a C library may spend on a corrupted file's metadata (command line only).

libhdf5 1.14 can loop forever on some corrupted metadata (found by fuzzing: a damaged heap or
attribute message), and h5py holds the GIL while it does, so no Python thread or signal handler
can step in. So the first time a command enters a :func:`bounded` block, the process forks: the
child goes on with the command, and the parent only supervises. The child reports entering and
leaving bounded blocks through a pipe; if it stays inside one longer than
``GRUINSPECT_HANG_SECONDS`` (default 30: the metadata of a Keras file reads in milliseconds), the
parent ends it, prints the one-line error and exits 2. Otherwise the parent exits with the
child's own exit code. The library alone never forks: readers only enter
``gruinspect.formats._guard.hang_guard`` blocks, and the CLI installs :func:`bounded` as that guard
and calls :func:`enable`, which takes effect only when stdout and stderr are real files (not an
in-process test runner).
"""
from __future__ import annotations

import os
import select
import signal
import sys
from contextlib import contextmanager

_enabled = False
_pipe: int | None = None  # the child's end, once forked


def enable() -> None:
    """Supervise bounded blocks from now on, if stdout and stderr are real files (set per command)."""
    global _enabled
    try:
        sys.stdout.fileno()
        sys.stderr.fileno()
        real = True
    except (AttributeError, OSError, ValueError):
        real = False
    _enabled = real and hasattr(os, "fork")


def _limit() -> float:
    try:
        return max(float(os.environ.get("GRUINSPECT_HANG_SECONDS", "30")), 0.1)
    except ValueError:
        return 30.0


@contextmanager
def bounded(message: str):
    """Run the block; under the CLI, a block that never returns ends the command with ``message``."""
    global _pipe
    if not _enabled:
        yield
        return
    if _pipe is None:
        _pipe = _fork()
    os.write(_pipe, b"+" + message.encode("utf-8", "backslashreplace").replace(b"\n", b" ") + b"\n")
    try:
        yield
    finally:
        os.write(_pipe, b"-\n")


def _fork() -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        return write_end
    os.close(write_end)
    _supervise(pid, read_end)  # never returns


def _supervise(pid: int, pipe: int) -> None:
    # A signal that ends a command (Ctrl-C, SIGTERM from timeout or docker stop, SIGHUP) goes to
    # the child, which cleans up its partial output and exits 130, 143 or 129 (gruinspect._signals
    # ignores the repeat when the signal reached the whole process group); the parent waits for it.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, lambda received, _frame: os.kill(pid, received))
    limit = _limit()
    messages: list[str] = []
    buffer = b""
    while True:
        ready, _, _ = select.select([pipe], [], [], limit if messages else None)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.write(2, f"gruinspect: error: {messages[-1]}\n".encode("utf-8", "backslashreplace"))
            os._exit(2)
        data = os.read(pipe, 65536)
        if not data:
            break
        buffer += data
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.startswith(b"+"):
                messages.append(line[1:].decode("utf-8", "replace"))
            elif line == b"-" and messages:
                messages.pop()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # the child has ended: its pid must not be signalled again
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)
