"""`verify`: prove the split with numbers, cell by cell, and say which block is wrong when it is.

For every GRU cell (docs/conventions.md, "Canonical blocks") these checks run:

``roundtrip``
    Re-fusing the split blocks (:func:`gruinspect.blocks.fuse`) rebuilds every stored tensor bit
    for bit. Called ``refuse`` in 0.1; ``--json`` still repeats it under that name for one release
    (an entry with ``"alias_of": "roundtrip"``), and ``CellReport.check("refuse")`` finds it.
``equations``
    The explicit per-gate GRU of :mod:`gruinspect.maths` (float64, from the blocks) matches the
    layout's own equations applied to the *fused* tensors (the layout spec's ``equations``).
    Needs nothing but numpy.
``framework``
    The same per-gate GRU matches the framework's own cell fed the original fused tensors, built
    with the cell's configuration: the layout spec's ``oracle`` (:mod:`gruinspect.layouts.spec`).
    Where the original cell cannot run the report says so plainly: a Keras ``CuDNNGRU`` (cuDNN
    needs a GPU) runs as tf-keras's ``GRU(reset_after=True)`` after tf-keras's own CuDNNGRU weight
    conversion; ``CudnnCompatibleGRUCell`` (contrib, in no installable TensorFlow) is checked
    against its equations.

With an exported folder (what :func:`gruinspect.export.split` wrote) three more run per cell:

``export-files``
    Every block the cell has is in the manifest, its file is present, its sha256, dtype, shape and
    source slice match.
``export-blocks``
    Each exported array equals the source slice exactly (bfloat16 after its lossless float32
    conversion).
``export-step``
    The explicit step computed from the exported files matches the framework cell (or, when no
    framework cell ran, the layout's equations).

Every comparison runs a seeded sequence of ``steps`` random inputs from a random state, and
reports the max absolute and max relative error against tolerances chosen by the dtype the
reference computed in (:data:`gruinspect.maths.TOLERANCES`). The library never prints: :func:`verify` returns a
:class:`VerifyReport`, which knows its exit code and renders itself as JSON or JUnit XML.

>>> report = verify("sample_checkpoints/tf1_gru_single/model.ckpt")  # doctest: +SKIP
>>> report.exit_code, [c.status for c in report.cells[0].checks]     # doctest: +SKIP
(0, ['passed', 'passed', 'passed'])
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np

from .. import maths
from ..blocks import extract, select_cells
from ..cell import GruCell
from ..errors import ExitCode, GruInspectError, UsageError
from ..inventory import open_cells
from ..layouts import activations_of
from ..maths import TOLERANCES
from ..oracle import OracleRun
from ..output import read_manifest
from .checks import (_equations_check, _finite_check, _framework_check, _inputs, _plan_framework,
                     _roundtrip_check, _timed)
from .export_checks import _export_cell_checks, _export_file_checks, links_out_of
from .report import FAILED, PASSED, SKIPPED, CellReport, Check, VerifyReport

ORACLE_MODES = ("auto", "framework", "numpy")

__all__ = ["verify", "verify_store", "VerifyReport", "CellReport", "Check", "TOLERANCES", "ORACLE_MODES",
           "PASSED", "FAILED", "SKIPPED", "ExitCode"]

def verify(path: str, *, exported: str | None = None, patterns=None, oracle: str = "auto", steps: int = 5,
           batch: int = 3, seed: int = 0, atol: float | None = None, rtol: float | None = None,
           allow_empty: bool = False, progress=None, adjust: Callable[[GruCell], None] | None = None
           ) -> VerifyReport:
    """Verify every GRU cell in PATH (and the split output in ``exported``); never prints.

    ``oracle``: ``auto`` runs the framework cell when its framework is installed and skips the
    check otherwise; ``framework`` makes it mandatory (:class:`MissingDependencyError` when the
    framework is missing); ``numpy`` runs only the bit-exact and numpy checks. ``atol``/``rtol``
    replace the per-dtype :data:`TOLERANCES`. ``adjust(cell)`` may edit each cell before it is
    checked (used to show that a wrong convention is caught). ``progress(done, total)`` is called
    after each cell.

    Raises :class:`GruInspectError` subclasses for unreadable input or bad usage (exit 2).
    """
    options = dict(exported=exported, patterns=patterns, oracle=oracle, steps=steps, batch=batch, seed=seed,
                   atol=atol, rtol=rtol, allow_empty=allow_empty, progress=progress, adjust=adjust)
    _check_options(options)
    with open_cells(path) as (store, inventory):
        return _verify_inventory(store, inventory, **options)


def verify_store(store, **options) -> VerifyReport:
    """:func:`verify` on an already open :class:`~gruinspect.store.TensorStore` (for instance a
    :class:`~gruinspect.store.MemoryStore` of weights you hold); same options."""
    from ..inventory import Inventory
    from ..layouts import find_cells

    _check_options(options)
    discovery = find_cells(store)
    inventory = Inventory(path=store.path, format=store.format, cells=discovery.cells, problems=discovery.problems,
                          files_read=store.files_read)
    return _verify_inventory(store, inventory, **options)


def _check_options(options: dict) -> None:
    if options.get("oracle", "auto") not in ORACLE_MODES:
        raise UsageError(f"Unsupported oracle {options['oracle']!r}; use one of {', '.join(ORACLE_MODES)}.")
    if options.get("steps", 5) < 1 or options.get("batch", 3) < 1:
        raise UsageError("--steps and --batch must be at least 1.")
    for name in ("atol", "rtol"):
        value = options.get(name)
        if value is not None and not (value >= 0 and np.isfinite(value)):
            raise UsageError(f"--{name} must be a finite number >= 0, not {value}.")


def _verify_inventory(store, inventory, *, exported=None, patterns=None, oracle="auto", steps=5, batch=3, seed=0,
                      atol=None, rtol=None, allow_empty=False, progress=None, adjust=None) -> VerifyReport:
    manifest = read_manifest(exported) if exported is not None else None
    start = time.perf_counter()
    path = inventory.path
    cells = select_cells(inventory.cells, patterns)
    for cell in cells:
        if adjust is not None:
            adjust(cell)
    report = VerifyReport(path=path, format=inventory.format, oracle=oracle, exported=exported,
                          allow_empty=allow_empty, problems=list(inventory.problems),
                          settings={"steps": steps, "batch": batch, "seed": seed, "atol": atol, "rtol": rtol})
    if manifest is not None:
        report.problems += links_out_of(manifest)
    run_framework = _plan_framework(report, cells, oracle)
    if not cells:
        status = PASSED if allow_empty else FAILED
        report.checks.append(Check("cells", status, f"No GRU cell found in {path}."
                                   + (" (--allow-empty)" if allow_empty else "")))
    else:
        n = len(cells)
        report.checks.append(Check("cells", PASSED, f"{n} GRU cell{'s' if n != 1 else ''} found"))
    keys = _cell_keys(inventory.cells)
    for index, cell in enumerate(cells):
        entry = manifest.cells.get(keys[id(cell)]) if manifest is not None else None
        report.cells.append(_verify_cell(store, cell, index, report, run_framework, steps=steps, batch=batch,
                                         seed=seed, atol=atol, rtol=rtol, manifest=manifest, entry=entry))
        if progress:
            progress(index + 1, len(cells))
    if manifest is not None:
        report.checks[:0] = _export_file_checks(manifest, [keys[id(c)] for c in inventory.cells])
    report.frameworks = {m: getattr(sys.modules[m], "__version__", "?")
                         for m in ("tensorflow", "tf_keras", "keras") if sys.modules.get(m) is not None}
    report.seconds = time.perf_counter() - start
    report.files = inventory.source["files"]
    report.problems += inventory.problems_now()[len(inventory.problems):]  # files opened by the checks
    return report


def _cell_keys(cells: list[GruCell]) -> dict[int, tuple[str, int]]:
    """(name, occurrence) per cell: the k-th cell named N matches the k-th manifest entry named N."""
    seen: dict[str, int] = {}
    out = {}
    for cell in cells:
        out[id(cell)] = (cell.name, seen.get(cell.name, 0))
        seen[cell.name] = seen.get(cell.name, 0) + 1
    return out



def _verify_cell(store, cell: GruCell, index: int, report: VerifyReport, skip_reason, *, steps, batch, seed,
                 atol, rtol, manifest, entry) -> CellReport:
    acts, assumed = activations_of(cell)
    cr = CellReport(cell, activation=acts[0], recurrent_activation=acts[1], activations_assumed=assumed,
                    notes=list(cell.notes))
    if assumed:
        cr.notes.append(f"activations unknown (the file does not store them); assumed {acts[1]}/{acts[0]}")
    stored = {name: store.read(name) for name in dict.fromkeys(cell.tensors.values())}
    blocks = {(b.gate, b.role): extract(b, stored[b.source.tensor]) for b in cell.blocks}
    cr.checks.append(_timed(_roundtrip_check, cell, blocks, stored))
    finite = _finite_check(cell, blocks)
    if finite is not None:
        cr.checks.append(finite)

    xs, h0 = _inputs(cell, seed, index, steps, batch)
    xs64, h064 = xs.astype(np.float64), h0.astype(np.float64)
    t64 = {role: np.asarray(stored[name], dtype=np.float64) for role, name in cell.tensors.items()}
    explicit = None
    try:
        explicit = maths.run(blocks, xs64, h064, reset_after=cell.reset_after, activation_name=acts[0],
                           recurrent_activation_name=acts[1], clip=cell.config.get("clip") or 0.0)
    except GruInspectError as exc:
        cr.checks.append(Check("equations", FAILED, f"the explicit GRU cannot run: {exc}"))

    if explicit is not None:
        cr.checks.append(_timed(_equations_check, cell, t64, xs64, h064, acts, explicit, atol, rtol))
    framework_run: OracleRun | None = None
    if explicit is not None:
        start = time.perf_counter()
        check, framework_run, note = _framework_check(cell, stored, xs, h0, acts, explicit, skip_reason(cell),
                                                report.oracle, atol, rtol)
        check.seconds = time.perf_counter() - start
        cr.checks.append(check)
        if note and note not in report.notes:
            report.notes.append(note)
        if framework_run is not None:
            cr.notes += [n for n in framework_run.notes if n not in cr.notes]
    if manifest is not None:
        cr.checks += _export_cell_checks(cell, blocks, manifest, entry, acts, xs64, h064, t64, framework_run,
                                         atol, rtol)
    return cr
