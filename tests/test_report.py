"""`report` and `plot`: every sample's report opened in headless Chromium, and the PNG figures.

The browser test fails (never skips) in CI when Chromium is missing. Screenshots of every report
are kept as test artifacts in ``$GRUINSPECT_ARTIFACTS/browser`` (default ``reports/browser``).
"""
from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from browser import Browser, find_chromium
from conftest import ROOT, SAMPLES, run_cli, sample_path, samples
from gruinspect.layouts import find_cells
from gruinspect.listing import list_cells
from gruinspect.report.figures import PAGE_MAX_SIDE, cell_figures, downsample
from gruinspect.report.html import page
from gruinspect.store import MemoryStore

ARTIFACTS = Path(os.environ.get("GRUINSPECT_ARTIFACTS", ROOT / "reports")) / "browser"

# What the page looks like to a person: each cell section with its figures, and whether the page
# is wider than the window (a laptop must not scroll sideways).
PAGE_FACTS = """JSON.stringify({
  cells: [...document.querySelectorAll('section.cell')].map(s => ({
    name: s.dataset.cell,
    blocks: [...s.querySelectorAll('figure[data-block]')].map(f => f.dataset.block),
    drawn: [...s.querySelectorAll('svg.heat')].filter(v => v.getBoundingClientRect().width > 0).length,
    histograms: s.querySelectorAll('figure[data-histogram]').length,
    health_rows: s.querySelectorAll('table.health tr').length,
    sources: s.querySelectorAll('table.sources tr').length - 1,
  })),
  overflow: document.documentElement.scrollWidth > window.innerWidth,
  scripts: document.scripts.length,
})"""


@pytest.fixture(scope="module")
def browser():
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed; .ci/run installs it with apt-get install chromium")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    with Browser() as b:
        yield b


@pytest.mark.parametrize("entry", samples())
def test_report_opens_in_chromium_without_errors_or_requests(entry, browser, tmp_path):
    path = sample_path(entry)
    out = tmp_path / "report.html"
    result = json.loads(run_cli("report", path, "--out", out, "--json").stdout)
    cells = list_cells(path).cells
    assert result["cells"] == [c.name for c in cells]
    html = out.read_text(encoding="utf-8")
    assert "<script" not in html
    # nothing to fetch: the only URLs are the SVG namespace and links inside the page
    assert set(re.findall(r'(?:src|href)="([^"]*)"', html)) <= {f"#cell-{i + 1}" for i in range(len(entry["cells"]))}

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"{entry['name']}.png"
    visit, facts = browser.open(str(out), screenshot=str(shot), evaluate=PAGE_FACTS)
    assert visit.loaded
    assert visit.problems == []
    facts = json.loads(facts)
    assert facts["scripts"] == 0 and not facts["overflow"]
    assert [c["name"] for c in facts["cells"]] == [c.name for c in cells]
    for seen, cell in zip(facts["cells"], cells):
        assert seen["blocks"] == [b.key for b in cell.blocks]
        assert seen["drawn"] == len(cell.blocks)
        assert seen["histograms"] == 3
        assert seen["sources"] == len(cell.blocks)
        assert seen["health_rows"] >= 9
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_browser_check_sees_console_errors_and_requests(browser, tmp_path):
    """The check above can fail: a page that logs an error and fetches an image is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><script>console.error("drawn badly")</script>'
                   '<img src="http://127.0.0.1:9/x.png"><script>notDefined()</script></body></html>')
    visit, _ = browser.open(str(bad))
    assert any("drawn badly" in p for p in visit.console_errors)
    assert any("notDefined" in p for p in visit.console_errors)
    assert visit.requests == ["http://127.0.0.1:9/x.png"]


def test_report_prints_one_cell_per_page(browser, tmp_path):
    entry = next(p.values[0] for p in samples() if p.id == "tfkeras_full_h5")
    out = tmp_path / "report.html"
    run_cli("report", sample_path(entry), "--out", out)
    pdf = tmp_path / "report.pdf"
    visit, _ = browser.open(str(out), pdf=str(pdf))
    assert visit.problems == []
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert pages >= len(entry["cells"])  # each cell starts a page


def test_names_are_text_not_markup(browser, tmp_path):
    """A cell named like markup is shown as its name: no element, no script, no fetch."""
    name = 'enc"oder/<script>alert(1)</script><img src=x onerror=alert(2)>'
    store = MemoryStore({f"{name}/gates/kernel": np.ones((5, 4), np.float32),
                         f"{name}/candidate/kernel": np.ones((5, 2), np.float32)})
    from gruinspect.blocks import read_blocks

    (cell,) = find_cells(store).cells
    out = tmp_path / "names.html"
    out.write_text(page({"path": "<b>x</b>.ckpt", "format": "memory"},
                        [cell_figures(cell, read_blocks(store, cell), PAGE_MAX_SIDE)], []), encoding="utf-8")
    visit, facts = browser.open(str(out), evaluate=PAGE_FACTS)
    assert visit.problems == []
    facts = json.loads(facts)
    assert [c["name"] for c in facts["cells"]] == [cell.name] and facts["scripts"] == 0


def test_downsample_averages_tiles_and_marks_nonfinite():
    a = np.arange(25, dtype=np.float64).reshape(5, 5)
    drawn, tile = downsample(a, 2)
    assert tile == (3, 3)
    # tiles: rows 0-2 / 3-4, columns 0-2 / 3-4; each the mean of the values it covers
    np.testing.assert_allclose(drawn, [[a[:3, :3].mean(), a[:3, 3:].mean()], [a[3:, :3].mean(), a[3:, 3:].mean()]])
    a[4, 4] = np.inf
    drawn, _ = downsample(a, 2)
    assert np.isnan(drawn[1, 1]) and np.isfinite(drawn[:1]).all()
    same, tile = downsample(a[:2, :2], 2)
    assert tile == (1, 1) and np.array_equal(same, a[:2, :2])


def test_large_blocks_are_drawn_downsampled_with_their_true_shape():
    I, H = 3, 100
    rng = np.random.default_rng(0)
    store = MemoryStore({"big/gates/kernel": rng.normal(size=(I + H, 2 * H)).astype(np.float32),
                         "big/gates/bias": np.ones(2 * H, np.float32),
                         "big/candidate/kernel": rng.normal(size=(I + H, H)).astype(np.float32),
                         "big/candidate/bias": np.zeros(H, np.float32)})
    (cell,) = find_cells(store).cells
    from gruinspect.blocks import read_blocks

    figs = cell_figures(cell, read_blocks(store, cell), PAGE_MAX_SIDE)
    u_r = next(f for f in figs.blocks if (f.block.gate, f.block.role) == ("reset", "recurrent_kernel"))
    assert u_r.drawn.shape == (34, 34) and u_r.tile == (3, 3)
    assert u_r.color_scale == pytest.approx(np.abs(u_r.drawn).max()) and u_r.color_scale < u_r.scale / 2
    html = page({"path": "big.ckpt", "format": "memory"}, [figs], [])
    assert "100x100, |values| up to" in html and "drawn as 34x34 means of 3x3 tiles" in html
    assert 'viewBox="0 0 34 34"' in html and 'viewBox="0 0 34 1"' in html  # a bias of 100 as 34 tiles
    assert len(html) < 200_000


@pytest.mark.parametrize("fill", ["nan", "inf", "huge", "alternating", "zero", "subnormal"])
def test_hostile_values_draw_without_warnings(fill):
    """Every figure of a cell full of NaN, Inf, +-1e308 or zeros is drawn, with no numpy warning."""
    import warnings

    from gruinspect.blocks import read_blocks

    I, H = 3, 200  # above EXACT_SVD_MAX and PAGE_MAX_SIDE: Lanczos and tile means run too
    value = {"nan": np.nan, "inf": np.inf, "huge": 1e300, "alternating": 0.0, "zero": 0.0, "subnormal": 5e-324}[fill]
    arrays = {"c/gates/kernel": np.full((I + H, 2 * H), value), "c/gates/bias": np.full(2 * H, value),
              "c/candidate/kernel": np.full((I + H, H), value), "c/candidate/bias": np.full(H, value)}
    if fill == "alternating":
        arrays["c/gates/kernel"][::2], arrays["c/gates/kernel"][1::2] = 1e308, -1e308
    store = MemoryStore(arrays)
    (cell,) = find_cells(store).cells
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figs = cell_figures(cell, read_blocks(store, cell), PAGE_MAX_SIDE)
        html = page({"path": "x", "format": "memory"}, [figs], [])
        json.dumps(figs.health.to_json(), allow_nan=False)
    assert html.count("<svg class=\"heat\"") == len(cell.blocks)
    assert (figs.health.nan_count > 0) == (fill == "nan")
    assert (figs.health.inf_count > 0) == (fill == "inf")


def test_report_progress_advances_to_its_total(tmp_path):
    from gruinspect.report import write_report

    calls = []
    result = write_report(str(SAMPLES / "tf1_multi_rnn" / "model.ckpt"), str(tmp_path / "r.html"),
                          progress=lambda done, total: calls.append((done, total)))
    assert len(result.cells) == 2
    assert [d for d, _ in calls] == list(range(1, 2 * (9 + 2) + 1))  # per cell: read, health, 9 blocks
    assert {t for _, t in calls} == {22}


def test_report_refuses_to_overwrite_and_leaves_nothing_on_bad_input(tmp_path):
    single = SAMPLES / "tf1_gru_single" / "model.ckpt"
    out = tmp_path / "r.html"
    out.write_text("keep")
    result = run_cli("report", single, "--out", out, exit_code=2)
    assert "exists; use --force" in result.stderr and out.read_text() == "keep"
    run_cli("report", single, "--out", out, "--force")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")

    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    fresh = tmp_path / "sub" / "new.html"
    result = run_cli("report", bad, "--out", fresh, exit_code=2)
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    result = run_cli("report", single, "--out", fresh, "--cell", "nothing*", exit_code=2)
    assert "No cell matches" in result.stderr
    assert not (tmp_path / "sub").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.h5", "r.html"]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_plot_writes_pngs_per_cell(tmp_path):
    entry = next(p.values[0] for p in samples() if p.id == "keras3_archive")
    out = tmp_path / "figs"
    data = json.loads(run_cli("plot", sample_path(entry), "--out", out, "--cell", "encoder", "--cell", "block/*",
                              "--dpi", "60", "--json").stdout)
    assert [c["name"] for c in data["cells"]] == ["encoder", "block/inner_gru"]
    for cell in data["cells"]:
        assert [f.rsplit("/", 1)[1] for f in cell["files"]] == ["blocks.png", "histograms.png", "health.png"]
        for f in cell["files"]:
            w, h = _png_size(out / f)
            assert w > 100 and h > 100
        assert cell["health"]["tau"]["median"] > 1
    assert json.loads((out / "plots.json").read_text()) == data
    assert sorted(p.name for p in out.iterdir()) == ["block__inner_gru", "encoder", "plots.json"]

    result = run_cli("plot", sample_path(entry), "--out", out, exit_code=2)
    assert "not empty; use --force" in result.stderr
    run_cli("plot", SAMPLES / "no_gru" / "model.ckpt", "--out", out, "--force")
    assert sorted(p.name for p in out.iterdir()) == ["plots.json"]
    assert json.loads((out / "plots.json").read_text())["cells"] == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_plot_without_matplotlib_says_how_to_install_it(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed: importing it fails
    result = run_cli("plot", SAMPLES / "tf1_gru_single" / "model.ckpt", "--out", tmp_path / "figs", exit_code=2)
    assert "pip install 'gruinspect[plot]'" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "figs").exists()

