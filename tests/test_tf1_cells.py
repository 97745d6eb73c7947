"""TF1-era GRU cells: discovery matches the manifest, and the explicit per-gate step from the
split blocks reproduces TensorFlow's own cell fed the original fused tensors."""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import pytest

from conftest import sample_path, samples
from gruinspect import gru
from gruinspect.blocks import read_blocks
from gruinspect.inventory import list_cells, open_cells

TF_LAYOUTS = {"tf-gru-cell", "tf-gru-block-cell", "tf-cudnn-compatible-gru-cell"}
TOL = {"float16": 2e-3, "bfloat16": 2e-2, "float32": 1e-6, "float64": 1e-12}


@pytest.mark.parametrize("entry", samples(formats={"tf-checkpoint-v2"}))
def test_list_finds_exactly_the_manifest_cells(entry):
    inventory = list_cells(sample_path(entry))
    found = {c.name: c for c in inventory.cells}
    assert set(found) == {c["name"] for c in entry["cells"]}
    for expected in entry["cells"]:
        cell = found[expected["name"]]
        for key in ("layout", "input_size", "units", "reset_after", "dtype"):
            assert getattr(cell, key) == expected[key], (cell.name, key)
        assert cell.tensors == expected["tensors"]
    assert not inventory.problems


def _oracle(cell, fused, xs, h0):
    from gruinspect.oracle import tf1

    t = {role: fused[name] for role, name in cell.tensors.items()}
    if cell.layout == "tf-gru-cell":
        return tf1.run_tf_gru_cell(t["gates/kernel"], t["gates/bias"], t["candidate/kernel"],
                                   t["candidate/bias"], xs, h0)
    if cell.layout == "tf-gru-block-cell":
        return tf1.run_gru_block_cell(t["gates/kernel"], t["gates/bias"], t["candidate/kernel"],
                                      t["candidate/bias"], xs, h0)
    return tf1.cudnn_compatible_gru_cell_reference(
        t["gates/kernel"], t["gates/bias"], t["candidate/input_projection/kernel"],
        t["candidate/input_projection/bias"], t["candidate/hidden_projection/kernel"],
        t["candidate/hidden_projection/bias"], xs, h0)


@pytest.mark.parametrize("entry", samples(layouts=TF_LAYOUTS))
def test_explicit_step_matches_the_framework_cell(entry):
    pytest.importorskip("tensorflow")
    rng = np.random.default_rng(7)
    with open_cells(sample_path(entry)) as (store, inventory):
        assert inventory.cells
        for cell in inventory.cells:
            blocks = read_blocks(store, cell)
            fused = {name: store.read(name) for name in cell.tensors.values()}
            dtype = fused[cell.tensors["gates/kernel"]].dtype
            xs = rng.normal(size=(6, 3, cell.input_size)).astype(dtype)
            h0 = rng.normal(scale=0.5, size=(3, cell.units)).astype(dtype)
            ours = gru.run(blocks, xs, h0, reset_after=cell.reset_after)
            theirs = np.asarray(_oracle(cell, fused, xs, h0), dtype=np.float64)
            err = np.max(np.abs(ours - theirs))
            assert err <= TOL[cell.dtype], f"{entry['name']} {cell.name}: max abs error {err}"


def test_a_wrong_gate_order_is_caught():
    """The comparison above fails when two gates are swapped: it can fail."""
    pytest.importorskip("tensorflow")
    from gruinspect.oracle import tf1

    (entry,) = [p.values[0] for p in samples() if p.id == "tf1_gru_single"]
    rng = np.random.default_rng(1)
    with open_cells(sample_path(entry)) as (store, inventory):
        cell = inventory.cells[0]
        blocks = read_blocks(store, cell)
        fused = {role: store.read(name) for role, name in cell.tensors.items()}
    xs = rng.normal(size=(4, 2, cell.input_size)).astype(np.float32)
    h0 = rng.normal(size=(2, cell.units)).astype(np.float32)
    theirs = tf1.run_tf_gru_cell(fused["gates/kernel"], fused["gates/bias"], fused["candidate/kernel"],
                                 fused["candidate/bias"], xs, h0)
    swapped = dict(blocks)
    for role in ("input_kernel", "recurrent_kernel", "bias"):
        swapped[("reset", role)], swapped[("update", role)] = blocks[("update", role)], blocks[("reset", role)]
    assert np.max(np.abs(gru.run(swapped, xs, h0, reset_after=False) - theirs)) > 1e-3
    assert np.max(np.abs(gru.run(blocks, xs, h0, reset_after=True) - theirs)) > 1e-4


def test_lstm_and_dense_are_never_reported_as_gru():
    (entry,) = [p.values[0] for p in samples() if p.id == "no_gru"]
    inventory = list_cells(sample_path(entry))
    assert inventory.cells == [] and inventory.problems == []


def test_optimizer_slots_are_ignored_but_listed():
    (entry,) = [p.values[0] for p in samples() if p.id == "tf1_gru_single"]
    inventory = list_cells(sample_path(entry))
    assert len(inventory.cells) == 1
    names = {t.name for t in inventory.other_tensors()}
    assert any(n.endswith("/Adam") for n in names) and any(n.endswith("/Adam_1") for n in names)


def test_swapped_block_cell_kernels_are_told_apart_by_shape():
    (entry,) = [p.values[0] for p in samples() if p.id == "gru_block_cell_swapped"]
    (cell,) = list_cells(sample_path(entry)).cells
    assert cell.tensors["gates/kernel"].endswith("/w_c")
    assert cell.tensors["candidate/kernel"].endswith("/w_ru")
    assert cell.notes
