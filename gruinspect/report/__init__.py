"""`report` and `plot`: draw every GRU cell's blocks, value histograms and health figures.

:func:`write_report` writes one self-contained HTML page (inline SVG, no script, nothing fetched);
:func:`write_plots` writes the same figures as PNG files with matplotlib (``gruinspect[plot]``).
Both read one cell at a time and write atomically: a failure leaves nothing behind.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..blocks import read_blocks, select_cells
from ..errors import UsageError
from ..listing import open_cells
from ..output import write_text
from .figures import PAGE_MAX_SIDE, CellFigures, cell_figures

__all__ = ["build_report", "write_report", "write_plots", "ReportResult"]


@dataclass
class ReportResult:
    out: str
    source: dict
    cells: list[str]
    bytes: int

    def to_json(self) -> dict:
        return {"out": self.out, "source": self.source, "cells": self.cells, "bytes": self.bytes}


def iter_figures(store, cells, max_side: int, progress=None):
    """:class:`CellFigures` of each cell in turn, reading one cell's tensors at a time.

    ``progress(done, total)`` is called as the work advances: per cell, its read, its health run
    and each block drawn.
    """
    total = sum(len(c.blocks) + 2 for c in cells)
    done = 0

    def step(n: int = 1) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    for cell in cells:
        blocks = read_blocks(store, cell)
        step()
        yield cell_figures(cell, blocks, max_side, step)


def build_report(path: str, patterns=None, progress=None) -> tuple[str, dict, list[CellFigures]]:
    """``(html, source, figures)`` for the cells of PATH matching ``patterns``."""
    from .html import page

    with open_cells(path) as (store, inventory):
        cells = select_cells(inventory.cells, patterns)
        figures = list(iter_figures(store, cells, PAGE_MAX_SIDE, progress))
        return page(inventory.source, figures, inventory.problems_now()), inventory.source, figures


def _check_output_file(out: str, force: bool, path: str) -> None:
    if os.path.isdir(out):
        raise UsageError(f"Output path {out} is a folder; give a file name such as {os.path.join(out, 'report.html')}.")
    if os.path.exists(out) and not force:
        raise UsageError(f"Output file {out} exists; use --force to replace it.")
    real_out, real_in = os.path.realpath(out), os.path.realpath(path)
    if real_out == real_in or real_out.startswith(real_in.rstrip(os.sep) + os.sep):
        raise UsageError(f"Refusing to write to {out}: it is the input {path} or inside it.")


def write_report(path: str, out: str, *, patterns=None, force: bool = False, progress=None) -> ReportResult:
    """Write the report of PATH to the file ``out``; returns what was written.

    The page is built in memory first, then written to a temporary file beside ``out`` and
    renamed, so ``out`` is either the whole new report or untouched.
    """
    _check_output_file(out, force, path)
    text, source, figures = build_report(path, patterns, progress)
    write_text(out, text)
    return ReportResult(out, source, [f.cell.name for f in figures], len(text.encode("utf-8")))


def write_plots(path: str, out: str, *, patterns=None, force: bool = False, progress=None, dpi: int = 120):
    """Write PNG figures of each cell of PATH under the folder ``out``; see :mod:`.png`."""
    from .png import write_plots as _write

    return _write(path, out, patterns=patterns, force=force, progress=progress, dpi=dpi)
