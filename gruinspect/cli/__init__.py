"""The `gruinspect` command: a thin layer of click commands over the library.

Errors the library raises on purpose (:class:`~gruinspect.errors.GruInspectError`) become one line
on stderr and exit 2 (or the error's own code); ``--traceback`` shows the full trace instead.

The click application is :mod:`gruinspect.cli.app` (``gruinspect.cli.main`` names it). This
module imports no click: the console script's :func:`entry` runs the plainest and most frequent
command line, ``gruinspect list PATH...`` with no option, without it (click's import is about a
third of such a run), through the same code as the click command; every other command line goes
to click.
"""
from __future__ import annotations

import os
import sys
import warnings

from ..errors import ExitCode, GruInspectError

_COMMANDS = {
    "list": ("gruinspect.cli.list_cmd", "list_command"),
    "split": ("gruinspect.cli.split_cmd", "split_command"),
    "stats": ("gruinspect.cli.stats_cmd", "stats_command"),
    "verify": ("gruinspect.cli.verify_cmd", "verify_command"),
    "convert": ("gruinspect.cli.convert_cmd", "convert_command"),
    "diff": ("gruinspect.cli.diff_cmd", "diff_command"),
    "report": ("gruinspect.cli.report_cmd", "report_command"),
    "plot": ("gruinspect.cli.plot_cmd", "plot_command"),
}
_HELP = {
    "list": "List the GRU cells in a checkpoint or weights file.",
    "split": "Write every gate block of every GRU cell as .npy files plus a manifest.",
    "stats": "Summary statistics of every gate block.",
    "verify": "Prove the split: re-fuse bit for bit and recompute the cell against its framework.",
    "convert": "Move GRU weights to PyTorch, ONNX, Keras or TF1 layout, and prove the result.",
    "diff": "Say why two files' GRU cells differ: pair, compare, and name the porting mistake.",
    "report": "Draw every cell's blocks, histograms and health figures in one self-contained HTML page.",
    "plot": "Write the report's figures as PNG files (needs gruinspect[plot]).",
}


def _want_traceback(ctx) -> bool:
    """--traceback on this command line (a click context; None: none given), or GRUINSPECT_TRACEBACK=1."""
    return bool(ctx is not None and ctx.meta.get("gruinspect.traceback")) or \
        os.environ.get("GRUINSPECT_TRACEBACK") == "1"


def _fail(message: str, code: int):
    from ..render import error

    error(_one_line(message))
    sys.exit(int(code))


def _one_line(message: str) -> str:
    # Tensor names come from the file: a newline or terminal escape in one must not split or
    # colour the error line scripts parse.
    return "".join(ch if ch.isprintable() or ch == " " else ascii(ch)[1:-1] for ch in message)


def warn_each(messages) -> None:
    """Each of a result's problems (reader warnings included) as one warning line on stderr."""
    from ..render import warn

    for message in messages:
        warn(_one_line(message))


def set_traceback(ctx, _param, value):
    if value:
        ctx.meta["gruinspect.traceback"] = True


def run_guarded(call, *, traceback: bool = False):
    """``call()`` as every command runs: HDF5 reads supervised against hangs, SIGTERM and SIGHUP
    cleaning up like Ctrl-C, numpy's float warnings silenced, and every error one line on stderr
    with its exit code (``traceback``: raised instead)."""
    from .. import _signals, _supervisor
    from ..formats._guard import set_hang_guard

    # A C library looping on a corrupted file becomes exit 2, not a hang: readers wrap such
    # calls in the hang guard, which the command line (and only it) supervises from a parent.
    _supervisor.enable()
    previous_guard = set_hang_guard(_supervisor.bounded)
    restore_signals = _signals.install()  # SIGTERM and SIGHUP clean up partial output like Ctrl-C
    try:
        with warnings.catch_warnings():
            # numpy's floating-point warnings (a signalling NaN cast to float64, an overflow in
            # a statistic) are not messages for users: results count NaN and Inf themselves,
            # and an error must stay one line on stderr.
            warnings.simplefilter("ignore", RuntimeWarning)
            return call()
    except GruInspectError as exc:
        if traceback:
            raise
        _fail(str(exc), exc.exit_code)
    except BrokenPipeError:
        # the reader of our output went away (`gruinspect list ... | head`): stop quietly, as
        # a tool killed by SIGPIPE does, and keep Python from complaining when it flushes stdout
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        sys.exit(int(ExitCode.BROKEN_PIPE))
    except OSError as exc:
        if traceback:
            raise
        where = f" {exc.filename}" if exc.filename else ""
        _fail(f"Cannot access{where}: {exc.strerror or exc}.", ExitCode.BAD_INPUT)
    except MemoryError:
        if traceback:
            raise
        _fail("Out of memory while reading the input.", ExitCode.BAD_INPUT)
    except KeyboardInterrupt as exc:
        try:
            _fail(f"Interrupted by {exc.signal_name}." if isinstance(exc, _signals.Terminated) else "Interrupted.",
                  _signals.exit_code(exc))
        except OSError:  # after SIGHUP the terminal may be gone: the exit code still tells
            sys.exit(_signals.exit_code(exc))
    except Exception as exc:  # a bug: still one line, with the way to learn more
        if traceback or type(exc).__module__.startswith("click."):  # click's exits and usage errors are its own
            raise
        _fail(f"Internal error ({type(exc).__name__}: {exc}); rerun with --traceback and report it.",
              ExitCode.BAD_INPUT)
    finally:
        restore_signals()
        set_hang_guard(previous_guard)


def _quick_list(argv: list[str]) -> list[str] | None:
    """The PATHs of ``list PATH...`` with no option (nothing starting with "-"), else None."""
    if len(argv) >= 2 and argv[0] == "list" and all(a and not a.startswith("-") for a in argv[1:]):
        return argv[1:]
    return None


def _thread_defaults() -> None:
    # numpy's OpenBLAS starts a thread per core as it is imported (about 60 ms of a short
    # command); gruinspect's numpy work streams through memory and gains nothing from a
    # threaded BLAS. A setting of the user's own wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def entry(argv: list[str] | None = None) -> None:
    """The `gruinspect` console script (and ``python -m gruinspect``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    _thread_defaults()
    paths = _quick_list(argv)
    if paths is None:
        from .app import main as app

        app(args=argv, prog_name="gruinspect")
        return
    from .list_text import list_paths

    sys.exit(run_guarded(lambda: list_paths(paths), traceback=_want_traceback(None)) or 0)


def __getattr__(name: str):
    # ``gruinspect.cli.main`` is the click application (tests and scripts invoke it); importing
    # it here would put click on every command line's path.
    if name in ("main", "GruGroup"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
