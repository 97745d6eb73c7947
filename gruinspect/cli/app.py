"""The click application of the `gruinspect` command (``gruinspect.cli.main``).

Each command's module is imported only when it runs; every command runs inside
:func:`gruinspect.cli.run_guarded`, so errors are one line whichever way the command started.
"""
from __future__ import annotations

import sys

import click

from .. import __version__
from ..errors import ExitCode
from . import _COMMANDS, _HELP, _fail, _thread_defaults, _want_traceback, run_guarded, set_traceback


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
        _thread_defaults()
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
        return run_guarded(lambda: super(GruGroup, self).invoke(ctx), traceback=_want_traceback(ctx))


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
