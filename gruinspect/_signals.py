"""Signals that end a command become exceptions, so that what it was writing is cleaned up.

Python turns SIGINT into :class:`KeyboardInterrupt`, which unwinds the stack and lets every
``except BaseException`` / ``finally`` remove partial output. SIGTERM (what ``timeout``, CI
cancellation and ``docker stop`` send) and SIGHUP (a closed terminal) would instead end the
process on the spot. :func:`install`, called by the command line only, makes all three raise:
SIGINT a plain :class:`KeyboardInterrupt`, SIGTERM and SIGHUP :class:`Terminated`, a subclass, so
code that already treats Ctrl-C as "stop now" treats them alike. The first signal raises; repeats
(``timeout`` signals the whole process group, and the hang guard's supervising parent forwards
what it receives) are ignored while the command cleans up. A signal the caller had ignored
(``nohup``) stays ignored.

:func:`deferred` holds a signal back for the few system calls that must happen together (the
final rename of an output folder), and raises it right after them.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .errors import ExitCode

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """The process was asked to end by SIGTERM or SIGHUP."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"{self.signal_name} received")

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 143 for SIGTERM, 129 for SIGHUP


def exit_code(exc: KeyboardInterrupt) -> int:
    """The exit code for an interruption: 130 for Ctrl-C, 128 + the signal number otherwise."""
    return exc.exit_code if isinstance(exc, Terminated) else int(ExitCode.INTERRUPTED)


_ending: int | None = None  # the signal being handled
_depth = 0  # open deferred() blocks
_pending: int | None = None  # a signal received inside them


def _exception(signum: int) -> KeyboardInterrupt:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def _handler(signum, _frame) -> None:
    global _ending, _pending
    if _ending is not None:
        return
    if _depth:
        _pending = signum
        return
    _ending = signum
    raise _exception(signum)


def install() -> Callable[[], None]:
    """Handle SIGINT, SIGTERM and SIGHUP as above; returns a function that restores what was there.

    Only the main thread can set signal handlers: elsewhere this does nothing.
    """
    global _ending, _pending
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    _ending = _pending = None
    previous = {}
    for signum in SIGNALS:
        if signal.getsignal(signum) is signal.SIG_IGN:
            continue
        previous[signum] = signal.signal(signum, _handler)

    def restore() -> None:
        global _ending, _pending
        for signum, handler in previous.items():
            # None: a handler set outside Python, which cannot be put back; the default is closest
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        _ending = _pending = None

    return restore


@contextmanager
def deferred() -> Iterator[None]:
    """Hold back a handled signal until the block ends, then raise it."""
    global _depth, _pending, _ending
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if not _depth and _pending is not None:
            signum, _pending = _pending, None
            _ending = signum
            raise _exception(signum)
