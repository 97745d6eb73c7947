from __future__ import annotations

import sys

import click

from .. import render
from ..convert import TARGETS
from ..errors import ExitCode
from . import warn_each
from .options import cell_option, common_options, path_argument


@click.command("convert")
@path_argument
@click.option("--to", "target", required=True, type=click.Choice(TARGETS),
              help="pytorch: nn.GRU state dict (.safetensors); onnx: GRU nodes (.onnx); keras: Keras 3 GRU "
                   "weights (.npz + loader); tf1: GRUCell variables (.npz); c: C99 weights, step and golden test; "
                   "numpy: gru_numpy.py + .npz; pytorch-module: gru_modules.py + .safetensors, the cells' own "
                   "equations in modules shaped like nn.GRU.")
@click.option("--out", "-o", required=True, metavar="DIR", type=click.Path(path_type=str),
              help="Folder to write (created; must be empty or absent unless --force).")
@cell_option
@click.option("--approximate", is_flag=True,
              help="Write the closest mapping for cells the target cannot represent exactly, and report its "
                   "measured error instead of refusing.")
@click.option("--force", is_flag=True, help="Replace DIR if it exists and is not empty.")
@click.option("--prefix", metavar="NAME", default=None,
              help="--to c: the prefix of every C symbol and header guard (default gru).")
@click.option("--quantize", type=click.Choice(["int8", "int16"]), default=None,
              help="--to c: store the kernels as int8 or int16 with symmetric scales (approximate; the measured "
                   "error and the saturated weights are reported).")
@click.option("--per-row", is_flag=True, help="--to c --quantize: one scale per output row instead of per tensor.")
@common_options
def convert_command(path, target, out, patterns, approximate, force, prefix, quantize, per_row, as_json):
    """Convert the GRU cells in PATH to TARGET's layout in DIR, and prove the result.

    Before writing, each cell gets a verdict: exact, exact with a note (biases summed, an activation
    renamed...), or not representable (refused with the reason, exit 1, unless --approximate).
    Every written cell is then run through the target's own implementation (torch.nn.GRU,
    onnxruntime, Keras, TF1 GRUCell; a numpy transcription of its equations when it is not
    installed) and compared with the source cell on random sequences. DIR/conversion.json records
    the verdicts, the errors and what proved them.

    \b
    Examples:
      gruinspect convert model.h5 --to pytorch --out gru_torch
      gruinspect convert model.ckpt --to keras --out gru_keras --cell 'rnn/*'
      gruinspect convert model.h5 --to c --out gru_c --prefix kws --quantize int8 --per-row
    """
    from ..convert import convert, target_module

    def show_verdicts(result):
        if as_json:
            return
        rows = []
        for c in result.cells:
            detail = c.verdict.reasons or (c.verdict.lossy + c.verdict.notes)
            rows.append([c.cell.name, _layer_text(c), c.verdict.text, "; ".join(f.text for f in detail) or "-"])
        render.table(["cell", "layer", "verdict", "why"], rows, title=f"Verdicts for {target}")

    options = {"prefix": prefix, "quantize": quantize, "per_row": per_row}
    result = convert(path, target, out, patterns=patterns, approximate=approximate, force=force,
                     on_verdicts=show_verdicts, options=options)
    warn_each(result.warnings)
    if as_json:
        render.emit_json(result.to_json())
    if result.status == "refused":
        names = ", ".join(c.cell.name for c in result.refused)
        reason = result.refused[0].verdict.reasons[0].text
        others = "" if len(result.refused) == len(result.cells) else "; --cell picks the cells that convert exactly"
        hint = getattr(target_module(target), "REFUSAL_HINT", "")
        render.error(f"Not representable in {target}: {names} ({reason}). Nothing written; --approximate writes "
                     f"the closest mapping and reports its error{others}{hint}.")
        sys.exit(int(ExitCode.CHECK_FAILED))
    if not as_json:
        _show_proof(result)
    if result.status == "proof-failed":
        what = [f"{c.cell.name}: " + (c.proof.get("error") or
                                      f"max abs error {c.proof['max_abs_error']:.3g} > {c.proof['tolerance']:.3g}")
                for c in result.failed] + result.problems
        render.error(f"The proof of the conversion to {target} failed ({'; '.join(what)}). Nothing written.")
        sys.exit(int(ExitCode.CHECK_FAILED))
    if not as_json:
        files = ", ".join(f["file"] for f in result.files)
        render.text(f"{len(result.cells)} cell{'s' if len(result.cells) != 1 else ''} converted to {target} in {out} "
                    f"({files}); proved by {', '.join(result.implementations)}.")
        for c in result.cells:
            if c.proof and c.proof.get("fallback_reason"):
                render.warn(f"{c.cell.name} was proved with a {c.proof['implementation']}: "
                            f"{c.proof['fallback_reason']}.")
                break
        for c in result.cells:
            q = c.extra.get("quantization")
            if q:
                render.text(f"{c.cell.name}: {q['dtype']} {'per-row' if q['per_row'] else 'per-tensor'} kernels, "
                            f"max abs error {render.fmt_number(c.proof['max_abs_error'])} on the golden sequences "
                            f"(bound {render.fmt_number(q['error_bound'])}), {q['saturated']} of {q['weights']} "
                            "weights saturated.")


def _layer_text(c) -> str:
    return f"{c.layer} {c.direction}"


def _show_proof(result) -> None:
    rows = []
    for c in result.cells:
        proof = c.proof or {}
        error = proof.get("max_abs_error")
        if c.approximated:
            outcome = "approximate"
        elif c.verdict.lossy:
            outcome = "within its bound" if proof.get("passed") else "FAILED"
        elif proof.get("passed"):
            outcome = "proven"
        else:
            outcome = "FAILED"
        written = c.written_as.get("summary", "-")
        rows.append([c.cell.name, written, error if error is not None else "-", proof.get("tolerance"), outcome])
    render.table(["cell", "written as", "max abs error", "tolerance", "result"], rows, right={2, 3},
                 title="Proof")
