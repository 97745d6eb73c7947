"""The library API: ``gruinspect.load`` and its Model / Cell objects, the exported functions,
the README "Library" examples, and the old names kept as aliases."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import pytest

from conftest import ROOT, sample_path, samples

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # TF1 GRUCell in the oracle; Keras 3 is imported by name

import gruinspect  # noqa: E402
from gruinspect.blocks import read_blocks  # noqa: E402
from gruinspect.cell import CODE_NAMES  # noqa: E402
from gruinspect.errors import GruInspectError  # noqa: E402
from gruinspect.layouts import spec_for  # noqa: E402
from gruinspect.layouts.spec import Activations  # noqa: E402
from gruinspect.store import numpy_dtype  # noqa: E402

README = (ROOT / "README.md").read_text(encoding="utf-8")
TF1 = "sample_checkpoints/tf1_gru_single/model.ckpt"


def _library_examples() -> list[str]:
    section = README[README.index("## Library\n"):]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def _inputs(cell, steps=4, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    dt = numpy_dtype(cell.dtype)
    return (rng.normal(size=(steps, batch, cell.input_size)).astype(dt),
            rng.uniform(-1, 1, size=(batch, cell.units)).astype(dt))


# ------------------------------------------------------------------------------ README


def test_the_readme_has_library_examples():
    examples = _library_examples()
    assert len(examples) >= 3
    assert all("gruinspect.load" in e or "gruinspect.verify" in e for e in examples)


@pytest.mark.parametrize("index", range(len(_library_examples())))
def test_readme_library_example_runs(index, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # convert's output goes under tmp_path
    code = _library_examples()[index]
    exec(compile(code, f"README.md Library example {index + 1}", "exec"), {"__name__": "__readme__"})
    printed = capsys.readouterr().out
    # what the comments say a print shows is what it prints
    for shown in re.findall(r"print\(.*?\)\s+# (.+)", code):
        assert shown.rstrip(".").removesuffix("...").strip() in printed, shown


# ------------------------------------------------------------------------------ Model and Cell


@pytest.mark.parametrize("entry", samples(with_cells=True))
def test_load_gives_every_cell_of_the_manifest_with_its_blocks(entry):
    path = sample_path(entry)
    with gruinspect.load(path) as model:
        assert model.path == path and model.format == entry["format"]
        assert sorted((c.name, c.layout, c.input_size, c.units, c.reset_after, c.dtype) for c in model.cells) == sorted(
            (c["name"], c["layout"], c["input_size"], c["units"], c["reset_after"], c["dtype"])
            for c in entry["cells"])
        assert set(model.tensors) == set(model.store.infos())
        expected_cells = {c["name"]: c for c in entry["cells"]}
        for cell in model.cells:
            expected = expected_cells[cell.name]
            assert isinstance(cell.activations, Activations)
            if not cell.activations_assumed and "activation" in expected:  # recorded: what the writer used
                assert cell.activations == (expected["activation"], expected["recurrent_activation"])
            reference = read_blocks(model.store, cell.info)  # the older API, read independently
            blocks = cell.blocks()
            assert set(blocks) == set(reference) and list(blocks) == cell.keys
            for (gate, role), values in reference.items():
                assert blocks[gate, role].dtype == values.dtype
                np.testing.assert_array_equal(cell[gate, role], values)
                np.testing.assert_array_equal(getattr(cell, CODE_NAMES[gate, role]), values)
                assert cell.block(gate, role) is cell[gate, role]


@pytest.mark.parametrize("entry", samples(with_cells=True))
def test_cell_run_matches_the_conventions_own_equations_on_the_fused_tensors(entry):
    # spec.equations reads the tensors as the framework stores them, never the blocks
    with gruinspect.load(sample_path(entry)) as model:
        for cell in model.cells:
            spec = spec_for(cell.layout)
            stored = {role: model.store.read(name).astype(np.float64) for role, name in cell.info.tensors.items()}
            xs, h0 = _inputs(cell)
            expected = spec.equations(cell.info, stored, xs.astype(np.float64), h0.astype(np.float64),
                                      cell.activations)
            hs = cell.run(xs, h0)
            np.testing.assert_allclose(hs, expected, rtol=1e-9, atol=1e-12, err_msg=cell.name)
            np.testing.assert_allclose(cell.step(xs[0], h0), hs[0], rtol=1e-12, atol=1e-12)


FRAMEWORK_SAMPLES = ["tf1_gru_single", "tfkeras_full_h5", "keras3_archive", "onnx_torch_bigru"]


@pytest.mark.parametrize("name", FRAMEWORK_SAMPLES)
def test_cell_run_matches_the_framework_cell(name):
    (entry,) = [e.values[0] for e in samples() if e.id == name]
    with gruinspect.load(sample_path(entry)) as model:
        for cell in model.cells:
            oracle = spec_for(cell.layout).oracle
            stored = {role: model.store.read(t) for role, t in cell.info.tensors.items()}
            xs, h0 = _inputs(cell, seed=1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                run = oracle.run(cell.info, stored, xs, h0, cell.activations)
            np.testing.assert_allclose(cell.run(xs, h0), run.hs, atol=2e-5, rtol=1e-4,
                                       err_msg=f"{cell.name}: {run.description}")


def test_blocks_are_read_lazily_and_once():
    with gruinspect.load(TF1) as model:
        store = model.store
        assert store.bytes_read == 0  # finding cells reads names and shapes only
        cell = model.cells[0]
        kernel = cell.info.block("reset", "input_kernel").source.tensor
        cell.W_r
        assert store.bytes_read == store.infos()[kernel].nbytes  # only the tensor holding W_r
        cell.U_z, cell["reset", "recurrent_kernel"]  # same stored tensor: cached, nothing read
        assert store.bytes_read == store.infos()[kernel].nbytes
        cell.blocks()
        assert store.bytes_read == sum(store.infos()[t].nbytes for t in cell.info.tensors.values())


def test_missing_and_unknown_blocks_say_what_the_cell_has():
    with gruinspect.load(TF1) as model:
        cell = model.cells[0]
        with pytest.raises(AttributeError, match=r"has no candidate recurrent_bias \(b_hn\); it has W_r, U_r"):
            cell.b_hn
        with pytest.raises(KeyError, match="has no reset recurrent_bias"):
            cell.block("reset", "recurrent_bias")
        with pytest.raises(KeyError, match="gates are reset, update, candidate"):
            cell["forget", "bias"]
        with pytest.raises(KeyError, match=r"indexed by \(gate, role\)"):
            cell["W_r"]
        with pytest.raises(AttributeError, match="no attribute 'W_q'"):
            cell.W_q
        assert ("reset", "bias") in cell and ("reset", "recurrent_bias") not in cell
        assert "W_r" in dir(cell) and "b_hn" not in dir(cell)
        with pytest.raises(KeyError, match="the cells are: rnn/gru_cell"):
            model.cell("nope")
        assert model.cell("rnn/gru_cell") is cell and list(model) == model.cells and len(model) == 1


def test_a_closed_model_keeps_what_it_read_and_refuses_new_reads():
    model = gruinspect.load(TF1)
    with model:
        cell = model.cells[0]
        W_r = cell.W_r
    assert "closed" in repr(model)
    assert cell.W_r is W_r and cell.U_r is not None  # U_r came with W_r, from gates/kernel
    with pytest.raises(GruInspectError, match="is closed"):
        cell.W_h  # candidate/kernel was never read
    model.close()  # twice is fine


def test_step_takes_a_vector_or_a_batch_and_run_starts_from_zeros():
    with gruinspect.load(TF1) as model:
        cell = model.cells[0]
        x = np.arange(cell.input_size, dtype=np.float64) / 10
        h = np.zeros(cell.units)
        assert cell.step(x, h).shape == (cell.units,)
        np.testing.assert_array_equal(cell.step(x, h), cell.step(x[None], h[None])[0])
        xs = np.stack([x[None]] * 3)
        np.testing.assert_array_equal(cell.run(xs), cell.run(xs, np.zeros((1, cell.units))))


def test_assumed_activations_are_the_layouts_defaults():
    (entry,) = [e.values[0] for e in samples() if e.id == "tfkeras_weights_h5"]
    with gruinspect.load(sample_path(entry)) as model:
        for cell in model.cells:
            if cell.info.activation is None:
                assert cell.activations_assumed
                assert cell.activations == spec_for(cell.layout).default_activations


def test_load_takes_a_path_object():
    with gruinspect.load(ROOT / TF1) as model:
        assert model.path == str(ROOT / TF1) and model.cells[0].name == "rnn/gru_cell"


def test_load_of_a_bad_path_is_one_gruinspect_error(tmp_path):
    with pytest.raises(GruInspectError, match="No such file or folder"):
        gruinspect.load(str(tmp_path / "missing.ckpt"))
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(GruInspectError, match="Unsupported file"):
        gruinspect.load(str(junk))


# ------------------------------------------------------------------------------ exports


def test_verify_convert_and_diff_are_library_functions_and_packages():
    for name in ("verify", "convert", "diff"):
        function = getattr(gruinspect, name)
        assert callable(function), name
        module = sys.modules[f"gruinspect.{name}"]
        assert function is module and callable(getattr(module, name))
    from gruinspect import verify
    from gruinspect.verify import verify_store

    report = verify(TF1, oracle="numpy")
    assert report.ok and callable(verify_store)


def test_import_gruinspect_and_load_import_no_numpy():
    code = (
        "import sys, gruinspect\n"
        "assert 'numpy' not in sys.modules, 'import gruinspect loaded numpy'\n"
        f"with gruinspect.load({TF1!r}) as model:\n"
        "    assert model.cells and 'numpy' not in sys.modules, 'load loaded numpy'\n"
        "    model.cells[0].W_r\n"
        "    assert 'numpy' in sys.modules\n"
        "from gruinspect import *\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_old_names_are_aliases_of_the_new_ones():
    import gruinspect.export as export
    import gruinspect.inventory as inventory
    import gruinspect.listing as listing
    import gruinspect.splitting as splitting

    assert inventory is listing and export is splitting
    assert gruinspect.list_cells is listing.list_cells and gruinspect.split is splitting.split
    with gruinspect.open_cells(TF1) as (store, inv):
        blocks = gruinspect.read_blocks(store, inv.cells[0])
    with gruinspect.load(TF1) as model:
        for key, values in model.cells[0].blocks().items():
            np.testing.assert_array_equal(values, blocks[key])


def test_the_package_ships_its_type_hints():
    assert (ROOT / "gruinspect" / "py.typed").is_file()
    assert re.search(r'\[tool\.setuptools\.package-data\]\s*\ngruinspect = \[[^\]]*"py\.typed"',
                     (ROOT / "pyproject.toml").read_text())
    assert set(gruinspect.__all__) <= set(dir(gruinspect))
