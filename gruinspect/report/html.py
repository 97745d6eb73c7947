"""The report page: one HTML file with its style and drawings inline, and nothing it must fetch.

The page carries a Content-Security-Policy that forbids every fetch (``default-src 'none'``), so
even a browser that is online loads nothing beyond the file. It has no script. It fits a laptop
screen (blocks wrap in a grid) and prints one cell per page.
"""
from __future__ import annotations

from html import escape

import numpy as np

from .. import __version__
from ..cell import GATES
from .figures import ROLE_COLORS, ROLE_TITLES, CellFigures, summary_line, tau_labels
from .svg import bars, colour_legend, heatmap, histogram

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 0 auto; padding: 1rem 1.5rem 3rem; max-width: 1180px; color: #1d1d1f; background: #fff; }
h1 { font-size: 1.5rem; margin: .2rem 0; }
h2 { font-size: 1.2rem; margin: 0 0 .2rem; word-break: break-all; }
h3 { font-size: 1rem; margin: 1rem 0 .4rem; }
header p, .summary { color: #444; margin: .2rem 0; }
code, td.src { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
nav ol { columns: 2; margin: .4rem 0; }
section.cell { border-top: 2px solid #ccc; margin-top: 1.5rem; padding-top: 1rem; }
.grid { display: flex; flex-wrap: wrap; gap: .8rem 1.2rem; align-items: flex-start; }
.blocks { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: .8rem 1.2rem;
          margin-bottom: .8rem; align-items: start; }
.blocks .input_kernel { grid-column: 1; } .blocks .recurrent_kernel { grid-column: 2; }
.blocks .bias { grid-column: 3; } .blocks .recurrent_bias { grid-column: 4; }
@media screen and (max-width: 760px) {
  .blocks { grid-template-columns: repeat(2, minmax(0, 1fr)); }
  .blocks .bias, .blocks .recurrent_bias { grid-column: auto; }
}
.health-text { flex: 1 1 420px; max-width: 600px; }
table.health th { white-space: nowrap; }
svg text.tick { font-size: 8px; }
figure { margin: 0; max-width: 300px; }
figcaption { font-size: 12px; color: #333; }
figcaption b { color: #000; }
svg text { font: 10px system-ui, sans-serif; fill: #333; }
svg .axis { stroke: #666; stroke-width: 1; }
svg .zero { stroke: #bbb; stroke-dasharray: 2 2; }
svg .bar { fill: #4a7bb7; }
svg.heat { border: 1px solid #999; display: block; }
table { border-collapse: collapse; margin: .3rem 0; }
th, td { text-align: left; padding: 2px 10px 2px 0; vertical-align: top; border-bottom: 1px solid #eee; }
th { font-weight: 600; }
.key { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 10px; }
.problems { background: #fff4e5; padding: .5rem 1rem; border-left: 4px solid #e69500; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  nav { display: none; }
  section.cell { break-before: page; border: 0; margin-top: 0; }
  section.cell:first-of-type { break-before: auto; }
  h2, h3 { break-after: avoid; }
  figure, table, .grid > div, .blocks { break-inside: avoid; }
}
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'"


def page(source: dict, figures: list[CellFigures], problems: list[str]) -> str:
    """The whole report as one string."""
    title = f"gruinspect report: {source['path']}"
    n = len(figures)
    head = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{escape(title)}</title><style>{CSS}</style></head><body>')
    header = [f"<header><h1>GRU report</h1><p><code>{escape(source['path'])}</code> "
              f"[{escape(source['format'])}]: {n} GRU cell{'s' if n != 1 else ''}, "
              f"written by gruinspect {__version__}</p>"]
    if problems:
        header.append('<div class="problems"><b>Tensors that look like a GRU but do not fit:</b><ul>'
                      + "".join(f"<li>{escape(p)}</li>" for p in problems) + "</ul></div>")
    if n > 1:
        header.append("<nav><ol>" + "".join(f'<li><a href="#cell-{i + 1}">{escape(f.cell.name)}</a></li>'
                                            for i, f in enumerate(figures)) + "</ol></nav>")
    if not n:
        header.append("<p>No GRU cell was found in this file.</p>")
    header.append("</header><main>")
    body = [cell_section(i + 1, f) for i, f in enumerate(figures)]
    return head + "".join(header) + "".join(body) + "</main></body></html>\n"


def cell_section(number: int, f: CellFigures) -> str:
    c = f.cell
    out = [f'<section class="cell" id="cell-{number}" data-cell="{escape(c.name)}">',
           f"<h2>{escape(c.name)}</h2>", f'<p class="summary">{escape(summary_line(c))}</p>']
    out.append(health_part(f))
    out.append("<h3>Blocks</h3><p>Each block in <code>x @ W</code> orientation (rows: inputs or state units, "
               "columns: the gate's units), coloured on its own scale: max is its largest |value|, or for a large "
               "block drawn as tile means, the largest |mean| " + colour_legend() + "</p>")
    for gate in GATES:
        figs = [b for b in f.blocks if b.block.gate == gate]
        if not figs:
            continue
        out.append('<div class="blocks">')
        for b in figs:
            out.append(f'<figure class="{b.block.role}" data-block="{b.block.gate}_{b.block.role}">{heatmap(b)}'
                       f"<figcaption><b>{escape(b.title)}</b><br>{escape(b.caption)}</figcaption></figure>")
        out.append("</div>")
    out.append("<h3>Value histograms per gate</h3><p>"
               + "".join(f'<span class="key" style="background:{ROLE_COLORS[r]}"></span>{ROLE_TITLES[r]}'
                         for r in ROLE_TITLES if any(r in h.counts for h in f.histograms)) + '</p><div class="grid">')
    for h in f.histograms:
        out.append(f'<figure data-histogram="{h.gate}">{histogram(h)}<figcaption><b>{h.gate}</b> gate: all values '
                   f"of its blocks, {len(h.edges) - 1} bins</figcaption></figure>")
    out.append("</div>")
    out.append(source_table(f))
    out.append("</section>")
    return "".join(out)


def health_part(f: CellFigures) -> str:
    h = f.health
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in h.rows())
    tau = bars(tau_labels(), h.tau_histogram.counts, title="units by memory timescale tau (steps)",
                width=260)
    r0 = h.reset_openness[np.isfinite(h.reset_openness)]
    edges = np.linspace(0.0, 1.0, 11)
    counts = [int(c) for c in np.histogram(r0, edges)[0]]
    reset = bars([f"{e:.1f}" for e in edges[:-1]], counts, title="units by reset openness at zero input",
                 width=260)
    run = h.run
    note = (f"Saturation and frozen units from a run of {run['steps']} steps x {run['batch']} sequences of "
            f"{run['input']} inputs from a zero state (seed {run['seed']}).")
    return (f'<h3>Health</h3><div class="grid"><div class="health-text"><table class="health">{rows}</table>'
            f'<p class="summary">{escape(note)}</p></div><figure>{tau}</figure><figure>{reset}</figure></div>')


def source_table(f: CellFigures) -> str:
    rows = "".join(
        f"<tr><td>{b.block.code_name}</td><td>{b.block.gate}</td><td>{b.block.role}</td>"
        f"<td>{b.shape_text}</td><td class=\"src\">{escape(b.block.source.describe())}</td></tr>"
        for b in f.blocks)
    return ("<h3>Where each block is stored</h3><table class=\"sources\"><tr><th>name</th><th>gate</th>"
            f"<th>role</th><th>shape</th><th>stored slice</th></tr>{rows}</table>")
