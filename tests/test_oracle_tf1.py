"""The TensorFlow oracle (gruinspect.oracle.tf1) and the sample checkpoints it is used with.

The oracle is checked against a hand-written numpy step of the GRUCell equations (docs/conventions.md,
TF1 GRUCell), and the test also shows that plausible mistakes (swapped gates, swapped x/h rows,
reset applied after the matmul, ...) are detected at the tolerance used, so a wrong oracle
cannot pass. The samples listed in sample_checkpoints/manifest.json are loaded with
tf.train.load_checkpoint and compared with what the manifest claims.
"""

import os

# tf.compat.v1.nn.rnn_cell needs the legacy (tf_keras) Keras; must precede the TF import.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from gruinspect.oracle import tf1 as oracle  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_checkpoints"
MANIFEST = SAMPLES / "manifest.json"

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

ATOL = {np.float16: 5e-3, np.float32: 1e-6, np.float64: 1e-12}


# ----------------------------------------------------------------- numpy references


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_gru_cell(G, gb, C, cb, xs, h0, mutation=None):
    """docs/conventions.md (TF1 GRUCell), written out by hand, in float64.

    [r | u] = sigmoid([x, h] G + gb); c = tanh([x, r*h] C + cb); h' = u*h + (1-u)*c.
    ``mutation`` deliberately gets one detail wrong (used to show the tests are sensitive).
    """
    G, gb, C, cb, xs, h = (np.asarray(a, np.float64) for a in (G, gb, C, cb, xs, h0))
    H = h.shape[1]
    I = xs.shape[2]
    out = []
    for x in xs:
        if mutation == "x_h_rows_swapped":  # state rows first, input rows last
            ru = _sigmoid(h @ G[:H] + x @ G[H:] + gb)
        else:
            ru = _sigmoid(np.concatenate([x, h], 1) @ G + gb)
        r, u = ru[:, :H], ru[:, H:]
        if mutation == "r_u_swapped":
            r, u = u, r
        if mutation == "x_h_rows_swapped":
            c = np.tanh((r * h) @ C[:H] + x @ C[H:] + cb)
        elif mutation == "reset_after":
            c = np.tanh(x @ C[:I] + cb + r * (h @ C[I:]))
        elif mutation == "no_reset":
            c = np.tanh(np.concatenate([x, h], 1) @ C + cb)
        else:
            c = np.tanh(np.concatenate([x, r * h], 1) @ C + cb)
        if mutation == "keras_interpolation":
            h = (1 - u) * h + u * c
        else:
            h = u * h + (1 - u) * c
        out.append(h)
    return np.stack(out)


def numpy_cudnn_cell(G, gb, Ci, bi, Ch, bh, xs, h0):
    """docs/conventions.md (CudnnCompatibleGRUCell) by hand, float64: c = tanh(x Ci + bi + r * (h Ch + bh))."""
    G, gb, Ci, bi, Ch, bh, xs, h = (np.asarray(a, np.float64) for a in (G, gb, Ci, bi, Ch, bh, xs, h0))
    H = h.shape[1]
    out = []
    for x in xs:
        ru = _sigmoid(np.concatenate([x, h], 1) @ G + gb)
        r, u = ru[:, :H], ru[:, H:]
        c = np.tanh(x @ Ci + bi + r * (h @ Ch + bh))
        h = u * h + (1 - u) * c
        out.append(h)
    return np.stack(out)


def random_gru(seed, input_size, units, dtype=np.float32, steps=6, batch=2):
    rng = np.random.default_rng(seed)
    rows = input_size + units
    w = {
        "gates_kernel": 0.6 * rng.standard_normal((rows, 2 * units)),
        "gates_bias": 0.5 * rng.standard_normal(2 * units) + 0.5,
        "candidate_kernel": 0.6 * rng.standard_normal((rows, units)),
        "candidate_bias": 0.5 * rng.standard_normal(units),
    }
    w = {k: v.astype(dtype) for k, v in w.items()}
    xs = rng.standard_normal((steps, batch, input_size)).astype(dtype)
    h0 = (0.5 * rng.standard_normal((batch, units))).astype(dtype)
    return w, xs, h0


def _reference(w, xs, h0, mutation=None):
    return numpy_gru_cell(w["gates_kernel"], w["gates_bias"], w["candidate_kernel"],
                          w["candidate_bias"], xs, h0, mutation)


# --------------------------------------------------------------------------- oracle


def test_module_import_does_not_import_tensorflow():
    code = "import sys, gruinspect.oracle.tf1; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("input_size,units", [(3, 4), (5, 2), (2, 6)])
def test_tf_gru_cell_matches_equations(dtype, input_size, units):
    w, xs, h0 = random_gru(input_size * 10 + units, input_size, units, dtype)
    hs = oracle.run_tf_gru_cell(w["gates_kernel"], w["gates_bias"], w["candidate_kernel"],
                                w["candidate_bias"], xs, h0)
    assert hs.shape == (xs.shape[0], xs.shape[1], units)
    assert hs.dtype == dtype
    np.testing.assert_allclose(hs.astype(np.float64), _reference(w, xs, h0), rtol=0, atol=ATOL[dtype])


@pytest.mark.parametrize(
    "mutation", ["r_u_swapped", "reset_after", "no_reset", "keras_interpolation", "x_h_rows_swapped"]
)
def test_wrong_equations_are_detected(mutation):
    """Each plausible mistake moves the result far beyond the float32 tolerance."""
    w, xs, h0 = random_gru(7, 3, 4)
    hs = oracle.run_tf_gru_cell(w["gates_kernel"], w["gates_bias"], w["candidate_kernel"],
                                w["candidate_bias"], xs, h0)
    wrong = _reference(w, xs, h0, mutation)
    assert np.max(np.abs(hs - wrong)) > 1e-2


def test_tf_gru_cell_gate_columns_are_reset_then_update():
    """Swapping the r and u column halves of the gate kernel and bias changes the output."""
    w, xs, h0 = random_gru(8, 3, 4)
    H = 4
    swapped = dict(w)
    swapped["gates_kernel"] = np.concatenate([w["gates_kernel"][:, H:], w["gates_kernel"][:, :H]], 1)
    swapped["gates_bias"] = np.concatenate([w["gates_bias"][H:], w["gates_bias"][:H]])
    a = oracle.run_tf_gru_cell(*(w[k] for k in ("gates_kernel", "gates_bias", "candidate_kernel", "candidate_bias")), xs, h0)
    b = oracle.run_tf_gru_cell(*(swapped[k] for k in ("gates_kernel", "gates_bias", "candidate_kernel", "candidate_bias")), xs, h0)
    assert np.max(np.abs(a - b)) > 1e-2
    np.testing.assert_allclose(b, _reference(w, xs, h0, "r_u_swapped"), rtol=0, atol=1e-6)


def test_tf_gru_cell_repeatable_and_in_graph_mode():
    w, xs, h0 = random_gru(9, 4, 3)
    args = (w["gates_kernel"], w["gates_bias"], w["candidate_kernel"], w["candidate_bias"], xs, h0)
    first = oracle.run_tf_gru_cell(*args)
    for _ in range(3):
        np.testing.assert_array_equal(oracle.run_tf_gru_cell(*args), first)
    with tf.Graph().as_default():
        assert not tf.executing_eagerly()
        in_graph = oracle.run_tf_gru_cell(*args)
    np.testing.assert_allclose(in_graph, first, rtol=0, atol=1e-6)


def test_tf_gru_cell_rejects_bad_shapes():
    w, xs, h0 = random_gru(10, 3, 4)
    with pytest.raises(ValueError):
        oracle.run_tf_gru_cell(w["gates_kernel"][:, :4], w["gates_bias"], w["candidate_kernel"],
                               w["candidate_bias"], xs, h0)
    with pytest.raises(ValueError):
        oracle.run_tf_gru_cell(w["gates_kernel"], w["gates_bias"], w["candidate_kernel"],
                               w["candidate_bias"], xs[0], h0)


@pytest.mark.parametrize("input_size,units", [(3, 4), (2, 5)])
def test_gru_block_cell_matches_equations(input_size, units):
    w, xs, h0 = random_gru(20 + units, input_size, units)
    hs = oracle.run_gru_block_cell(w["gates_kernel"], w["gates_bias"], w["candidate_kernel"],
                                   w["candidate_bias"], xs, h0)
    assert hs.dtype == np.float32
    np.testing.assert_allclose(hs, _reference(w, xs, h0), rtol=0, atol=1e-6)
    for mutation in ("r_u_swapped", "reset_after"):
        assert np.max(np.abs(hs - _reference(w, xs, h0, mutation))) > 1e-2


def test_gru_block_cell_rejects_swapped_kernels():
    w, xs, h0 = random_gru(30, 3, 4)
    with pytest.raises(ValueError, match="swapped"):
        oracle.run_gru_block_cell(w["candidate_kernel"], w["gates_bias"], w["gates_kernel"],
                                  w["candidate_bias"], xs, h0)


def random_cudnn(seed, input_size, units, steps=5, batch=3):
    rng = np.random.default_rng(seed)
    shapes = [(input_size + units, 2 * units), (2 * units,), (input_size, units), (units,),
              (units, units), (units,)]
    weights = [(0.6 * rng.standard_normal(s)).astype(np.float32) for s in shapes]
    xs = rng.standard_normal((steps, batch, input_size)).astype(np.float32)
    h0 = (0.5 * rng.standard_normal((batch, units))).astype(np.float32)
    return weights, xs, h0


def test_cudnn_compatible_reference_matches_equations():
    weights, xs, h0 = random_cudnn(40, 3, 5)
    hs = oracle.cudnn_compatible_gru_cell_reference(*weights, xs, h0)
    np.testing.assert_allclose(hs, numpy_cudnn_cell(*weights, xs, h0), rtol=0, atol=1e-6)


def test_cudnn_compatible_reference_matches_keras_reset_after_gru():
    """Independent check: the docs/conventions.md CudnnCompatibleGRUCell conversion to a Keras GRUCell(reset_after=True)
    run by the framework gives the same states as the reference."""
    input_size, units = 4, 3
    (G, gb, Ci, bi, Ch, bh), xs, h0 = random_cudnn(41, input_size, units)
    H, I = units, input_size
    kernel = np.concatenate([G[:I, H:], G[:I, :H], Ci], 1)
    recurrent = np.concatenate([G[I:, H:], G[I:, :H], Ch], 1)
    bias = np.stack([np.concatenate([gb[H:], gb[:H], bi]), np.concatenate([np.zeros(2 * H), bh])])
    cell = tf.keras.layers.GRUCell(units, reset_after=True, activation="tanh",
                                   recurrent_activation="sigmoid")
    cell.build((None, input_size))
    cell.set_weights([kernel, recurrent, bias.astype(np.float32)])
    h = tf.constant(h0)
    keras_hs = []
    for x in xs:
        out, states = cell(tf.constant(x), [h])
        h = states[0] if isinstance(states, (list, tuple)) else states
        keras_hs.append(np.asarray(out))
    hs = oracle.cudnn_compatible_gru_cell_reference(G, gb, Ci, bi, Ch, bh, xs, h0)
    np.testing.assert_allclose(hs, np.stack(keras_hs), rtol=0, atol=1e-6)


# -------------------------------------------------------------------------- samples


def _manifest():
    if not MANIFEST.exists():
        return []
    return json.loads(MANIFEST.read_text())["samples"]


SAMPLE_ENTRIES = _manifest()
# The checks below know the TF1 layouts; samples of other generators (e.g. Keras files) are
# only checked for the common entry fields.
BUNDLE_ENTRIES = [e for e in SAMPLE_ENTRIES if e["format"] == "tf-checkpoint-v2"]

ROLE_SHAPES = {
    "gates/kernel": lambda i, h: [i + h, 2 * h],
    "gates/bias": lambda i, h: [2 * h],
    "candidate/kernel": lambda i, h: [i + h, h],
    "candidate/bias": lambda i, h: [h],
    "candidate/input_projection/kernel": lambda i, h: [i, h],
    "candidate/input_projection/bias": lambda i, h: [h],
    "candidate/hidden_projection/kernel": lambda i, h: [h, h],
    "candidate/hidden_projection/bias": lambda i, h: [h],
}
LAYOUT_ROLES = {
    "tf-gru-cell": {"gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"},
    "tf-gru-block-cell": {"gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"},
    "tf-cudnn-compatible-gru-cell": {
        "gates/kernel", "gates/bias",
        "candidate/input_projection/kernel", "candidate/input_projection/bias",
        "candidate/hidden_projection/kernel", "candidate/hidden_projection/bias",
    },
}


def test_manifest_present_and_well_formed():
    assert SAMPLE_ENTRIES, "sample_checkpoints/manifest.json is missing or empty"
    names = [e["name"] for e in SAMPLE_ENTRIES]
    assert len(names) == len(set(names))
    for entry in SAMPLE_ENTRIES:
        assert {"name", "path", "format", "description", "cells"} <= set(entry)
        assert entry["path"] == entry["name"] or entry["path"].startswith(entry["name"] + "/")
        for cell in entry["cells"]:
            assert {"name", "layout", "input_size", "units", "reset_after", "dtype"} <= set(cell)
            if cell["layout"] in LAYOUT_ROLES:
                assert set(cell["tensors"]) == LAYOUT_ROLES[cell["layout"]]
                assert cell["reset_after"] == (cell["layout"] == "tf-cudnn-compatible-gru-cell")


def _ids(entries):
    return [e["name"] for e in entries]


@pytest.mark.parametrize("entry", BUNDLE_ENTRIES, ids=_ids(BUNDLE_ENTRIES))
def test_sample_loads_with_claimed_shapes(entry):
    reader = tf.train.load_checkpoint(str(SAMPLES / entry["path"]))
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    accounted = set(entry.get("other_tensors", [])) | set(entry.get("optimizer_slots", []))
    known = all(cell["layout"] in LAYOUT_ROLES for cell in entry["cells"])
    for cell in entry["cells"]:
        i, h = cell["input_size"], cell["units"]
        if cell["layout"] not in LAYOUT_ROLES:
            assert set(cell["tensors"].values()) <= set(shapes)
            continue
        for role, key in cell["tensors"].items():
            assert list(shapes[key]) == ROLE_SHAPES[role](i, h), (key, shapes[key])
            assert dtypes[key].name == cell["dtype"]
            value = reader.get_tensor(key)
            assert value.shape == tuple(ROLE_SHAPES[role](i, h))
            assert np.all(np.isfinite(value.astype(np.float64)))
            accounted.add(key)
    if known:
        assert accounted == set(shapes), "manifest does not list every tensor in the checkpoint"
    for key, info in entry.get("tensor_info", {}).items():
        assert dtypes[key].name == info["dtype"]
        assert list(shapes[key]) == info["shape"]
        value = reader.get_tensor(key)
        if info["dtype"] == "string":
            assert [b.decode("utf-8") for b in value.reshape(-1).tolist()] == info["values"]
        else:
            expected = np.array(info["values"], np.float64).reshape(info["shape"])
            np.testing.assert_array_equal(value.astype(np.float64), expected)


@pytest.mark.parametrize("entry", BUNDLE_ENTRIES, ids=_ids(BUNDLE_ENTRIES))
def test_sample_files(entry):
    prefix = SAMPLES / entry["path"]
    folder = prefix.parent
    num_shards = entry.get("num_shards", 1)
    data_files = sorted(p.name for p in folder.glob(prefix.name + ".data-*"))
    assert data_files == ["%s.data-%05d-of-%05d" % (prefix.name, k, num_shards) for k in range(num_shards)]
    assert (folder / (prefix.name + ".index")).exists()
    assert not (folder / (prefix.name + ".meta")).exists()
    assert tf.train.latest_checkpoint(str(folder)).endswith(prefix.name)
    if entry.get("partitioned_tensors"):
        # Slice entries have OrderedCode keys: 0x00, the tensor name, 0x00 0x01, ... They sort
        # first, so the smallest one follows the header key unshared (not prefix-compressed).
        first = b"\x00" + min(entry["partitioned_tensors"]).encode() + b"\x00\x01"
        assert first in (folder / (prefix.name + ".index")).read_bytes()


def _cells_of(layout):
    return [(e, c) for e in BUNDLE_ENTRIES for c in e["cells"] if c["layout"] == layout]


def _load(entry, cell):
    reader = tf.train.load_checkpoint(str(SAMPLES / entry["path"]))
    return {role: reader.get_tensor(key) for role, key in cell["tensors"].items()}


def _sample_inputs(cell, dtype):
    rng = np.random.default_rng(cell["input_size"] * 7 + cell["units"])
    xs = rng.standard_normal((4, 2, cell["input_size"])).astype(dtype)
    h0 = (0.5 * rng.standard_normal((2, cell["units"]))).astype(dtype)
    return xs, h0


@pytest.mark.parametrize("entry,cell", _cells_of("tf-gru-cell"),
                         ids=["%s:%s" % (e["name"], c["name"]) for e, c in _cells_of("tf-gru-cell")])
def test_sample_gru_cells_run_in_oracle(entry, cell):
    t = _load(entry, cell)
    dtype = np.dtype(cell["dtype"]).type
    xs, h0 = _sample_inputs(cell, dtype)
    hs = oracle.run_tf_gru_cell(t["gates/kernel"], t["gates/bias"], t["candidate/kernel"],
                                t["candidate/bias"], xs, h0)
    ref = numpy_gru_cell(t["gates/kernel"], t["gates/bias"], t["candidate/kernel"],
                         t["candidate/bias"], xs, h0)
    np.testing.assert_allclose(hs.astype(np.float64), ref, rtol=0, atol=ATOL[dtype])


@pytest.mark.parametrize("entry,cell", _cells_of("tf-gru-block-cell"),
                         ids=["%s:%s" % (e["name"], c["name"]) for e, c in _cells_of("tf-gru-block-cell")])
def test_sample_block_cells_run_in_oracle(entry, cell):
    t = _load(entry, cell)
    i, h = cell["input_size"], cell["units"]
    assert t["gates/kernel"].shape == (i + h, 2 * h)  # the manifest resolves the name swap
    xs, h0 = _sample_inputs(cell, np.float32)
    hs = oracle.run_gru_block_cell(t["gates/kernel"], t["gates/bias"], t["candidate/kernel"],
                                   t["candidate/bias"], xs, h0)
    ref = numpy_gru_cell(t["gates/kernel"], t["gates/bias"], t["candidate/kernel"],
                         t["candidate/bias"], xs, h0)
    np.testing.assert_allclose(hs, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "entry,cell", _cells_of("tf-cudnn-compatible-gru-cell"),
    ids=["%s:%s" % (e["name"], c["name"]) for e, c in _cells_of("tf-cudnn-compatible-gru-cell")])
def test_sample_cudnn_cells_run_in_reference(entry, cell):
    t = _load(entry, cell)
    xs, h0 = _sample_inputs(cell, np.float32)
    args = [t[r] for r in ("gates/kernel", "gates/bias", "candidate/input_projection/kernel",
                           "candidate/input_projection/bias", "candidate/hidden_projection/kernel",
                           "candidate/hidden_projection/bias")]
    hs = oracle.cudnn_compatible_gru_cell_reference(*args, xs, h0)
    np.testing.assert_allclose(hs, numpy_cudnn_cell(*args, xs, h0), rtol=0, atol=1e-6)
