"""`convert`: carry GRU cells to PyTorch, ONNX, Keras or TF1, say when it cannot be exact, and prove it.

Each target is a module with the same small API:

* ``CAPS`` (:class:`~gruinspect.convert._common.Capabilities`): what the target can hold, from
  which :func:`~gruinspect.convert._common.make_plan` derives the verdict of any cell convention;
* ``check_dependencies()``: raises :class:`MissingDependencyError` when writing needs a package
  that is not installed;
* ``layer_notes(layer)``: findings about a layer's direction;
* ``write(mapped_layers, folder) -> [file record]``: the target's files, recording in each
  mapped cell the names it was written under;
* ``implementation()`` and ``run(folder, mapped_layer, xs, h0s) -> [CellRun]``: the target's own
  implementation (or, when it is not installed, a numpy transcription of its documented
  equations) run on the files read back from ``folder``.

:func:`convert` plans every cell, reports the verdicts through ``on_verdicts`` before anything
is written, refuses (nothing written) when a cell is not representable unless ``approximate``,
writes into a temporary folder, proves every cell against the explicit float64 GRU of the source
blocks on the same random sequences, writes ``conversion.json``, and renames the folder into
place only when every exact cell is proven. The library never prints.

>>> result = convert("model.ckpt", "keras", "out")              # doctest: +SKIP
>>> result.status, [c.proof["max_abs_error"] for c in result.cells]   # doctest: +SKIP
('written', [2.9e-08])
"""
from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from .. import __version__
from ..blocks import read_blocks, select_cells
from ..cell import GruCell
from ..errors import GruInspectError, UsageError
from ..inventory import open_cells
from ..output import OutputFolder, check_output_folder, sha256_file
from ._common import (REFUSED, CellPlan, Convention, Finding, Layer, MappedCell, MappedLayer, Verdict, apply_plan,
                      make_layers, make_plan, reference, sequences, tolerance)

TARGETS = ("pytorch", "onnx", "keras", "tf1", "c", "numpy", "pytorch-module")
# Targets whose name is not their module's.
_MODULES = {"numpy": "numpy_code", "pytorch-module": "pytorch_module"}
REPORT = "conversion.json"

__all__ = ["TARGETS", "convert", "convert_cells", "plan_cells", "verdict", "verdict_table_markdown", "conventions",
           "ConversionResult", "CellReport", "Convention", "Verdict", "Finding"]


def target_module(target: str):
    """The module implementing ``target`` (one of :data:`TARGETS`)."""
    if target not in TARGETS:
        raise UsageError(f"Unsupported conversion target {target!r}; use one of {', '.join(TARGETS)}.")
    return importlib.import_module(f"{__name__}.{_MODULES.get(target, target)}")


def verdict(convention: Convention, target: str) -> Verdict:
    """The verdict for a cell of this convention converted to ``target`` (no data needed)."""
    return make_plan(convention, target_module(target).CAPS).verdict


def check_options(target: str, options: dict | None) -> dict:
    """The target-specific options (``prefix``, ``quantize``, ``per_row`` for ``c``) that are set,
    checked: :class:`UsageError` for one the target does not take or an invalid value."""
    module = target_module(target)
    given = {k: v for k, v in (options or {}).items() if v not in (None, False)}
    for key in given:
        if key not in getattr(module, "OPTIONS", ()):
            takers = [t for t in TARGETS if key in getattr(target_module(t), "OPTIONS", ())]
            flag = "--" + key.replace("_", "-")
            raise UsageError(f"{flag} applies only to --to {' or '.join(takers) or 'no target'}, not {target}.")
    if hasattr(module, "validate_options"):
        module.validate_options(given)
    return given


@dataclass
class CellReport:
    """One cell's verdict, where it was written, and its proof."""

    cell: GruCell
    layer: int
    direction: str
    plan: CellPlan
    written_as: dict = field(default_factory=dict)
    proof: dict | None = None
    extra: dict = field(default_factory=dict)  # the target's own fields (the C symbols and scales...)

    @property
    def verdict(self) -> Verdict:
        return self.plan.verdict

    @property
    def approximated(self) -> bool:
        return self.verdict.kind == REFUSED

    def to_json(self) -> dict:
        out = {
            "name": self.cell.name, "layout": self.cell.layout, "layer": self.layer, "direction": self.direction,
            "input_size": self.cell.input_size, "units": self.cell.units, "reset_after": self.cell.reset_after,
            "activation": self.cell.activation, "recurrent_activation": self.cell.recurrent_activation,
            "dtype": self.cell.dtype, "convention": Convention.of(self.cell).label(),
        }
        out.update(self.verdict.to_json())
        out["target"] = {
            "reset_after": self.plan.reset_after, "recurrent_activation": self.plan.recurrent_activation,
            "activation": self.plan.activation, "use_bias": self.plan.use_bias, "dtype": self.plan.dtype,
            "scale": {g: s for g, s in self.plan.scale.items() if s != 1.0},
            "recurrent_bias_moved_to_input": sorted(self.plan.move_recurrent_bias),
        }
        out.update(self.extra)
        out["written_as"] = self.written_as
        out["proof"] = self.proof
        return out


@dataclass
class ConversionResult:
    """What :func:`convert` decided and did; ``status`` is planned, refused, proof-failed or written."""

    source: dict
    target: str
    out: str
    approximate: bool
    cells: list[CellReport]
    status: str = "planned"
    files: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # the reader's (list's problems), printed on stderr

    @property
    def refused(self) -> list[CellReport]:
        return [c for c in self.cells if c.verdict.kind == REFUSED]

    @property
    def failed(self) -> list[CellReport]:
        """Cells whose conversion should be exact but whose proof did not pass."""
        return [c for c in self.cells if c.proof is not None and not c.approximated and not c.proof["passed"]]

    @property
    def implementations(self) -> list[str]:
        out = []
        for c in self.cells:
            if c.proof and c.proof["implementation"] not in out:
                out.append(c.proof["implementation"])
        return out

    def to_json(self) -> dict:
        return {
            "gruinspect_version": __version__,
            "source": self.source,
            "target": self.target,
            "out": self.out,
            "status": self.status,
            "approximate": self.approximate,
            "files": self.files,
            "proof": {"implementations": self.implementations, "problems": self.problems,
                      "sequences": _sequence_note()},
            "cells": [c.to_json() for c in self.cells],
        }


def _sequence_note() -> dict:
    from ._common import BATCH, STEPS

    return {"steps": STEPS, "batch": BATCH, "inputs": "standard normal, rounded to float16",
            "initial_state": "0.5 x standard normal, clipped to [-0.95, 0.95]",
            "reference": "gruinspect.gru.run on the source blocks, float64"}


def plan_cells(cells: list[GruCell], target: str, options: dict | None = None) -> tuple[list[Layer], list[CellReport]]:
    """Layers (pairs joined) and each cell's plan and verdict for ``target``."""
    module = target_module(target)
    layers = make_layers(cells)
    reports = []
    for layer in layers:
        notes = module.layer_notes(layer)
        for cell, direction in zip(layer.cells, layer.directions):
            plan = make_plan(Convention.of(cell), module.CAPS)
            if hasattr(module, "adjust_plan"):
                module.adjust_plan(plan, options or {})
            for note in notes:
                plan.verdict.add_note(note)
            if cell.config.get("clip") and not getattr(module, "CLIPS", False):
                # ONNX GRU clip bounds every activation's input; only the code targets write the bound.
                plan.verdict.reasons.append(Finding(
                    "clip", f"the cell bounds every activation's input to [-{cell.config['clip']:g}, "
                            f"{cell.config['clip']:g}] (ONNX clip) and {module.CAPS.label} has no such bound"))
                plan.verdict.approximation.append(Finding("no clip", "the same weights without the bound"))
            reports.append(CellReport(cell, layer.index, direction, plan))
    return layers, reports


def convert(path: str, target: str, out: str, *, patterns: Iterable[str] | None = None, approximate: bool = False,
            force: bool = False, on_verdicts: Callable[[ConversionResult], None] | None = None,
            options: dict | None = None) -> ConversionResult:
    """Convert the GRU cells of PATH (those matching ``patterns``) to ``target`` under the folder ``out``.

    ``on_verdicts(result)`` is called with the verdicts before anything is written. Returns the
    result; its ``status`` says whether the files were written ("written"), refused because a cell
    is not exactly representable ("refused"; nothing written), or not proven ("proof-failed";
    nothing written). ``options`` are the target's own settings; ``c`` takes ``prefix`` (of every C
    symbol), ``quantize`` ("int8" or "int16") and ``per_row``; a target given one it does not take
    raises :class:`UsageError`.
    """
    module = target_module(target)
    check_options(target, options)
    module.check_dependencies()
    check_output_folder(out, force, [path])
    with open_cells(path) as (store, inventory):
        cells = select_cells(inventory.cells, patterns)
        if not cells:
            raise GruInspectError(f"No GRU cell found in {path}; nothing to convert.")
        result = convert_cells(store, cells, target, out, source=inventory.source, approximate=approximate,
                               force=force, on_verdicts=on_verdicts, options=options)
        result.warnings = inventory.problems_now()
        return result


def convert_cells(store, cells: list[GruCell], target: str, out: str, *, source: dict | None = None,
                  approximate: bool = False, force: bool = False,
                  on_verdicts: Callable[[ConversionResult], None] | None = None,
                  options: dict | None = None) -> ConversionResult:
    """:func:`convert` for cells already found in an open ``store`` (any :class:`TensorStore`)."""
    module = target_module(target)
    module.check_dependencies()
    check_output_folder(out, force, [store.path] if store.path and os.path.exists(store.path) else [])
    options = check_options(target, options)
    layers, reports = plan_cells(cells, target, options)
    result = ConversionResult(source or {"path": store.path, "format": store.format}, target, out, approximate,
                              reports)
    if on_verdicts is not None:
        on_verdicts(result)
    if result.refused and not approximate:
        result.status = "refused"
        return result

    with OutputFolder(out, force=force) as staging:
        tmp = staging.path
        by_cell = {id(r.cell): r for r in reports}
        source_blocks: dict[int, dict] = {}
        mapped: list[MappedLayer] = []
        for layer in layers:
            mcells = []
            for cell, direction in zip(layer.cells, layer.directions):
                blocks = read_blocks(store, cell)
                source_blocks[id(cell)] = blocks
                plan = by_cell[id(cell)].plan
                mcells.append(MappedCell(cell, plan, apply_plan(plan, blocks, cell.input_size, cell.units), direction))
            mapped.append(MappedLayer(layer, mcells))
        result.source = {**result.source, "files": sorted(store.files_read)}  # shards read since included
        files = module.write(mapped, tmp, **options)
        for ml in mapped:
            for mc in ml.cells:
                by_cell[id(mc.cell)].written_as = mc.written_as
                by_cell[id(mc.cell)].extra = mc.report
        _prove(module, tmp, mapped, source_blocks, by_cell, result, files)
        for record in files:
            record["sha256"] = sha256_file(os.path.join(tmp, record["file"]))
        result.files = files + [{"file": REPORT, "cells": [], "role": "report"}]
        if result.failed or result.problems:
            result.status = "proof-failed"  # leaving without commit removes everything written
            return result
        result.status = "written"
        with open(os.path.join(tmp, REPORT), "w", encoding="utf-8") as f:
            json.dump(result.to_json(), f, indent=2, allow_nan=False)
            f.write("\n")
        staging.commit()
    return result


def _prove(module, folder: str, mapped: list[MappedLayer], source_blocks: dict, by_cell: dict,
           result: ConversionResult, files: list[dict]) -> None:
    """Run the target on the written files and compare every cell with the source's explicit GRU."""
    for ml in mapped:
        xs, h0s = sequences(ml.layer)
        try:
            runs = module.run(folder, ml, xs, h0s)
        except Exception as exc:  # the target's implementation refused the files: a failed proof
            name, fallback = module.implementation()
            for mc in ml.cells:
                by_cell[id(mc.cell)].proof = {
                    "implementation": name, "fallback_reason": fallback, "max_abs_error": None, "tolerance": None,
                    "passed": False, "error": f"{type(exc).__name__}: {exc}"}
            continue
        for mc, h0, cell_run in zip(ml.cells, h0s, runs):
            ref = reference(mc.cell, source_blocks[id(mc.cell)], xs, h0, reverse=cell_run.reverse)
            error = float(np.max(np.abs(cell_run.outputs - ref)))
            tol = cell_run.tolerance if cell_run.tolerance is not None else tolerance(
                mc.plan, cell_run.compute_dtype, mc.cell, ref)
            by_cell[id(mc.cell)].proof = {
                "implementation": cell_run.implementation, "fallback_reason": cell_run.fallback_reason,
                "compute_dtype": cell_run.compute_dtype, "reversed_input": cell_run.reverse,
                "max_abs_error": error if np.isfinite(error) else None, "tolerance": tol,
                "passed": bool(np.isfinite(error) and error <= tol),
            }
    check = getattr(module, "check_files", None)
    if check is not None:
        result.problems += check(folder, files)


# ------------------------------------------------------------------------------------ verdict table

def conventions() -> list[tuple[Convention, str]]:
    """The source conventions of the verdict table: every layout spec's rows, in registry order."""
    from ..layouts import specs

    rows: dict[Convention, list[str]] = {}
    for spec in specs():
        for row in spec.conventions:
            conv = Convention(row.reset_after, row.recurrent_activation, row.activation, row.biases)
            seen = rows.setdefault(conv, [])
            if row.seen_in not in seen:
                seen.append(row.seen_in)
    return [(conv, "; ".join(seen)) for conv, seen in rows.items()]


def verdict_table() -> list[dict]:
    """The verdict of every listed source convention for every target, as data."""
    rows = []
    for conv, seen_in in conventions():
        rows.append({"convention": conv.label(), "seen_in": seen_in,
                     "verdicts": {t: verdict(conv, t) for t in TARGETS}})
    return rows


def _table_cell(v: Verdict) -> str:
    if v.reasons:
        return "**not representable**: " + ", ".join(f.short for f in v.reasons)
    if v.notes:
        return "exact; note: " + ", ".join(f.short for f in v.notes)
    return "exact"


def verdict_table_markdown() -> str:
    """The README's verdict table (source convention x target), generated from the targets' capabilities."""
    lines = ["| source convention | seen in | " + " | ".join(TARGETS) + " |",
             "|---|---|" + "---|" * len(TARGETS)]
    for row in verdict_table():
        cells = [_table_cell(row["verdicts"][t]) for t in TARGETS]
        lines.append(f"| {row['convention']} | {row['seen_in']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
