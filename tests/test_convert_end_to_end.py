"""convert, proven end to end against the SOURCE file's own framework, not gruinspect's reading of it.

The proof inside ``convert`` compares the target's runtime with the explicit GRU of the blocks
gruinspect read: a wrong source layout (TF1 reset and update columns swapped, say) would still
"prove". Here the source side is the framework alone: TensorFlow reads the TF1 checkpoint
(``tf.train.load_checkpoint``) and runs its own ``GRUCell``; Keras 3 loads the ``.keras`` file
and runs its own ``GRU``. The target side is the target's runtime on the written files
(onnxruntime, torch.nn.GRU). Both see the same inputs.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import SAMPLES, run_cli

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

ATOL = 1e-5  # float32 frameworks on both sides


def _inputs(seed, input_size, units, steps=6, batch=2):
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((steps, batch, input_size)).astype(np.float32)
    h0 = rng.uniform(-0.9, 0.9, (batch, units)).astype(np.float32)
    return xs, h0


def _onnx_layer(model_path, k, xs, h0):
    """Y [T, batch, H] of layer ``k`` of a model written by ``convert --to onnx``, run by onnxruntime."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    feed = {}
    for arg in session.get_inputs():
        if arg.name == f"X_l{k}":
            feed[arg.name] = xs
        elif arg.name == f"initial_h_l{k}":
            feed[arg.name] = h0[None]
        else:  # other layers' inputs: one step of zeros
            shape = [d if isinstance(d, int) else 1 for d in arg.shape]
            feed[arg.name] = np.zeros(shape, np.float32)
    return session.run([f"Y_l{k}"], feed)[0][:, 0]


@pytest.mark.parametrize("sample", ["tf1_gru_single", "tf1_multi_rnn"])
def test_tf1_checkpoint_to_onnx_reproduces_tensorflows_own_gru_cell(sample, tmp_path):
    import tensorflow as tf

    from gruinspect.oracle.tf1 import run_tf_gru_cell

    prefix = str(SAMPLES / sample / "model.ckpt")
    report = json.loads(run_cli("convert", prefix, "--to", "onnx", "--out", tmp_path / "o", "--json").stdout)
    reader = tf.train.load_checkpoint(prefix)  # TensorFlow's reader, not gruinspect's
    for k, cell in enumerate(report["cells"]):
        scope = cell["name"]
        G, gb, C, cb = (reader.get_tensor(f"{scope}/{leaf}") for leaf in
                        ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"))
        units = C.shape[1]
        xs, h0 = _inputs(k, G.shape[0] - units, units)
        expected = run_tf_gru_cell(G, gb, C, cb, xs, h0)
        got = _onnx_layer(tmp_path / "o" / "model.onnx", cell["written_as"]["inputs"][0][3:], xs, h0)
        np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0, err_msg=scope)


def _keras_layer(model, name):
    """A return_sequences copy of the model's GRU layer ``name`` with the weights Keras loaded."""
    import keras

    layer = model.get_layer(name)
    config = dict(layer.get_config(), return_sequences=True, return_state=False, name=f"{name}_copy")
    copy = keras.layers.GRU.from_config(config)
    copy.build((None, None, layer.get_weights()[0].shape[0]))
    copy.set_weights(layer.get_weights())
    return copy


def test_keras3_archive_to_pytorch_reproduces_keras_own_gru(tmp_path):
    import keras
    import torch
    from safetensors.torch import load_file

    path = SAMPLES / "keras3_archive" / "model.keras"
    report = json.loads(run_cli("convert", path, "--to", "pytorch", "--cell", "encoder", "--out", tmp_path / "pt",
                                "--json").stdout)
    (cell,) = report["cells"]
    model = keras.saving.load_model(path, compile=False)  # Keras's loader, not gruinspect's
    layer = _keras_layer(model, "encoder")
    xs, h0 = _inputs(5, cell["input_size"], cell["units"])
    expected = np.swapaxes(keras.ops.convert_to_numpy(layer(np.swapaxes(xs, 0, 1), initial_state=[h0])), 0, 1)
    net = torch.nn.GRU(cell["input_size"], cell["units"])
    net.load_state_dict(load_file(str(tmp_path / "pt" / cell["written_as"]["file"])))
    with torch.no_grad():
        got = net(torch.tensor(xs), torch.tensor(h0[None]))[0].numpy()
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)


def test_keras3_archive_to_onnx_reproduces_keras_own_gru_including_reset_before_relu(tmp_path):
    import keras

    path = SAMPLES / "keras3_archive" / "model.keras"
    report = json.loads(run_cli("convert", path, "--to", "onnx", "--out", tmp_path / "o", "--json").stdout)
    model = keras.saving.load_model(path, compile=False)
    checked = 0
    for k, cell in enumerate(report["cells"]):
        if "/" in cell["name"]:
            continue  # nested-model layers are reached through their model; the top-level ones suffice
        layer = _keras_layer(model, cell["name"])
        xs, h0 = _inputs(10 + k, cell["input_size"], cell["units"])
        expected = np.swapaxes(keras.ops.convert_to_numpy(layer(np.swapaxes(xs, 0, 1), initial_state=[h0])), 0, 1)
        got = _onnx_layer(tmp_path / "o" / "model.onnx", cell["written_as"]["inputs"][0][3:], xs, h0)
        np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0, err_msg=cell["name"])
        checked += 1
    assert checked == 2  # encoder (reset after, sigmoid/tanh) and decoder (reset before, hard_sigmoid/relu)
