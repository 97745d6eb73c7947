"""Split then re-fuse gives back the stored tensors exactly: on every sample and on random cells."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import sample_path, samples
from gruinspect.blocks import fuse, owned, read_blocks
from gruinspect.cell import GATES
from gruinspect.inventory import open_cells
from gruinspect.layouts import find_cells
from gruinspect.store import MemoryStore


@pytest.mark.parametrize("entry", samples(with_cells=True))
def test_refuse_is_identity_on_samples(entry):
    with open_cells(sample_path(entry)) as (store, inventory):
        for cell in inventory.cells:
            rebuilt = fuse(cell, read_blocks(store, cell))
            assert set(rebuilt) == set(cell.tensors.values())
            for name, array in rebuilt.items():
                original = owned(cell, name, store.read(name))
                assert array.dtype == original.dtype and array.shape == original.shape
                assert array.tobytes() == original.tobytes(), (cell.name, name)


def _tf_cell_tensors(draw_floats, scope, layout, i, h, dtype):
    g = lambda *shape: draw_floats(shape).astype(dtype)  # noqa: E731
    if layout == "tf-gru-cell":
        return {f"{scope}/gates/kernel": g(i + h, 2 * h), f"{scope}/gates/bias": g(2 * h),
                f"{scope}/candidate/kernel": g(i + h, h), f"{scope}/candidate/bias": g(h)}
    if layout == "tf-gru-block-cell":
        return {f"{scope}/w_ru": g(i + h, 2 * h), f"{scope}/b_ru": g(2 * h),
                f"{scope}/w_c": g(i + h, h), f"{scope}/b_c": g(h)}
    return {f"{scope}/gates/kernel": g(i + h, 2 * h), f"{scope}/gates/bias": g(2 * h),
            f"{scope}/candidate/input_projection/kernel": g(i, h), f"{scope}/candidate/input_projection/bias": g(h),
            f"{scope}/candidate/hidden_projection/kernel": g(h, h), f"{scope}/candidate/hidden_projection/bias": g(h)}


@settings(max_examples=60, deadline=None)
@given(
    layout=st.sampled_from(["tf-gru-cell", "tf-gru-block-cell", "tf-cudnn-compatible-gru-cell"]),
    input_size=st.integers(1, 9), units=st.integers(1, 9),
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
    scope=st.sampled_from(["rnn/gru_cell", "a/b/cell_0/gru_cell", "x"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_refuse_is_identity_on_random_cells(layout, input_size, units, dtype, scope, seed):
    rng = np.random.default_rng(seed)
    tensors = _tf_cell_tensors(lambda shape: rng.normal(size=shape), scope, layout, input_size, units, dtype)
    store = MemoryStore(tensors)
    (cell,) = find_cells(store).cells
    assert (cell.layout, cell.input_size, cell.units, cell.name) == (layout, input_size, units, scope)
    blocks = read_blocks(store, cell)
    for (gate, role), values in blocks.items():
        assert gate in GATES
        assert values.shape == {"input_kernel": (input_size, units), "recurrent_kernel": (units, units)}.get(
            role, (units,))
    rebuilt = fuse(cell, blocks)
    assert set(rebuilt) == set(tensors)
    for name, array in tensors.items():
        assert rebuilt[name].tobytes() == array.tobytes()


def test_gate_blocks_are_the_slices_the_design_names():
    """W_r is gates/kernel[:I, :H], U_u is gates/kernel[I:, H:] (TF GRUCell)."""
    i, h = 3, 4
    gk = np.arange((i + h) * 2 * h, dtype=np.float32).reshape(i + h, 2 * h)
    store = MemoryStore({"s/gates/kernel": gk, "s/gates/bias": np.arange(2 * h, dtype=np.float32),
                         "s/candidate/kernel": np.zeros((i + h, h), np.float32),
                         "s/candidate/bias": np.zeros(h, np.float32)})
    (cell,) = find_cells(store).cells
    blocks = read_blocks(store, cell)
    np.testing.assert_array_equal(blocks[("reset", "input_kernel")], gk[:i, :h])
    np.testing.assert_array_equal(blocks[("reset", "recurrent_kernel")], gk[i:, :h])
    np.testing.assert_array_equal(blocks[("update", "input_kernel")], gk[:i, h:])
    np.testing.assert_array_equal(blocks[("update", "recurrent_kernel")], gk[i:, h:])
    np.testing.assert_array_equal(blocks[("update", "bias")], np.arange(h, 2 * h))


def test_inconsistent_shapes_are_explained_not_guessed():
    store = MemoryStore({"s/gates/kernel": np.zeros((7, 8), np.float32),
                         "s/candidate/kernel": np.zeros((7, 5), np.float32)})
    discovery = find_cells(store)
    assert discovery.cells == []
    assert len(discovery.problems) == 1 and "s/candidate/kernel" in discovery.problems[0]
