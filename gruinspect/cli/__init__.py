"""The `gruinspect` command: a thin layer of click commands over the library.

Errors the library raises on purpose (:class:`~gruinspect.errors.GruInspectError`) become one line
on stderr and exit 2 (or the error's own code); ``--traceback`` shows the full trace instead.
"""
from __future__ import annotations

import os
import sys
import warnings

import click

from .. import __version__
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


class GruGroup(click.Group):
    """Loads each command's module only when it runs, and turns errors into one line."""

    def list_commands(self, ctx):
        return list(_COMMANDS)

    def get_command(self, ctx, name):
        if name not in _COMMANDS:
            return None
        import importlib

        module, attr = _COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        # Short help without importing every command module.
        rows = [(name, _HELP[name]) for name in _COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        # numpy's OpenBLAS starts a thread per core as it is imported (about 60 ms of a short
        # command); gruinspect's numpy work streams through memory and gains nothing from a
        # threaded BLAS. A setting of the user's own wins.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        # click prints usage errors as a block (usage line, hint, blank line, error); scripts and
        # CI logs get the tool's own single line, with the help hint on the same line.
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            message = exc.format_message().strip()
            _fail(message + ("" if message.endswith((".", "?", "!")) else ".") + hint, ExitCode.BAD_INPUT)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.exceptions.Abort:
            _fail("Interrupted.", ExitCode.INTERRUPTED)
        if not standalone_mode:
            return code
        sys.exit(code or 0)

    def invoke(self, ctx):
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
                return super().invoke(ctx)
        except GruInspectError as exc:
            if _want_traceback(ctx):
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
            if _want_traceback(ctx):
                raise
            where = f" {exc.filename}" if exc.filename else ""
            _fail(f"Cannot access{where}: {exc.strerror or exc}.", ExitCode.BAD_INPUT)
        except MemoryError:
            if _want_traceback(ctx):
                raise
            _fail("Out of memory while reading the input.", ExitCode.BAD_INPUT)
        except KeyboardInterrupt as exc:
            try:
                _fail(f"Interrupted by {exc.signal_name}." if isinstance(exc, _signals.Terminated) else "Interrupted.",
                      _signals.exit_code(exc))
            except OSError:  # after SIGHUP the terminal may be gone: the exit code still tells
                sys.exit(_signals.exit_code(exc))
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except Exception as exc:  # a bug: still one line, with the way to learn more
            if _want_traceback(ctx):
                raise
            _fail(f"Internal error ({type(exc).__name__}: {exc}); rerun with --traceback and report it.",
                  ExitCode.BAD_INPUT)
        finally:
            restore_signals()
            set_hang_guard(previous_guard)


def _want_traceback(ctx) -> bool:
    return bool(ctx.meta.get("gruinspect.traceback")) or os.environ.get("GRUINSPECT_TRACEBACK") == "1"


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


@click.group(cls=GruGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="gruinspect")
@click.option("--traceback", is_flag=True, expose_value=False, is_eager=True, callback=set_traceback,
              help="Show the full Python traceback on errors.")
def main():
    """Find every GRU cell in saved weights and name every slice of its fused matrices.

    PATH may be a TF checkpoint (prefix, .index, .data file or folder), a SavedModel or frozen
    graph, a Keras .h5 / .keras / .weights.h5 file, a PyTorch .pt / .pth / .bin / .ckpt, a
    .safetensors file, an .onnx model, a TensorFlow.js model.json or a .tflite model. The format
    is detected from the content, not the name; nothing in a file is ever executed.

    \b
    Examples:
      gruinspect list model.ckpt --long
      gruinspect verify model.h5 --oracle framework
      gruinspect split model.pt --out gru_blocks
      gruinspect convert model.keras --to pytorch --out port
      gruinspect diff model.keras port/model.safetensors
      gruinspect report model.onnx --out gates.html
    """
