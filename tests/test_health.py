"""Health figures of hand-built cells against figures computed by hand.

The cells are built so that every figure has a closed form: gate columns that are zero leave a
gate at act_r(bias) whatever the input, so its saturation, the frozen unit and the timescales
are known exactly; recurrent kernels with one non-zero entry per row and column (or one
non-zero column) have known singular values.
"""
from __future__ import annotations

import json
import math
import shutil

import h5py
import numpy as np
import pytest

from conftest import SAMPLES, run_cli
from gruinspect import maths
from gruinspect.blocks import read_blocks
from gruinspect.health import (EXACT_SVD_MAX, RUN_BATCH, RUN_STEPS, TAU_EDGES, cell_health, gate_values,
                               spectral_norm)
from gruinspect.layouts import find_cells
from gruinspect.store import MemoryStore

LN3 = math.log(3.0)


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def _hand_blocks(I: int, H: int, rng) -> dict:
    """Canonical blocks of a 4-unit cell (H >= 4 columns are used as listed):

    unit 0: b_z = ln 3 (tau 4), b_r = -ln 3 (r0 0.25), candidate column zero with b_h = 5 (c = tanh 5)
    unit 1: update columns zero with b_z = 10: frozen, update always saturated, tau = 1 + e^10
    unit 2: every incoming weight and bias zero: dead (tau 2, r0 0.5)
    unit 3: b_z = -ln 3 (tau 4/3), reset columns zero with b_r = 20: reset always saturated
    Other weights are small (|w| <= 0.05), so nothing else comes near saturation.
    """
    small = lambda *shape: rng.uniform(-0.05, 0.05, size=shape)  # noqa: E731
    b = {}
    for gate in ("reset", "update", "candidate"):
        b[(gate, "input_kernel")] = small(I, H)
        b[(gate, "bias")] = np.zeros(H)
    b[("reset", "recurrent_kernel")] = np.diag([0.06, -0.08, 0.0, 0.0])        # norm 0.08
    b[("update", "recurrent_kernel")] = np.diag([0.05, 0.0, 0.0, 0.07])        # norm 0.07
    uh = np.zeros((H, H))
    uh[0, 1], uh[1, 1], uh[3, 3] = 0.03, 0.04, 0.02                             # norm hypot(.03, .04) = .05
    b[("candidate", "recurrent_kernel")] = uh
    b[("update", "bias")][:] = [LN3, 10.0, 0.0, -LN3]
    b[("reset", "bias")][:] = [-LN3, 0.0, 0.0, 20.0]
    b[("candidate", "bias")][0] = 5.0
    b[("candidate", "input_kernel")][:, 0] = 0.0
    b[("update", "input_kernel")][:, 1] = 0.0
    b[("reset", "input_kernel")][:, 3] = 0.0
    for gate in ("reset", "update", "candidate"):
        b[(gate, "input_kernel")][:, 2] = 0.0
    return b


def _tf_gru_cell_store(b: dict, I: int, H: int) -> MemoryStore:
    """TF1 GRUCell tensors placed by hand (README: gates/kernel = [[W_r W_u]; [U_r U_u]])."""
    gates_kernel = np.block([[b[("reset", "input_kernel")], b[("update", "input_kernel")]],
                             [b[("reset", "recurrent_kernel")], b[("update", "recurrent_kernel")]]])
    cand_kernel = np.vstack([b[("candidate", "input_kernel")], b[("candidate", "recurrent_kernel")]])
    return MemoryStore({
        "rnn/gru_cell/gates/kernel": gates_kernel.astype(np.float32),
        "rnn/gru_cell/gates/bias": np.concatenate([b[("reset", "bias")], b[("update", "bias")]]).astype(np.float32),
        "rnn/gru_cell/candidate/kernel": cand_kernel.astype(np.float32),
        "rnn/gru_cell/candidate/bias": b[("candidate", "bias")].astype(np.float32),
    })


def _only_cell(store):
    (cell,) = find_cells(store).cells
    return cell, read_blocks(store, cell)


def test_hand_built_tf_gru_cell_figures():
    I, H = 3, 4
    blocks = _hand_blocks(I, H, np.random.default_rng(7))
    cell, read = _only_cell(_tf_gru_cell_store(blocks, I, H))
    assert cell.layout == "tf-gru-cell"
    h = cell_health(cell, read)

    tau = [4.0, 1.0 + math.exp(10.0), 2.0, 4.0 / 3.0]
    np.testing.assert_allclose(h.tau, tau, rtol=1e-6)  # float32 biases: ln 3 is rounded
    assert h.tau_spread.median == pytest.approx(3.0, rel=1e-6)
    assert h.tau_spread.max == pytest.approx(1.0 + math.exp(10.0), rel=1e-6)
    # bins [1,2) [2,5) [5,10) ... [1000,inf]: 4/3 | 2 and 4 | ... | e^10
    assert h.tau_histogram.edges == list(TAU_EDGES)
    assert h.tau_histogram.counts == [1, 2, 0, 0, 0, 0, 0, 1]

    np.testing.assert_allclose(h.reset_openness, [0.25, 0.5, 0.5, _sigmoid(20.0)], rtol=1e-6)
    assert h.reset_spread.median == pytest.approx(0.5)
    assert h.reset_spread.min == pytest.approx(0.25, rel=1e-6)

    assert h.spectral_norms["reset"] == pytest.approx(0.08, rel=1e-6)
    assert h.spectral_norms["update"] == pytest.approx(0.07, rel=1e-6)
    assert h.spectral_norms["candidate"] == pytest.approx(0.05, rel=1e-6)

    # exactly one unit of four saturates in each gate, at every step of every sequence
    assert h.saturation == {"reset": 0.25, "update": 0.25, "candidate": 0.25}
    assert h.run["steps"] == RUN_STEPS and h.run["batch"] == RUN_BATCH
    assert h.dead_units == [2]
    assert h.frozen_units == [1]
    assert h.equal_bias_pairs == {}  # GRUCell has one bias set
    assert (h.nan_count, h.inf_count) == (0, 0)
    assert (h.activation, h.recurrent_activation, h.activations_assumed) == ("tanh", "sigmoid", False)

    data = json.loads(json.dumps(h.to_json(), allow_nan=False))
    assert data["tau"]["median"] == pytest.approx(3.0, rel=1e-6)
    assert data["tau"]["infinite_units"] == 0
    assert data["dead_units"] == [2] and data["frozen_units"] == [1]


def _keras_store(b: dict, I: int, H: int, *, recurrent: dict | None) -> MemoryStore:
    """Keras GRU kernel [I, 3H] / recurrent_kernel [H, 3H] / bias [2, 3H], gates z | r | h (keras gru.py)."""
    order = ("update", "reset", "candidate")
    kernel = np.hstack([b[(g, "input_kernel")] for g in order])
    rkernel = np.hstack([b[(g, "recurrent_kernel")] for g in order])
    bias = np.stack([np.concatenate([b[(g, "bias")] for g in order]),
                     np.concatenate([recurrent[g] for g in order])])
    return MemoryStore({"gru/kernel": kernel.astype(np.float32), "gru/recurrent_kernel": rkernel.astype(np.float32),
                        "gru/bias": bias.astype(np.float32)})


def test_reset_after_biases_add_and_equal_pairs_and_nonfinite():
    I, H = 2, 4
    b = _hand_blocks(I, H, np.random.default_rng(3))
    b_z = b[("update", "bias")]
    b[("update", "bias")] = 0.25 * b_z
    # the update pair sums to the hand-built b_z; the reset pair is equal; the candidate pair differs
    recurrent = {"update": 0.75 * b_z, "reset": b[("reset", "bias")].copy(), "candidate": np.full(H, 0.25)}
    store = _keras_store(b, I, H, recurrent=recurrent)
    cell, read = _only_cell(store)
    assert cell.layout == "keras-gru" and cell.reset_after
    h = cell_health(cell, read)
    np.testing.assert_allclose(h.tau, [4.0, 1.0 + math.exp(10.0), 2.0, 4.0 / 3.0], rtol=1e-6)
    assert h.equal_bias_pairs == {"reset": True, "update": False, "candidate": False}
    assert h.activations_assumed  # no layer config: Keras defaults
    assert (h.activation, h.recurrent_activation) == ("tanh", "sigmoid")

    read[("reset", "input_kernel")] = read[("reset", "input_kernel")].copy()
    read[("reset", "input_kernel")][0, 0] = np.nan
    read[("candidate", "recurrent_kernel")] = read[("candidate", "recurrent_kernel")].copy()
    read[("candidate", "recurrent_kernel")][1, 2] = np.inf
    bad = cell_health(cell, read)
    assert (bad.nan_count, bad.inf_count) == (1, 1)
    assert bad.nonfinite_blocks == {"reset_input_kernel": (1, 0), "candidate_recurrent_kernel": (0, 1)}
    assert math.isnan(bad.spectral_norms["candidate"])
    json.dumps(bad.to_json(), allow_nan=False)  # JSON has no NaN: figures become null


@pytest.mark.parametrize("name, slope, expected", [
    ("hard_sigmoid_keras2", 0.2, 1 / (1 - 0.7)),          # clip(0.2 * 1 + 0.5) = 0.7
    ("hard_sigmoid_keras3", 1 / 6, 1 / (1 - (1 / 6 + 0.5))),
    ("sigmoid", None, 1 + math.e),
])
def test_timescale_uses_the_cells_own_recurrent_activation(name, slope, expected):
    I, H = 2, 4
    b = _hand_blocks(I, H, np.random.default_rng(5))
    b[("update", "bias")][:] = [1.0, 3.0, 0.0, -1.0]
    cell, read = _only_cell(_tf_gru_cell_store(b, I, H))
    cell = cell.replace(recurrent_activation=name)
    h = cell_health(cell, read)
    assert h.tau[0] == pytest.approx(expected, rel=1e-6)
    if name == "hard_sigmoid_keras2":  # clip(0.2 * 3 + 0.5) = 1: that unit never forgets
        assert math.isinf(h.tau[1])
        assert h.to_json()["tau"]["infinite_units"] == 1
        assert h.to_json()["tau"]["max"] is None


def test_onnx_clip_bounds_every_gate_input():
    I, H = 3, 4
    cell, read = _only_cell(_tf_gru_cell_store(_hand_blocks(I, H, np.random.default_rng(7)), I, H))
    h = cell_health(cell.replace(config={"clip": 0.5}), read)
    # b_z = ln 3, 10, 0, -ln 3 clipped to +-0.5; the reset gate of unit 3 (b_r 20) is sigmoid(0.5): not saturated
    np.testing.assert_allclose(h.tau, [1 + math.exp(0.5), 1 + math.exp(0.5), 2.0, 1 + math.exp(-0.5)], rtol=1e-6)
    assert h.saturation == {"reset": 0.0, "update": 0.0, "candidate": 0.0}
    assert h.frozen_units == [] and h.notes == ["every activation's input bounded to [-0.5, 0.5] (clip)"]


@pytest.mark.parametrize("n", [EXACT_SVD_MAX, 300])
def test_spectral_norm_of_a_matrix_with_known_singular_values(n):
    """U = Q1 diag(s) Q2^T has singular values s; above EXACT_SVD_MAX Lanczos must find max(s)."""
    rng = np.random.default_rng(n)
    q1, _ = np.linalg.qr(rng.normal(size=(n, n)))
    q2, _ = np.linalg.qr(rng.normal(size=(n, n)))
    s = np.linspace(0.1, 2.5, n) * (1 - 0.01 * rng.uniform(size=n))  # the top two 2.5 * (1 - 0.01 u), close
    s[-1] = 2.5
    assert spectral_norm((q1 * s) @ q2.T) == pytest.approx(2.5, rel=1e-9)


@pytest.mark.parametrize("reset_after", [False, True])
def test_gate_values_step_as_the_reference_maths(reset_after):
    rng = np.random.default_rng(11)
    I, H = 3, 5
    blocks = {(g, r): rng.normal(size=(I if r == "input_kernel" else H, H) if "kernel" in r else (H,))
              for g in ("reset", "update", "candidate") for r in ("input_kernel", "recurrent_kernel", "bias",
                                                                   "recurrent_bias")}
    x, h = rng.normal(size=(4, I)), rng.uniform(-1, 1, size=(4, H))
    act, act_r = maths.activation("tanh"), maths.activation("hard_sigmoid_keras3")
    *_, h_new = gate_values(blocks, x, h, reset_after=reset_after, act=act, act_r=act_r)
    expected = maths.step(blocks, x, h, reset_after=reset_after, activation_name="tanh",
                          recurrent_activation_name="hard_sigmoid_keras3")
    np.testing.assert_allclose(h_new, expected, rtol=1e-12, atol=1e-12)


def test_stats_health_cli_on_a_hand_built_keras_file(tmp_path):
    """`stats --health` on a Keras weights file whose GRU holds hand-built values (z | r | h columns)."""
    path = tmp_path / "weights.h5"
    shutil.copyfile(SAMPLES / "tfkeras_weights_h5" / "weights.h5", path)
    I, H = 4, 3
    rng = np.random.default_rng(1)
    small = lambda *shape: rng.uniform(-0.05, 0.05, size=shape).astype(np.float32)  # noqa: E731
    kernel, rkernel = small(I, 3 * H), small(H, 3 * H)
    bias = np.zeros(3 * H, np.float32)
    z, r, c = slice(0, H), slice(H, 2 * H), slice(2 * H, 3 * H)
    bias[z] = [LN3, 10.0, 0.0]        # tau 4, frozen (1 + e^10), dead (2)
    bias[r] = [-LN3, 0.0, 0.0]        # r0 0.25, 0.5, 0.5
    bias[c] = [5.0, 0.0, 0.0]         # unit 0 candidate stuck at tanh(5)
    kernel[:, 2 * H], rkernel[:, 2 * H] = 0, 0          # unit 0 candidate columns
    kernel[:, 1], rkernel[:, 1] = 0, 0                  # unit 1 update columns
    for start in (0, H, 2 * H):                         # unit 2: nothing comes in
        kernel[:, start + 2], rkernel[:, start + 2] = 0, 0
    with h5py.File(path, "r+") as f:
        g = f["classic/classic/gru_cell"]
        g["kernel:0"][...], g["recurrent_kernel:0"][...], g["bias:0"][...] = kernel, rkernel, bias
    data = json.loads(run_cli("stats", path, "--health", "--cell", "classic", "--json").stdout)
    (entry,) = data["cells"]
    assert entry["name"] == "classic" and len(entry["blocks"]) == 9
    health = entry["health"]
    assert health["tau"]["median"] == pytest.approx(4.0, rel=1e-6)
    assert health["tau"]["max"] == pytest.approx(1.0 + math.exp(10.0), rel=1e-6)
    assert health["tau"]["histogram"]["counts"] == [0, 2, 0, 0, 0, 0, 0, 1]
    assert health["reset_openness"]["min"] == pytest.approx(0.25, rel=1e-6)
    assert health["reset_openness"]["median"] == pytest.approx(0.5)
    assert health["saturation"]["update"] == pytest.approx(1 / 3)
    assert health["saturation"]["candidate"] == pytest.approx(1 / 3)
    assert health["saturation"]["reset"] == 0.0
    assert health["dead_units"] == [2] and health["frozen_units"] == [1]
    assert health["activations_assumed"] is True  # a weights-only file does not say
    assert health["spectral_norms"]["reset"] == pytest.approx(
        float(np.linalg.svd(rkernel[:, r].astype(np.float64), compute_uv=False)[0]), rel=1e-9)

    text = run_cli("stats", path, "--health", "--cell", "classic").stdout
    assert "memory timescale tau (steps)" in text and "median 4, max 2.203e+04" in text
    assert "dead units" in text and "1: 2" in text


def test_stats_without_health_is_unchanged(tmp_path):
    data = json.loads(run_cli("stats", SAMPLES / "tf1_gru_single" / "model.ckpt", "--json").stdout)
    assert all("health" not in c for c in data["cells"])
