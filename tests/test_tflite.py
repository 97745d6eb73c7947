"""TFLite models: the native FlatBuffer reader against TensorFlow's own, GRU recovery against the
Keras models the samples were converted from, and ``verify`` against the TFLite interpreter.

The samples were written by ``tf.lite.TFLiteConverter`` (``sample_checkpoints/samples_tflite.py``);
``expected.npz`` holds the Keras weights before conversion. TensorFlow is the oracle here, so in CI
(where it is installed) nothing is skipped.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import SAMPLES, run_cli, sample_path, samples
from gruinspect.blocks import read_blocks
from gruinspect.errors import GruInspectError
from gruinspect.formats import detect, tflite
from gruinspect.inventory import open_cells
from gruinspect.verify import verify

TFLITE = samples(formats=["tflite"])
RECOVERED = samples(layouts=["tflite-recovered-gru"])
KERAS_GATES = ("update", "reset", "candidate")  # Keras kernel column bands


def _expected(entry) -> dict:
    with np.load(SAMPLES / entry["name"] / "expected.npz") as z:
        return {k: z[k] for k in z.files}


def _tf_model(path):
    from tensorflow.lite.tools import flatbuffer_utils

    return flatbuffer_utils.read_model(str(path))


def test_samples_cover_while_unrolled_int8_and_folding():
    names = {p.id for p in TFLITE}
    assert {"tflite_while", "tflite_unrolled", "tflite_int8", "tflite_one_step", "tflite_float16"} <= names
    forms = {(c["form"], c["reset_after"], c["int8"]) for p in RECOVERED for c in p.values[0]["cells"]}
    assert {("while", True, False), ("while", False, False), ("unrolled", True, False), ("unrolled", False, False),
            ("while", True, True), ("unrolled", False, True)} <= forms


@pytest.mark.parametrize("entry", TFLITE)
def test_lists_the_cells_the_converter_made(entry):
    data = json.loads(run_cli("list", sample_path(entry), "--json").stdout)
    assert data["source"]["format"] == "tflite"
    got = {c["name"]: c for c in data["cells"]}
    assert sorted(got) == sorted(c["name"] for c in entry["cells"])
    for want in entry["cells"]:
        cell = got[want["name"]]
        for key in ("layout", "input_size", "units", "reset_after", "dtype", "activation", "recurrent_activation",
                    "config_source"):
            assert cell[key] == want[key], (want["name"], key)
        if want["layout"] == "tflite-recovered-gru":
            assert any("recovered by pattern" in n for n in cell["notes"])
            assert any("int8" in n for n in cell["notes"]) == want["int8"]
        else:
            assert {role: t["name"] for role, t in cell["tensors"].items()} == want["tensors"]


def test_a_gru_folded_to_nothing_is_reported_not_guessed():
    result = run_cli("list", SAMPLES / "tflite_one_step" / "model.tflite", "--json")
    data = json.loads(result.stdout)
    assert data["cells"] == []
    assert any("the recurrent kernel is not" in p for p in data.get("problems", [])) or \
        "the recurrent kernel is not" in result.stderr


@pytest.mark.parametrize("entry", TFLITE)
def test_reader_matches_tensorflows_flatbuffer_reader(entry):
    from tensorflow.lite.python import schema_py_generated as schema

    ref = _tf_model(sample_path(entry))
    types = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    with tflite.open(sample_path(entry)) as store:
        model = store.model
        assert len(model.subgraphs) == len(ref.subgraphs) and len(model.buffers) == len(ref.buffers)
        for sg, rsg in zip(model.subgraphs, ref.subgraphs):
            assert sg.name == (rsg.name or b"").decode()
            assert list(sg.inputs) == list(rsg.inputs) and list(sg.outputs) == list(rsg.outputs)
            assert len(sg.tensors) == len(rsg.tensors)
            for t, rt in zip(sg.tensors, rsg.tensors):
                assert t.name == rt.name.decode() and list(t.shape) == list(rt.shape if rt.shape is not None else [])
                assert t.type == types[rt.type] and t.buffer == rt.buffer
                rq = rt.quantization
                if rq is not None and rq.scale is not None and len(rq.scale):
                    assert t.quantization.scale == tuple(np.float32(s) for s in rq.scale)
                    assert t.quantization.zero_point == tuple(int(z) for z in rq.zeroPoint)
                    assert t.quantization.axis == rq.quantizedDimension
                else:
                    assert t.quantization is None
                data = ref.buffers[rt.buffer].data
                if data is not None and len(data):
                    value = store.read_raw(t.store_name)
                    want = np.frombuffer(bytes(np.asarray(data, np.uint8)), value.dtype.newbyteorder("<"))
                    assert np.array_equal(value.reshape(-1), want), t.name
            assert len(sg.operators) == len(rsg.operators)
            for op, rop in zip(sg.operators, rsg.operators):
                code = ref.operatorCodes[rop.opcodeIndex]
                number = max(code.builtinCode, code.deprecatedBuiltinCode)
                builtin = tflite.BUILTIN_OPERATORS.get(number, f"BUILTIN_{number}")
                assert op.opcode == (code.customCode.decode() if builtin == "CUSTOM" else builtin)
                assert list(op.inputs) == list(rop.inputs) and list(op.outputs) == list(rop.outputs)


def test_operator_names_are_tensorflows():
    from tensorflow.lite.python import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    assert {code: names[code] for code in tflite.BUILTIN_OPERATORS} == tflite.BUILTIN_OPERATORS


@pytest.mark.parametrize("entry", [p for p in TFLITE if p.id == "tflite_int8"], ids=["tflite_int8"])
def test_dequantization_is_scale_times_q_minus_zero_point_per_row(entry):
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=sample_path(entry))
    details = {d["name"]: d for d in interpreter.get_tensor_details()}
    seen = 0
    with tflite.open(sample_path(entry)) as store:
        for name, q in store.metadata["quantization"].items():
            t = store.tensor(name)
            if t.subgraph != 0 or t.name not in details:
                continue
            d = details[t.name]
            raw = interpreter.get_tensor(d["index"])
            scales, zeros = d["quantization_parameters"]["scales"], d["quantization_parameters"]["zero_points"]
            axis = d["quantization_parameters"]["quantized_dimension"]
            shape = [1] * raw.ndim
            shape[axis] = len(scales)
            want = (scales.astype(np.float64).reshape(shape) * (raw - zeros.reshape(shape))).astype(np.float32)
            assert np.array_equal(store.read(name), want), name
            assert len(scales) == raw.shape[0] > 1  # per output row
            seen += 1
    assert seen >= 2


def _keras_block(expected, layer, gate, role, units):
    k = KERAS_GATES.index(gate)
    cols = slice(k * units, (k + 1) * units)
    if role == "input_kernel":
        return expected[f"keras/{layer}/kernel"][:, cols]
    if role == "recurrent_kernel":
        return expected[f"keras/{layer}/recurrent_kernel"][:, cols]
    bias = expected[f"keras/{layer}/bias"]
    if role == "bias":
        return bias[0, cols] if bias.ndim == 2 else bias[cols]
    return bias[1, cols]


@pytest.mark.parametrize("entry", RECOVERED)
def test_blocks_are_the_keras_weights(entry):
    """Each recovered block is the Keras weight it came from: exact in float32, within half an
    int8 step (per output row) when quantized."""
    expected = _expected(entry)
    by_name = {c["name"]: c for c in entry["cells"]}
    with open_cells(sample_path(entry)) as (store, inventory):
        for cell in inventory.cells:
            want = by_name[cell.name]
            blocks = read_blocks(store, cell)
            roles = {"input_kernel", "recurrent_kernel", "bias"} | ({"recurrent_bias"} if cell.reset_after else set())
            assert {(g, r) for g in KERAS_GATES for r in roles} == set(blocks)
            quant = store.metadata["quantization"]
            for (gate, role), value in blocks.items():
                original = _keras_block(expected, want["keras_layer"], gate, role, cell.units)
                tensor = cell.block(gate, role).source.tensor
                if cell.dtype == "float16":
                    assert np.array_equal(value, original.astype(np.float16)), (cell.name, gate, role)
                elif tensor in quant:
                    step = np.asarray(quant[tensor]["scale"])  # one per output row = per block column
                    k = cell.block(gate, role).source.index[0]
                    half = step[k[0]:k[1]] / 2 + 1e-7
                    assert np.all(np.abs(value.astype(np.float64) - original) <= half), (cell.name, gate, role)
                else:
                    assert np.array_equal(value, original), (cell.name, gate, role)
            assert bool(set(cell.tensors.values()) & set(quant)) == want["int8"]


def test_verify_swapped_gates_fail_against_the_interpreter():
    """The interpreter check can fail: with update and reset blocks swapped it must."""

    def swap(cell):
        rename = {"update": "reset", "reset": "update"}
        cell.blocks[:] = [b._replace(gate=rename.get(b.gate, b.gate)) for b in cell.blocks]

    path = str(SAMPLES / "tflite_while" / "model.tflite")
    good = verify(path, oracle="framework")
    bad = verify(path, oracle="framework", adjust=swap)
    assert all(c.check("framework").status == "passed" for c in good.cells)
    assert all(c.check("framework").status == "failed" for c in bad.cells)


def test_int8_cells_report_their_quantization_error():
    report = verify(str(SAMPLES / "tflite_int8" / "model.tflite"), oracle="framework")
    assert report.ok
    for cell in report.cells:
        framework = cell.check("framework")
        assert framework.status == "passed" and framework.max_abs <= 1e-5 + 1e-5
        notes = [n for n in cell.notes if n.startswith("quantization error")]
        assert len(notes) == 1
        err = float(notes[0].rsplit(" ", 1)[1])
        assert 1e-4 < err < 0.2  # the hybrid kernels' rounding is visible, and bounded


def _move_buffers_after(src, dst):
    """Rewrite a model with every buffer's bytes after the FlatBuffer (Buffer.offset / size)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = _tf_model(src)
    moved = [(b, bytes(np.asarray(b.data, np.uint8))) for b in model.buffers if b.data is not None and len(b.data)]
    for b, data in moved:
        b.data, b.offset, b.size = None, 1 << 40, len(data)
    length = len(flatbuffer_utils.convert_object_to_bytearray(model))
    pos, tail = (length + 15) // 16 * 16, b""
    for b, data in moved:
        b.offset = pos + len(tail)
        tail += data + bytes((-len(data)) % 16)
    head = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    assert len(head) == length
    dst.write_bytes(head + bytes(pos - length) + tail)


def test_buffers_stored_after_the_flatbuffer(tmp_path):
    src = SAMPLES / "tflite_while" / "model.tflite"
    out = tmp_path / "offset.tflite"
    _move_buffers_after(src, out)
    with tflite.open(str(src)) as a, tflite.open(str(out)) as b:
        assert any(off > 1 for off, size in b.model.buffers if size)
        assert a.infos() == b.infos()
        for name in a.infos():
            assert np.array_equal(a.read(name), b.read(name)), name
    report = json.loads(run_cli("verify", out, "--oracle", "framework", "--json").stdout)
    assert report["status"] == "passed" and len(report["cells"]) == 2


def _copy(tmp_path, name="tflite_while"):
    dst = tmp_path / name
    shutil.copytree(SAMPLES / name, dst)
    return dst / "model.tflite"


def test_truncated_and_damaged_models_are_one_line_errors(tmp_path):
    path = _copy(tmp_path)
    data = path.read_bytes()
    for cut in (4, 7, 100, len(data) // 2, len(data) - 9000):
        path.write_bytes(data[:cut])
        with pytest.raises(GruInspectError):
            tflite.open(str(path)).close()
        err = run_cli("list", path, exit_code=2).stderr
        assert len(err.strip().splitlines()) == 1 and str(path) in err


def test_buffer_past_the_end_is_an_error(tmp_path):
    path = tmp_path / "offset.tflite"
    _move_buffers_after(SAMPLES / "tflite_while" / "model.tflite", path)
    path.write_bytes(path.read_bytes()[:-64])
    err = run_cli("list", path, exit_code=2).stderr
    assert "after the FlatBuffer" in err and "truncated" in err


def test_sniff_needs_the_identifier(tmp_path):
    path = _copy(tmp_path)
    assert detect(str(path)).reader is tflite
    data = bytearray(path.read_bytes())
    data[4:8] = b"TFL2"
    path.write_bytes(bytes(data))
    assert tflite.sniff(str(path)) is None


def test_the_custom_sequence_gru_operator_is_gru_cell_cc_in_out_in_orientation():
    """UNIDIRECTIONAL_SEQUENCE_GRU: gate_weight rows 0:H reset, H:2H update; columns 0:I take x."""
    entry = next(p.values[0] for p in TFLITE if p.id == "tflite_sequence_gru_op")
    w = _expected(entry)
    I, H = entry["cells"][0]["input_size"], entry["cells"][0]["units"]
    with open_cells(sample_path(entry)) as (store, inventory):
        (cell,) = inventory.cells
        blocks = read_blocks(store, cell)
    gw, cw = w["gru/gate_weight"], w["gru/candidate_weight"]
    for k, gate in enumerate(("reset", "update")):
        assert np.array_equal(blocks[(gate, "input_kernel")], gw[k * H:(k + 1) * H, :I].T)
        assert np.array_equal(blocks[(gate, "recurrent_kernel")], gw[k * H:(k + 1) * H, I:].T)
        assert np.array_equal(blocks[(gate, "bias")], w["gru/gate_bias"][k * H:(k + 1) * H])
    assert np.array_equal(blocks[("candidate", "input_kernel")], cw[:, :I].T)
    assert np.array_equal(blocks[("candidate", "recurrent_kernel")], cw[:, I:].T)
    assert not cell.reset_after


def test_the_interpreter_does_not_register_the_custom_operator():
    """Why the custom operator's framework check is TF1 GRUCell rather than the interpreter."""
    import tensorflow as tf

    with pytest.raises((RuntimeError, ValueError), match="UNIDIRECTIONAL_SEQUENCE_GRU"):
        interpreter = tf.lite.Interpreter(model_path=str(SAMPLES / "tflite_sequence_gru_op" / "model.tflite"))
        interpreter.allocate_tensors()


@pytest.mark.parametrize("entry", RECOVERED)
def test_list_reads_operator_parameters_never_weights(entry, monkeypatch):
    """Recovery reads the small constants that are operator parameters in TFLite (split axes,
    slice bounds, the 1 of ``1 - z``), never a weight: ``list`` stays a metadata read."""
    read = []
    original = tflite.TfliteStore.read_raw

    def spy(self, name):
        value = original(self, name)
        read.append((name, value.nbytes))
        return value

    monkeypatch.setattr(tflite.TfliteStore, "read_raw", spy)
    with open_cells(sample_path(entry)) as (_, inventory):
        weights = {t for c in inventory.cells for t in c.tensors.values()}
    assert read and not {name for name, _ in read} & weights
    assert max(n for _, n in read) <= 16


def _with_opcode(src, dst, old: int, new: int) -> None:
    """A copy of TFLite file ``src`` whose operator code ``old`` (BuiltinOperator) is ``new``."""
    import struct

    from gruinspect.formats import _flatbuffer as fb

    data = bytearray(src.read_bytes())
    changed = 0
    for code in fb.root(bytes(data), b"TFL3").tables(1):  # Model.operator_codes
        for field, fmt in ((0, "<b"), (3, "<i")):  # deprecated_builtin_code (int8), builtin_code (int32)
            pos = code._field(field)
            if pos and struct.unpack_from(fmt, data, pos)[0] == old:
                struct.pack_into(fmt, data, pos, new)
                changed += 1
    assert changed, "no operator code to change"
    dst.write_bytes(bytes(data))


def test_a_gated_graph_that_forms_no_gru_step_is_explained(tmp_path):
    """The unrolled sample with its SUB operators made SQUARED_DIFFERENCE ((1 - z)^2 instead of
    1 - z) is no GRU any more: `list` finds no cell and says that the graph's gates form no
    recognised GRU step."""
    path = tmp_path / "model.tflite"
    _with_opcode(SAMPLES / "tflite_unrolled" / "model.tflite", path, old=41, new=99)  # SUB -> SQUARED_DIFFERENCE
    with open_cells(str(path)) as (_, inventory):
        assert inventory.cells == []
        assert any("none of its TANH operators is the candidate of a GRU step" in p for p in inventory.problems), \
            inventory.problems
    result = run_cli("list", str(path))
    assert len([line for line in result.stderr.splitlines() if "gated recurrent cell" in line]) == 1


def test_a_classifier_with_tanh_and_sigmoid_gets_no_sentence(tmp_path):
    """The sentence is for gated graphs only: the same file without MUL operators (MUL -> MAXIMUM)
    is a plain network of tanh and sigmoid activations, with nothing to explain."""
    path = tmp_path / "model.tflite"
    _with_opcode(SAMPLES / "tflite_unrolled" / "model.tflite", path, old=18, new=55)  # MUL -> MAXIMUM
    with open_cells(str(path)) as (_, inventory):
        assert inventory.cells == [] and not any("gated recurrent" in p for p in inventory.problems)
