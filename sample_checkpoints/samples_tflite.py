"""Generators for the TFLite samples, written by ``tf.lite.TFLiteConverter.from_keras_model``.

Each generator runs this file as a child process with Keras 3 (``TF_USE_LEGACY_KERAS`` unset)::

    python samples_tflite.py --write NAME FOLDER ENTRY_JSON

The child builds a Keras 3 model of GRUs with seeded random weights (biases too), converts it
with TensorFlow 2.21's converter (float32, or ``optimizations=[tf.lite.Optimize.DEFAULT]`` for
dynamic-range int8 weights, which the converter applies to tensors of 1024 or more elements, so
the int8 sample has wider GRUs), and records, independently of gruinspect:

* ``expected.npz``: ``keras/<layer>/{kernel,recurrent_kernel,bias}`` (the Keras weights before
  conversion), ``input`` (a seeded batch), ``keras_output`` (the Keras model on it) and
  ``tflite_output`` (``tf.lite.Interpreter`` on the converted file);
* the manifest entry: each GRU's cell name as the converter scoped its operators
  (``functional_1/enc_1``, found in the interpreter's tensor names), input size, units,
  reset_after, and the Keras layer it came from.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from samples_tfjs import child_generators  # noqa: E402 - the shared child-process driver

# name -> (description, time steps, input size, [(layer, units, reset_after, unroll)], int8)
SAMPLES = {
    "tflite_while": (
        "TFLite model (TFLiteConverter.from_keras_model, TF 2.21, float32) of Keras 3 GRU 'enc' (3->4, "
        "reset_after=True) then GRU 'dec' (4->5, reset_after=False), unroll=False: one WHILE loop per GRU "
        "whose body subgraph holds the step",
        6, 3, [("enc", 4, True, False), ("dec", 5, False, False)], False),
    "tflite_unrolled": (
        "TFLite model (float32) of the same two GRUs with unroll=True over 5 steps: the steps inline in the main "
        "subgraph, the first step's recurrent matmul folded away by the zero initial state",
        5, 3, [("enc", 4, True, True), ("dec", 5, False, True)], False),
    "tflite_int8": (
        "TFLite model with dynamic-range int8 weights (optimizations=[Optimize.DEFAULT]) of Keras 3 GRU 'wq' "
        "(16->24, reset_after=True, WHILE loop) then GRU 'uq' (24->24, reset_after=False, unrolled over 4 steps): "
        "kernels int8 with one scale per output row, hybrid FULLY_CONNECTED kernels",
        4, 16, [("wq", 24, True, False), ("uq", 24, False, True)], True),
    "tflite_one_step": (
        "TFLite model (float32) of Keras 3 GRU 'once' (3->4) unrolled over a single time step: the converter folds "
        "the zero initial state, so no recurrent kernel is left in the file; gruinspect reports it and lists no cell",
        1, 3, [("once", 4, True, True)], False),
    "tflite_float16": (
        "TFLite model with float16 weights (Optimize.DEFAULT, supported_types=[float16]) of Keras 3 GRU 'half' (3->5, "
        "reset_after=True, WHILE loop): every constant stored float16 and widened by DEQUANTIZE operators",
        4, 3, [("half", 5, True, False)], "float16"),
    "tflite_tfkeras_bidi": (
        "TFLite model (float32) of a tf-keras 2.21 model: Bidirectional 'bidi' of GRU 'gru' (3->5, reset_after=False, "
        "unrolled over 4 steps: the state-side gate bands come from SPLIT_V, the backward half reads REVERSE_V2 "
        "of the input) then GRU 'after' (10->4, reset_after=False, WHILE loop)",
        4, 3, [("bidi", 5, False, True, "bidirectional"), ("after", 4, False, False)], False),
    "tflite_sequence_gru_op": (
        "TFLite model holding the experimental custom operator UNIDIRECTIONAL_SEQUENCE_GRU (input [5, 1, 3], "
        "state [1, 4], gate_weight [8, 7], gate_bias [8], candidate_weight [4, 7], candidate_bias [4]), written "
        "with TensorFlow's own FlatBuffer tools (tensorflow/lite/tools/flatbuffer_utils.py): no converter emits "
        "this operator; seeded random weights",
        5, 3, [], False),
}


def _env(name: str) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_USE_LEGACY_KERAS", None)
    if name.startswith("tflite_tfkeras"):
        env["TF_USE_LEGACY_KERAS"] = "1"
    return env


GENERATORS = child_generators(str(Path(__file__).resolve()), SAMPLES, lambda name: sys.executable, _env)


def build(name: str, keras):
    """The Keras model of sample ``name`` (fresh, unweighted)."""
    _, steps, input_size, grus, _ = SAMPLES[name]
    x = keras.Input((steps, input_size), batch_size=1, name="x")
    h = x
    for layer, units, reset_after, unroll, *wrap in grus:
        if wrap:
            gru = keras.layers.GRU(units, reset_after=reset_after, unroll=unroll, return_sequences=True, name="gru")
            h = keras.layers.Bidirectional(gru, name=layer)(h)
        else:
            h = keras.layers.GRU(units, reset_after=reset_after, unroll=unroll, return_sequences=True, name=layer)(h)
    return keras.Model(x, h, name=name)


def _scope(names: list[str], layer: str) -> str:
    """The converter's op scope of a Keras layer, from the interpreter's tensor names."""
    pattern = re.compile(r"^(.*?/%s(_\d+)?)/" % re.escape(layer))
    found = sorted({m.group(1) for n in names for part in n.split(";") for m in [pattern.match(part)] if m})
    assert len(found) == 1, (layer, found)
    return found[0]


def _write_sequence_gru_op(name: str, folder: Path) -> dict:
    """A one-operator model: the custom UNIDIRECTIONAL_SEQUENCE_GRU with its inputs as
    tensorflow/lite/experimental/kernels/unidirectional_sequence_gru.cc numbers them."""
    import numpy as np
    import tensorflow as tf
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    description, steps, input_size, _, _ = SAMPLES[name]
    units = 4
    rng = np.random.default_rng(3100)
    weights = {
        "gru/gate_weight": rng.uniform(-0.7, 0.7, (2 * units, input_size + units)).astype(np.float32),
        "gru/gate_bias": rng.uniform(-0.7, 0.7, (2 * units,)).astype(np.float32),
        "gru/candidate_weight": rng.uniform(-0.7, 0.7, (units, input_size + units)).astype(np.float32),
        "gru/candidate_bias": rng.uniform(-0.7, 0.7, (units,)).astype(np.float32),
    }
    model = schema.ModelT()
    model.version = 3
    model.description = b"gruinspect sample: custom UNIDIRECTIONAL_SEQUENCE_GRU"
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = b"UNIDIRECTIONAL_SEQUENCE_GRU"
    code.version = 1
    model.operatorCodes = [code]
    model.buffers = [schema.BufferT()]
    sg = schema.SubGraphT()
    sg.name = b"main"
    sg.tensors = []

    def tensor(tname, shape, data=None):
        t = schema.TensorT()
        t.name, t.shape, t.type = tname.encode(), list(shape), schema.TensorType.FLOAT32
        buf = schema.BufferT()
        if data is not None:
            buf.data = np.frombuffer(data.astype("<f4").tobytes(), np.uint8)
        model.buffers.append(buf)
        t.buffer = len(model.buffers) - 1
        sg.tensors.append(t)
        return len(sg.tensors) - 1

    x = tensor("input", (steps, 1, input_size))
    h = tensor("state", (1, units))
    ids = [tensor(n, w.shape, w) for n, w in weights.items()]
    y = tensor("gru/output", (steps, 1, units))
    hy = tensor("gru/output_state", (1, units))
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [x, h] + ids, [y, hy]
    sg.operators = [op]
    sg.inputs, sg.outputs = [x, h], [y]
    model.subgraphs = [sg]
    (folder / "model.tflite").write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    np.savez(folder / "expected.npz", **weights)
    cell = {"name": "gru/output", "layout": "tflite-sequence-gru", "input_size": input_size, "units": units,
            "reset_after": False, "dtype": "float32", "activation": "tanh", "recurrent_activation": "sigmoid",
            "config_source": "layout (the operator's fixed sigmoid / tanh)", "use_bias": True,
            "tensors": {k.split("/")[1]: k for k in weights}}
    return {"name": name, "path": "%s/model.tflite" % name, "format": "tflite", "description": description,
            "writer": "tensorflow/lite/tools/flatbuffer_utils (TensorFlow %s)" % tf.__version__, "cells": [cell]}


def _child_main(name: str, folder: Path, entry_file: Path) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    if name == "tflite_sequence_gru_op":
        entry_file.write_text(json.dumps(_write_sequence_gru_op(name, folder), indent=1))
        return
    import numpy as np
    import tensorflow as tf

    if name.startswith("tflite_tfkeras"):
        import tf_keras as keras
    else:
        import keras
    description, steps, input_size, grus, int8 = SAMPLES[name]
    seed = 3000 + sorted(SAMPLES).index(name)
    keras.utils.set_random_seed(seed)
    model = build(name, keras)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.uniform(-0.7, 0.7, size=w.shape).astype(np.float32) for w in model.get_weights()])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if int8 == "float16":
        converter.target_spec.supported_types = [tf.float16]
    content = converter.convert()
    (folder / "model.tflite").write_bytes(content)
    xs = rng.normal(size=(1, steps, input_size)).astype(np.float32)
    interpreter = tf.lite.Interpreter(model_path=str(folder / "model.tflite"))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], xs)
    interpreter.invoke()
    tflite_out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    keras_out = np.asarray(model(xs))
    assert np.max(np.abs(tflite_out - keras_out)) < (5e-2 if int8 else 1e-5), np.max(np.abs(tflite_out - keras_out))
    dtype = "float16" if int8 == "float16" else "float32"
    int8 = int8 is True
    arrays = {"input": xs, "keras_output": keras_out, "tflite_output": tflite_out}
    names = [d["name"] for d in interpreter.get_tensor_details()]
    cells = []
    in_size = input_size
    for layer, units, reset_after, unroll, *wrap in grus:
        parts = [(layer, model.get_layer(layer))]
        if wrap:
            outer = model.get_layer(layer)
            parts = [("%s/%s" % (layer, sub.name), sub) for sub in (outer.forward_layer, outer.backward_layer)]
        for path, keras_layer in parts:
            cell = keras_layer.cell
            for role, var in (("kernel", cell.kernel), ("recurrent_kernel", cell.recurrent_kernel),
                              ("bias", cell.bias)):
                arrays["keras/%s/%s" % (path, role)] = np.asarray(var)
            if not (unroll and steps == 1):
                cells.append({
                    "name": _scope(names, path.rsplit("/", 1)[-1]), "layout": "tflite-recovered-gru",
                    "input_size": in_size, "units": units, "reset_after": reset_after, "dtype": dtype,
                    "activation": "tanh", "recurrent_activation": "sigmoid",
                    "config_source": "operator graph (LOGISTIC / TANH)", "use_bias": True, "keras_layer": path,
                    "form": "unrolled" if unroll else "while", "int8": bool(int8 and units * in_size * 3 >= 1024),
                })
        in_size = units * len(parts)
    np.savez(folder / "expected.npz", **arrays)
    entry = {"name": name, "path": "%s/model.tflite" % name, "format": "tflite", "description": description,
             "writer": "tf.lite.TFLiteConverter (TensorFlow %s, Keras %s)" % (tf.__version__, keras.__version__),
             "cells": cells}
    entry_file.write_text(json.dumps(entry, indent=1))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--write":
        _child_main(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        sys.exit("usage: samples_tflite.py --write NAME FOLDER ENTRY_JSON (normally run by make_samples.py)")
