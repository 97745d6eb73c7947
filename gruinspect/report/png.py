"""`plot`: the report's figures as PNG files, drawn with matplotlib (extra ``gruinspect[plot]``).

Per cell, in a folder named after it: ``blocks.png`` (every block as a heatmap, gates by row),
``histograms.png`` (values per gate and role) and ``health.png`` (units by memory timescale and
by reset openness, spectral norms, saturation). ``plots.json`` lists what was written. The
folder is staged beside DIR and renamed into place (:class:`gruinspect.output.OutputFolder`).
"""
from __future__ import annotations

import json
import os

import numpy as np

from ..blocks import select_cells
from ..cell import GATES, ROLES
from ..errors import MissingDependencyError
from ..listing import open_cells
from ..output import OutputFolder, check_output_folder
from ..splitting import safe_name, unique_names
from .figures import PNG_MAX_SIDE, ROLE_COLORS, ROLE_TITLES, CellFigures, summary_line, tau_labels

FILES = ("blocks.png", "histograms.png", "health.png")


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError("plot needs matplotlib: pip install 'gruinspect[plot]'.") from None
    matplotlib.use("Agg", force=True)  # files only: never a window, never a display
    from matplotlib import pyplot

    return pyplot


def write_plots(path: str, out: str, *, patterns=None, force: bool = False, progress=None, dpi: int = 120) -> dict:
    """Write each selected cell's figures under ``out``; returns the ``plots.json`` written."""
    from . import iter_figures

    check_output_folder(out, force, [path])
    plt = _pyplot()
    with open_cells(path) as (store, inventory), OutputFolder(out, force=force) as staging:
        cells = select_cells(inventory.cells, patterns)
        entries = []
        slugs = unique_names([safe_name(c.name) for c in cells])
        for slug, figs in zip(slugs, iter_figures(store, cells, PNG_MAX_SIDE, progress)):
            os.mkdir(os.path.join(staging.path, slug))
            for name, draw in zip(FILES, (_blocks, _histograms, _health)):
                fig = draw(plt, figs)
                try:
                    fig.savefig(os.path.join(staging.path, slug, name), dpi=dpi, metadata={"Software": None})
                finally:
                    plt.close(fig)
            entries.append({"name": figs.cell.name, "layout": figs.cell.layout,
                            "files": [f"{slug}/{n}" for n in FILES], "health": figs.health.to_json()})
        manifest = {"source": inventory.source, "cells": entries}
        with open(os.path.join(staging.path, "plots.json"), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, allow_nan=False)
            f.write("\n")
        staging.commit()
    return manifest


def _title(fig, f: CellFigures, top: float) -> None:
    fig.suptitle(f"{f.cell.name}\n{summary_line(f.cell)}", fontsize=8)
    # fixed margins: tight_layout measures every label and costs seconds per figure
    fig.subplots_adjust(left=0.06, right=0.97, bottom=0.12, top=top, wspace=0.35, hspace=0.6)


def _blocks(plt, f: CellFigures):
    roles = [r for r in ROLES if any(b.block.role == r for b in f.blocks)]
    gates = [g for g in GATES if any(b.block.gate == g for b in f.blocks)]
    fig, axes = plt.subplots(len(gates), len(roles), figsize=(3.0 * len(roles), 2.6 * len(gates) + 0.8),
                             squeeze=False)
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="black")  # NaN / Inf tiles, as in the page
    image = None
    for ax in axes.ravel():
        ax.axis("off")
    for b in f.blocks:
        ax = axes[gates.index(b.block.gate)][roles.index(b.block.role)]
        # each block on its own colour scale, stated in its title
        image = ax.imshow(np.ma.masked_invalid(b.drawn / (b.color_scale or 1.0)), cmap=cmap, vmin=-1, vmax=1,
                          aspect="auto", interpolation="nearest")
        ax.set_title(f"{b.title}\n{b.caption}", fontsize=6.5)
        if b.drawn.shape[0] == 1:
            ax.set_box_aspect(0.15)  # a bias is a strip, not a square
    _title(fig, f, top=1 - 0.75 / (2.6 * len(gates) + 0.8))
    if image is not None:  # after the margins are set: the bar takes its room from the blocks
        bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.5, ticks=[-1, 0, 1], pad=0.02)
        bar.ax.set_yticklabels(["-max", "0", "+max"], fontsize=7)
    return fig


def _histograms(plt, f: CellFigures):
    n = max(len(f.histograms), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.2), squeeze=False)
    for ax, h in zip(axes[0], f.histograms):
        for role, counts in h.counts.items():
            ax.stairs(counts, h.edges, color=ROLE_COLORS[role], label=ROLE_TITLES[role], linewidth=1.4)
        ax.set_title(f"{h.gate} gate", fontsize=9)
        ax.set_xlabel("value", fontsize=8)
        ax.set_ylabel("count", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    _title(fig, f, top=0.8)
    return fig


def _health(plt, f: CellFigures):
    h = f.health
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
    labels = tau_labels()
    axes[0].bar(range(len(labels)), h.tau_histogram.counts, color="#4a7bb7")
    axes[0].set_xticks(range(len(labels)), labels, rotation=45, fontsize=6)
    axes[0].set_title("units by memory timescale tau (steps)", fontsize=8)
    r0 = h.reset_openness[np.isfinite(h.reset_openness)]
    axes[1].hist(r0, bins=np.linspace(0, 1, 11), color="#4a7bb7", edgecolor="white")
    axes[1].set_title("units by reset openness at zero input", fontsize=8)
    gates = list(h.spectral_norms)
    axes[2].bar(gates, [h.spectral_norms[g] for g in gates], color="#d1495b")
    axes[2].set_title("spectral norm of U_r, U_z, U_h", fontsize=8)
    axes[3].bar(list(h.saturation), [h.saturation[g] for g in h.saturation], color="#2e933c")
    axes[3].set_ylim(0, 1)
    axes[3].set_title("fraction saturated on a random run", fontsize=8)
    for ax in axes:
        ax.tick_params(labelsize=7)
    _title(fig, f, top=0.78)
    return fig
